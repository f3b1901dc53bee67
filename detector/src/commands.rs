//! Command behaviour: how likely a command, and a run of commands, is for a vendor against
//! everyone else (multinomial naive Bayes with additive smoothing, updated with accepted
//! blocks, as in Maxion & Townsend's masquerade detector), and the novelty of a command.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::score::Finding;

/// Additive smoothing of command probabilities.
pub const ALPHA: f64 = 0.01;

/// How often each command was used.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    counts: HashMap<String, u32>,
    total: u64,
}

impl Counts {
    /// Adds `n` uses of `command`.
    pub fn add(&mut self, command: &str, n: u32) {
        let slot = self.counts.entry(command.to_owned()).or_default();
        *slot = slot.saturating_add(n);
        self.total = self.total.saturating_add(u64::from(n));
    }

    /// Uses of `command`.
    pub fn get(&self, command: &str) -> u32 {
        self.counts.get(command).copied().unwrap_or(0)
    }

    /// All uses.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Distinct commands.
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }
}

/// A user's commands against everyone's: scores how unlike the user a command is.
pub struct Contrast<'a> {
    /// The user's counts.
    pub own: &'a Counts,
    /// Everyone's counts, the user's included.
    pub all: &'a Counts,
    /// Smoothing.
    pub alpha: f64,
}

impl Contrast<'_> {
    /// `ln P(c | others) - ln P(c | user)`: positive when the command is more typical of
    /// others than of the user.
    pub fn ratio(&self, command: &str) -> f64 {
        // One slot for commands nobody used yet.
        let vocabulary = (self.all.distinct() + 1) as f64;
        let own = f64::from(self.own.get(command));
        let own_total = self.own.total() as f64;
        let others = f64::from(self.all.get(command).saturating_sub(self.own.get(command)));
        let others_total = self.all.total().saturating_sub(self.own.total()) as f64;
        let p_others = (others + self.alpha) / (others_total + self.alpha * vocabulary);
        let p_own = (own + self.alpha) / (own_total + self.alpha * vocabulary);
        p_others.ln() - p_own.ln()
    }

    /// The mean ratio of a block of commands.
    pub fn block<'b>(&self, commands: impl IntoIterator<Item = &'b str>) -> f64 {
        let (sum, n) = commands
            .into_iter()
            .fold((0.0, 0usize), |(sum, n), c| (sum + self.ratio(c), n + 1));
        if n == 0 { 0.0 } else { sum / n as f64 }
    }
}

/// Running mean and variance (Welford) of a vendor's accepted block scores: what "usual"
/// looks like for this vendor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Calibration {
    /// Adds an accepted block's score.
    pub fn add(&mut self, score: f64) {
        if !score.is_finite() {
            return;
        }
        self.n += 1;
        let delta = score - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (score - self.mean);
    }

    /// How many standard deviations `score` lies above the usual, once at least three
    /// blocks were seen.
    pub fn z(&self, score: f64) -> Option<f64> {
        if self.n < 3 {
            return None;
        }
        let sd = (self.m2 / (self.n - 1) as f64).sqrt().max(0.05);
        Some((score - self.mean) / sd)
    }
}

/// Scores the novelty of one command for a vendor whose model is warm.
pub fn score_novelty(
    vendor: &str,
    command: &str,
    own: &Counts,
    all: &Counts,
    out: &mut Vec<Finding>,
) {
    if own.get(command) > 0 {
        return;
    }
    if all.get(command) == 0 {
        out.push(Finding::new(
            "commands",
            55,
            format!("command `{command}` never used by {vendor} nor by any other vendor"),
        ));
    } else {
        out.push(Finding::new(
            "commands",
            40,
            format!("command `{command}` never used by {vendor}"),
        ));
    }
}

/// Scores a window of a session's recent commands against the vendor's usual blocks.
pub fn score_window(vendor: &str, z: Option<f64>, len: usize, out: &mut Vec<Finding>) {
    let Some(z) = z else { return };
    if z > 3.0 {
        let score = (40.0 + 10.0 * (z - 3.0)).min(80.0) as u8;
        out.push(Finding::new(
            "commands",
            score,
            format!("the last {len} commands are unlike {vendor}'s usual sessions ({z:.1} standard deviations)"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_commands_score_below_others() {
        let mut own = Counts::default();
        let mut all = Counts::default();
        for _ in 0..50 {
            own.add("ls", 1);
            own.add("vi", 1);
            all.add("ls", 1);
            all.add("vi", 1);
        }
        for _ in 0..50 {
            all.add("gcc", 1);
            all.add("ls", 1);
        }
        let c = Contrast {
            own: &own,
            all: &all,
            alpha: ALPHA,
        };
        assert!(c.ratio("vi") < 0.0);
        assert!(c.ratio("gcc") > 0.0);
        assert!(c.block(["gcc", "gcc"]) > c.block(["vi", "ls"]));
        let mut out = Vec::new();
        score_novelty("v", "gcc", &own, &all, &mut out);
        score_novelty("v", "nc", &own, &all, &mut out);
        score_novelty("v", "ls", &own, &all, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].text, "command `gcc` never used by v");
        assert!(out[1].score > out[0].score);
    }

    #[test]
    fn calibration_gives_z_scores() {
        let mut cal = Calibration::default();
        assert_eq!(cal.z(1.0), None);
        for s in [1.0, 1.2, 0.8, 1.1, 0.9] {
            cal.add(s);
        }
        let z = cal.z(3.0).unwrap();
        assert!(z > 10.0, "{z}");
        let mut out = Vec::new();
        score_window("v", Some(z), 20, &mut out);
        assert_eq!(out[0].score, 80);
        score_window("v", cal.z(1.0), 20, &mut out);
        assert_eq!(out.len(), 1);
    }
}
