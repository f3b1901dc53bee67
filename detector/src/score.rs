//! Scores and their explanations: each model contributes findings (a score 0-100 and a
//! sentence); an event's score combines them, and a session's risk accumulates its events'
//! scores and fades with time.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use otgate_policy::Finding;

/// Combines independent findings: the chance that at least one is right (noisy-or), so two
/// medium findings outweigh one.
pub fn combine(findings: &[Finding]) -> u8 {
    let keep = findings
        .iter()
        .fold(1.0_f64, |keep, f| keep * (1.0 - f64::from(f.score) / 100.0));
    to_score(1.0 - keep)
}

/// A probability as a 0-100 score.
pub fn to_score(p: f64) -> u8 {
    if p.is_nan() {
        return 0;
    }
    // Rounded and clamped to 0..=100, so the cast cannot truncate.
    (p * 100.0).round().clamp(0.0, 100.0) as u8
}

/// How fast an old event's weight fades from a session's risk.
pub const RISK_HALF_LIFE_SECS: f64 = 600.0;
/// Most distinct findings remembered per session.
const MAX_SEEN: usize = 256;
/// How many findings a session keeps as its explanation.
pub const TOP_FINDINGS: usize = 5;

/// A session's running risk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Risk {
    /// 0-100.
    pub value: u8,
    /// The strongest findings so far, strongest first.
    pub findings: Vec<Finding>,
    /// When it was last raised.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated: Option<OffsetDateTime>,
    /// Findings the session already had.
    #[serde(skip)]
    seen: BTreeSet<String>,
}

impl Risk {
    /// Adds an event scoring `score` at `at`: the previous risk fades (half-life ten
    /// minutes), then combines with the event's new findings (a finding the session already
    /// had adds nothing, so a repeated oddity does not snowball); a weak finding (below 50)
    /// counts for a third. The risk is never below the event's own score.
    pub fn add(&mut self, score: u8, findings: &[Finding], at: OffsetDateTime) {
        let faded = match self.updated {
            Some(last) if at > last => {
                let secs = (at - last).as_seconds_f64();
                f64::from(self.value) / 100.0 * 0.5_f64.powf(secs / RISK_HALF_LIFE_SECS)
            }
            _ => f64::from(self.value) / 100.0,
        };
        let mut keep = 1.0 - faded;
        for finding in findings {
            let key = format!("{}:{}", finding.model, finding.text);
            if self.seen.contains(&key) {
                continue;
            }
            if self.seen.len() < MAX_SEEN {
                self.seen.insert(key);
            }
            let weight = if finding.score >= 50 { 1.0 } else { 1.0 / 3.0 };
            keep *= 1.0 - f64::from(finding.score) / 100.0 * weight;
        }
        self.value = to_score(1.0 - keep).max(score);
        if score > 0 {
            self.updated = Some(at);
        }
        for finding in findings {
            match self
                .findings
                .iter_mut()
                .find(|f| f.model == finding.model && f.text == finding.text)
            {
                Some(known) => known.score = known.score.max(finding.score),
                None => self.findings.push(finding.clone()),
            }
        }
        self.findings.sort_by(|a, b| b.score.cmp(&a.score));
        self.findings.truncate(TOP_FINDINGS);
    }

    /// The explanation in one line: the strongest findings joined with `; `.
    pub fn explain(&self) -> String {
        explain(&self.findings)
    }
}

/// Findings in one line, strongest first.
pub fn explain(findings: &[Finding]) -> String {
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by(|a, b| b.score.cmp(&a.score));
    sorted
        .iter()
        .take(TOP_FINDINGS)
        .map(|f| f.text.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn findings_combine_as_noisy_or() {
        assert_eq!(combine(&[]), 0);
        assert_eq!(combine(&[Finding::new("a", 60, "x")]), 60);
        assert_eq!(
            combine(&[Finding::new("a", 60, "x"), Finding::new("b", 60, "y")]),
            84
        );
        assert_eq!(combine(&[Finding::new("a", 100, "x")]), 100);
    }

    #[test]
    fn risk_accumulates_and_fades() {
        let t0 = datetime!(2026-12-04 10:00 UTC);
        let mut risk = Risk::default();
        risk.add(60, &[Finding::new("a", 60, "first")], t0);
        assert_eq!(risk.value, 60);
        risk.add(60, &[Finding::new("b", 60, "second")], t0);
        assert_eq!(risk.value, 84);
        assert_eq!(risk.explain(), "first; second");
        // Twenty minutes later the old risk has faded to a quarter.
        let mut later = risk.clone();
        later.add(10, &[], t0 + time::Duration::minutes(20));
        assert!(later.value < 30, "{}", later.value);
        // Weak findings alone stay weak, and a repeated one adds nothing.
        let mut weak = Risk::default();
        for text in ["a", "b", "c"] {
            weak.add(30, &[Finding::new("m", 30, text)], t0);
        }
        assert!((40..=45).contains(&weak.value), "{}", weak.value);
        let mut same = Risk::default();
        for _ in 0..10 {
            same.add(30, &[Finding::new("m", 30, "again")], t0);
        }
        assert_eq!(same.value, 30);
    }
}
