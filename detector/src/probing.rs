//! Probing: bursts of denied commands, requests, forwards and transfers in a session, and
//! bursts of Modbus exceptions (a function-code or address scan).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::score::Finding;

/// The span over which denials are counted.
pub const SPAN_SECS: i64 = 60;
/// Most moments kept.
const KEEP: usize = 256;

/// Recent denials or exceptions of one session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Burst {
    moments: VecDeque<i64>,
}

impl Burst {
    /// Adds one at `at` and returns how many fell in the last minute.
    pub fn add(&mut self, at: OffsetDateTime) -> usize {
        let now = at.unix_timestamp();
        self.moments.push_back(now);
        while self
            .moments
            .front()
            .is_some_and(|t| *t <= now - SPAN_SECS || self.moments.len() > KEEP)
        {
            self.moments.pop_front();
        }
        self.moments.len()
    }
}

/// Scores `count` denials in the last minute.
pub fn score_denials(count: usize, out: &mut Vec<Finding>) {
    let score = match count {
        0..=2 => return,
        3..=4 => 40,
        5..=9 => 65,
        _ => 90,
    };
    out.push(Finding::new(
        "probing",
        score,
        format!("{count} refusals in the last minute (probing the grant's scope)"),
    ));
}

/// Scores `count` Modbus exception responses in the last minute.
pub fn score_exceptions(asset: &str, count: usize, out: &mut Vec<Finding>) {
    let score = match count {
        0..=4 => return,
        5..=9 => 45,
        _ => 75,
    };
    out.push(Finding::new(
        "probing",
        score,
        format!("{count} Modbus exceptions from {asset} in the last minute (a scan)"),
    ));
}

/// Scores `count` requests for addresses or functions new to the unit within a minute.
pub fn score_scan(asset: &str, count: usize, out: &mut Vec<Finding>) {
    if count > 32 {
        out.push(Finding::new(
            "probing",
            if count > 100 { 80 } else { 45 },
            format!("scan: {count} new addresses or functions asked of {asset} in a minute"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn bursts_count_the_last_minute() {
        let t0 = datetime!(2026-12-04 10:00 UTC);
        let mut burst = Burst::default();
        assert_eq!(burst.add(t0), 1);
        assert_eq!(burst.add(t0 + time::Duration::seconds(30)), 2);
        assert_eq!(burst.add(t0 + time::Duration::seconds(61)), 2);
        let mut out = Vec::new();
        score_denials(2, &mut out);
        assert!(out.is_empty());
        score_denials(5, &mut out);
        score_denials(12, &mut out);
        assert_eq!((out[0].score, out[1].score), (65, 90));
        score_exceptions("plc", 12, &mut out);
        assert_eq!(out[2].score, 75);
    }
}
