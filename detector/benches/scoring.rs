//! The detector per event, warm: a command line scored against a vendor's learnt model (the
//! command model with its pair term, novelty, attack patterns, lateral movement), and a
//! Modbus request against a PLC's learnt profile. Sessions roll over every 100 events so
//! learning runs as it does live.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use time::OffsetDateTime;

use otgate_detector::{
    Detector, DetectorConfig, ModbusRequest, Observation, Observed, SessionContext, Table,
};

const LINES: [&str; 8] = [
    "ls -la /opt/historian",
    "systemctl status historian",
    "tail -n 100 /var/log/historian.log | grep -i error",
    "df -h",
    "vi /etc/historian/historian.conf",
    "systemctl restart historian",
    "journalctl -u historian --since today",
    "cat /proc/loadavg",
];

fn context(id: &str) -> SessionContext {
    SessionContext {
        id: id.into(),
        grant: Some(1),
        vendor: "vendor1".into(),
        asset: "ews-1".into(),
        zone: Some("site-ops".into()),
        level: None,
        addresses: vec!["10.0.3.5".into()],
        maintenance: Vec::new(),
        started_at: OffsetDateTime::now_utc(),
    }
}

fn request(i: usize) -> ModbusRequest {
    let write = i.is_multiple_of(10);
    ModbusRequest {
        unit: 1,
        function: if write { 6 } else { 3 },
        table: Some(Table::Holding),
        start: Some(100 + (i % 10) as u16),
        count: Some(if write { 1 } else { 10 }),
        values: if write {
            vec![(100 + i % 300) as u16]
        } else {
            vec![]
        },
        exception: None,
    }
}

/// Runs `n` events of `what(i)` through sessions of 100.
fn warm(detector: &mut Detector, n: usize, what: impl Fn(usize) -> Observed) {
    for s in 0..n / 100 {
        let id = format!("warm{s}");
        detector.start(context(&id));
        for i in 0..100 {
            let _ = detector.observe(&Observation {
                session: id.clone(),
                at: OffsetDateTime::now_utc(),
                what: what(s * 100 + i),
            });
        }
        detector.end(&id);
    }
}

fn scoring(c: &mut Criterion) {
    let mut group = c.benchmark_group("detector per event");
    let command = |i: usize| Observed::Command {
        line: LINES[i % LINES.len()].to_owned(),
        allowed: true,
    };
    let mut detector = Detector::new(DetectorConfig::default()).unwrap();
    warm(&mut detector, 2_000, command);
    let mut i = 0usize;
    let mut session = 0usize;
    detector.start(context("s0"));
    group.bench_function("command line", |b| {
        b.iter(|| {
            i += 1;
            if i.is_multiple_of(100) {
                detector.end(&format!("s{session}"));
                session += 1;
                detector.start(context(&format!("s{session}")));
            }
            let observation = Observation {
                session: format!("s{session}"),
                at: OffsetDateTime::now_utc(),
                what: command(i),
            };
            black_box(detector.observe(&observation));
        })
    });
    let modbus = |i: usize| Observed::Modbus {
        request: request(i),
        allowed: true,
    };
    let mut detector = Detector::new(DetectorConfig::default()).unwrap();
    warm(&mut detector, 2_000, modbus);
    detector.start(context("m0"));
    let (mut i, mut session) = (0usize, 0usize);
    group.bench_function("modbus request", |b| {
        b.iter(|| {
            i += 1;
            if i.is_multiple_of(100) {
                detector.end(&format!("m{session}"));
                session += 1;
                detector.start(context(&format!("m{session}")));
            }
            let observation = Observation {
                session: format!("m{session}"),
                at: OffsetDateTime::now_utc(),
                what: modbus(i),
            };
            black_box(detector.observe(&observation));
        })
    });
    group.finish();
}

criterion_group!(benches, scoring);
criterion_main!(benches);
