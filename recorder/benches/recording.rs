//! Recorder throughput (MB/s of terminal output, with hashing, sealing, signing and zstd on)
//! against writing the same bytes straight to a file, and the overhead per event in bytes.
//!
//! `cargo bench -p otgate-recorder --bench recording`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use otgate_recorder::storage::LocalStorage;
use otgate_recorder::{
    EndReason, Recorder, RecorderConfig, RecordingKey, SessionEvent, SessionInfo, Verdict,
};

/// Terminal output as a busy shell produces it: coloured prompts, log lines, numbers.
fn terminal_output(bytes: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = Vec::new();
    let mut i = 0u64;
    let mut total = 0;
    while total < bytes {
        let line = format!(
            "\x1b[32m2026-12-04T21:{:02}:{:02}Z\x1b[0m historian-agent[{}]: wrote {} points to tag PLC7.Line1.Temp{} in {} ms\r\n",
            (i / 60) % 60,
            i % 60,
            1000 + i % 97,
            i * 37 % 5000,
            i % 250,
            i % 13
        );
        chunk.extend_from_slice(line.as_bytes());
        total += line.len();
        if chunk.len() >= 4096 {
            out.push(std::mem::take(&mut chunk));
        }
        i += 1;
    }
    out.push(chunk);
    out
}

fn info(id: String) -> SessionInfo {
    SessionInfo {
        id,
        grant: Some(1),
        vendor: "vendor1".into(),
        asset: "historian-1".into(),
        zone: Some("site-ops".into()),
        protocol: "ssh".into(),
        client: None,
        width: 120,
        height: 40,
        env: Default::default(),
        started_at: time::OffsetDateTime::now_utc(),
    }
}

struct Fixture {
    dir: std::path::PathBuf,
    key: Arc<RecordingKey>,
}

fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!("otgate-bench-rec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    RecordingKey::generate(&dir.join("key.pem")).unwrap();
    let key = Arc::new(RecordingKey::load(&dir.join("key.pem")).unwrap());
    Fixture { dir, key }
}

fn make_recorder(fixture: &Fixture, compress: bool) -> Recorder {
    let store = fixture.dir.join("recordings");
    Recorder::new(
        store.clone(),
        Arc::new(LocalStorage::new(store)),
        fixture.key.clone(),
        RecorderConfig {
            compress,
            queue_bytes: 64 * 1024 * 1024,
            ..RecorderConfig::default()
        },
    )
}

/// What a benchmarked session carries.
enum Feed<'a> {
    /// Terminal output chunks.
    Output(&'a [Vec<u8>]),
    /// This many command events.
    Events(usize),
}

fn command() -> SessionEvent {
    SessionEvent::Command {
        command: "systemctl restart historian-agent".into(),
        verdict: Verdict::Allowed,
        rule: Some("systemctl restart historian-*".into()),
        reason: None,
    }
}

/// Records one session from start to signed manifest; returns the time taken and the manifest.
fn record(
    runtime: &tokio::runtime::Runtime,
    recorder: &Recorder,
    feed: &Feed<'_>,
) -> (Duration, otgate_recorder::Manifest) {
    runtime.block_on(async {
        let started = Instant::now();
        let session = recorder
            .start(info(otgate_recorder::layout::new_session_id()))
            .await
            .unwrap();
        match feed {
            Feed::Output(chunks) => {
                for chunk in *chunks {
                    session.output(chunk).unwrap();
                    // Let the writer run, as a gateway relaying a stream would.
                    tokio::task::yield_now().await;
                }
            }
            Feed::Events(count) => {
                for _ in 0..*count {
                    session.event(command()).unwrap();
                    tokio::task::yield_now().await;
                }
            }
        }
        let manifest = black_box(session.finish(EndReason::Closed).await.unwrap());
        (started.elapsed(), manifest)
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn throughput(c: &mut Criterion) {
    let fixture = fixture();
    let runtime = runtime();
    let chunks = terminal_output(16 * 1024 * 1024);
    let bytes: usize = chunks.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("recorder");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("direct write + fsync (baseline)", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for i in 0..iterations {
                let started = Instant::now();
                let path = fixture.dir.join(format!("direct-{i}"));
                let mut file = std::fs::File::create(&path).unwrap();
                for chunk in &chunks {
                    file.write_all(chunk).unwrap();
                }
                file.sync_all().unwrap();
                total += started.elapsed();
                std::fs::remove_file(path).unwrap();
            }
            total
        });
    });
    let feed = Feed::Output(&chunks);
    for (name, compress) in [("record, zstd on", true), ("record, zstd off", false)] {
        let recorder = make_recorder(&fixture, compress);
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                (0..iterations)
                    .map(|_| record(&runtime, &recorder, &feed).0)
                    .sum()
            });
        });
    }
    group.finish();

    // Stored size: what the recording costs on disk for this output.
    for compress in [true, false] {
        let (_, manifest) = record(&runtime, &make_recorder(&fixture, compress), &feed);
        println!(
            "stored: {} bytes for {bytes} bytes of output ({:.1}%), zstd {}",
            manifest.stored_bytes,
            100.0 * manifest.stored_bytes as f64 / bytes as f64,
            if compress { "on" } else { "off" }
        );
    }
}

fn events(c: &mut Criterion) {
    const EVENTS: usize = 10_000;
    let fixture = fixture();
    let runtime = runtime();
    let feed = Feed::Events(EVENTS);
    let mut group = c.benchmark_group("recorder events");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    let recorder = make_recorder(&fixture, true);
    group.bench_function("command events, chained and sealed", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| record(&runtime, &recorder, &feed).0)
                .sum()
        });
    });
    group.finish();

    // Overhead per event: the chained line against the event's own JSON.
    for compress in [false, true] {
        let (_, manifest) = record(&runtime, &make_recorder(&fixture, compress), &feed);
        let payload = serde_json::to_string(&command()).unwrap().len();
        let log: u64 = manifest.segments.iter().map(|s| s.events.bytes).sum();
        let per_event = log as f64 / manifest.counts.events as f64;
        println!(
            "events: {per_event:.1} bytes stored per event (the event's JSON alone: {payload} bytes), zstd {}",
            if compress { "on" } else { "off" }
        );
    }
    let _ = std::fs::remove_dir_all(&fixture.dir);
}

criterion_group!(benches, throughput, events);
criterion_main!(benches);
