//! Scores and their explanations: each model contributes findings (a score 0-100 and a
//! sentence); an event's score combines them, and a session's risk accumulates its events'
//! scores and fades with time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use otgate_policy::Finding;

/// Combines an event's findings: the strongest counts in full, each further one adds as an
/// independent chance (noisy-or), a weak one (below 50) for a third. Two strong findings
/// outweigh one; weak ones only nudge.
pub fn combine(findings: &[Finding]) -> u8 {
    let mut scores: Vec<u8> = findings.iter().map(|f| f.score).collect();
    scores.sort_unstable_by(|a, b| b.cmp(a));
    let keep = scores.iter().enumerate().fold(1.0_f64, |keep, (i, s)| {
        let weight = if i == 0 || *s >= 50 { 1.0 } else { 1.0 / 3.0 };
        keep * (1.0 - f64::from(*s) / 100.0 * weight)
    });
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
/// How many findings a session keeps as its explanation.
pub const TOP_FINDINGS: usize = 5;

/// A session's running risk: the strongest finding of each model so far, each fading with
/// time (half-life ten minutes), combined across models (noisy-or). Independent kinds of
/// evidence compound; the same model saying the same kind of thing again does not snowball.
/// A weak finding (below 50) counts for a third. The risk is never below the event's own
/// score.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Risk {
    /// 0-100.
    pub value: u8,
    /// The strongest findings so far, strongest first.
    pub findings: Vec<Finding>,
    /// When it was last raised.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated: Option<OffsetDateTime>,
    /// Each model's strongest finding score, and when.
    #[serde(skip)]
    peaks: BTreeMap<String, (u8, OffsetDateTime)>,
}

fn faded(score: u8, since: OffsetDateTime, now: OffsetDateTime) -> f64 {
    let secs = if now > since {
        (now - since).as_seconds_f64()
    } else {
        0.0
    };
    f64::from(score) / 100.0 * 0.5_f64.powf(secs / RISK_HALF_LIFE_SECS)
}

impl Risk {
    /// Adds an event scoring `score` at `at` with its findings.
    pub fn add(&mut self, score: u8, findings: &[Finding], at: OffsetDateTime) {
        for finding in findings {
            let stronger = self.peaks.get(&finding.model).is_none_or(|(peak, when)| {
                f64::from(finding.score) / 100.0 >= faded(*peak, *when, at)
            });
            if stronger {
                self.peaks
                    .insert(finding.model.clone(), (finding.score, at));
            }
        }
        let keep = self.peaks.values().fold(1.0, |keep, (peak, when)| {
            let weight = if *peak >= 50 { 1.0 } else { 1.0 / 3.0 };
            keep * (1.0 - faded(*peak, *when, at) * weight)
        });
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
        self.findings.sort_by_key(|f| std::cmp::Reverse(f.score));
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
    sorted.sort_by_key(|f| std::cmp::Reverse(f.score));
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
        assert_eq!(
            combine(&[Finding::new("a", 45, "x"), Finding::new("b", 30, "y")]),
            50
        );
        assert_eq!(combine(&[Finding::new("a", 100, "x")]), 100);
    }

    #[test]
    fn risk_accumulates_across_models_and_fades() {
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
        // One model repeating itself does not snowball, whatever it says.
        let mut same = Risk::default();
        for text in ["x", "y", "z", "w"] {
            same.add(60, &[Finding::new("m", 60, text)], t0);
        }
        assert_eq!(same.value, 60);
        // Weak findings of several models stay weak.
        let mut weak = Risk::default();
        for model in ["a", "b", "c"] {
            weak.add(30, &[Finding::new(model, 30, "x")], t0);
        }
        assert_eq!(weak.value, 30);
    }
}
