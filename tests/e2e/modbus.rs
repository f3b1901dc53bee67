//! Modbus through the gateway with real peers: pymodbus as the PLC (its own server and
//! datastore) and as the vendor's tool, over `ssh -L` from the stock OpenSSH client. Allowed
//! reads return the PLC's values; writes outside the range or bounds get exceptions 02 and 03
//! and leave the PLC's registers unchanged (read directly); functions outside the scope get
//! 01; malformed frames close the connection and never reach the PLC; revocation ends the
//! tunnel.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    Demo, ModbusPlc, Session, free_port, grant, modbus_client, peer_available, python_module,
    ssh_via_gateway, wait_for_port,
};

const SCOPE: &str = r#"
[modbus]
units = [1]
allow = [
  { access = "read", table = "holding", range = "0-999" },
  { access = "write", table = "holding", range = "100-110", values = "0-500" },
]
"#;

/// `ssh -N -L local:plc` through the gateway; killed on drop.
struct Tunnel(Child);

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A read of one holding register as raw Modbus/TCP.
fn raw_read(transaction: u16, address: u16) -> Vec<u8> {
    let [t0, t1] = transaction.to_be_bytes();
    let [a0, a1] = address.to_be_bytes();
    vec![t0, t1, 0, 0, 0, 6, 1, 3, a0, a1, 0, 1]
}

/// Reads until the peer closes (Ok(bytes)) or `limit` passes (Err).
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, Vec<u8>> {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 512];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(seen),
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Ok(seen),
        }
    }
    Err(seen)
}

/// Puts the pymodbus PLC in the inventory as `plc-lab` (level 2, one approval) and gives
/// vendor1 an approved grant on it with [`SCOPE`] and a certificate for `key`.
pub(crate) fn setpoint_grant(
    demo: &Demo,
    admin: &Session<'_>,
    eng1: &Session<'_>,
    vendor: &Session<'_>,
    port: u16,
    key: &std::path::Path,
) -> String {
    let asset = demo.dir.path().join("plc-lab.toml");
    std::fs::write(
        &asset,
        format!(
            "name = \"plc-lab\"\nkind = \"plc\"\nlevel = \"2\"\nzone = \"line-1\"\n\
             endpoints = [{{ name = \"modbus\", protocol = \"modbus\", host = \"127.0.0.1\", port = {port}, units = [1] }}]\n",
        ),
    )
    .unwrap();
    admin.ok(&["assets", "add", asset.to_str().unwrap()]);
    let scope = demo.dir.path().join("setpoints.toml");
    std::fs::write(&scope, SCOPE).unwrap();
    grant(
        vendor,
        eng1,
        "plc-lab",
        &["modbus"],
        scope.to_str().unwrap(),
        "1h",
        key,
    )
}

