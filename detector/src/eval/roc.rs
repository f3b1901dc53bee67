//! Hit rate, false-alarm rate, ROC curves and the area under them.

use serde::Serialize;

/// What an evaluation reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// What was evaluated.
    pub data: String,
    /// Items scored (blocks, events, packets).
    pub items: usize,
    /// Of which labelled abnormal.
    pub positives: usize,
    /// Flagged abnormal items / abnormal items, at the operating threshold.
    pub hit_rate: f64,
    /// Flagged normal items / normal items, at the operating threshold.
    pub false_alarm_rate: f64,
    /// Area under the ROC curve.
    pub auc: f64,
    /// ROC points as `[false_alarm_rate, hit_rate]`, from (0, 0) to (1, 1).
    pub roc: Vec<[f64; 2]>,
    /// Further figures per part (user, file), when the data has parts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

/// Figures for one part of the data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Part {
    /// Its name.
    pub name: String,
    /// Items.
    pub items: usize,
    /// Abnormal items.
    pub positives: usize,
    /// Hits.
    pub hits: usize,
    /// False alarms.
    pub false_alarms: usize,
}

/// Rates from counts (0 when there is nothing to count).
pub fn rate(n: usize, of: usize) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

/// The area under a curve of `[fa, hit]` points sorted by false-alarm rate.
pub fn auc(points: &[[f64; 2]]) -> f64 {
    points
        .windows(2)
        .map(|w| match w {
            [[x0, y0], [x1, y1]] => (x1 - x0) * (y0 + y1) / 2.0,
            _ => 0.0,
        })
        .sum()
}

/// Sorts points, adds (0, 0) and (1, 1), and removes duplicates.
pub fn curve(mut points: Vec<[f64; 2]>) -> Vec<[f64; 2]> {
    points.push([0.0, 0.0]);
    points.push([1.0, 1.0]);
    points.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    points.dedup();
    points
}

/// The ROC curve of scored items (`score`, abnormal?): one point per distinct score used as
/// the threshold (flag when score >= threshold).
pub fn roc_of(scored: &[(f64, bool)]) -> Vec<[f64; 2]> {
    let positives = scored.iter().filter(|(_, p)| *p).count();
    let negatives = scored.len() - positives;
    let mut sorted: Vec<(f64, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut points = Vec::new();
    let (mut hits, mut fas) = (0usize, 0usize);
    let mut i = 0;
    while i < sorted.len() {
        let Some((threshold, _)) = sorted.get(i).copied() else {
            break;
        };
        while let Some((score, positive)) = sorted.get(i).copied() {
            if score != threshold {
                break;
            }
            if positive {
                hits += 1
            } else {
                fas += 1
            }
            i += 1;
        }
        points.push([rate(fas, negatives), rate(hits, positives)]);
    }
    curve(points)
}

impl Report {
    /// The report on scored items (score, abnormal?) of one data set called `name`, flagged
    /// when `flagged` says so (the operating threshold).
    pub fn of(data: String, name: &str, scored: &[(f64, bool)], flagged: &[bool]) -> Self {
        let positives = scored.iter().filter(|(_, p)| *p).count();
        let count = |abnormal: bool| {
            scored
                .iter()
                .zip(flagged)
                .filter(|((_, p), f)| *p == abnormal && **f)
                .count()
        };
        let (hits, false_alarms) = (count(true), count(false));
        let roc = roc_of(scored);
        Self {
            data,
            items: scored.len(),
            positives,
            hit_rate: rate(hits, positives),
            false_alarm_rate: rate(false_alarms, scored.len() - positives),
            auc: auc(&roc),
            roc,
            parts: vec![Part {
                name: name.to_owned(),
                items: scored.len(),
                positives,
                hits,
                false_alarms,
            }],
        }
    }

    /// The report in words, for people.
    pub fn text(&self) -> String {
        let mut out = format!(
            "{}\n  items {}, abnormal {}\n  hit rate {:.1} %, false-alarm rate {:.2} %, AUC {:.3}\n",
            self.data,
            self.items,
            self.positives,
            self.hit_rate * 100.0,
            self.false_alarm_rate * 100.0,
            self.auc
        );
        if !self.parts.is_empty() {
            out.push_str(
                "  part                                     items  abnormal  hits  false alarms\n",
            );
            for p in &self.parts {
                out.push_str(&format!(
                    "  {:<40} {:>5}  {:>8}  {:>4}  {:>12}\n",
                    p.name, p.items, p.positives, p.hits, p.false_alarms
                ));
            }
        }
        out.push_str("  ROC (false alarms %, hits %):");
        let step = (self.roc.len() / 12).max(1);
        for (i, [fa, hit]) in self.roc.iter().enumerate() {
            if i % step == 0 || i + 1 == self.roc.len() {
                out.push_str(&format!(" ({:.1}, {:.1})", fa * 100.0, hit * 100.0));
            }
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_random_scores() {
        let perfect = [(0.9, true), (0.8, true), (0.2, false), (0.1, false)];
        assert!((auc(&roc_of(&perfect)) - 1.0).abs() < 1e-9);
        let inverted = [(0.1, true), (0.2, true), (0.8, false), (0.9, false)];
        assert!(auc(&roc_of(&inverted)).abs() < 1e-9);
        let tied = [(0.5, true), (0.5, false)];
        assert!((auc(&roc_of(&tied)) - 0.5).abs() < 1e-9);
    }
}
