//! The control plane from the CLI against `otgate demo`: a vendor asks, two engineers approve,
//! the vendor gets an OpenSSH certificate that `ssh-keygen -L` reads and a real `sshd` trusting
//! our CA accepts inside the window and refuses after it; revocation, quarantine, events,
//! configuration checks, and the refusals of bad input along the way.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Demo, OTGATE, SSHD, Sshd, peer_available};

/// Length of the grant whose certificate is tried against sshd, then waited out.
const WINDOW_SECS: u64 = 40;

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "vendor1@laptop",
            "-f",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_whole_lifecycle_from_the_cli_with_real_openssh() {
    let demo = Demo::start();
    let vendor = demo.cli("vendor1");
    let eng1 = demo.cli("eng1");
    let eng2 = demo.cli("eng2");
    let auditor = demo.cli("auditor");
    let admin = demo.cli("admin");

    // Logging in with a wrong password is refused and saves nothing.
    let wrong = vendor.run(
        &["login", "--user", "vendor1", "--password-stdin"],
        Some("not the password\n"),
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("invalid user name, password"));
    vendor.refused(&["assets", "list"], "not logged in");
    for session in [&vendor, &eng1, &eng2, &auditor, &admin] {
        session.login();
    }
    let assets = vendor.json(&["assets", "list"]);
    assert!(
        assets
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "plc-7" && a["level"] == "1")
    );

    // The vendor registers a key made by the real ssh-keygen.
    let key = demo.dir.path().join("id_ed25519");
    keygen(&key);
    let public = format!("{}.pub", key.display());
    assert!(vendor.ok(&["keys", "add", &public]).contains("SHA256:"));
    vendor.refused(&["keys", "add", &public], "registered already");

    // Bad requests are refused with what to change, and store nothing.
    let base = [
        "request",
        "create",
        "--protocol",
        "ssh",
        "--reason",
        "replace the filler firmware",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        base.iter().chain(extra).copied().collect()
    };
    vendor.refused(
        &with(&[
            "--asset",
            "plc-99",
            "--scope",
            "read-only",
            "--duration",
            "1h",
        ]),
        "unknown asset",
    );
    vendor.refused(
        &with(&[
            "--asset",
            "plc-7",
            "--scope",
            "read-only",
            "--duration",
            "5h",
        ]),
        "4h",
    );
    vendor.refused(
        &with(&[
            "--asset",
            "plc-7",
            "--scope",
            "everything",
            "--duration",
            "1h",
        ]),
        "preset",
    );
    vendor.refused(
        &with(&[
            "--asset",
            "plc-7",
            "--scope",
            "read-only",
            "--duration",
            "1h",
            "--start",
            "2020-01-01T00:00:00Z",
        ]),
        "past",
    );
    vendor.refused(
        &with(&[
            "--asset",
            "fw-dmz",
            "--scope",
            "read-only",
            "--duration",
            "1h",
        ]),
        "may not request",
    );
    let scope_file = demo.dir.path().join("bad-scope.toml");
    std::fs::write(&scope_file, "[ssh]\nallow = [\"ls; rm -rf /\"]\n").unwrap();
    let bad_scope = vendor.run(
        &[
            "request",
            "create",
            "--protocol",
            "ssh",
            "--reason",
            "x",
            "--asset",
            "plc-7",
            "--duration",
            "1h",
            "--scope",
            scope_file.to_str().unwrap(),
        ],
        None,
    );
    assert!(!bad_scope.status.success());
    assert!(String::from_utf8_lossy(&bad_scope.stderr).contains("bad-scope.toml"));
    // Only the demo's seeded grants (on its simulated workstation and PLC) are there.
    let stored = vendor.json(&["request", "list"]);
    assert!(
        stored
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["asset"] == "ews-sim" || r["asset"] == "plc-sim"),
        "nothing partial was stored: {stored}"
    );

    // A level-1 request needs two distinct engineers; the requester approves nothing.
    let window = format!("{WINDOW_SECS}s");
    let created = vendor.json(&[
        "request",
        "create",
        "--asset",
        "plc-7",
        "--protocol",
        "ssh",
        "--scope",
        "read-only",
        "--duration",
        &window,
        "--reason",
        "replace the filler firmware",
        "--ticket",
        "CHG-1042",
    ]);
    let id = created["id"].as_i64().unwrap().to_string();
    assert_eq!(created["status"], "pending");
    vendor.refused(&["request", "approve", &id], "may not approve");
    vendor.refused(&["grant", "cert", &id, "--key", &public], "pending");
    assert!(eng1.ok(&["request", "approve", &id]).contains("1 of 2"));
    eng1.refused(&["request", "approve", &id], "already approved");
    assert!(eng2.ok(&["request", "approve", &id]).contains("active"));
    eng2.refused(&["request", "approve", &id], "already approved");

    // The certificate: key id = grant id, principal = vendor, valid exactly for the window.
    let grant = vendor.json(&["grant", "show", &id]);
    let cert = vendor.json(&["grant", "cert", &id, "--key", &public]);
    let cert_path = format!("{}-cert.pub", key.display());
    assert!(
        Path::new(&cert_path).is_file(),
        "written beside the key, where ssh finds it"
    );
    assert_eq!(cert["valid_after"], grant["window"]["start"]);
    assert_eq!(cert["valid_before"], grant["window"]["end"]);
    let listing = Command::new("ssh-keygen")
        .args(["-L", "-f", &cert_path])
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(listing.contains("user certificate"), "{listing}");
    assert!(listing.contains(&format!("Key ID: \"{id}\"")), "{listing}");
    let principals: Vec<&str> = listing
        .split("Principals:")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("                "))
        .map(str::trim)
        .collect();
    assert_eq!(principals, ["vendor1"], "{listing}");
    let valid = listing
        .lines()
        .find(|l| l.trim_start().starts_with("Valid:"))
        .unwrap();
    let start = grant["window"]["start"]
        .as_str()
        .unwrap()
        .trim_end_matches('Z');
    let end = grant["window"]["end"]
        .as_str()
        .unwrap()
        .trim_end_matches('Z');
    assert!(
        valid.contains(start.split('.').next().unwrap())
            && valid.contains(end.split('.').next().unwrap()),
        "{valid} vs {start}..{end}"
    );
    assert!(
        !listing.contains("permit-agent-forwarding") && !listing.contains("permit-X11-forwarding"),
        "{listing}"
    );
    let token = vendor.ok(&["grant", "token", &id]);
    assert!(
        token.starts_with("eyJ") && token.trim().split('.').count() == 3,
        "{token}"
    );
    eng1.refused(&["grant", "token", &id], "not to you");

    // A real sshd that trusts our CA accepts the certificate inside the window...
    if peer_available(SSHD) && peer_available("ssh") {
        let ca_file = demo.file["ssh_user_ca_file"].as_str().unwrap();
        let sshd = Sshd::start(Path::new(ca_file), "vendor1");
        let inside = sshd.ssh(&key, Path::new(&cert_path), "echo otgate-ok");
        assert!(
            String::from_utf8_lossy(&inside.stdout).contains("otgate-ok"),
            "sshd refused a valid certificate: {} / {}",
            String::from_utf8_lossy(&inside.stderr),
            std::fs::read_to_string(&sshd.log).unwrap_or_default()
        );
        // ...and refuses it once the window has passed.
        let end = time::OffsetDateTime::parse(
            grant["window"]["end"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let wait = (end - time::OffsetDateTime::now_utc())
            .whole_milliseconds()
            .max(0) as u64
            + 1500;
        std::thread::sleep(Duration::from_millis(wait));
        let after = sshd.ssh(&key, Path::new(&cert_path), "echo otgate-ok");
        assert!(
            !after.status.success(),
            "sshd accepted an expired certificate"
        );
        assert!(!String::from_utf8_lossy(&after.stdout).contains("otgate-ok"));
        let log = std::fs::read_to_string(&sshd.log).unwrap_or_default();
        assert!(
            log.contains("expired"),
            "sshd refused for another reason: {log}"
        );
        eng1.refused(
            &["grant", "revoke", &id, "--reason", "too late"],
            "already expired",
        );
        assert_eq!(vendor.json(&["grant", "show", &id])["status"], "expired");
    }

    // An auditor follows the event log live while the rest happens.
    let mut follower = auditor.spawn(&["events", "--follow", "--format", "json"]);
    let followed = follower.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(followed)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    // Revocation of a live grant (level 3: one approval), then no new credentials.
    let second = vendor.json(&[
        "request",
        "create",
        "--asset",
        "ews-1",
        "--protocol",
        "ssh",
        "--scope",
        "read-only",
        "--duration",
        "1h",
        "--reason",
        "check the backup job",
    ]);
    let second_id = second["id"].as_i64().unwrap().to_string();
    eng2.ok(&["request", "approve", &second_id]);
    vendor.refused(
        &["grant", "revoke", &second_id, "--reason", "x"],
        "may not revoke",
    );
    assert!(
        eng1.ok(&[
            "grant",
            "revoke",
            &second_id,
            "--reason",
            "vendor reported a lost laptop"
        ])
        .contains("revoked")
    );
    eng1.refused(
        &["grant", "revoke", &second_id, "--reason", "again"],
        "already revoked",
    );
    vendor.refused(&["grant", "cert", &second_id, "--key", &public], "revoked");

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen_revocation = false;
    while !seen_revocation && std::time::Instant::now() < deadline {
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(500)) {
            let event: Value = serde_json::from_str(&line).unwrap();
            seen_revocation = event["type"] == "grant_revoked"
                && event["grant"].as_i64() == second["id"].as_i64();
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    assert!(
        seen_revocation,
        "events --follow did not show the revocation"
    );

    // Deny and withdraw.
    let third = vendor.json(&[
        "request",
        "create",
        "--asset",
        "hmi-2",
        "--protocol",
        "ssh",
        "--scope",
        "maintenance",
        "--duration",
        "2h",
        "--reason",
        "panel update",
    ]);
    let third_id = third["id"].as_i64().unwrap().to_string();
    eng1.ok(&["request", "deny", &third_id, "--reason", "no change ticket"]);
    eng2.refused(&["request", "approve", &third_id], "denied");
    let fourth = vendor.json(&[
        "request",
        "create",
        "--asset",
        "hmi-2",
        "--protocol",
        "ssh",
        "--scope",
        "read-only",
        "--duration",
        "1h",
        "--reason",
        "look at alarms",
    ]);
    let fourth_id = fourth["id"].as_i64().unwrap().to_string();
    vendor.ok(&["request", "withdraw", &fourth_id]);
    eng1.refused(&["request", "approve", &fourth_id], "withdrawn");

    // Quarantine blocks the vendor until lifted.
    let quarantine = eng1.json(&[
        "quarantine",
        "vendor",
        "vendor1",
        "--reason",
        "EDR alert on the vendor laptop",
    ]);
    vendor.refused(
        &[
            "request",
            "create",
            "--asset",
            "ews-1",
            "--protocol",
            "ssh",
            "--scope",
            "read-only",
            "--duration",
            "1h",
            "--reason",
            "x",
        ],
        "quarantined",
    );
    eng1.ok(&["quarantine", "lift", &quarantine["id"].to_string()]);
    vendor.ok(&[
        "request",
        "create",
        "--asset",
        "ews-1",
        "--protocol",
        "ssh",
        "--scope",
        "read-only",
        "--duration",
        "1h",
        "--reason",
        "after the all-clear",
    ]);

    // Admin work: users, assets, vault.
    assert!(
        admin
            .ok(&[
                "users", "add", "tech2", "--role", "engineer", "--zone", "line-1"
            ])
            .contains("one-time password")
    );
    assert!(admin.ok(&["users", "list"]).contains("engineer@line-1"));
    vendor.refused(&["users", "list"], "may not list users");
    let asset_file = demo.dir.path().join("rtu-9.toml");
    std::fs::write(
        &asset_file,
        "name = \"rtu-9\"\nkind = \"rtu\"\nlevel = \"1\"\nzone = \"line-1\"\nendpoints = [{ protocol = \"modbus\", host = \"10.0.9.9\", port = 502, units = [3] }]\n",
    )
    .unwrap();
    assert!(
        admin
            .ok(&["assets", "add", asset_file.to_str().unwrap()])
            .contains("added rtu-9")
    );
    assert!(
        admin
            .ok(&["assets", "show", "rtu-9"])
            .contains("units = [3]")
    );
    let extra_zone = demo.dir.path().join("extra.toml");
    std::fs::write(
        &extra_zone,
        "[[zones]]\nname = \"water\"\nvendor_orgs = [\"acme\"]\n\n[[assets]]\nname = \"rtu-w1\"\nkind = \"rtu\"\nlevel = \"1\"\nzone = \"water\"\nendpoints = [{ protocol = \"modbus\", host = \"10.0.5.1\", port = 502, units = [1] }]\n",
    )
    .unwrap();
    assert!(
        admin
            .ok(&["assets", "import", extra_zone.to_str().unwrap()])
            .contains("1 zones and 1 assets")
    );
    assert!(
        vendor.ok(&["assets", "list"]).contains("rtu-w1"),
        "acme vendors see the new zone"
    );
    eng1.refused(
        &["assets", "import", extra_zone.to_str().unwrap()],
        "may not import",
    );
    let secret_file = demo.dir.path().join("secret.txt");
    std::fs::write(&secret_file, "Pl@nt-Passw0rd\n").unwrap();
    admin.ok(&[
        "vault",
        "add",
        "ews-1-maint",
        "--kind",
        "password",
        "--file",
        secret_file.to_str().unwrap(),
    ]);
    let vault = admin.ok(&["vault", "list"]);
    assert!(vault.contains("ews-1-maint") && !vault.contains("Passw0rd"));

    // Everything above is in the event log, as text, JSON lines and CEF.
    let cef = auditor.ok(&["events", "--format", "cef"]);
    for kind in [
        "request_created",
        "request_approved",
        "grant_issued",
        "certificate_issued",
        "token_issued",
        "grant_revoked",
        "request_denied",
        "quarantine_started",
        "refused",
        "login_failed",
    ] {
        assert!(
            cef.lines()
                .any(|l| l.starts_with("CEF:0|otgate|otgate|") && l.contains(&format!("|{kind}|"))),
            "{kind} missing from:\n{cef}"
        );
    }
    let lines = auditor.ok(&["events", "--format", "json"]);
    assert!(
        lines
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok())
    );
    assert!(
        lines.contains("\"type\":\"grant_expired\"") || !peer_available(SSHD),
        "the clock expired the first grant"
    );
    let vendor_view = vendor.ok(&["events"]);
    assert!(
        !vendor_view.contains("login_succeeded      actor=eng1"),
        "vendors see only their own events"
    );

    // Logging out revokes the token.
    vendor.ok(&["logout"]);
    vendor.refused(&["assets", "list"], "not logged in");
}

#[test]
fn check_and_init_guard_the_configuration() {
    let demo = Demo::start();
    let config = demo.plant().join("otgate.toml");
    let ok = Command::new(OTGATE)
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("5 assets"));

    let broken = demo.dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("max_duration = \"4h\"", "max_duration = \"soon\""),
    )
    .unwrap();
    let out = Command::new(OTGATE)
        .args(["check", "--config"])
        .arg(&broken)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("broken.toml") && stderr.contains("approval.levels[0].max_duration"),
        "{stderr}"
    );

    let unknown = demo.dir.path().join("unknown.toml");
    std::fs::write(&unknown, "colour = \"red\"\n").unwrap();
    let out = Command::new(OTGATE)
        .args(["serve", "--config"])
        .arg(&unknown)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));

    let again = Command::new(OTGATE)
        .args(["init", "--dir"])
        .arg(demo.plant())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));

    let fresh = demo.dir.path().join("fresh");
    let init = Command::new(OTGATE)
        .args(["init", "--listen", "127.0.0.1:0", "--dir"])
        .arg(&fresh)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&init.stdout);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(stdout.contains("one-time password"), "{stdout}");
    for file in [
        "otgate.toml",
        "otgate.db",
        "keys/ssh-ca",
        "keys/ssh-ca.pub",
        "keys/jwt.pem",
        "keys/vault.key",
        "keys/recording.pem",
        "tls/ca.pem",
        "tls/server.key",
    ] {
        assert!(fresh.join(file).exists(), "{file} missing after init");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for private in [
            "keys/ssh-ca",
            "keys/jwt.pem",
            "keys/vault.key",
            "keys/recording.pem",
            "tls/server.key",
        ] {
            let mode = std::fs::metadata(fresh.join(private))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{private} is readable by others");
        }
    }
    let check = Command::new(OTGATE)
        .args(["check", "--config"])
        .arg(fresh.join("otgate.toml"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
