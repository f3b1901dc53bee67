//! otgate-recorder: session recordings (asciicast v2 and hash-chained typed event logs,
//! signed segment seals and manifests), their storage, reading and verification, replay,
//! text extraction for search, evidence bundles and incident reports.
//!
//! Invariants:
//! - A session that cannot be recorded does not run: [`Recorder::start`] writes the first
//!   line to disk before it returns, and [`SessionRecorder`] reports a lagging writer or a
//!   failed write or upload so that the gateway ends the session.
//! - Every event line is chained by SHA-256 to the one before; every sealed segment and the
//!   manifest are signed with the recording key ([`chain`] holds the byte-exact rules).
//! - Reading never trusts the files: every size is bounded, every problem is named (file,
//!   line) in the [`Verification`], and what is intact stays readable.
//!
//! Layout: [`model`] (events, seals, manifest), [`chain`], [`cast`], [`layout`] (file names),
//! [`storage`] (local, S3), `writer`, `read` and `verify`, [`replay`], [`text`], `bundle`,
//! `report`, `retention`.
//!
//! Never: depend on another otgate crate, or know anything of SSH or Modbus.

mod archive;
mod bundle;
pub mod cast;
pub mod chain;
mod error;
mod key;
pub mod layout;
pub mod model;
mod pcap;
mod read;
pub mod replay;
mod report;
mod retention;
pub mod screen;
pub mod storage;
mod table;
pub mod text;
pub mod timeline;
mod writer;

pub use archive::{Archive, SessionFile};
pub use bundle::evidence_bundle;
pub use error::RecorderError;
pub use key::{KeyError, RecordingKey, VerifyingKey, public_path};
pub use model::{EndReason, Manifest, SessionEvent, SessionInfo, Verdict};
pub use pcap::export_pcap;
pub use read::{Problem, Recording, Status, Verification, read};
pub use report::incident_report;
pub use retention::{Expired, expire};
pub use table::modbus_table;
pub use writer::{EventLine, EventTap, LiveChunk, Recorder, RecorderConfig, SessionRecorder};
