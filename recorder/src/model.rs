//! What a recording says: the session it belongs to, the typed events of its log, how it
//! ended, and the signed documents (segment seals and the manifest) that vouch for the files.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Who connected where, under which grant: the first line of every event log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session id (also the directory name).
    pub id: String,
    /// The grant the session runs under, when there is one.
    pub grant: Option<i64>,
    /// The vendor (user name).
    pub vendor: String,
    /// The asset.
    pub asset: String,
    /// The asset's zone, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// `ssh`, `modbus`, `tcp`, ...
    pub protocol: String,
    /// Where the vendor connected from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Terminal width in columns.
    pub width: u16,
    /// Terminal height in rows.
    pub height: u16,
    /// Allowed terminal environment (`TERM`, `LANG`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// When the session started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

impl SessionInfo {
    /// The title shown by players: `vendor@asset (grant N)`.
    pub fn title(&self) -> String {
        match self.grant {
            Some(grant) => format!("{}@{} (grant {grant})", self.vendor, self.asset),
            None => format!("{}@{}", self.vendor, self.asset),
        }
    }
}

/// Whether a scope check let something through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Let through.
    Allowed,
    /// Refused.
    Denied,
}

/// Which way a file went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the asset to the vendor.
    Download,
    /// From the vendor to the asset.
    Upload,
}

/// One typed event of a session's log. The recorder writes `recording_started`,
/// `recording_ended` and `recording_failed` itself; the gateway sends the rest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionEvent {
    /// The first line: the session's identity.
    RecordingStarted {
        /// The session.
        session: SessionInfo,
    },
    /// The vendor's connection reached the gateway.
    Connected {
        /// Client address.
        client: String,
    },
    /// The vendor authenticated.
    Authenticated {
        /// `certificate`, `public_key`, `token`.
        method: String,
        /// The identity proven.
        principal: String,
    },
    /// A command line was asked for and checked against the scope.
    Command {
        /// The command line.
        command: String,
        /// The decision.
        verdict: Verdict,
        /// The scope rule that decided.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        /// Why, when denied.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A Modbus request (and its response, when one came).
    Modbus {
        /// Transaction id.
        transaction: u16,
        /// Unit id.
        unit: u8,
        /// Function code.
        function: u8,
        /// Readable summary: `read holding registers 100-109`, `write holding registers 105
        /// = [42]`.
        summary: String,
        /// The table read or written: `coils`, `discrete inputs`, `holding registers`, `input
        /// registers`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        table: Option<String>,
        /// First address read or written (the write's, when a request does both).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start: Option<u16>,
        /// Number of items read or written.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u16>,
        /// Values written (registers; coils as 0 and 1).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        values: Vec<u16>,
        /// The decision.
        verdict: Verdict,
        /// Why, when denied.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Exception code in the response (the PLC's, or the gateway's for a denial).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exception: Option<u8>,
        /// Round-trip time in microseconds (PLC responses only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_us: Option<u64>,
    },
    /// Bytes of a plain TCP forward, captured as they passed (base64), for analysis later
    /// (`otgate replay --pcap`).
    Capture {
        /// Whether the bytes went to the asset (else they came from it).
        to_asset: bool,
        /// The bytes, base64.
        data: String,
    },
    /// A port forward was opened or refused.
    Forward {
        /// Target host.
        host: String,
        /// Target port.
        port: u16,
        /// The decision.
        verdict: Verdict,
    },
    /// A file was transferred (or refused).
    FileTransfer {
        /// The path on the asset.
        path: String,
        /// Which way.
        direction: Direction,
        /// Bytes moved.
        bytes: u64,
        /// The decision.
        verdict: Verdict,
    },
    /// The terminal was resized.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// The detector raised an alert on this session.
    Alert {
        /// Risk score 0-100.
        score: u8,
        /// What drove it, in words.
        summary: String,
    },
    /// Input was held for an engineer to decide.
    Frozen {
        /// Who or what froze it.
        by: String,
        /// Why.
        reason: String,
    },
    /// Input flows again.
    Resumed {
        /// Who resumed it.
        by: String,
    },
    /// Anything else the gateway wants on the record.
    Note {
        /// The text.
        text: String,
    },
    /// The recorder lost data or could not write: the session must end.
    RecordingFailed {
        /// What went wrong.
        reason: String,
    },
    /// The last line of a cleanly finished recording.
    RecordingEnded {
        /// Why the session ended.
        reason: EndReason,
        /// Bytes of terminal output.
        output_bytes: u64,
        /// Bytes of terminal input.
        input_bytes: u64,
    },
}

