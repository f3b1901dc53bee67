//! The SEA masquerade evaluation (Schonlau et al.): `User<N>` files of commands and
//! `labels.txt` (one row per test block, one column per user, in numeric order of N).
//!
//! Protocol, as published: each user's first 5,000 commands train their model; the 100
//! blocks of 100 commands that follow are scored in order; a block the detector accepts joins
//! the user's model (updating), a flagged one does not. The model is the live detector's
//! command model ([`crate::commands::Contrast`]), against a population model of the other
//! users' training commands. The threshold is fixed from training data alone: each user's
//! leave-one-block-out training scores give a mean and deviation; the training blocks scored
//! in time order (each against the blocks before it) give z-scores, pooled over users, whose
//! `1 - max_false_alarm` quantile is the one z every user's threshold uses. Test labels only
//! count hits and false alarms. The ROC curve re-runs the protocol at shifted z.

use std::path::Path;

use crate::commands::{Contrast, Counts, Others};
use crate::error::{DetectorError, Result};
use crate::eval::roc::{Part, Report, auc, curve, rate};

/// Commands per block.
const BLOCK: usize = 100;
/// Training blocks per user.
const TRAINING: usize = 50;
/// Training blocks before the first one scored for calibration.
const CALIBRATION_START: usize = 20;
/// Most users read.
const MAX_USERS: usize = 1000;
/// Largest user file read.
const MAX_FILE: u64 = 64 * 1024 * 1024;
/// z values of the ROC curve.
const ROC_Z: [f64; 39] = [
    -4.0, -3.0, -2.0, -1.5, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75,
    2.0, 2.25, 2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 9.0,
    10.0, 12.0, 15.0, 20.0, 30.0,
];

/// One user: training and test blocks, labels, and the calibration.
struct User {
    name: String,
    training: Vec<Vec<String>>,
    test: Vec<Vec<String>>,
    labels: Vec<bool>,
    others: Counts,
    mean: f64,
    sd: f64,
}

fn read_users(dir: &Path) -> Result<Vec<(u32, Vec<String>)>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| DetectorError::Input(format!("{}: {e}", dir.display())))?;
    let mut users = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DetectorError::Input(format!("{}: {e}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(n) = name
            .strip_prefix("User")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if users.len() >= MAX_USERS {
            return Err(DetectorError::Input(format!(
                "more than {MAX_USERS} user files"
            )));
        }
        let path = entry.path();
        let size = entry.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        if size > MAX_FILE {
            return Err(DetectorError::Input(format!(
                "{} is larger than {MAX_FILE} bytes",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| DetectorError::Input(format!("{}: {e}", path.display())))?;
        let commands: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        users.push((n, commands));
    }
    users.sort_by_key(|(n, _)| *n);
    if users.is_empty() {
        return Err(DetectorError::Input(format!(
            "no User<N> files in {}",
            dir.display()
        )));
    }
    Ok(users)
}

fn read_labels(dir: &Path, users: usize) -> Result<Vec<Vec<bool>>> {
    let path = dir.join("labels.txt");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| DetectorError::Input(format!("{}: {e}", path.display())))?;
    let mut columns = vec![Vec::new(); users];
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row: Vec<&str> = line.split_whitespace().collect();
        if row.len() != users {
            return Err(DetectorError::Input(format!(
                "{} line {}: {} columns for {users} user files",
                path.display(),
                n + 1,
                row.len()
            )));
        }
        for (column, cell) in columns.iter_mut().zip(row) {
            column.push(match cell {
                "0" => false,
                "1" => true,
                other => {
                    return Err(DetectorError::Input(format!(
                        "{} line {}: `{other}` is not 0 or 1",
                        path.display(),
                        n + 1
                    )));
                }
            });
        }
    }
    Ok(columns)
}

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(2) as f64;
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt().max(1e-9))
}

/// The `q` quantile with linear interpolation.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let Some(last) = values.len().checked_sub(1) else {
        return 0.0;
    };
    let at = q.clamp(0.0, 1.0) * last as f64;
    let lo = at.floor() as usize;
    let hi = (lo + 1).min(last);
    let (a, b) = (
        values.get(lo).copied().unwrap_or(0.0),
        values.get(hi).copied().unwrap_or(0.0),
    );
    a + (b - a) * (at - lo as f64)
}

fn counts(blocks: &[Vec<String>]) -> Counts {
    let mut c = Counts::default();
    for block in blocks {
        c.add_block(block);
    }
    c
}