#[test]
fn modbus_through_ssh_forwarding_is_scoped_to_units_functions_addresses_and_values() {
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
    let key = std::path::PathBuf::from(demo.user("vendor1")["ssh_key"].as_str().unwrap());
    let certificate = std::path::PathBuf::from(format!("{}-cert.pub", key.display()));
    let id = setpoint_grant(&demo, &admin, &eng1, &vendor, plc.port, &key);

    let local = free_port();
    let tunnel = Tunnel(
        ssh_via_gateway(&gateway, "vendor1+plc-lab", &key, &certificate)
            .args(["-N", "-o", "ExitOnForwardFailure=yes", "-L"])
            .arg(format!("{local}:127.0.0.1:{}", plc.port))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_for_port(local, "the ssh -L tunnel");

    // Through the gateway, as the vendor's tool sees it.
    let results = modbus_client(
        local,
        1,
        json!([
            ["read", 100, 2],
            ["write", 105, 42],
            ["read", 105, 1],
            ["write", 120, 1],
            ["write", 106, 600],
            ["write_many", 109, [1, 2, 3]],
            ["read", 1000, 1],
            ["read_input", 0, 1],
            ["write_coil", 3, true],
        ]),
    );
    let expected = [
        json!({ "registers": [100, 101] }),
        json!({ "ok": true }),
        json!({ "registers": [42] }),
        json!({ "exception": 2 }),
        json!({ "exception": 3 }),
        json!({ "exception": 2 }),
        json!({ "exception": 2 }),
        json!({ "exception": 1 }),
        json!({ "exception": 1 }),
    ];
    assert_eq!(results, expected);
    // A unit outside the grant: gateway path unavailable (10).
    assert_eq!(
        modbus_client(local, 2, json!([["read", 100, 1]])),
        [json!({ "exception": 10 })]
    );
    // The PLC itself: the allowed write landed, the refused ones did not.
    assert_eq!(
        modbus_client(
            plc.port,
            1,
            json!([["read", 105, 2], ["read", 109, 3], ["read", 120, 1]])
        ),
        [
            json!({ "registers": [42, 106] }),
            json!({ "registers": [109, 110, 111] }),
            json!({ "registers": [120] }),
        ]
    );

    // Malformed frames close the connection; nothing reaches the PLC.
    for garbage in [
        b"GET / HTTP/1.1\r\nHost: plc\r\n\r\n".to_vec(),
        vec![0, 1, 0, 0, 0, 9, 1, 16, 0, 105, 0, 1, 2, 0], // write cut short, length lies
        vec![0, 1, 0, 7, 0, 6, 1, 6, 0, 105, 0, 7],        // protocol id 7
    ] {
        let mut stream = TcpStream::connect(("127.0.0.1", local)).unwrap();
        stream.write_all(&garbage).unwrap();
        if garbage.len() == 14 {
            // The frame announces more bytes than it has: the vendor gives up and closes its
            // side; the cut-off frame is never forwarded.
            stream.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let answer = read_until_closed(&mut stream, Duration::from_secs(10));
        assert_eq!(answer, Ok(Vec::new()), "{garbage:?} was answered");
    }
    assert_eq!(
        modbus_client(plc.port, 1, json!([["read", 105, 1]])),
        [json!({ "registers": [42] })]
    );

    // Revocation ends a tunnel connection that is in use.
    let mut stream = TcpStream::connect(("127.0.0.1", local)).unwrap();
    stream.write_all(&raw_read(77, 100)).unwrap();
    let mut answer = [0u8; 11];
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(&answer[..2], &[0, 77]);
    assert_eq!(&answer[9..], &[0, 100]);
    eng1.ok(&["grant", "revoke", &id, "--reason", "pump maintenance done"]);
    assert!(
        read_until_closed(&mut stream, Duration::from_secs(10)).is_ok(),
        "the tunnel connection outlived its grant"
    );
    let after: Vec<Value> = modbus_client(local, 1, json!([["read", 100, 1]]));
    assert!(after[0].get("registers").is_none(), "{after:?}");
    drop(tunnel);

    // On the record: denials and malformed input are events; the transactions are in the
    // session's recording and found by search.
    let events = auditor.ok(&["events"]);
    for kind in ["modbus_denied", "modbus_malformed"] {
        assert!(events.contains(kind), "{kind} missing");
    }
    assert!(
        events.contains("write holding registers 106 = [600]"),
        "{events}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hits = auditor.json(&["sessions", "search", "write holding registers 105"]);
        if !hits.as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Modbus session was not indexed: {hits}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // `otgate replay` shows a Modbus session as a table of its transactions.
    let sessions = auditor.json(&["sessions", "list", "--asset", "plc-lab"]);
    let tables: String = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|s| auditor.ok(&["replay", s["id"].as_str().unwrap()]))
        .collect();
    assert!(tables.contains("FUNCTION"), "{tables}");
    for needle in [
        "6 write register",
        "holding registers 106",
        "600",
        "DENIED",
        " 03 ",
        "allowed",
    ] {
        assert!(tables.contains(needle), "{needle} missing:\n{tables}");
    }
}

/// `otgate connect` running; killed on drop.
struct Connect(Child);

impl Drop for Connect {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn modbus_through_the_quic_tunnel_is_scoped_recorded_and_revocable() {
    if !python_module("pymodbus") {
        return;
    }
    let demo = Demo::start();
    let tunnel = demo.file["tunnel"].as_str().unwrap().to_owned();
    let plc = ModbusPlc::start();
    let admin = demo.cli("admin");
    let eng1 = demo.cli("eng1");
    let vendor = demo.cli("vendor1");
    let auditor = demo.cli("auditor");
    for session in [&admin, &eng1, &vendor, &auditor] {
        session.login();
    }
    let key = std::path::PathBuf::from(demo.user("vendor1")["ssh_key"].as_str().unwrap());
    let id = setpoint_grant(&demo, &admin, &eng1, &vendor, plc.port, &key);

    // The demo's own simulated PLC with its seeded grants: demo.json says how. The setpoint
    // grant writes register 2 within 0-500 and nothing else.
    let seeded: Vec<String> = demo.file["try_this"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|line| line.as_str()?.strip_prefix("otgate connect "))
        .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert_eq!(seeded.len(), 2, "{}", demo.file["try_this"]);
    let simulated = free_port();
    let listen = format!("127.0.0.1:{simulated}");
    let setpoint = Connect(vendor.spawn(&[
        "connect",
        &seeded[1],
        "--gateway",
        &tunnel,
        "--listen",
        &listen,
    ]));
    wait_for_port(simulated, "otgate connect to the simulated PLC");
    let results = modbus_client(
        simulated,
        1,
        json!([
            ["write", 2, 400],
            ["read", 2, 1],
            ["write", 2, 600],
            ["write", 3, 1]
        ]),
    );
    assert_eq!(
        results,
        [
            json!({ "ok": true }),
            json!({ "registers": [400] }),
            json!({ "exception": 3 }),
            json!({ "exception": 2 }),
        ]
    );
    drop(setpoint);

    let local = free_port();
    let listen = format!("127.0.0.1:{local}");
    let connect =
        Connect(vendor.spawn(&["connect", &id, "--gateway", &tunnel, "--listen", &listen]));
    wait_for_port(local, "otgate connect");
    let results = modbus_client(
        local,
        1,
        json!([
            ["read", 100, 2],
            ["write", 105, 7],
            ["write", 105, 501],
            ["write", 111, 1],
            ["read_input", 0, 1],
        ]),
    );
    assert_eq!(
        results,
        [
            json!({ "registers": [100, 101] }),
            json!({ "ok": true }),
            json!({ "exception": 3 }),
            json!({ "exception": 2 }),
            json!({ "exception": 1 }),
        ]
    );
    assert_eq!(
        modbus_client(plc.port, 1, json!([["read", 105, 1], ["read", 111, 1]])),
        [json!({ "registers": [7] }), json!({ "registers": [111] })]
    );
    // Malformed bytes close that connection only; the tunnel stays up.
    let mut garbage = TcpStream::connect(("127.0.0.1", local)).unwrap();
    garbage
        .write_all(b"\x00\x01\x00\x09\x00\x06\x01\x03\x00\x00\x00\x01")
        .unwrap();
    assert_eq!(
        read_until_closed(&mut garbage, Duration::from_secs(10)),
        Ok(Vec::new())
    );
    assert_eq!(
        modbus_client(local, 1, json!([["read", 0, 1]])),
        [json!({ "registers": [0] })]
    );

    // Revocation: the open connection ends, and `otgate connect` says who and why, and stops.
    let mut open = TcpStream::connect(("127.0.0.1", local)).unwrap();
    open.write_all(&raw_read(5, 100)).unwrap();
    let mut answer = [0u8; 11];
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    open.read_exact(&mut answer).unwrap();
    // Freeze holds the vendor's requests until the engineer resumes.
    // (The index may still list a connection that just ended: freeze what the gateway has.)
    crate::support::live_session(&eng1, "plc-lab");
    let listed = eng1.json(&["sessions", "list", "--live", "--asset", "plc-lab"]);
    let frozen: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .filter(|id| {
            eng1.run(
                &["sessions", "freeze", id, "--reason", "operator check"],
                None,
            )
            .status
            .success()
        })
        .collect();
    assert_eq!(frozen.len(), 1, "{listed}");
    std::thread::sleep(Duration::from_millis(300));
    open.write_all(&raw_read(6, 101)).unwrap();
    open.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    assert!(
        open.read_exact(&mut answer).is_err(),
        "a frozen session's request reached the PLC"
    );
    eng1.ok(&["sessions", "resume", &frozen[0]]);
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    open.read_exact(&mut answer).unwrap();
    assert_eq!(&answer[..2], &[0, 6]);
    assert_eq!(&answer[9..], &[0, 101]);
    eng1.ok(&["grant", "revoke", &id, "--reason", "setpoint work finished"]);
    assert!(
        read_until_closed(&mut open, Duration::from_secs(10)).is_ok(),
        "the tunnel stream outlived its grant"
    );
    let mut child = connect;
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "otgate connect kept running after the revocation"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut stdout = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(!child.0.wait().unwrap().success());
    assert!(
        stdout.contains(&format!("grant {id} on plc-lab")),
        "{stdout}"
    );
    assert!(stdout.contains("connection 1 from"), "{stdout}");
    assert!(
        stdout.contains("tunnel closed") && stdout.contains("setpoint work finished"),
        "{stdout}"
    );

    // A revoked grant gets no new tunnel, with the reason.
    let refused = vendor.run(
        &[
            "connect",
            &id,
            "--gateway",
            &tunnel,
            "--listen",
            "127.0.0.1:0",
        ],
        None,
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("revoked"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Every tunnel connection was a recorded session; the denials are events.
    let events = auditor.ok(&["events"]);
    assert!(events.contains("modbus_denied"), "{events}");
    assert!(events.contains("tunnel 127.0.0.1"), "{events}");
}