impl SessionEvent {
    /// The event's type name, as in the log.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RecordingStarted { .. } => "recording_started",
            Self::Connected { .. } => "connected",
            Self::Authenticated { .. } => "authenticated",
            Self::Command { .. } => "command",
            Self::Modbus { .. } => "modbus",
            Self::Capture { .. } => "capture",
            Self::Forward { .. } => "forward",
            Self::FileTransfer { .. } => "file_transfer",
            Self::Resize { .. } => "resize",
            Self::Alert { .. } => "alert",
            Self::Frozen { .. } => "frozen",
            Self::Resumed { .. } => "resumed",
            Self::Note { .. } => "note",
            Self::RecordingFailed { .. } => "recording_failed",
            Self::RecordingEnded { .. } => "recording_ended",
        }
    }

    /// One line in words, for timelines and the replay overlay.
    pub fn describe(&self) -> String {
        let verdict = |v: &Verdict| match v {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "DENIED",
        };
        match self {
            Self::RecordingStarted { session } => format!(
                "session {} started: {} on {} over {}",
                session.id, session.vendor, session.asset, session.protocol
            ),
            Self::Connected { client } => format!("connected from {client}"),
            Self::Authenticated { method, principal } => {
                format!("authenticated as {principal} by {method}")
            }
            Self::Command {
                command,
                verdict: v,
                rule,
                reason,
            } => {
                let mut line = format!("command {}: {command}", verdict(v));
                if let Some(rule) = rule {
                    line.push_str(&format!(" (rule {rule})"));
                }
                if let Some(reason) = reason {
                    line.push_str(&format!(": {reason}"));
                }
                line
            }
            Self::Modbus {
                unit,
                summary,
                verdict: v,
                reason,
                exception,
                rtt_us,
                ..
            } => {
                let mut line = format!("modbus unit {unit} {summary}: {}", verdict(v));
                if let Some(reason) = reason {
                    line.push_str(&format!(" ({reason})"));
                }
                if let Some(code) = exception {
                    line.push_str(&format!(", exception {code:02}"));
                }
                if let Some(us) = rtt_us {
                    line.push_str(&format!(", {us} us"));
                }
                line
            }
            Self::Capture { to_asset, data } => format!(
                "captured about {} bytes {}",
                data.len() / 4 * 3,
                if *to_asset {
                    "to the asset"
                } else {
                    "from the asset"
                }
            ),
            Self::Forward {
                host,
                port,
                verdict: v,
            } => format!("port forward to {host}:{port} {}", verdict(v)),
            Self::FileTransfer {
                path,
                direction,
                bytes,
                verdict: v,
            } => format!(
                "{} {path} ({bytes} bytes) {}",
                match direction {
                    Direction::Download => "download",
                    Direction::Upload => "upload",
                },
                verdict(v)
            ),
            Self::Resize { cols, rows } => format!("terminal resized to {cols}x{rows}"),
            Self::Alert { score, summary } => format!("ALERT risk {score}: {summary}"),
            Self::Frozen { by, reason } => format!("FROZEN by {by}: {reason}"),
            Self::Resumed { by } => format!("resumed by {by}"),
            Self::Note { text } => text.clone(),
            Self::RecordingFailed { reason } => format!("RECORDING FAILED: {reason}"),
            Self::RecordingEnded { reason, .. } => format!("session ended: {}", reason.describe()),
        }
    }

    /// Whether a timeline should call this out (denials, alerts, freezes, failures, the end).
    pub fn is_notable(&self) -> bool {
        matches!(
            self,
            Self::Command {
                verdict: Verdict::Denied,
                ..
            } | Self::Modbus {
                verdict: Verdict::Denied,
                ..
            } | Self::Forward {
                verdict: Verdict::Denied,
                ..
            } | Self::FileTransfer {
                verdict: Verdict::Denied,
                ..
            } | Self::Alert { .. }
                | Self::Frozen { .. }
                | Self::RecordingFailed { .. }
        )
    }
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EndReason {
    /// The vendor logged out or closed the connection.
    Closed,
    /// The asset closed the connection.
    AssetClosed,
    /// The grant was revoked.
    Revoked {
        /// Who revoked it.
        by: String,
        /// Why.
        reason: String,
    },
    /// The grant's window closed.
    Expired,
    /// A vendor or asset quarantine.
    Quarantined {
        /// Why.
        reason: String,
    },
    /// An engineer or the detector terminated it.
    Terminated {
        /// Who.
        by: String,
        /// Why.
        reason: String,
    },
    /// The recorder could not keep up or could not write (fail closed).
    RecordingFailed {
        /// What went wrong.
        reason: String,
    },
    /// The gateway shut down.
    Shutdown,
    /// The recording handle was dropped without an end being given.
    Abandoned,
}

