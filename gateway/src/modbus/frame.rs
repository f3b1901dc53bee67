//! Modbus/TCP framing: the MBAP header (transaction id, protocol id 0, length, unit id) and
//! the PDU after it. Frames are cut off the front of a byte buffer; nothing is copied.

use std::fmt;

/// MBAP header bytes, unit id included.
pub const HEADER: usize = 7;
/// Largest PDU (function code and data) Modbus allows.
pub const MAX_PDU: usize = 253;
/// Largest frame: header and PDU.
pub const MAX_FRAME: usize = HEADER + MAX_PDU;

/// One frame, borrowed from the buffer it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Transaction id (matches a response to its request).
    pub transaction: u16,
    /// Unit id.
    pub unit: u8,
    /// Function code and data; never empty.
    pub pdu: &'a [u8],
}

impl Frame<'_> {
    /// The function code (the PDU's first byte).
    pub fn function(&self) -> u8 {
        self.pdu.first().copied().unwrap_or_default()
    }

    /// The PDU's data after the function code.
    pub fn data(&self) -> &[u8] {
        self.pdu.get(1..).unwrap_or_default()
    }
}

/// Why bytes are not Modbus/TCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The next complete frame at the front of `buffer` and how many bytes it takes; `None` when
/// more bytes are needed. The header is checked as soon as it is there, so garbage is refused
/// without waiting for a length it announces.
pub fn next_frame(buffer: &[u8]) -> Result<Option<(Frame<'_>, usize)>, Malformed> {
    let Some(header) = buffer.get(..HEADER) else {
        return Ok(None);
    };
    let word = |i: usize| {
        u16::from_be_bytes([
            header.get(i).copied().unwrap_or_default(),
            header.get(i + 1).copied().unwrap_or_default(),
        ])
    };
    let (transaction, protocol, length) = (word(0), word(2), usize::from(word(4)));
    if protocol != 0 {
        return Err(Malformed(format!(
            "protocol id {protocol} (Modbus/TCP is 0)"
        )));
    }
    // The length counts the unit id and the PDU.
    if length < 2 {
        return Err(Malformed(format!("length {length}: no function code")));
    }
    if length - 1 > MAX_PDU {
        return Err(Malformed(format!(
            "length {length}: a PDU is at most {MAX_PDU} bytes"
        )));
    }
    let total = HEADER - 1 + length;
    let Some(pdu) = buffer.get(HEADER..total) else {
        return Ok(None);
    };
    let unit = header.get(6).copied().unwrap_or_default();
    Ok(Some((
        Frame {
            transaction,
            unit,
            pdu,
        },
        total,
    )))
}

/// Appends a frame to `out`. The PDU must be 1..=253 bytes (the codec builds only those).
pub fn encode(out: &mut Vec<u8>, transaction: u16, unit: u8, pdu: &[u8]) {
    let length = u16::try_from(pdu.len() + 1).unwrap_or(u16::MAX);
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&length.to_be_bytes());
    out.push(unit);
    out.extend_from_slice(pdu);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_whole_and_checked_early() {
        let mut bytes = Vec::new();
        encode(&mut bytes, 7, 1, &[3, 0, 100, 0, 10]);
        encode(&mut bytes, 8, 1, &[4, 0, 0, 0, 1]);
        let (frame, used) = next_frame(&bytes).unwrap().unwrap();
        assert_eq!((frame.transaction, frame.unit, frame.function()), (7, 1, 3));
        assert_eq!(frame.data(), &[0, 100, 0, 10]);
        assert_eq!(used, 12);
        let (second, _) = next_frame(&bytes[used..]).unwrap().unwrap();
        assert_eq!(second.transaction, 8);
        // Cut off: wait for more.
        assert_eq!(next_frame(&bytes[..11]).unwrap(), None);
        assert_eq!(next_frame(&bytes[..3]).unwrap(), None);
        // Garbage is refused from its header alone.
        assert!(next_frame(b"GET / HTTP/1.1\r\n").is_err());
        assert!(next_frame(&[0, 1, 0, 0, 0, 1, 1]).is_err());
        assert!(next_frame(&[0, 1, 0, 0, 1, 0, 1]).is_err());
    }
}
