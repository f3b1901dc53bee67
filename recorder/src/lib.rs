//! otgate-recorder: session recordings (asciicast v2 and hash-chained typed event logs, signed
//! manifests), their storage, replay, search and verification.
//!
//! This first part holds the recording signing key: generated once at `otgate init`, loaded
//! at start so that a node that could not sign recordings refuses to run sessions (fail
//! closed). The writer, storage, replay and verification arrive with the recorder issue.
//!
//! Never: depend on another otgate crate, or know anything of SSH or Modbus.

mod key;

pub use key::{KeyError, RecordingKey};
