//! The time of a request -> approve -> certificate round trip through the API, over HTTPS,
//! against `otgate demo` (SQLite, embedded defaults).

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use crate::demo::Demo;
use crate::stats::summarize;

pub async fn run(rounds: usize) -> Result<()> {
    let demo = Demo::start()?;
    let vendor = demo.session("vendor1").await?;
    let eng1 = demo.session("eng1").await?;
    let eng2 = demo.session("eng2").await?;
    let mut totals = Vec::new();
    let mut totals_l3 = Vec::new();
    let (mut create, mut approve, mut cert) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds + 5 {
        // Level 1: two approvals.
        let start = Instant::now();
        let request = vendor
            .post("/requests", json!({ "asset": "plc-7", "protocols": ["ssh"], "scope": { "preset": "read-only" }, "duration": "1h", "reason": "bench" }))
            .await?;
        let created = start.elapsed();
        let id = request["id"].as_i64().unwrap_or_default();
        let before_approve = Instant::now();
        eng1.post(&format!("/requests/{id}/approve"), json!({}))
            .await?;
        eng2.post(&format!("/requests/{id}/approve"), json!({}))
            .await?;
        let approved = before_approve.elapsed();
        let before_cert = Instant::now();
        vendor
            .post(&format!("/grants/{id}/certificate"), json!({}))
            .await?;
        let certified = before_cert.elapsed();
        let total = start.elapsed();
        // Level 3: one approval.
        let start_l3 = Instant::now();
        let request = vendor
            .post("/requests", json!({ "asset": "ews-1", "protocols": ["ssh"], "scope": { "preset": "read-only" }, "duration": "1h", "reason": "bench" }))
            .await?;
        let id = request["id"].as_i64().unwrap_or_default();
        eng1.post(&format!("/requests/{id}/approve"), json!({}))
            .await?;
        vendor
            .post(&format!("/grants/{id}/certificate"), json!({}))
            .await?;
        let total_l3 = start_l3.elapsed();
        if round >= 5 {
            // The first rounds warm connections and caches.
            totals.push(total);
            totals_l3.push(total_l3);
            create.push(created);
            approve.push(approved / 2);
            cert.push(certified);
        }
    }
    println!(
        "control plane over HTTPS against otgate demo (SQLite), {rounds} rounds after 5 warm-up rounds"
    );
    println!(
        "{}",
        summarize(&totals).line("level 1: request + 2 approvals + cert")
    );
    println!(
        "{}",
        summarize(&totals_l3).line("level 3: request + 1 approval + cert")
    );
    println!("{}", summarize(&create).line("  create request"));
    println!("{}", summarize(&approve).line("  one approval"));
    println!("{}", summarize(&cert).line("  issue certificate"));
    let median = summarize(&totals).p50;
    println!(
        "round trips per second (level 1, sequential): {:.1}",
        1.0 / median.max(Duration::from_micros(1)).as_secs_f64()
    );
    Ok(())
}
