//! The detector's configuration (`[detector]`).

use serde::{Deserialize, Serialize};

use crate::playbook::PlaybookConfig;

/// How the detector learns and responds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Commands a vendor's model learns before it judges command novelty and sequences.
    pub warmup_commands: u64,
    /// Requests a unit's Modbus profile learns before it judges addresses and values.
    pub warmup_requests: u64,
    /// Sessions a vendor has before working hours and first contacts count.
    pub warmup_sessions: u32,
    /// Most session events waiting to be scored; beyond, events are dropped, counted, and
    /// the sessions fall under the playbook's fail mode.
    pub queue: usize,
    /// External alerts at or above this severity (0-10) quarantine the asset.
    pub quarantine_severity: u8,
    /// The response playbook.
    pub playbook: PlaybookConfig,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            warmup_commands: 200,
            warmup_requests: 200,
            warmup_sessions: 5,
            queue: 65_536,
            quarantine_severity: 9,
            playbook: PlaybookConfig::default(),
        }
    }
}
