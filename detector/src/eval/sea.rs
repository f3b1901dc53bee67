//! placeholder until the model is chosen
use std::path::Path;

use crate::error::{DetectorError, Result};
use crate::eval::roc::Report;

/// Evaluates the SEA layout in `dir`.
pub fn evaluate(dir: &Path, max_false_alarm: f64) -> Result<Report> {
    Err(DetectorError::Input(format!(
        "{} {max_false_alarm}",
        dir.display()
    )))
}
