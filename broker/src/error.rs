//! Errors of the broker. Each variant says which HTTP status it becomes in the web crate.

use otgate_policy::PolicyError;

/// Everything the control plane can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The input is wrong; the message says what to change (422).
    #[error("{0}")]
    Invalid(String),
    /// A policy value is wrong (422).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// No such thing, or not visible to the caller (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No valid credentials (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// A login was refused and already recorded as an event (401, or 429 with a retry delay).
    #[error("{message}")]
    LoginRefused {
        /// What the client is told.
        message: String,
        /// Machine-readable code (`invalid_credentials`, `totp_required`, ...).
        code: &'static str,
        /// Seconds to wait, when throttled.
        retry_after: Option<u64>,
    },
    /// The database failed (503).
    #[error("storage unavailable: {0}")]
    Storage(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Key material is missing or unreadable.
    #[error("key material: {0}")]
    Keys(String),
    /// A cryptographic operation failed.
    #[error("cryptography: {0}")]
    Crypto(String),
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl BrokerError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
}

/// Result of broker operations.
pub type Result<T, E = BrokerError> = std::result::Result<T, E>;
