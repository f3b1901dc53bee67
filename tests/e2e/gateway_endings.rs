//! How SSH sessions end without anyone pressing a button: the recorder fails (the session is
//! ended, never left unrecorded) and the grant's window closes while the vendor is connected.
//! Real peers: OpenSSH `ssh` through `otgate demo` to an OpenSSH `sshd` asset; the recorder's
//! storage fails for real (its files made immutable with `chattr +i`, which even root cannot
//! write through).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{AssetSshd, Demo, grant, live_session, peer_available, ssh_via_gateway};

/// Files made immutable, made writable again on drop so the demo's folder can be removed.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn files_in(dir: &Path) -> Self {
        let files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(!files.is_empty(), "no recording files in {}", dir.display());
        let out = Command::new("chattr")
            .arg("+i")
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "chattr +i failed (the test needs a file system with immutable files and \
             CAP_LINUX_IMMUTABLE): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(files)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").args(&self.0).output();
    }
}

/// Waits for `child` to exit, at most `limit`; kills it and fails the test past that.
fn wait_at_most(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: the session was still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn sessions_end_when_the_recorder_fails_and_when_the_grant_expires() {
    if !peer_available("ssh") || !peer_available(crate::support::SSHD) || !peer_available("chattr")
    {
        return;
    }
    let demo = Demo::start();
    let gateway = demo.file["ssh"].as_str().unwrap().to_owned();
    let asset = AssetSshd::start();
    let admin = demo.cli("admin");
    let eng1 = demo.cli("eng1");
    let vendor = demo.cli("vendor1");
    let auditor = demo.cli("auditor");
    for session in [&admin, &eng1, &vendor, &auditor] {
        session.login();
    }
    asset.register(&demo, &admin, "lab-ws", &[]);
    let key = PathBuf::from(demo.user("vendor1")["ssh_key"].as_str().unwrap());
    let certificate = PathBuf::from(format!("{}-cert.pub", key.display()));
    let login = "vendor1+lab-ws";

    // Recorder failure: the session's recording files stop accepting writes; the next flush
    // fails and the gateway ends the session with the reason on the vendor's terminal.
    let first = grant(
        &vendor,
        &eng1,
        "lab-ws",
        &["ssh"],
        "maintenance",
        "1h",
        &key,
    );
    let running = ssh_via_gateway(&gateway, login, &key, &certificate)
        .arg("while :; do echo tick; sleep 0.2; done")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = live_session(&eng1, "lab-ws");
    let recording = Path::new(demo.file["recordings"].as_str().unwrap()).join(&id);
    let immutable = Immutable::files_in(&recording);
    let out = wait_at_most(running, Duration::from_secs(30), "recorder failure");
    drop(immutable);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("session ended: recording failed"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("tick"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let live = eng1.json(&["sessions", "list", "--live"]);
        if !live
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id.as_str())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failed session is still listed live"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let events = auditor.ok(&["events"]);
    assert!(
        events.contains("session_ended") && events.contains("recording failed"),
        "{events}"
    );
    // The grant itself is untouched: a new session records normally.
    let out = ssh_via_gateway(&gateway, login, &key, &certificate)
        .arg("echo recorded-again")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eng1.ok(&["grant", "revoke", &first, "--reason", "done"]);

    // Grant expiry: a grant whose window ends while the vendor is connected. The vendor is
    // warned at login (the end is minutes away) and the session ends when the window does.
    let requested = Instant::now();
    let short = grant(
        &vendor,
        &eng1,
        "lab-ws",
        &["ssh"],
        "maintenance",
        "20s",
        &key,
    );
    let running = ssh_via_gateway(&gateway, login, &key, &certificate)
        .arg("sleep 120")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_at_most(running, Duration::from_secs(60), "grant expiry");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("grant {short} ends at")),
        "{stderr}"
    );
    assert!(
        stderr.contains("session ended") && stderr.contains(&format!("grant {short} expired")),
        "{stderr}"
    );
    // The window is 20 s from the request; the gateway re-checks every second.
    assert!(
        requested.elapsed() < Duration::from_secs(40),
        "the session outlived its window by more than 20 s: {:?}",
        requested.elapsed()
    );
    let out = ssh_via_gateway(&gateway, login, &key, &certificate)
        .arg("echo too-late")
        .output()
        .unwrap();
    assert!(!out.status.success());
}
