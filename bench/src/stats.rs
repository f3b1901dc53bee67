//! Medians and percentiles of samples.

use std::time::Duration;

/// Summary of a set of durations.
pub struct Summary {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub min: Duration,
    pub count: usize,
}

pub fn summarize(samples: &[Duration]) -> Summary {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    Summary {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        min: sorted[0],
        count: sorted.len(),
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

impl Summary {
    pub fn line(&self, what: &str) -> String {
        format!(
            "{what:<40} p50 {:>10}  p90 {:>10}  p99 {:>10}  min {:>10}  (n={})",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.min),
            self.count
        )
    }
}
