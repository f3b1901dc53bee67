//! Where sealed recordings are kept: a trait with a local directory backend (the default)
//! and an S3-compatible backend. Keys are `<session-id>/<file name>`.

pub(crate) mod local;
mod s3;

use bytes::Bytes;
use time::OffsetDateTime;

pub use local::LocalStorage;
pub use s3::{S3Config, S3Storage};

/// A stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// `<session>/<file>`.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last change.
    pub modified: OffsetDateTime,
}

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No such object.
    #[error("{0}: not found")]
    NotFound(String),
    /// A key that is not `<session>/<file>` with safe names.
    #[error("{0:?}: not a valid recording file name")]
    BadKey(String),
    /// An object is larger than the reader accepts.
    #[error("{key}: {size} bytes is larger than the {limit}-byte limit")]
    TooLarge {
        /// The object.
        key: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The backend failed.
    #[error("{backend}: {message}")]
    Backend {
        /// Which backend.
        backend: String,
        /// What it said.
        message: String,
    },
}

/// Largest object a reader fetches (a sealed segment is far smaller).
pub const MAX_OBJECT: u64 = 512 * 1024 * 1024;

/// A place to keep recordings.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// A short description for messages (`local /var/lib/otgate/recordings`, `s3://bucket/p`).
    fn describe(&self) -> String;

    /// When this backend is a local directory: its path (the writer's spool is then the
    /// store itself and nothing is uploaded).
    fn local_root(&self) -> Option<&std::path::Path> {
        None
    }

    /// Stores `data` under `key`, atomically.
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError>;

    /// Reads `key` (at most [`MAX_OBJECT`] bytes).
    async fn get(&self, key: &str) -> Result<Bytes, StorageError>;

    /// Lists objects whose key starts with `prefix` (`""` for all, `"<session>/"` for one).
    async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, StorageError>;

    /// Deletes `key`; deleting what is not there is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
}

/// Splits and checks a key.
pub fn split_key(key: &str) -> Result<(&str, &str), StorageError> {
    let bad = || StorageError::BadKey(key.to_owned());
    let (session, file) = key.split_once('/').ok_or_else(bad)?;
    if !crate::layout::valid_session_id(session) || !crate::layout::valid_session_id(file) {
        return Err(bad());
    }
    Ok((session, file))
}

/// `<session>/<file>`.
pub fn key(session: &str, file: &str) -> String {
    format!("{session}/{file}")
}
