//! Errors of the recorder.

use crate::storage::StorageError;

/// Why recording or reading failed.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// A local file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The storage backend failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The session was already recorded here.
    #[error("session {0} already has a recording")]
    Exists(String),
    /// A session id that cannot be a directory name.
    #[error("{0:?} is not a valid session id (letters, digits, '-', '_', '.', at most 64)")]
    BadSessionId(String),
    /// The writer fell behind past its bound: data was lost and the session must end.
    #[error("the recorder fell behind by more than {0} bytes; the session must end")]
    Lagging(usize),
    /// Recording failed earlier; the session must end.
    #[error("recording failed: {0}")]
    Failed(String),
    /// No recording with this id.
    #[error("no recording of session {0}")]
    NotFound(String),
    /// A recording could not be read as such.
    #[error("{0}")]
    Invalid(String),
}

impl RecorderError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
