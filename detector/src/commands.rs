//! Command behaviour: how likely a run of commands is for a vendor against everyone else.
//! The score of a block is the log-likelihood ratio of the block under the population's
//! model and under the vendor's: a naive Bayes term over single commands mixed with a
//! first-order Markov term over command pairs, each additively smoothed (the pair model backs
//! off to the single-command one). Chosen by measurement on the SEA masquerade data (see
//! [`crate::eval::sea`]): it beats Maxion & Townsend's naive Bayes with updating there.
//! Commands a vendor never used are findings of their own.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::score::Finding;

/// Smoothing of the vendor's own command probabilities (Maxion & Townsend's value).
pub const ALPHA: f64 = 0.01;
/// Smoothing of the population's command probabilities.
pub const ALPHA_OTHERS: f64 = 1.0;
/// Weight of the Markov (command pair) term against the single-command term.
pub const LAMBDA: f64 = 0.3;
/// How strongly the pair model backs off to the single-command model.
pub const BETA: f64 = 1.0;

/// How often each command, and each pair of consecutive commands, was used.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    counts: HashMap<String, u32>,
    total: u64,
    /// Pairs within learnt blocks: first command, then the next one.
    #[serde(default)]
    pairs: HashMap<String, HashMap<String, u32>>,
    /// Pairs starting with each command.
    #[serde(default)]
    contexts: HashMap<String, u32>,
}

fn bump(slot: &mut u32, add: bool) {
    *slot = if add {
        slot.saturating_add(1)
    } else {
        slot.saturating_sub(1)
    };
}

impl Counts {
    /// Adds `n` uses of `command` (no pairs).
    pub fn add(&mut self, command: &str, n: u32) {
        let slot = self.counts.entry(command.to_owned()).or_default();
        *slot = slot.saturating_add(n);
        self.total = self.total.saturating_add(u64::from(n));
    }

    fn change_block<S: AsRef<str>>(&mut self, block: &[S], add: bool) {
        for command in block {
            bump(
                self.counts.entry(command.as_ref().to_owned()).or_default(),
                add,
            );
        }
        let n = block.len() as u64;
        self.total = if add {
            self.total.saturating_add(n)
        } else {
            self.total.saturating_sub(n)
        };
        for pair in block.windows(2) {
            if let [x, y] = pair {
                let (x, y) = (x.as_ref(), y.as_ref());
                let next = self.pairs.entry(x.to_owned()).or_default();
                bump(next.entry(y.to_owned()).or_default(), add);
                bump(self.contexts.entry(x.to_owned()).or_default(), add);
            }
        }
    }

    /// Adds a block of consecutive commands: each command and each pair.
    pub fn add_block<S: AsRef<str>>(&mut self, block: &[S]) {
        self.change_block(block, true);
    }

    /// Takes a block added before out again (leave-one-out scoring).
    pub fn remove_block<S: AsRef<str>>(&mut self, block: &[S]) {
        self.change_block(block, false);
    }

    /// Adds everything of `other`.
    pub fn merge(&mut self, other: &Counts) {
        for (command, n) in &other.counts {
            let slot = self.counts.entry(command.clone()).or_default();
            *slot = slot.saturating_add(*n);
        }
        self.total = self.total.saturating_add(other.total);
        for (x, next) in &other.pairs {
            let mine = self.pairs.entry(x.clone()).or_default();
            for (y, n) in next {
                let slot = mine.entry(y.clone()).or_default();
                *slot = slot.saturating_add(*n);
            }
        }
        for (x, n) in &other.contexts {
            let slot = self.contexts.entry(x.clone()).or_default();
            *slot = slot.saturating_add(*n);
        }
    }

    /// Uses of `command`.
    pub fn get(&self, command: &str) -> u32 {
        self.counts.get(command).copied().unwrap_or(0)
    }

    /// Uses of `y` right after `x`.
    pub fn pair(&self, x: &str, y: &str) -> u32 {
        self.pairs
            .get(x)
            .and_then(|next| next.get(y))
            .copied()
            .unwrap_or(0)
    }

