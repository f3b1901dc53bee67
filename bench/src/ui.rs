//! The browser UI's figures, in a real headless Chromium (the end-to-end tests' DevTools
//! client) against the release demo:
//! - the replay page of a one-hour recording: bytes transferred, time to first contentful
//!   paint, and what playing the whole hour costs, against the sign-in page measured in the
//!   same run;
//! - live view latency: from a keystroke in the vendor's OpenSSH session to the frame that
//!   shows it in an engineer's browser, against the echo the vendor sees in the same session.
//!
//! The hour is recorded by the recorder itself on a paused clock (a maintenance hour: a
//! command every 15 s with its output, and `top` redrawing full screen for a minute every
//! ten minutes), so its times, segments and signatures are those of a real hour.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use otgate_recorder::model::{EndReason, SessionEvent, SessionInfo, Verdict};
use otgate_recorder::storage::LocalStorage;
use otgate_recorder::{Recorder, RecorderConfig, RecordingKey};

use crate::browser::{Browser, Page};
use crate::demo::Demo;
use crate::ssh::{grant, lab, shell};
use crate::stats::{ms, summarize};

/// A `top` screen of 36 rows, redrawn in place.
fn top_screen(second: u32) -> String {
    let mut out = format!(
        "\x1b[H\x1b[1mtop - 10:{:02}:{:02} up 41 days,  load average: 0.{:02}, 0.31, 0.28\x1b[0m\x1b[K\r\n",
        second / 60 % 60,
        second % 60,
        second % 97
    );
    out.push_str("\x1b[7m    PID USER      PR  NI    VIRT    RES  %CPU  %MEM     TIME+ COMMAND        \x1b[0m\x1b[K\r\n");
    for row in 0..33u32 {
        let cpu = (second * 7 + row * 13) % 100;
        out.push_str(&format!(
            "{:>7} {:<9} 20   0 {:>7} {:>6} {:>5}.{} {:>5}.{} {:>3}:{:02}.{:02} {:<15}\x1b[K\r\n",
            1000 + row * 17,
            if row % 3 == 0 { "root" } else { "historian" },
            200_000 + row * 1024,
            20_000 + row * 512,
            cpu / 10,
            cpu % 10,
            row % 10,
            (row * 3) % 10,
            row,
            second % 60,
            row % 100,
            ["historian", "postgres", "sshd", "collector", "rsyslogd"][(row % 5) as usize]
        ));
    }
    out
}

/// Writes a one-hour maintenance session into the demo's recordings; returns its id.
fn record_an_hour(plant: &Path) -> Result<(String, u64)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?;
    runtime.block_on(async {
        let key = RecordingKey::load(&plant.join("keys/recording.pem"))?;
        let dir = plant.join("recordings");
        let recorder = Recorder::new(
            dir.clone(),
            Arc::new(LocalStorage::new(&dir)),
            Arc::new(key),
            RecorderConfig::default(),
        );
        let id = otgate_recorder::layout::new_session_id();
        let info = SessionInfo {
            id: id.clone(),
            grant: Some(1),
            vendor: "vendor1".into(),
            asset: "ews-sim".into(),
            zone: Some("site-ops".into()),
            protocol: "ssh".into(),
            client: Some("127.0.0.1".into()),
            width: 120,
            height: 36,
            env: BTreeMap::new(),
            started_at: time::OffsetDateTime::now_utc() - time::Duration::hours(1),
        };
        let session = recorder.start(info).await?;
        let mut bytes = 0u64;
        let commands = [
            "systemctl status historian",
            "journalctl -u historian -n 40",
            "df -h",
            "tail -n 30 /var/log/historian/collector.log",
            "ps aux --sort=-%cpu | head -20",
        ];
        let mut second = 0u32;
        while second < 3600 {
            if second % 600 == 300 {
                // A minute of `top` on the alternate screen, redrawn every second.
                session.event(command_event("top"))?;
                session.output_paced(b"$ top\r\n\x1b[?1049h\x1b[?25l").await?;
                for tick in 0..60 {
                    let screen = top_screen(second + tick);
                    bytes += screen.len() as u64;
                    session.output_paced(screen.as_bytes()).await?;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                session.output_paced(b"\x1b[?25h\x1b[?1049l").await?;
                second += 60;
                continue;
            }
            let command = commands[(second / 15) as usize % commands.len()];
            let mut text = format!("historian@ews-sim:~$ {command}\r\n");
            for line in 0..(10 + second % 30) {
                text.push_str(&format!(
                    "Dec 05 10:{:02}:{:02} ews-sim collector[2114]: batch {} written: {} points, {} ms\r\n",
                    second / 60 % 60,
                    second % 60,
                    second * 40 + line,
                    480 + line * 3,
                    12 + line % 9
                ));
            }
            session.event(command_event(command))?;
            bytes += text.len() as u64;
            session.output_paced(text.as_bytes()).await?;
            tokio::time::sleep(Duration::from_secs(15)).await;
            second += 15;
        }
        session.finish(EndReason::Closed).await?;
        Ok((id, bytes))
    })
}

