//! Recordings from the CLI against `otgate demo`: a session recorded by a test driver (the
//! recorder library, as the gateway will drive it) is indexed, found by full-text search,
//! replayed, exported and played by the real `asciinema` (from PyPI), verified through the
//! API and offline from a copied folder (where a changed byte is named), bundled as
//! evidence, and summarised in an incident report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use otgate_recorder::storage::LocalStorage;
use otgate_recorder::{
    EndReason, Recorder, RecorderConfig, RecordingKey, SessionEvent, SessionInfo, Verdict,
};

use crate::support::{Demo, OTGATE, TempDir, peer_available};

/// Records a short maintenance session into the demo's recordings, as the gateway would.
fn record(demo: &Demo) -> String {
    let recordings = PathBuf::from(demo.file["recordings"].as_str().unwrap());
    let key = RecordingKey::load(&demo.plant().join("keys/recording.pem")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let recorder = Recorder::new(
            recordings.clone(),
            Arc::new(LocalStorage::new(&recordings)),
            Arc::new(key),
            RecorderConfig::default(),
        );
        let id = otgate_recorder::layout::new_session_id();
        let session = recorder
            .start(SessionInfo {
                id: id.clone(),
                grant: Some(1),
                vendor: "vendor1".into(),
                asset: "ews-1".into(),
                zone: Some("site-ops".into()),
                protocol: "ssh".into(),
                client: Some("192.0.2.10:50022".into()),
                width: 100,
                height: 30,
                env: [("TERM".to_owned(), "xterm-256color".to_owned())].into(),
                started_at: time::OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();
        session
            .output(b"\x1b[1;32mvendor1@ews-1\x1b[0m:~$ ")
            .unwrap();
        session
            .input(b"systemctl restart historian-agent\r")
            .unwrap();
        session
            .event(SessionEvent::Command {
                command: "systemctl restart historian-agent".into(),
                verdict: Verdict::Allowed,
                rule: Some("systemctl restart historian-*".into()),
                reason: None,
            })
            .unwrap();
        session
            .output(b"systemctl restart historian-agent\r\nhistorian-agent restarted in 2.1 s\r\n")
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        session
            .event(SessionEvent::Command {
                command: "cat /etc/shadow".into(),
                verdict: Verdict::Denied,
                rule: None,
                reason: Some("not in the grant's scope".into()),
            })
            .unwrap();
        session
            .output(b"\x1b[1;32mvendor1@ews-1\x1b[0m:~$ exit\r\n")
            .unwrap();
        session.finish(EndReason::Closed).await.unwrap();
        id
    })
}

fn otgate_offline(args: &[&str]) -> std::process::Output {
    Command::new(OTGATE)
        .args(args)
        .env_remove("OTGATE_SERVER")
        .output()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn a_recorded_session_is_found_replayed_verified_and_exported() {
    let demo = Demo::start();
    let id = record(&demo);
    let public_key = demo.file["recording_public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let recordings = demo.file["recordings"].as_str().unwrap().to_owned();
    let auditor = demo.cli("auditor");
    auditor.login();

    // The indexer picks the recording up within a few seconds; search finds the moment.
    let deadline = Instant::now() + Duration::from_secs(60);
    let hits = loop {
        let hits = auditor.json(&["sessions", "search", "systemctl restart"]);
        if !hits.as_array().unwrap().is_empty() {
            break hits;
        }
        assert!(Instant::now() < deadline, "the session was not indexed");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(hits[0]["session"]["id"], id.as_str());
    assert_eq!(hits[0]["session"]["verification"], "ok");
    let kinds: Vec<&str> = hits[0]["moments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"command") && kinds.contains(&"output"),
        "{hits}"
    );
    let text = auditor.ok(&["sessions", "search", "systemctl restart"]);
    assert!(
        text.contains(&format!("otgate replay {id} --from")),
        "{text}"
    );
    let none = auditor.ok(&["sessions", "search", "rm -rf"]);
    assert!(none.contains("no recorded session contains"), "{none}");

    let list = auditor.json(&["sessions", "list", "--vendor", "vendor1", "--since", "1h"]);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["denials"], 1);
    let show = auditor.ok(&["sessions", "show", &id]);
    assert!(show.contains("closed by the vendor"), "{show}");
    // The vendor sees their own session.
    let vendor = demo.cli("vendor1");
    vendor.login();
    assert_eq!(
        vendor.json(&["sessions", "list"]).as_array().unwrap().len(),
        1
    );

    // Replay through the API, with events between the frames.
    let played = auditor.ok(&[
        "replay",
        &id,
        "--speed",
        "50",
        "--idle-cap",
        "0.1",
        "--key",
        &public_key,
    ]);
    assert!(
        played.contains("historian-agent restarted in 2.1 s"),
        "{played}"
    );
    assert!(
        played.contains("command DENIED: cat /etc/shadow"),
        "{played}"
    );

    // Export, then the stock asciinema player prints what was recorded.
    let cast = demo.dir.path().join("session.cast");
    auditor.ok(&["replay", &id, "--export", cast.to_str().unwrap()]);
    if peer_available("asciinema") {
        let out = Command::new("asciinema")
            .arg("cat")
            .arg(&cast)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(
            printed.contains("historian-agent restarted in 2.1 s"),
            "{printed}"
        );
        assert!(printed.contains("vendor1@ews-1"), "{printed}");
    }

    // Verification through the API and offline, and what a changed byte looks like.
    let verified = auditor.ok(&["audit", "verify", &id, "--key", &public_key]);
    assert!(verified.contains(&format!("{id}: ok")), "{verified}");
    let offline = TempDir::new("offline");
    let copy = offline.path().join("recordings");
    copy_dir(Path::new(&recordings), &copy);
    let out = otgate_offline(&[
        "audit",
        "verify",
        "--all",
        "--dir",
        copy.to_str().unwrap(),
        "--key",
        &public_key,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let sealed = copy.join(&id).join("terminal.000001.cast.zst");
    let mut bytes = std::fs::read(&sealed).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&sealed, bytes).unwrap();
    let out = otgate_offline(&[
        "audit",
        "verify",
        "--all",
        "--dir",
        copy.to_str().unwrap(),
        "--key",
        &public_key,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains(&format!("{id}: FAILED")), "{report}");
    assert!(
        report.contains("terminal.000001.cast.zst: SHA-256 differs from the seal"),
        "{report}"
    );
    let out = otgate_offline(&["audit", "verify", "--all", "--dir", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key"));
    let out = otgate_offline(&[
        "audit",
        "verify",
        "no-such-session",
        "--dir",
        copy.to_str().unwrap(),
        "--key",
        &public_key,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no recording of session no-such-session")
    );

    // The evidence bundle holds the recording, key, report and timeline.
    let bundle = demo.dir.path().join("bundle.zip");
    auditor.ok(&[
        "audit",
        "export",
        &id,
        "--out",
        bundle.to_str().unwrap(),
        "--key",
        &public_key,
    ]);
    let listing = Command::new("python3")
        .args(["-m", "zipfile", "-l"])
        .arg(&bundle)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for name in [
        "timeline.md",
        "timeline.html",
        "terminal.cast",
        "events.jsonl",
        "verification.txt",
        "recording.pub.pem",
        "SHA256SUMS",
        &format!("recordings/{id}/manifest.json"),
    ] {
        assert!(
            listing.contains(name),
            "{name} missing from the bundle: {listing}"
        );
    }
    let again = auditor.run(
        &["audit", "export", &id, "--out", bundle.to_str().unwrap()],
        None,
    );
    assert!(
        !again.status.success(),
        "an existing bundle is never overwritten"
    );

    // The incident report over the last hour names the asset, the denial and the evidence.
    let report = otgate_offline(&[
        "audit",
        "report",
        "--since",
        "1h",
        "--dir",
        &recordings,
        "--key",
        &public_key,
    ]);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let report = String::from_utf8_lossy(&report.stdout);
    for needle in [
        "Early warning (within 24 hours)",
        "Incident notification (within 72 hours)",
        "ews-1 (zone site-ops)",
        "command DENIED: cat /etc/shadow",
        &format!("{id}: ok"),
    ] {
        assert!(report.contains(needle), "{needle} missing: {report}");
    }
}