impl EndReason {
    /// The reason in words.
    pub fn describe(&self) -> String {
        match self {
            Self::Closed => "closed by the vendor".into(),
            Self::AssetClosed => "closed by the asset".into(),
            Self::Revoked { by, reason } => format!("grant revoked by {by}: {reason}"),
            Self::Expired => "grant window closed".into(),
            Self::Quarantined { reason } => format!("quarantine: {reason}"),
            Self::Terminated { by, reason } => format!("terminated by {by}: {reason}"),
            Self::RecordingFailed { reason } => format!("recording failed: {reason}"),
            Self::Shutdown => "gateway shut down".into(),
            Self::Abandoned => "ended without a reason from the gateway".into(),
        }
    }

    /// Whether the session ended by someone's decision or a failure rather than normally.
    pub fn is_abnormal(&self) -> bool {
        !matches!(self, Self::Closed | Self::AssetClosed | Self::Expired)
    }
}

/// A stored file and its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// File name inside the session directory.
    pub file: String,
    /// Size in bytes as stored.
    pub bytes: u64,
    /// SHA-256 of the stored bytes, lowercase hex.
    pub sha256: String,
}

/// The signed seal of one segment (`seal.NNNNNN.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seal {
    /// The session.
    pub session: String,
    /// Segment number, from 1.
    pub segment: u32,
    /// The terminal part of the segment.
    pub terminal: FileDigest,
    /// The event-log part of the segment.
    pub events: FileDigest,
    /// `seq` of the segment's first event line.
    pub first_seq: u64,
    /// Number of event lines in the segment.
    pub lines: u64,
    /// The chain hash after the segment's last line.
    pub chain: String,
    /// Recording time (seconds) at the end of the segment.
    pub until: f64,
    /// When it was sealed.
    #[serde(with = "time::serde::rfc3339")]
    pub sealed_at: OffsetDateTime,
    /// SHA-256 of the signing public key, lowercase hex.
    pub key: String,
}

/// Counts over a whole session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Event lines.
    pub events: u64,
    /// Terminal output frames.
    pub output_frames: u64,
    /// Terminal input frames.
    pub input_frames: u64,
    /// Bytes of terminal output.
    pub output_bytes: u64,
    /// Bytes of terminal input.
    pub input_bytes: u64,
    /// Commands checked.
    pub commands: u64,
    /// Denials of any kind.
    pub denials: u64,
    /// Detector alerts.
    pub alerts: u64,
}

/// One segment's entry in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// Segment number.
    pub segment: u32,
    /// The seal file.
    pub seal: FileDigest,
    /// The terminal file.
    pub terminal: FileDigest,
    /// The event-log file.
    pub events: FileDigest,
}

/// The signed manifest (`manifest.json`), written when the session ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub format: u32,
    /// The session.
    pub session: SessionInfo,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339")]
    pub ended_at: OffsetDateTime,
    /// Why.
    pub end_reason: EndReason,
    /// Counts.
    pub counts: Counts,
    /// Every segment, in order.
    pub segments: Vec<SegmentEntry>,
    /// Sum of stored file sizes.
    pub stored_bytes: u64,
    /// The chain hash after the last event line.
    pub chain: String,
    /// `seq` of the last event line.
    pub last_seq: u64,
    /// Recording time (seconds) at the end.
    pub duration: f64,
    /// SHA-256 of the signing public key, lowercase hex.
    pub key: String,
}

/// The current format version.
pub const FORMAT_VERSION: u32 = 1;
