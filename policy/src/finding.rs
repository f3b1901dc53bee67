//! A finding of the detector: which model saw what, how strongly, in words. Shared by the
//! event model (alerts), the broker (stored alerts) and the detector.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One reason an event looks abnormal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    /// The model that found it: `commands`, `modbus`, `time`, `reach`, `lateral`, `probing`,
    /// `attack`, `rule`, `external`.
    pub model: String,
    /// 0-100.
    pub score: u8,
    /// In words, e.g. "command `nc` never used by vendor1".
    pub text: String,
}

impl Finding {
    /// A finding of `model` scoring `score` (capped at 100).
    pub fn new(model: &str, score: u8, text: impl Into<String>) -> Self {
        Self {
            model: model.to_owned(),
            score: score.min(100),
            text: text.into(),
        }
    }
}
