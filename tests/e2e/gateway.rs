//! The SSH gateway with real peers: the stock OpenSSH client logs in to `otgate demo` with
//! its grant's certificate, the gateway reaches a real `sshd` (own host key, pinned in the
//! inventory, vaulted service key), runs what the scope allows, refuses the rest with exit
//! 126, explains a wrong target, ends a running session on revocation, and records it all.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{
    AssetSshd, Demo, OTGATE, grant, live_session, peer_available, sftp_via_gateway, ssh_via_gateway,
};

#[test]
fn vendors_reach_a_real_sshd_through_the_gateway_scoped_recorded_and_revocable() {
    if !peer_available("ssh") || !peer_available(crate::support::SSHD) {
        return;
    }
    let demo = Demo::start();
    let gateway = demo.file["ssh"].as_str().unwrap().to_owned();

    // The demo's simulated workstation answers through the gateway at once, with the seeded
    // grant's certificate and the gateway's host key checked against demo's known_hosts.
    let (host, port) = gateway.rsplit_once(':').unwrap();
    let vendor_key = demo.user("vendor1")["ssh_key"].as_str().unwrap().to_owned();
    let out = std::process::Command::new("ssh")
        .args([
            "-F",
            "/dev/null",
            "-p",
            port,
            "-i",
            &vendor_key,
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            demo.plant().join("known_hosts").display()
        ))
        .arg(format!("vendor1+ews-sim@{host}"))
        .arg("systemctl status historian")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("active (running)"));
    let try_this = demo.file["try_this"].to_string();
    assert!(try_this.contains("vendor1+ews-sim@"), "{try_this}");
    let asset = AssetSshd::start();
    let admin = demo.cli("admin");
    let eng1 = demo.cli("eng1");
    let vendor = demo.cli("vendor1");
    let auditor = demo.cli("auditor");
    for session in [&admin, &eng1, &vendor, &auditor] {
        session.login();
    }

    // A plain TCP service on the asset (an echo server), for `ssh -L`.
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in echo.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = stream.try_clone().unwrap();
                let mut writer = stream;
                let _ = std::io::copy(&mut reader, &mut writer);
            });
        }
    });
    // The admin puts the asset in the inventory, its host key pinned, its key in the vault.
    let me = asset.register(
        &demo,
        &admin,
        "lab-ws",
        &[format!(
            "{{ name = \"echo\", protocol = \"tcp\", host = \"127.0.0.1\", port = {echo_port} }}"
        )],
    );

    // A maintenance grant, approved, and its certificate.
    let key = std::path::PathBuf::from(demo.user("vendor1")["ssh_key"].as_str().unwrap());
    let id = grant(
        &vendor,
        &eng1,
        "lab-ws",
        &["ssh", "tcp"],
        "maintenance",
        "1h",
        &key,
    );
    let certificate = std::path::PathBuf::from(format!("{}-cert.pub", key.display()));
    let login = "vendor1+lab-ws".to_owned();

    // Allowed: runs on the asset, output and exit status come back.
    let out = ssh_via_gateway(&gateway, &login, &key, &certificate)
        .arg("echo through-the-gateway; exit 3")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "through-the-gateway"
    );
    let out = ssh_via_gateway(&gateway, &login, &key, &certificate)
        .arg("echo through-the-gateway")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "through-the-gateway"
    );

    // `otgate ssh` fetches the certificate and runs the system ssh.
    let out = vendor.ok(&[
        "ssh",
        &id,
        "--gateway",
        &gateway,
        "--key",
        key.to_str().unwrap(),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "--",
        "echo",
        "via-otgate-ssh",
    ]);
    assert_eq!(out.trim(), "via-otgate-ssh");

    // The registered key alone (no certificate) logs in when it names one usable grant.
    let plain = demo.dir.path().join("plain_key");
    std::fs::copy(&key, &plain).unwrap();
    let plain_cert = demo.dir.path().join("no-such-cert.pub");
    let out = ssh_via_gateway(&gateway, &login, &plain, &plain_cert)
        .arg("echo plain-key")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "plain-key");
    let out = ssh_via_gateway(&gateway, "vendor1+historian-1", &plain, &plain_cert)
        .arg("uptime")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ssh vendor1+lab-ws@GATEWAY"), "{stderr}");

    // A full shell through a pty: typed lines run on the asset and come back; a line that
    // matches a deny rule is not submitted.
    let marker = demo.dir.path().join("marker");
    std::fs::write(&marker, "intact").unwrap();
    let mut shell = ssh_via_gateway(&gateway, &login, &key, &certificate)
        .arg("-tt")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = shell.stdin.take().unwrap();
        stdin
            .write_all(
                format!(
                    "shred {}\nprintf 'shell-%s\\n' 42\nexit\n",
                    marker.display()
                )
                .as_bytes(),
            )
            .unwrap();
    }
    let out = shell.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains("shell-42"),
        "{screen}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The denied line never ran: the gateway held its Enter and killed the line.
    assert!(screen.contains("otgate: not run: grant"), "{screen}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "intact");

    // A read-only grant has commands but no shell: the gateway's console runs allowed lines.
    grant(&vendor, &eng1, "lab-ws", &["ssh"], "read-only", "1h", &key);
    let mut console = ssh_via_gateway(&gateway, &login, &key, &certificate)
        .arg("-tt")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = console.stdin.take().unwrap();
        stdin
            .write_all(b"whoami\nrm -rf /tmp/nothing\n\x04")
            .unwrap();
    }
    let out = console.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("otgate console: grant"), "{screen}");
    assert!(screen.contains(&format!("\r\n{}\r\n", me)), "{screen}");
    assert!(screen.contains("otgate: not run: grant"), "{screen}");
    // SFTP with the read-only grant: downloads work, uploads are refused by the gateway.
    let downloaded = demo.dir.path().join("downloaded");
    let upload_target = format!("/tmp/otgate-e2e-upload-{}", std::process::id());
    let batch = demo.dir.path().join("sftp-batch");
    std::fs::write(
        &batch,
        format!(
            "get {} {}\n-put {} {upload_target}\n",
            marker.display(),
            downloaded.display(),
            batch.display()
        ),
    )
    .unwrap();
    let out = sftp_via_gateway(&gateway, &login, &key, &certificate, &batch)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        std::fs::read_to_string(&downloaded).unwrap(),
        "intact",
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("dest open \"{upload_target}\": Permission denied")),
        "{stderr}"
    );
    assert!(
        !std::path::Path::new(&upload_target).exists(),
        "the upload reached the asset"
    );

    vendor.ok(&[
        "grant",
        "cert",
        &id,
        "--key",
        &format!("{}.pub", key.display()),
    ]);

    // Denied by the scope's deny rules: never reaches the asset.
    let out = ssh_via_gateway(&gateway, &login, &key, &certificate)
        .arg("rm -rf /")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(126));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("deny rule"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An asset whose host key is not the pinned one gets no session.
    let impostor = demo.dir.path().join("impostor.toml");
    let service_public = std::fs::read_to_string(asset.service_key.with_extension("pub")).unwrap();
    std::fs::write(
        &impostor,
        format!(
            "name = \"lab-ws-2\"\nkind = \"ews\"\nlevel = \"3\"\nzone = \"site-ops\"\n\
             endpoints = [{{ protocol = \"ssh\", host = \"127.0.0.1\", port = {port}, host_key = \"{key}\", credential = \"lab-ws-service\", user = \"{user}\" }}]\n",
            port = asset.port,
            key = service_public.trim(),
            user = me
        ),
    )
    .unwrap();
    admin.ok(&["assets", "add", impostor.to_str().unwrap()]);
    grant(
        &vendor,
        &eng1,
        "lab-ws-2",
        &["ssh"],
        "read-only",
        "1h",
        &key,
    );
    let out = ssh_via_gateway(&gateway, "vendor1+lab-ws-2", &key, &certificate)
        .arg("uptime")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not the one pinned in the inventory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The certificate file now holds the second grant's certificate: fetch the first again.
    vendor.ok(&[
        "grant",
        "cert",
        &id,
        "--key",
        &format!("{}.pub", key.display()),
    ]);

    // `ssh -L` reaches the grant's TCP endpoint, and nothing else.
    let local = crate::support::free_port();
    let refused_local = crate::support::free_port();
    let mut tunnel = ssh_via_gateway(&gateway, &login, &key, &certificate)
        .args(["-N", "-L"])
        .arg(format!("{local}:127.0.0.1:{echo_port}"))
        .arg("-L")
        .arg(format!("{refused_local}:127.0.0.1:{}", asset.port))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", local)) {
            break stream;
        }
        assert!(Instant::now() < deadline, "the forward did not open");
        std::thread::sleep(Duration::from_millis(100));
    };
    {
        use std::io::{Read, Write};
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(b"ping through the tunnel").unwrap();
        let mut answer = [0u8; 23];
        if let Err(e) = stream.read_exact(&mut answer) {
            panic!("the forward failed ({e}): {}", auditor.ok(&["events"]));
        }
        assert_eq!(&answer, b"ping through the tunnel");
        let mut refused = std::net::TcpStream::connect(("127.0.0.1", refused_local)).unwrap();
        refused
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buffer = [0u8; 16];
        // The gateway refuses the channel: the local connection is closed without data.
        assert_eq!(refused.read(&mut buffer).unwrap_or(0), 0);
    }
    drop(stream);
    let _ = tunnel.kill();
    let _ = tunnel.wait();
    // The plain TCP forward was captured: an auditor exports it as pcap.
    let pcap = demo.dir.path().join("echo.pcap");
    let deadline = Instant::now() + Duration::from_secs(20);
    let captured = loop {
        let sessions = auditor.json(&["sessions", "list", "--asset", "lab-ws"]);
        let found = sessions.as_array().unwrap().iter().find_map(|session| {
            let id = session["id"].as_str().unwrap();
            let out = auditor.run(&["replay", id, "--pcap", pcap.to_str().unwrap()], None);
            out.status.success().then(|| std::fs::read(&pcap).unwrap())
        });
        if let Some(bytes) = found {
            break bytes;
        }
        assert!(Instant::now() < deadline, "no captured forward: {sessions}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(&captured[..4], &0xa1b2_c3d4u32.to_le_bytes());
    let text = String::from_utf8_lossy(&captured);
    assert_eq!(
        text.matches("ping through the tunnel").count(),
        2,
        "both directions"
    );

    // A wrong target is explained.
    let out = ssh_via_gateway(&gateway, "vendor1+plc-7", &key, &certificate)
        .arg("uptime")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("log in as vendor1+lab-ws"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An engineer freezes, resumes and kills a live session; the vendor sees each step.
    let running = ssh_via_gateway(&gateway, &login, &key, &certificate)
        .arg("sleep 60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let live = live_session(&eng1, "lab-ws");
    vendor.refused(
        &["sessions", "kill", &live, "--reason", "mine"],
        "may not act",
    );
    let watcher = eng1.spawn(&["sessions", "watch", &live]);
    eng1.ok(&[
        "sessions",
        "freeze",
        &live,
        "--reason",
        "checking the change ticket",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    eng1.ok(&["sessions", "resume", &live]);
    std::thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    eng1.ok(&["sessions", "kill", &live, "--reason", "wrong change window"]);
    let out = running.wait_with_output().unwrap();
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "the kill took too long"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "frozen by eng1: checking the change ticket",
        "session resumed",
        "session ended: ended by eng1: wrong change window",
    ] {
        assert!(stderr.contains(needle), "{needle} missing: {stderr}");
    }
    // The engineer watching saw the same, and the end.
    let watched = watcher.wait_with_output().unwrap();
    let watched = String::from_utf8_lossy(&watched.stdout);
    assert!(
        watched.contains("frozen by eng1: checking the change ticket"),
        "{watched}"
    );
    assert!(
        watched.contains(&format!("session {live} ended")),
        "{watched}"
    );
    eng1.refused(
        &["sessions", "kill", &live, "--reason", "again"],
        "not live",
    );

    // Revocation ends a running session, with who and why on the vendor's terminal.
    let running = ssh_via_gateway(&gateway, &login, &key, &certificate)
        .arg("sleep 60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let revoked = Instant::now();
    eng1.ok(&[
        "grant",
        "revoke",
        &id,
        "--reason",
        "work window closed early",
    ]);
    let out = running.wait_with_output().unwrap();
    assert!(
        revoked.elapsed() < Duration::from_secs(10),
        "the session outlived its grant"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("session ended") && stderr.contains("revoked"),
        "{stderr}"
    );
    // And no new session starts.
    let out = ssh_via_gateway(&gateway, &login, &key, &certificate)
        .arg("echo again")
        .output()
        .unwrap();
    assert!(!out.status.success());

    // A grant whose window ends within minutes warns the vendor.
    let short = grant(
        &vendor,
        &eng1,
        "lab-ws",
        &["ssh"],
        "maintenance",
        "3m",
        &key,
    );
    let out = ssh_via_gateway(&gateway, &login, &key, &certificate)
        .arg("sleep 1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("grant {short} ends at")),
        "{stderr}"
    );

    // Disabling the vendor's account ends their live session at once and opens no new one,
    // with the reason; enabled again, the grant works after a fresh sign-in.
    let running = ssh_via_gateway(&gateway, &login, &key, &certificate)
        .arg("sleep 60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    live_session(&eng1, "lab-ws");
    eng1.refused(
        &["users", "disable", "vendor1", "--reason", "not mine to do"],
        "may not disable users",
    );
    let disabled = Instant::now();
    assert!(
        admin
            .ok(&["users", "disable", "vendor1", "--reason", "contract ended"])
            .contains("(disabled)")
    );
    let out = running.wait_with_output().unwrap();
    assert!(
        disabled.elapsed() < Duration::from_secs(10),
        "the session outlived the account"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("vendor1's account was disabled by admin: contract ended"),
        "{stderr}"
    );
    let out = ssh_via_gateway(&gateway, &login, &key, &certificate)
        .arg("echo while-disabled")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("account is disabled"), "{stderr}");
    vendor.refused(&["grant", "list"], "log in again");
    admin.ok(&["users", "enable", "vendor1"]);
    vendor.login();
    let out = ssh_via_gateway(&gateway, &login, &key, &certificate)
        .arg("echo enabled-again")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("enabled-again"));

    // Everything is recorded, verifies, and is found by search.
    let public_key = demo.file["recording_public_key"].as_str().unwrap();
    let recordings = demo.file["recordings"].as_str().unwrap();
    let verify = std::process::Command::new(OTGATE)
        .args([
            "audit", "verify", "--all", "--dir", recordings, "--key", public_key,
        ])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}");
    assert!(report.matches(": ok").count() >= 4, "{report}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hits = auditor.json(&["sessions", "search", "through-the-gateway"]);
        if hits.as_array().unwrap().len() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "sessions not indexed: {hits}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let events = auditor.ok(&["events"]);
    assert!(
        events.contains("sftp: open /tmp/otgate-e2e-upload-"),
        "the refused upload is an event"
    );
    for kind in [
        "session_started",
        "session_ended",
        "command_denied",
        "session_kill_requested",
        "session_freeze_requested",
        "session_refused",
        "user_disabled",
        "user_enabled",
    ] {
        assert!(events.contains(kind), "{kind} missing");
    }
    assert!(
        events.contains("vendor1's account is disabled"),
        "the refused login of the disabled account is an event"
    );
}
