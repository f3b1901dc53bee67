//! otgate benchmark harness. It runs the release `otgate` binary (built beside this one) against
//! real peers and prints medians and percentiles, and ratios against a direct connection where
//! there is one.
//!
//! Usage: `cargo build --release && cargo run --release -p otgate-bench -- control-plane [N]`,
//! `... -- ssh [MEGABYTES] [ROUNDS] [IDLE_SESSIONS]`, `... -- modbus [REQUESTS] [CONNECTIONS]`, `... -- detector [SESSIONS]`,
//! `... -- ui [KEYSTROKES]` (needs Chromium).

// A measuring harness: a broken fixture should stop it loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

// The end-to-end tests' DevTools client, shared; not every part of it is used here.
#[allow(dead_code)]
#[path = "../../tests/e2e/browser.rs"]
mod browser;
mod control_plane;
mod demo;
mod detector;
mod modbus;
mod ssh;
mod stats;
mod ui;

use anyhow::{Result, bail};

fn main() -> Result<()> {
    let _ = rustls_provider();
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "control-plane".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match which.as_str() {
        "control-plane" => {
            let rounds = args.next().map(|n| n.parse()).transpose()?.unwrap_or(50);
            runtime.block_on(control_plane::run(rounds))
        }
        "ssh" => {
            let megabytes = args.next().map(|n| n.parse()).transpose()?.unwrap_or(200);
            let rounds = args.next().map(|n| n.parse()).transpose()?.unwrap_or(20);
            let idle = args.next().map(|n| n.parse()).transpose()?.unwrap_or(100);
            runtime.block_on(ssh::run(megabytes, rounds, idle))
        }
        "modbus" => {
            let requests = args
                .next()
                .map(|n| n.parse())
                .transpose()?
                .unwrap_or(10_000);
            let connections = args.next().map(|n| n.parse()).transpose()?.unwrap_or(1_000);
            runtime.block_on(modbus::run(requests, connections))
        }
        "detector" => {
            let sessions = args.next().map(|n| n.parse()).transpose()?.unwrap_or(100);
            runtime.block_on(detector::run(sessions))
        }
        "ui" => {
            let keys = args.next().map(|n| n.parse()).transpose()?.unwrap_or(100);
            runtime.block_on(ui::run(keys))
        }
        other => bail!("unknown benchmark `{other}`: control-plane, ssh, modbus, detector, ui"),
    }
}

fn rustls_provider() -> bool {
    reqwest::Client::builder().build().is_ok()
}
