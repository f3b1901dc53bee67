//! The byte-exact rules that make recordings tamper-evident.
//!
//! Event lines: the line is a JSON object; its `hash` member is the last one and equals
//! `SHA-256(previous hash || the line with the hash member removed)`, where the line without
//! it is the exact bytes before `,"hash":` followed by `}`. The chain starts at
//! `SHA-256("otgate-recording-v1\n" || session id)`, so a line cannot move between sessions.
//!
//! Signed documents (seals, manifest): a JSON object whose last member is `signature`, an
//! Ed25519 signature (base64) over the exact bytes before `,"signature":` followed by `}`.
//!
//! Both rules work on bytes, so nothing depends on how a JSON library orders or spaces keys.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A SHA-256 value.
pub type Hash = [u8; 32];

const HASH_SUFFIX_LEN: usize = ",\"hash\":\"\"}".len() + 64;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let digit = |n: u8| char::from_digit(u32::from(n), 16).unwrap_or('0');
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(digit(b >> 4));
        out.push(digit(b & 15));
    }
    out
}

/// Parses 64 lowercase hex digits.
pub fn parse_hash(text: &str) -> Option<Hash> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let (hi, lo) = match pair {
            [hi, lo] => (digit(*hi)?, digit(*lo)?),
            _ => return None,
        };
        *slot = hi << 4 | lo;
    }
    Some(out)
}

/// The chain value before the first line of `session`.
pub fn genesis(session: &str) -> Hash {
    let mut input = b"otgate-recording-v1\n".to_vec();
    input.extend_from_slice(session.as_bytes());
    sha256(&input)
}

fn link(previous: &Hash, content: &[u8]) -> Hash {
    let mut input = Vec::with_capacity(32 + content.len());
    input.extend_from_slice(previous);
    input.extend_from_slice(content);
    sha256(&input)
}

/// Turns `content` (a serialized JSON object) into a chained line (without newline) and
/// returns it with its hash.
pub fn seal_line(previous: &Hash, content: &str) -> (String, Hash) {
    let hash = link(previous, content.as_bytes());
    let body = content.strip_suffix('}').unwrap_or(content);
    let mut line = String::with_capacity(content.len() + HASH_SUFFIX_LEN);
    line.push_str(body);
    line.push_str(",\"hash\":\"");
    line.push_str(&hex(&hash));
    line.push_str("\"}");
    (line, hash)
}

/// Why a chained line does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line does not end with a `hash` member.
    #[error("no hash at the end of the line")]
    NoHash,
    /// The hash does not match the previous line and this line's content.
    #[error("hash mismatch: the line or one before it was changed, removed or reordered")]
    Mismatch,
}

/// Checks a chained line against the previous hash; returns the content (the line without
/// its hash member) and the line's hash.
pub fn open_line(previous: &Hash, line: &str) -> Result<(String, Hash), LineError> {
    let split = line
        .len()
        .checked_sub(HASH_SUFFIX_LEN)
        .ok_or(LineError::NoHash)?;
    let (body, suffix) = (
        line.get(..split).ok_or(LineError::NoHash)?,
        line.get(split..).ok_or(LineError::NoHash)?,
    );
    let stated = suffix
        .strip_prefix(",\"hash\":\"")
        .and_then(|rest| rest.strip_suffix("\"}"))
        .and_then(parse_hash)
        .ok_or(LineError::NoHash)?;
    let content = format!("{body}}}");
    if link(previous, content.as_bytes()) != stated {
        return Err(LineError::Mismatch);
    }
    Ok((content, stated))
}

/// Appends a `signature` member made by `sign` over `content` (a serialized JSON object).
pub fn sign_document(content: &str, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let signature = STANDARD.encode(sign(content.as_bytes()));
    let body = content.strip_suffix('}').unwrap_or(content);
    format!("{body},\"signature\":\"{signature}\"}}")
}

/// Splits a signed document into the signed content and the signature bytes.
pub fn open_document(text: &str) -> Option<(String, Vec<u8>)> {
    let text = text.trim_end();
    let at = text.rfind(",\"signature\":\"")?;
    let body = text.get(..at)?;
    let encoded = text
        .get(at..)?
        .strip_prefix(",\"signature\":\"")?
        .strip_suffix("\"}")?;
    let signature = STANDARD.decode(encoded).ok()?;
    Some((format!("{body}}}"), signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_chain_and_any_change_breaks_them() {
        let start = genesis("s1");
        let (first, h1) = seal_line(&start, r#"{"seq":0,"type":"note","text":"a"}"#);
        let (second, h2) = seal_line(&h1, r#"{"seq":1,"type":"note","text":"b"}"#);
        assert_eq!(open_line(&start, &first).unwrap().1, h1);
        assert_eq!(open_line(&h1, &second).unwrap().1, h2);
        assert_eq!(open_line(&start, &second), Err(LineError::Mismatch));
        assert_eq!(open_line(&genesis("s2"), &first), Err(LineError::Mismatch));
        let edited = first.replace("\"a\"", "\"x\"");
        assert_eq!(open_line(&start, &edited), Err(LineError::Mismatch));
        assert_eq!(open_line(&start, "{}"), Err(LineError::NoHash));
        assert_eq!(open_line(&start, "é"), Err(LineError::NoHash));
    }

    #[test]
    fn documents_round_trip() {
        let signed = sign_document(r#"{"a":1}"#, |bytes| bytes.to_vec());
        assert_eq!(signed, r#"{"a":1,"signature":"eyJhIjoxfQ=="}"#);
        let (content, signature) = open_document(&signed).unwrap();
        assert_eq!(content, r#"{"a":1}"#);
        assert_eq!(signature, br#"{"a":1}"#);
        assert!(open_document(r#"{"a":1}"#).is_none());
    }

    #[test]
    fn hex_round_trips() {
        let hash = sha256(b"x");
        assert_eq!(parse_hash(&hex(&hash)), Some(hash));
        assert_eq!(parse_hash("zz"), None);
    }
}
