//! The Modbus inspector alone, per transaction: a request (read 10 holding registers, or a
//! write of one register within bounds) decoded, checked against a scope and forwarded, and
//! its response matched, checked and turned into an event; and a denied request answered by
//! the inspector itself.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};

use otgate_gateway::modbus::Inspector;
use otgate_gateway::modbus::frame::encode;
use otgate_policy::{GrantId, Scope};

fn inspector() -> Inspector {
    let scope = Scope::from_toml(
        r#"
[modbus]
units = [1]
allow = [
  { access = "read", table = "holding", range = "0-999" },
  { access = "write", table = "holding", range = "100-110", values = "0-500" },
]
"#,
        "bench.toml",
    )
    .unwrap();
    Inspector::new(scope, GrantId::new(1).unwrap())
}

fn frame(transaction: u16, pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode(&mut out, transaction, 1, pdu);
    out
}

fn transactions(c: &mut Criterion) {
    let mut group = c.benchmark_group("modbus inspector");
    let request = frame(1, &[3, 0, 0, 0, 10]);
    let mut response_pdu = vec![3, 20];
    response_pdu.extend([0u8; 20]);
    let response = frame(1, &response_pdu);
    let mut read = inspector();
    group.bench_function("read 10 holding registers: request + response", |b| {
        b.iter(|| {
            let now = Instant::now();
            let out = read.from_client(black_box(&request), now);
            black_box(&out);
            black_box(read.from_server(black_box(&response), now))
        })
    });
    let write = frame(2, &[6, 0, 105, 0, 42]);
    let echo = frame(2, &[6, 0, 105, 0, 42]);
    let mut writes = inspector();
    group.bench_function("write 1 register within bounds: request + response", |b| {
        b.iter(|| {
            let now = Instant::now();
            black_box(writes.from_client(black_box(&write), now));
            black_box(writes.from_server(black_box(&echo), now))
        })
    });
    let denied = frame(3, &[6, 0, 200, 0, 1]);
    let mut denials = inspector();
    group.bench_function("denied write answered with exception 02", |b| {
        b.iter(|| black_box(denials.from_client(black_box(&denied), Instant::now())))
    });
    group.finish();
}

criterion_group!(benches, transactions);
criterion_main!(benches);
