//! Reading packet captures (pcap, Ethernet or raw IPv4) down to TCP and UDP payloads, and
//! Modbus/TCP requests and responses in them. Captures are untrusted files: every length is
//! checked, nothing is indexed unchecked, and a damaged record ends the capture with an error
//! that names it.

use std::net::Ipv4Addr;

use crate::observation::{ModbusRequest, Table};

/// Largest record accepted.
const MAX_RECORD: u32 = 256 * 1024;

/// A packet that carried IPv4 TCP or UDP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// 1-based position in the capture (labels count every record).
    pub index: usize,
    /// Seconds since the epoch.
    pub secs: u32,
    /// Microseconds (or nanoseconds, for nanosecond captures, scaled down).
    pub micros: u32,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP (else UDP).
    pub tcp: bool,
    /// TCP flags (0 for UDP).
    pub flags: u8,
    /// The payload.
    pub payload: &'a [u8],
}

fn u16_at(bytes: &[u8], at: usize, big: bool) -> Option<u16> {
    let b: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
    Some(if big {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    })
}

fn u32_at(bytes: &[u8], at: usize, big: bool) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

/// Every IPv4 TCP/UDP packet of a capture, and how many records it held in all.
pub fn packets(bytes: &[u8]) -> Result<(Vec<Packet<'_>>, usize), String> {
    let magic = u32_at(bytes, 0, false).ok_or("not a pcap file: shorter than its header")?;
    let (big, nanos) = match magic {
        0xa1b2_c3d4 => (false, false),
        0xd4c3_b2a1 => (true, false),
        0xa1b2_3c4d => (false, true),
        0x4d3c_b2a1 => (true, true),
        _ => {
            return Err(
                "not a pcap file (pcapng is not read: convert with `editcap -F pcap`)".into(),
            );
        }
    };
    let link = u32_at(bytes, 20, big).ok_or("not a pcap file: shorter than its header")?;
    if link != 1 && link != 101 && link != 228 {
        return Err(format!(
            "link type {link} is not read: Ethernet (1) or raw IPv4 (101, 228) only"
        ));
    }
    let mut out = Vec::new();
    let mut at = 24usize;
    let mut index = 0usize;
    while at < bytes.len() {
        index += 1;
        let (Some(secs), Some(frac), Some(caplen)) = (
            u32_at(bytes, at, big),
            u32_at(bytes, at + 4, big),
            u32_at(bytes, at + 8, big),
        ) else {
            return Err(format!("record {index} is cut short"));
        };
        if caplen > MAX_RECORD {
            return Err(format!(
                "record {index} claims {caplen} bytes (at most {MAX_RECORD})"
            ));
        }
        let start = at + 16;
        let data = bytes
            .get(start..start + caplen as usize)
            .ok_or_else(|| format!("record {index} is cut short"))?;
        at = start + caplen as usize;
        let micros = if nanos { frac / 1000 } else { frac };
        if let Some(packet) = parse(index, secs, micros, link, data) {
            out.push(packet);
        }
    }
    Ok((out, index))
}

fn parse(index: usize, secs: u32, micros: u32, link: u32, data: &[u8]) -> Option<Packet<'_>> {
    let mut ip = if link == 1 {
        let mut offset = 12;
        let mut ethertype = u16_at(data, offset, true)?;
        while ethertype == 0x8100 || ethertype == 0x88a8 {
            offset += 4;
            ethertype = u16_at(data, offset, true)?;
        }
        if ethertype != 0x0800 {
            return None;
        }
        data.get(offset + 2..)?
    } else {
        data
    };
    let version_ihl = *ip.first()?;
    if version_ihl >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    let total = usize::from(u16_at(ip, 2, true)?);
    if total >= ihl && total <= ip.len() {
        ip = ip.get(..total)?;
    }
    let protocol = *ip.get(9)?;
    let src = Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(12..16)?).ok()?);
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(16..20)?).ok()?);
    let l4 = ip.get(ihl..)?;
    let (tcp, header, flags) = match protocol {
        6 => (true, usize::from(*l4.get(12)? >> 4) * 4, *l4.get(13)?),
        17 => (false, 8, 0),
        _ => return None,
    };
    Some(Packet {
        index,
        secs,
        micros,
        src,
        dst,
        sport: u16_at(l4, 0, true)?,
        dport: u16_at(l4, 2, true)?,
        tcp,
        flags,
        payload: l4.get(header..).unwrap_or_default(),
    })
}

/// One Modbus/TCP message: the transaction, and the request or the response's exception.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Transaction id.
    pub transaction: u16,
    /// The request read from it (for a response: function and unit only).
    pub request: ModbusRequest,
}

