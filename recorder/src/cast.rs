//! asciicast v2: the header line, event lines `[t, code, data]`, and an incremental UTF-8
//! decoder so that a character split across two reads is written whole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The header line of an asciicast v2 file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always 2.
    pub version: u8,
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
    /// Unix time of the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Captured environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Terminal output (`"o"`).
    Output,
    /// Terminal input (`"i"`).
    Input,
    /// Resize (`"r"`, data `COLSxROWS`).
    Resize,
    /// Marker (`"m"`).
    Marker,
}

impl Code {
    /// The one-letter code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Output => "o",
            Self::Input => "i",
            Self::Resize => "r",
            Self::Marker => "m",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "o" => Self::Output,
            "i" => Self::Input,
            "r" => Self::Resize,
            "m" => Self::Marker,
            _ => return None,
        })
    }
}

/// One event line of the terminal stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Seconds since the start.
    pub t: f64,
    /// What it is.
    pub code: Code,
    /// The text.
    pub data: String,
}

impl Frame {
    /// The line, without newline.
    pub fn to_line(&self) -> String {
        let data = serde_json::to_string(&self.data).unwrap_or_else(|_| "\"\"".into());
        format!("[{:.6}, \"{}\", {data}]", self.t, self.code.as_str())
    }

    /// Parses an event line.
    pub fn parse(line: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(line).map_err(|e| format!("not a JSON array: {e}"))?;
        let Value::Array(items) = value else {
            return Err("not a JSON array".into());
        };
        match items.as_slice() {
            [Value::Number(t), Value::String(code), Value::String(data)] => {
                let t = t.as_f64().filter(|t| t.is_finite() && *t >= 0.0);
                let t = t.ok_or("the time is not a non-negative number")?;
                let code =
                    Code::parse(code).ok_or_else(|| format!("unknown event code {code:?}"))?;
                Ok(Self {
                    t,
                    code,
                    data: data.clone(),
                })
            }
            _ => Err("not [time, code, data]".into()),
        }
    }
}

/// `COLSxROWS` of a resize frame.
pub fn parse_size(data: &str) -> Option<(u16, u16)> {
    let (cols, rows) = data.split_once('x')?;
    Some((cols.parse().ok()?, rows.parse().ok()?))
}

/// Turns a byte stream into text, keeping an incomplete trailing character for the next
/// chunk; bytes that are not UTF-8 become U+FFFD.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Decodes as much of `pending + chunk` as is complete.
    pub fn push(&mut self, chunk: &[u8]) -> String {
        self.pending.extend_from_slice(chunk);
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    out.push_str(text);
                    rest = &[];
                    break;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match error.error_len() {
                        Some(bad) => {
                            out.push('\u{fffd}');
                            rest = after.get(bad..).unwrap_or_default();
                        }
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }

    /// Whatever is left at the end, as replacement characters.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        String::from_utf8_lossy(&rest).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_lines_are_named() {
        let frame = Frame {
            t: 1.5,
            code: Code::Output,
            data: "a\"\u{1b}[0m\n".into(),
        };
        assert_eq!(Frame::parse(&frame.to_line()).unwrap(), frame);
        assert!(
            Frame::parse("[1, \"x\", \"a\"]")
                .unwrap_err()
                .contains("unknown")
        );
        assert!(Frame::parse("{}").is_err());
        assert!(Frame::parse("[-1, \"o\", \"a\"]").is_err());
        assert_eq!(parse_size("80x24"), Some((80, 24)));
    }

    #[test]
    fn split_characters_are_joined() {
        let mut stream = Utf8Stream::default();
        let bytes = "é€".as_bytes();
        assert_eq!(stream.push(&bytes[..1]), "");
        assert_eq!(stream.push(&bytes[1..3]), "é");
        assert_eq!(stream.push(&bytes[3..]), "€");
        assert_eq!(stream.push(&[0xff, b'a']), "\u{fffd}a");
        assert_eq!(stream.push(&[0xe2]), "");
        assert_eq!(stream.finish(), "\u{fffd}");
    }
}