fn command_event(command: &str) -> SessionEvent {
    SessionEvent::Command {
        command: command.into(),
        verdict: Verdict::Allowed,
        rule: Some("ssh.allow[0]".into()),
        reason: None,
    }
}

/// `user`'s entry in demo.json.
fn entry<'a>(demo: &'a Demo, user: &str) -> Result<&'a Value> {
    demo.file["users"]
        .as_array()
        .context("users")?
        .iter()
        .find(|u| u["name"] == user)
        .context("user")
}

fn code(demo: &Demo, user: &str) -> Result<Option<String>> {
    let entry = entry(demo, user)?;
    let Some(secret) = entry["totp_secret"].as_str() else {
        return Ok(None);
    };
    let seed = totp_rs::Secret::try_from_base32(secret).map_err(|e| anyhow::anyhow!("{e}"))?;
    let totp = totp_rs::Builder::new()
        .with_secret(seed.as_ref().to_vec())
        .build()?;
    // The next step's code: the API session of the same user used this step's.
    let at = time::OffsetDateTime::now_utc().unix_timestamp() as u64 + 30;
    Ok(Some(totp.generate(at).to_string()))
}

async fn sign_in(page: &Page, demo: &Demo, user: &str) -> Result<()> {
    let base = demo.file["api"].as_str().context("api")?;
    page.goto(&format!("{base}/ui/login")).await?;
    let entry = entry(demo, user)?;
    page.fill("input[name=user]", user).await?;
    page.fill(
        "input[name=password]",
        entry["password"].as_str().context("password")?,
    )
    .await?;
    if let Some(code) = code(demo, user)? {
        page.fill("input[name=totp]", &code).await?;
    }
    page.click("form[action='/ui/login'] button[type=submit]")
        .await?;
    page.wait_for_navigation().await?;
    Ok(())
}

/// Loads `url` `rounds` times: first contentful paint and bytes of each load.
async fn loads(page: &Page, url: &str, rounds: usize) -> Result<Vec<(Duration, u64)>> {
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        page.mark_weight();
        page.goto(url).await?;
        page.wait_for(
            "performance.getEntriesByName('first-contentful-paint').length > 0",
            Duration::from_secs(10),
        )
        .await?;
        let paint = page
            .first_contentful_paint()
            .await?
            .context("no first contentful paint")?;
        out.push((
            Duration::from_secs_f64(paint / 1000.0),
            page.weight_since_mark(),
        ));
    }
    Ok(out)
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn median_bytes(mut bytes: Vec<u64>) -> u64 {
    bytes.sort_unstable();
    bytes.get(bytes.len() / 2).copied().unwrap_or_default()
}

