//! The detector's errors.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    /// The configuration is wrong.
    #[error("detector configuration: {0}")]
    Config(String),
    /// An external alert is not one we can read.
    #[error("alert: {0}")]
    Alert(String),
    /// Evaluation input is unreadable.
    #[error("{0}")]
    Input(String),
    /// A stored model is unreadable.
    #[error("stored model {key}: {reason}")]
    Model {
        /// Its key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// Results of this crate.
pub type Result<T, E = DetectorError> = std::result::Result<T, E>;
