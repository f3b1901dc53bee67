//! A plain TCP forward's captured bytes as a classic pcap file (raw IPv4, TCP headers
//! synthesized: the vendor as 10.0.0.1, the asset as 10.0.0.2 on the forwarded port), so an
//! auditor can open the stream in Wireshark or tshark and follow it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::model::SessionEvent;
use crate::read::Recording;

/// LINKTYPE_RAW: packets start with their IP header.
const LINKTYPE_RAW: u32 = 101;
/// Most payload per synthesized packet.
const SEGMENT: usize = 1400;
const VENDOR: [u8; 4] = [10, 0, 0, 1];
const ASSET: [u8; 4] = [10, 0, 0, 2];
const VENDOR_PORT: u16 = 40000;

/// One direction's TCP state.
struct Side {
    seq: u32,
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| {
            u32::from(u16::from_be_bytes([
                pair.first().copied().unwrap_or(0),
                pair.get(1).copied().unwrap_or(0),
            ]))
        })
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(u16::try_from(sum).unwrap_or(0))
}

/// An IPv4 + TCP packet (PSH, ACK) carrying `payload`.
fn packet(from: ([u8; 4], u16), to: ([u8; 4], u16), seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + 20 + payload.len()).unwrap_or(u16::MAX);
    let mut ip = vec![0x45, 0];
    ip.extend(total.to_be_bytes());
    ip.extend([0, 0, 0x40, 0, 64, 6, 0, 0]);
    ip.extend(from.0);
    ip.extend(to.0);
    let sum = checksum(&ip);
    if let Some(slot) = ip.get_mut(10..12) {
        slot.copy_from_slice(&sum.to_be_bytes());
    }
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend(from.1.to_be_bytes());
    tcp.extend(to.1.to_be_bytes());
    tcp.extend(seq.to_be_bytes());
    tcp.extend(ack.to_be_bytes());
    tcp.extend([0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    tcp.extend_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12 + tcp.len());
    pseudo.extend(from.0);
    pseudo.extend(to.0);
    pseudo.extend([0, 6]);
    pseudo.extend(u16::try_from(tcp.len()).unwrap_or(u16::MAX).to_be_bytes());
    pseudo.extend_from_slice(&tcp);
    let sum = checksum(&pseudo);
    if let Some(slot) = tcp.get_mut(16..18) {
        slot.copy_from_slice(&sum.to_be_bytes());
    }
    ip.extend(tcp);
    ip
}

/// The captured bytes of `recording` as a pcap file; `None` when it captured nothing.
pub fn export_pcap(recording: &Recording) -> Option<Vec<u8>> {
    let port = recording
        .events
        .iter()
        .find_map(|line| match &line.event {
            SessionEvent::Forward { port, .. } => Some(*port),
            _ => None,
        })
        .unwrap_or(0);
    let start = recording.info.as_ref().map_or(0.0, |info| {
        info.started_at.unix_timestamp_nanos() as f64 / 1e9
    });
    let mut out = Vec::new();
    out.extend(0xa1b2_c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0u8; 8]);
    out.extend(65535u32.to_le_bytes());
    out.extend(LINKTYPE_RAW.to_le_bytes());
    let (mut up, mut down) = (Side { seq: 1 }, Side { seq: 1 });
    let mut packets = 0;
    for line in &recording.events {
        let SessionEvent::Capture { to_asset, data } = &line.event else {
            continue;
        };
        let Ok(bytes) = STANDARD.decode(data) else {
            continue;
        };
        let at = start + line.t;
        for chunk in bytes.chunks(SEGMENT) {
            let (from, to, side, other) = if *to_asset {
                ((VENDOR, VENDOR_PORT), (ASSET, port), &mut up, &down)
            } else {
                ((ASSET, port), (VENDOR, VENDOR_PORT), &mut down, &up)
            };
            let frame = packet(from, to, side.seq, other.seq, chunk);
            side.seq = side
                .seq
                .wrapping_add(u32::try_from(chunk.len()).unwrap_or(0));
            let seconds = at.floor();
            out.extend((seconds as u32).to_le_bytes());
            out.extend((((at - seconds) * 1e6) as u32).to_le_bytes());
            let length = u32::try_from(frame.len()).unwrap_or(u32::MAX);
            out.extend(length.to_le_bytes());
            out.extend(length.to_le_bytes());
            out.extend(frame);
            packets += 1;
        }
    }
    (packets > 0).then_some(out)
}