/// Runs both measurements; `keys` keystrokes for live view.
pub async fn run(keys: usize) -> Result<()> {
    let Some(browser) = Browser::launch().await? else {
        bail!("chromium is not installed (apt-get install chromium)");
    };
    let demo = Demo::start()?;
    let plant = demo.dir().join("plant");
    let base = demo.file["api"].as_str().context("api")?.to_owned();

    // The replay page of a one-hour recording.
    let started = Instant::now();
    // Its own paused runtime, on a thread of its own.
    let writer = plant.clone();
    let (id, output) = std::thread::spawn(move || record_an_hour(&writer))
        .join()
        .map_err(|_| anyhow::anyhow!("the recording thread panicked"))??;
    let stored: u64 = std::fs::read_dir(plant.join("recordings").join(&id))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "one-hour recording {id}: {} of terminal output, {} stored, written in {:.1} s",
        kib(output),
        kib(stored),
        started.elapsed().as_secs_f64()
    );
    let auditor_api = demo.session("auditor").await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while auditor_api.get(&format!("/sessions/{id}")).await.is_err() {
        if Instant::now() > deadline {
            bail!("the recording was not indexed");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let auditor = browser.page().await?;
    let login = loads(&auditor, &format!("{base}/ui/login"), 6).await?;
    sign_in(&auditor, &demo, "auditor").await?;
    let replay = loads(&auditor, &format!("{base}/ui/sessions/{id}"), 6).await?;
    let (cold, warm) = replay.split_first().context("no loads")?;
    let warm_paints: Vec<Duration> = warm.iter().map(|(p, _)| *p).collect();
    let login_paints: Vec<Duration> = login.iter().skip(1).map(|(p, _)| *p).collect();
    let (warm_p50, login_p50) = (summarize(&warm_paints).p50, summarize(&login_paints).p50);
    println!(
        "replay page, first load (reads and verifies the hour): first paint {}, {}",
        ms(cold.0),
        kib(cold.1)
    );
    println!(
        "replay page, again (recording cached): first paint p50 {}, {} per load",
        ms(warm_p50),
        kib(median_bytes(warm.iter().map(|(_, b)| *b).collect()))
    );
    println!(
        "sign-in page (reads nothing): first paint p50 {}, {} per load; replay/sign-in {:.2}x",
        ms(login_p50),
        kib(median_bytes(login.iter().map(|(_, b)| *b).collect())),
        warm_p50.as_secs_f64() / login_p50.as_secs_f64().max(1e-9)
    );
    let whole: Value = auditor
        .eval(&format!(
            "(async () => {{ let from = 0, bytes = 0, frames = 0, windows = 0; const t0 = performance.now(); \
             performance.clearResourceTimings(); \
             for (;;) {{ const r = await fetch('/ui/sessions/{id}/frames?from=' + from); const text = await r.text(); \
             const body = JSON.parse(text); bytes += text.length; frames += body.frames.length; windows += 1; \
             if (body.last || body.until <= from) break; from = body.until; }} \
             const took = performance.now() - t0; \
             const wire = performance.getEntriesByType('resource').filter(e => e.name.includes('/frames?')) \
               .reduce((sum, e) => sum + e.encodedBodySize, 0); \
             return [bytes, frames, windows, took, wire]; }})()"
        ))
        .await?;
    println!(
        "playing the whole hour: {} frames in {} windows, {} of JSON, {} on the wire (gzip), fetched in {:.0} ms",
        whole[1],
        whole[2],
        kib(whole[0].as_u64().unwrap_or_default()),
        kib(whole[4].as_f64().unwrap_or_default() as u64),
        whole[3].as_f64().unwrap_or_default()
    );

    // Live view: keystroke to browser frame, against the vendor's own echo.
    let lab = lab(&demo).await?;
    grant(&lab.vendor, &lab.eng1, &lab.public, &lab.certificate).await?;
    let gateway = demo.file["ssh"].as_str().context("ssh")?.to_owned();
    let (_, port) = gateway.rsplit_once(':').context("gateway")?;
    let (mut child, mut stdin, rx) = shell(port, &lab.key, &lab.certificate)?;
    let mut seen = Vec::new();
    let mut wait_for = |needle: &[u8]| -> Result<()> {
        loop {
            if seen.windows(needle.len()).any(|w| w == needle) {
                seen.clear();
                return Ok(());
            }
            let chunk = rx
                .recv_timeout(Duration::from_secs(10))
                .context("the shell stopped answering")?;
            seen.extend_from_slice(&chunk);
        }
    };
    stdin.write_all(b"echo RE''ADY\r")?;
    wait_for(b"READY")?;
    let live = lab.eng1.get("/sessions?live=true").await?;
    let session = live
        .as_array()
        .context("sessions")?
        .iter()
        .find(|s| s["asset"] == "bench-ws")
        .and_then(|s| s["id"].as_str())
        .context("the live session")?
        .to_owned();
    let engineer = browser.page().await?;
    sign_in(&engineer, &demo, "eng1").await?;
    engineer
        .goto(&format!("{base}/ui/sessions/{session}"))
        .await?;
    engineer
        .wait_for(
            "document.getElementById('live-status').textContent === 'Live'",
            Duration::from_secs(20),
        )
        .await?;
    engineer
        .eval(
            "window.__want = null; window.__seen = null; \
             new MutationObserver(() => { if (window.__want && window.__seen === null && \
               document.getElementById('screen').textContent.includes(window.__want)) \
               window.__seen = Date.now(); }).observe(document.getElementById('screen'), \
               {childList: true, subtree: true, characterData: true}); true",
        )
        .await?;
    let (mut vendor, mut browser_view) = (Vec::with_capacity(keys), Vec::with_capacity(keys));
    for i in 0..keys {
        let token = format!("k{i:04}x");
        engineer
            .eval(&format!(
                "window.__seen = null; window.__want = '{token}'; true"
            ))
            .await?;
        let wall = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as f64;
        let start = Instant::now();
        stdin.write_all(token.as_bytes())?;
        stdin.flush()?;
        wait_for(token.as_bytes())?;
        vendor.push(start.elapsed());
        let deadline = Instant::now() + Duration::from_secs(10);
        let painted = loop {
            if let Some(at) = engineer.eval("window.__seen").await?.as_f64() {
                break at;
            }
            if Instant::now() > deadline {
                bail!("the browser never showed {token}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        browser_view.push(Duration::from_secs_f64((painted - wall).max(0.0) / 1000.0));
        stdin.write_all(b"\x15")?; // Ctrl-U: clear the line
        std::thread::sleep(Duration::from_millis(50));
    }
    let (vendor, browser_view) = (summarize(&vendor), summarize(&browser_view));
    println!("{}", vendor.line("keystroke to the vendor's echo"));
    println!(
        "{}",
        browser_view.line("keystroke to the engineer's browser")
    );
    println!(
        "live view p50: {:.2}x the vendor's echo (browser times are whole milliseconds)",
        browser_view.p50.as_secs_f64() / vendor.p50.as_secs_f64().max(1e-9)
    );
    let _ = stdin.write_all(b"exit\r");
    let _ = child.kill();
    let _ = child.wait();
    drop(lab);
    Ok(())
}
