//! Replays the Modbus/TCP traffic of real public captures (Lemay & Fernandez, USENIX CSET
//! 2016: normal polling of 6 RTUs, a function-code scan, lateral movement) through the
//! inspector, packet by packet in capture order: every frame is forwarded, answered or
//! refused with a reason, and nothing panics. The captures are in the workplace's shared
//! data (`OTGATE_DATA`, else `../shared/data` beside the checkout).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use otgate_gateway::modbus::Inspector;
use otgate_policy::{GrantId, Scope};

/// Where the shared data is; `None` (and a failure under OTGATE_REQUIRE_PEERS=1) when absent.
fn data() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("OTGATE_DATA").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")),
        Some(PathBuf::from("/work/shared/data")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("modbus/lemay").is_dir());
    if found.is_none() {
        assert!(
            std::env::var("OTGATE_REQUIRE_PEERS").as_deref() != Ok("1"),
            "the shared data (modbus/lemay) is required but missing: set OTGATE_DATA"
        );
        eprintln!("skipping: the shared Modbus captures are not here (set OTGATE_DATA)");
    }
    found
}

/// TCP segments of a classic pcap file (Ethernet, IPv4): (source, destination, payload) by
/// `(address, port)`.
type Segment = (Address, Address, Vec<u8>);

/// An IPv4 address and a TCP port.
type Address = (u32, u16);

fn tcp_segments(file: &[u8]) -> Vec<Segment> {
    let le = match file[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("not a pcap file"),
    };
    let u32_at = |b: &[u8], at: usize| {
        let bytes = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if le {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        }
    };
    assert_eq!(u32_at(file, 20), 1, "Ethernet captures only");
    let mut segments = Vec::new();
    let mut at = 24;
    while at + 16 <= file.len() {
        let captured = u32_at(file, at + 8) as usize;
        let packet = &file[at + 16..(at + 16 + captured).min(file.len())];
        at += 16 + captured;
        let mut ip = 14;
        if packet.len() < ip {
            continue;
        }
        let mut ethertype = u16::from_be_bytes([packet[12], packet[13]]);
        if ethertype == 0x8100 && packet.len() >= 18 {
            ethertype = u16::from_be_bytes([packet[16], packet[17]]);
            ip = 18;
        }
        if ethertype != 0x0800 || packet.len() < ip + 20 || packet[ip + 9] != 6 {
            continue;
        }
        let header = usize::from(packet[ip] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([packet[ip + 2], packet[ip + 3]]));
        let tcp = ip + header;
        if packet.len() < tcp + 20 {
            continue;
        }
        let source = u32::from_be_bytes(packet[ip + 12..ip + 16].try_into().unwrap());
        let destination = u32::from_be_bytes(packet[ip + 16..ip + 20].try_into().unwrap());
        let sport = u16::from_be_bytes([packet[tcp], packet[tcp + 1]]);
        let dport = u16::from_be_bytes([packet[tcp + 2], packet[tcp + 3]]);
        let offset = usize::from(packet[tcp + 12] >> 4) * 4;
        let end = (ip + total).min(packet.len());
        if tcp + offset >= end {
            continue;
        }
        segments.push((
            (source, sport),
            (destination, dport),
            packet[tcp + offset..end].to_vec(),
        ));
    }
    segments
}

/// A scope that allows all of Modbus: the replay tests the codec, not the policy.
fn everything() -> Scope {
    let units: Vec<String> = (0..=255).map(|u: u16| u.to_string()).collect();
    let functions: Vec<String> = (1..=127).map(|f: u8| f.to_string()).collect();
    let rule = |access: &str, table: &str| {
        format!("{{ access = \"{access}\", table = \"{table}\", range = \"0-65535\" }}")
    };
    Scope::from_toml(
        &format!(
            "[modbus]\nunits = [{}]\nfunctions = [{}]\nallow = [{}]\n",
            units.join(", "),
            functions.join(", "),
            [
                rule("read", "coils"),
                rule("read", "discrete"),
                rule("read", "holding"),
                rule("read", "input"),
                rule("write", "coils"),
                rule("write", "holding"),
            ]
            .join(", ")
        ),
        "everything.toml",
    )
    .unwrap()
}

#[derive(Default, Debug)]
struct Tally {
    forwarded: usize,
    answered: usize,
    refused_by_inspector: usize,
    plc_exceptions: usize,
    closed: Vec<String>,
}

#[test]
fn public_modbus_captures_replay_through_the_inspector() {
    let Some(data) = data() else {
        return;
    };
    let scope = everything();
    let grant = GrantId::new(1).unwrap();
    let mut total = Tally::default();
    let mut files = 0;
    for entry in std::fs::read_dir(data.join("modbus/lemay")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("pcap") {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).unwrap();
        let mut flows: HashMap<(Address, Address), Inspector> = HashMap::new();
        let start = Instant::now();
        for (i, (source, destination, payload)) in tcp_segments(&bytes).into_iter().enumerate() {
            let now = start + Duration::from_micros(i as u64);
            let (key, from_client) = if destination.1 == 502 {
                ((source, destination), true)
            } else if source.1 == 502 {
                ((destination, source), false)
            } else {
                continue;
            };
            let inspector = flows
                .entry(key)
                .or_insert_with(|| Inspector::new(scope.clone(), grant));
            let out = if from_client {
                inspector.from_client(&payload, now)
            } else {
                inspector.from_server(&payload, now)
            };
            total.forwarded += out.to_server.len();
            total.answered += out.events.iter().filter(|e| e.kind() == "modbus").count();
            total.refused_by_inspector += out
                .events
                .iter()
                .filter(|e| e.describe().contains("denied"))
                .count();
            total.plc_exceptions += out
                .events
                .iter()
                .filter(|e| e.describe().contains("exception"))
                .count();
            if let Some(reason) = out.close {
                assert!(!reason.is_empty());
                total.closed.push(reason);
                // The gateway closes that connection; the next bytes start a new one.
                flows.remove(&key);
            }
        }
    }
    eprintln!(
        "{files} captures: {} bytes forwarded, {} transactions recorded, {} answered by the inspector, {} PLC exceptions, {} connections closed",
        total.forwarded,
        total.answered,
        total.refused_by_inspector,
        total.plc_exceptions,
        total.closed.len()
    );
    for reason in total.closed.iter().take(10) {
        eprintln!("  closed: {reason}");
    }
    assert_eq!(files, 4, "the four Lemay captures");
    // Normal polling dominates these captures: thousands of transactions go through whole,
    // and the function-code scan is answered by the RTUs with exceptions, matched to their
    // requests.
    assert!(total.answered > 4_000, "{total:?}");
    assert!(total.plc_exceptions > 0, "{total:?}");
}
