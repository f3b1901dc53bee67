//! Errors of the policy crate: invalid inventory, scopes, rules and authorization setup.

/// Everything that can go wrong while building or evaluating policy values.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A name does not follow the naming rule.
    #[error(
        "invalid {kind} name `{value}`: use 1-64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"
    )]
    InvalidName {
        /// What kind of name.
        kind: &'static str,
        /// The offending value (truncated).
        value: String,
    },
    /// A grant id is not a positive number.
    #[error("invalid grant id `{0}`: expected a positive number such as 42")]
    InvalidGrantId(String),
    /// A Purdue level is not one of 0, 1, 2, 3, 3.5, 4, 5.
    #[error("invalid Purdue level `{0}`: expected one of 0, 1, 2, 3, 3.5, 4, 5")]
    InvalidLevel(String),
    /// A TOML document could not be read.
    #[error("{what}: {message}")]
    Toml {
        /// Which document.
        what: String,
        /// The parser's message, which names the line and the key.
        message: String,
    },
    /// A value is well-formed but violates a rule; `key` says where.
    #[error("{key}: {message}")]
    Invalid {
        /// Dotted path of the offending key, e.g. `assets[2].endpoints[0].port`.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// casbin could not be set up or its storage failed.
    #[error("authorization store: {0}")]
    Casbin(#[from] casbin::Error),
}

impl PolicyError {
    /// Shorthand for [`PolicyError::Invalid`].
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Result of policy operations.
pub type Result<T, E = PolicyError> = std::result::Result<T, E>;