fn bits(bytes: &[u8], count: u16) -> Vec<u16> {
    (0..usize::from(count.min(2000)))
        .map(|i| {
            bytes
                .get(i / 8)
                .map_or(0, |b| u16::from((b >> (i % 8)) & 1))
        })
        .collect()
}

fn words(bytes: &[u8], count: u16) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .take(usize::from(count.min(125)))
        .map(|w| {
            u16::from_be_bytes([
                w.first().copied().unwrap_or(0),
                w.get(1).copied().unwrap_or(0),
            ])
        })
        .collect()
}

/// The Modbus/TCP messages in a payload (several may share one segment); `request` says
/// which way it went. A malformed one ends the list.
pub fn modbus(payload: &[u8], request: bool) -> Vec<Message> {
    let mut out = Vec::new();
    let mut rest = payload;
    while rest.len() >= 8 {
        let (Some(transaction), Some(protocol), Some(length)) = (
            u16_at(rest, 0, true),
            u16_at(rest, 2, true),
            u16_at(rest, 4, true),
        ) else {
            break;
        };
        let length = usize::from(length);
        if protocol != 0 || !(2..=254).contains(&length) {
            break;
        }
        let Some(adu) = rest.get(..6 + length) else {
            break;
        };
        rest = rest.get(6 + length..).unwrap_or_default();
        let (Some(&unit), Some(&function)) = (adu.get(6), adu.get(7)) else {
            break;
        };
        let pdu = adu.get(8..).unwrap_or_default();
        let mut req = ModbusRequest {
            unit,
            function,
            table: None,
            start: None,
            count: None,
            values: Vec::new(),
            exception: None,
        };
        if request {
            let a = u16_at(pdu, 0, true);
            let b = u16_at(pdu, 2, true);
            match function {
                1..=4 => {
                    req.table = Some(match function {
                        1 => Table::Coils,
                        2 => Table::DiscreteInputs,
                        3 => Table::Holding,
                        _ => Table::Input,
                    });
                    (req.start, req.count) = (a, b);
                }
                5 => {
                    req.table = Some(Table::Coils);
                    (req.start, req.count) = (a, Some(1));
                    req.values = vec![u16::from(b == Some(0xff00))];
                }
                6 => {
                    req.table = Some(Table::Holding);
                    (req.start, req.count) = (a, Some(1));
                    req.values = b.into_iter().collect();
                }
                15 => {
                    req.table = Some(Table::Coils);
                    (req.start, req.count) = (a, b);
                    req.values = bits(pdu.get(5..).unwrap_or_default(), b.unwrap_or(0));
                }
                16 => {
                    req.table = Some(Table::Holding);
                    (req.start, req.count) = (a, b);
                    req.values = words(pdu.get(5..).unwrap_or_default(), b.unwrap_or(0));
                }
                23 => {
                    req.table = Some(Table::Holding);
                    let count = u16_at(pdu, 6, true);
                    (req.start, req.count) = (u16_at(pdu, 4, true), count);
                    req.values = words(pdu.get(9..).unwrap_or_default(), count.unwrap_or(0));
                }
                _ => {}
            }
        } else if function & 0x80 != 0 {
            req.function = function & 0x7f;
            req.exception = Some(pdu.first().copied().unwrap_or(0));
        }
        out.push(Message {
            transaction,
            request: req,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modbus_requests_and_exceptions_are_read() {
        let write = [0, 7, 0, 0, 0, 9, 1, 16, 0, 105, 0, 1, 2, 0x01, 0xf4];
        let msgs = modbus(&write, true);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].transaction, 7);
        assert_eq!(msgs[0].request.values, vec![500]);
        assert_eq!(msgs[0].request.start, Some(105));
        let exception = [0, 7, 0, 0, 0, 3, 1, 0x84, 2];
        let msgs = modbus(&exception, false);
        assert_eq!(
            (msgs[0].request.function, msgs[0].request.exception),
            (4, Some(2))
        );
        assert!(modbus(&[0, 1, 0, 9, 0, 3, 1, 3, 0], true).is_empty());
        assert!(modbus(&[0, 1, 0, 0, 0, 200, 1, 3], true).is_empty());
    }

    #[test]
    fn damaged_captures_are_refused() {
        assert!(packets(b"").is_err());
        assert!(packets(b"garbage garbage garbage garbage").is_err());
        let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        header.extend([0; 12]);
        header.extend(1u32.to_le_bytes());
        assert_eq!(packets(&header).map(|(p, n)| (p.len(), n)), Ok((0, 0)));
        let mut cut = header.clone();
        cut.extend([0; 8]);
        cut.extend(100u32.to_le_bytes());
        cut.extend(100u32.to_le_bytes());
        assert!(packets(&cut).unwrap_err().contains("record 1 is cut short"));
    }
}
