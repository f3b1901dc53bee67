//! File names inside `recordings/<session-id>/` and what they hold.
//!
//! - `terminal.NNNNNN.cast[.zst]`: segment N of the asciicast v2 stream; segment 1 starts with
//!   the header, so the segments concatenated (after decompression) are one asciicast file.
//! - `events.NNNNNN.jsonl[.zst]`: segment N of the hash-chained event log.
//! - `seal.NNNNNN.json`: the signed seal of segment N (written when the segment is closed).
//! - `manifest.json`: the signed manifest (written when the session ends).
//!
//! The open segment is plain text, appended as it is flushed; a sealed segment is
//! compressed (when configured), fsynced, and named in its seal.

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";

/// Which stream a segment file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The asciicast stream.
    Terminal,
    /// The event log.
    Events,
    /// The seal.
    Seal,
}

/// A parsed file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentFile {
    /// Which stream.
    pub part: Part,
    /// Segment number.
    pub segment: u32,
    /// Whether it is zstd-compressed.
    pub compressed: bool,
}

/// `terminal.000001.cast`, `events.000001.jsonl` or `seal.000001.json`.
pub fn file_name(part: Part, segment: u32, compressed: bool) -> String {
    let (stem, ext) = match part {
        Part::Terminal => ("terminal", "cast"),
        Part::Events => ("events", "jsonl"),
        Part::Seal => ("seal", "json"),
    };
    let zst = if compressed { ".zst" } else { "" };
    format!("{stem}.{segment:06}.{ext}{zst}")
}

/// Parses a segment file name.
pub fn parse_file_name(name: &str) -> Option<SegmentFile> {
    let (name, compressed) = match name.strip_suffix(".zst") {
        Some(rest) => (rest, true),
        None => (name, false),
    };
    let mut parts = name.split('.');
    let (stem, number, ext) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || number.len() != 6 {
        return None;
    }
    let part = match (stem, ext) {
        ("terminal", "cast") => Part::Terminal,
        ("events", "jsonl") => Part::Events,
        ("seal", "json") if !compressed => Part::Seal,
        _ => return None,
    };
    let segment = number.parse().ok().filter(|n| *n > 0)?;
    Some(SegmentFile {
        part,
        segment,
        compressed,
    })
}

/// A new session id: a UUID v7, so ids sort by start time.
pub fn new_session_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Whether `id` is a safe session id (a path component of letters, digits, `-`, `_`, `.`).
pub fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for part in [Part::Terminal, Part::Events] {
            for compressed in [false, true] {
                let name = file_name(part, 12, compressed);
                assert_eq!(
                    parse_file_name(&name),
                    Some(SegmentFile {
                        part,
                        segment: 12,
                        compressed
                    })
                );
            }
        }
        assert_eq!(file_name(Part::Seal, 1, false), "seal.000001.json");
        for bad in [
            "seal.000001.json.zst",
            "terminal.1.cast",
            "x.000001.cast",
            "terminal.000000.cast",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
        assert!(valid_session_id("0190a1b2-aaaa"));
        assert!(!valid_session_id("../etc"));
        assert!(!valid_session_id(".."));
        assert!(!valid_session_id(""));
    }
}