/// Runs the test protocol at `z` for every user: (hits, false alarms) per user.
fn run(users: &[User], z: f64, vocabulary: f64) -> Vec<(usize, usize)> {
    users
        .iter()
        .map(|user| {
            let threshold = user.mean + z * user.sd;
            let mut own = counts(&user.training);
            let (mut hits, mut false_alarms) = (0, 0);
            for (block, masquerade) in user.test.iter().zip(&user.labels) {
                let contrast = Contrast {
                    own: &own,
                    others: Others::Alone(&user.others),
                    vocabulary,
                };
                if contrast.score(block) > threshold {
                    if *masquerade {
                        hits += 1
                    } else {
                        false_alarms += 1
                    }
                } else {
                    own.add_block(block);
                }
            }
            (hits, false_alarms)
        })
        .collect()
}

/// Evaluates the SEA layout in `dir`, calibrated to `max_false_alarm` on training data.
pub fn evaluate(dir: &Path, max_false_alarm: f64) -> Result<Report> {
    let files = read_users(dir)?;
    let labels = read_labels(dir, files.len())?;
    let tests = labels.first().map_or(0, Vec::len);
    let mut users = Vec::new();
    for ((n, commands), labels) in files.into_iter().zip(labels) {
        let blocks: Vec<Vec<String>> = commands
            .chunks_exact(BLOCK)
            .map(<[String]>::to_vec)
            .collect();
        if blocks.len() < TRAINING + tests {
            return Err(DetectorError::Input(format!(
                "User{n} has {} commands: {} training and {tests} test blocks of {BLOCK} need {}",
                commands.len(),
                TRAINING,
                (TRAINING + tests) * BLOCK
            )));
        }
        let mut blocks = blocks.into_iter();
        let training: Vec<Vec<String>> = blocks.by_ref().take(TRAINING).collect();
        let test: Vec<Vec<String>> = blocks.take(tests).collect();
        users.push(User {
            name: format!("User{n}"),
            training,
            test,
            labels,
            others: Counts::default(),
            mean: 0.0,
            sd: 1.0,
        });
    }
    // Everyone's training commands, for the alphabet and the population models.
    let all: Vec<Counts> = users.iter().map(|u| counts(&u.training)).collect();
    let mut vocabulary = Counts::default();
    for c in &all {
        vocabulary.merge(c);
    }
    let vocabulary = (vocabulary.distinct() + 1) as f64;
    let mut pooled = Vec::new();
    for i in 0..users.len() {
        let mut others = Counts::default();
        for (j, c) in all.iter().enumerate() {
            if j != i {
                others.merge(c);
            }
        }
        let Some(user) = users.get_mut(i) else {
            continue;
        };
        let mut own = counts(&user.training);
        let mut scores = Vec::new();
        for block in &user.training {
            own.remove_block(block);
            scores.push(
                Contrast {
                    own: &own,
                    others: Others::Alone(&others),
                    vocabulary,
                }
                .score(block),
            );
            own.add_block(block);
        }
        (user.mean, user.sd) = mean_sd(&scores);
        let mut growing = counts(user.training.get(..CALIBRATION_START).unwrap_or_default());
        for block in user.training.iter().skip(CALIBRATION_START) {
            let score = Contrast {
                own: &growing,
                others: Others::Alone(&others),
                vocabulary,
            }
            .score(block);
            pooled.push((score - user.mean) / user.sd);
            growing.add_block(block);
        }
        user.others = others;
    }
    let z = quantile(&mut pooled, 1.0 - max_false_alarm);
    let at_z = run(&users, z, vocabulary);
    let positives: usize = users
        .iter()
        .map(|u| u.labels.iter().filter(|l| **l).count())
        .sum();
    let items = users.len() * tests;
    let negatives = items - positives;
    let hits: usize = at_z.iter().map(|(h, _)| h).sum();
    let false_alarms: usize = at_z.iter().map(|(_, f)| f).sum();
    let mut points = vec![[rate(false_alarms, negatives), rate(hits, positives)]];
    for shifted in ROC_Z {
        let result = run(&users, shifted, vocabulary);
        let h: usize = result.iter().map(|(h, _)| h).sum();
        let f: usize = result.iter().map(|(_, f)| f).sum();
        points.push([rate(f, negatives), rate(h, positives)]);
    }
    let roc = curve(points);
    Ok(Report {
        data: format!(
            "SEA masquerade data {} ({} users; threshold z = {z:.3} from training, target false alarms {:.1} %)",
            dir.display(),
            users.len(),
            max_false_alarm * 100.0
        ),
        items,
        positives,
        hit_rate: rate(hits, positives),
        false_alarm_rate: rate(false_alarms, negatives),
        auc: auc(&roc),
        roc,
        parts: users
            .iter()
            .zip(&at_z)
            .map(|(u, (h, f))| Part {
                name: u.name.clone(),
                items: u.test.len(),
                positives: u.labels.iter().filter(|l| **l).count(),
                hits: *h,
                false_alarms: *f,
            })
            .collect(),
    })
}