    /// Pairs starting with `x`.
    pub fn context(&self, x: &str) -> u32 {
        self.contexts.get(x).copied().unwrap_or(0)
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

/// Everyone else's commands.
#[derive(Clone, Copy, Debug)]
pub enum Others<'a> {
    /// Counts of the others alone.
    Alone(&'a Counts),
    /// Counts of everyone, the user's included (taken out on the fly).
    AllBut(&'a Counts),
}

/// A user's commands against everyone else's.
#[derive(Clone, Copy, Debug)]
pub struct Contrast<'a> {
    /// The user's counts.
    pub own: &'a Counts,
    /// Everyone else's.
    pub others: Others<'a>,
    /// Size of the command alphabet for smoothing (distinct commands known, plus one).
    pub vocabulary: f64,
}

impl Contrast<'_> {
    fn other(&self, of: impl Fn(&Counts) -> u64) -> f64 {
        match self.others {
            Others::Alone(others) => of(others) as f64,
            Others::AllBut(all) => of(all).saturating_sub(of(self.own)) as f64,
        }
    }

    fn single(&self, command: &str) -> (f64, f64) {
        let own = (f64::from(self.own.get(command)) + ALPHA)
            / (self.own.total() as f64 + ALPHA * self.vocabulary);
        let others = (self.other(|c| u64::from(c.get(command))) + ALPHA_OTHERS)
            / (self.other(Counts::total) + ALPHA_OTHERS * self.vocabulary);
        (own, others)
    }

    /// `ln P(block | others) - ln P(block | user)`: high when the block looks like someone
    /// else's.
    pub fn score<S: AsRef<str>>(&self, block: &[S]) -> f64 {
        let Some(first) = block.first() else {
            return 0.0;
        };
        let mut single = 0.0;
        for command in block {
            let (own, others) = self.single(command.as_ref());
            single += others.ln() - own.ln();
        }
        let (own, others) = self.single(first.as_ref());
        let mut markov = others.ln() - own.ln();
        for pair in block.windows(2) {
            if let [x, y] = pair {
                let (x, y) = (x.as_ref(), y.as_ref());
                let (own_y, others_y) = self.single(y);
                let own = (f64::from(self.own.pair(x, y)) + BETA * own_y)
                    / (f64::from(self.own.context(x)) + BETA);
                let others = (self.other(|c| u64::from(c.pair(x, y))) + BETA * others_y)
                    / (self.other(|c| u64::from(c.context(x))) + BETA);
                markov += others.ln() - own.ln();
            }
        }
        (1.0 - LAMBDA) * single + LAMBDA * markov
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
            40,
            format!("command `{command}` never used by {vendor} nor by any other vendor"),
        ));
    } else {
        out.push(Finding::new(
            "commands",
            30,
            format!("command `{command}` never used by {vendor}"),
        ));
    }
}

/// Scores a window of a session's recent commands against the vendor's usual blocks.
pub fn score_window(vendor: &str, z: Option<f64>, len: usize, out: &mut Vec<Finding>) {
    let Some(z) = z else { return };
    // Above 3 standard deviations is where the SEA calibration puts 1.3 % of a user's own
    // blocks of 100. A live session looks at every window of 20, so the same level is weak
    // evidence here; only a far larger deviation is strong on its own.
    let score = match z {
        z if z >= 9.0 => 60,
        z if z >= 6.0 => 45,
        z if z > 3.0 => 30,
        _ => return,
    };
    out.push(Finding::new(
        "commands",
        score,
        format!("the last {len} commands are unlike {vendor}'s usual sessions ({z:.1} standard deviations)"),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_like_the_user_score_below_blocks_like_others() {
        let mut own = Counts::default();
        let mut all = Counts::default();
        for _ in 0..50 {
            own.add_block(&["ls", "vi", "make"]);
            all.add_block(&["ls", "vi", "make"]);
            all.add_block(&["gcc", "ls", "gdb"]);
        }
        let c = Contrast {
            own: &own,
            others: Others::AllBut(&all),
            vocabulary: (all.distinct() + 1) as f64,
        };
        assert!(c.score(&["ls", "vi", "make"]) < 0.0);
        assert!(c.score(&["gcc", "ls", "gdb"]) > 0.0);
        // Order matters through the pair term.
        assert!(c.score(&["make", "vi", "ls"]) > c.score(&["ls", "vi", "make"]));
        let mut out = Vec::new();
        score_novelty("v", "gcc", &own, &all, &mut out);
        score_novelty("v", "nc", &own, &all, &mut out);
        score_novelty("v", "ls", &own, &all, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].text, "command `gcc` never used by v");
        assert!(out[1].score > out[0].score);
        // Taking a block out restores the counts.
        let before = own.clone();
        own.add_block(&["x", "y"]);
        own.remove_block(&["x", "y"]);
        assert_eq!(own.total(), before.total());
        assert_eq!(own.pair("x", "y"), 0);
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
        assert_eq!(out[0].score, 60);
        score_window("v", cal.z(1.0), 20, &mut out);
        assert_eq!(out.len(), 1);
    }
}
