//! Time: when each vendor usually works (an hour-of-week profile, learnt from their
//! sessions) and the assets' maintenance windows from the inventory.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use otgate_policy::MaintenanceWindow;

use crate::score::Finding;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// The hour of the week, 0 (Monday 00:00-00:59) to 167, in UTC.
pub fn hour_of_week(at: OffsetDateTime) -> usize {
    let at = at.to_offset(time::UtcOffset::UTC);
    usize::from(at.weekday().number_days_from_monday()) * 24 + usize::from(at.hour())
}

/// When a vendor works: session hours per hour of the week.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HourProfile {
    /// Active session-hours per hour of the week.
    hours: Vec<u32>,
    /// Total learnt.
    pub total: u32,
}

impl Default for HourProfile {
    fn default() -> Self {
        Self {
            hours: vec![0; 168],
            total: 0,
        }
    }
}

impl HourProfile {
    /// Learns activity at `at`.
    pub fn learn(&mut self, at: OffsetDateTime) {
        if self.hours.len() != 168 {
            self.hours = vec![0; 168];
        }
        if let Some(slot) = self.hours.get_mut(hour_of_week(at)) {
            *slot = slot.saturating_add(1);
            self.total = self.total.saturating_add(1);
        }
    }

    /// Activity seen within an hour of `at`'s hour of the week.
    fn near(&self, at: OffsetDateTime) -> u32 {
        let how = hour_of_week(at);
        [how + 167, how, how + 1]
            .iter()
            .filter_map(|h| self.hours.get(h % 168))
            .sum()
    }

    /// Scores activity at `at` for `vendor`, once `warm`.
    pub fn score(&self, vendor: &str, at: OffsetDateTime, warm: bool, out: &mut Vec<Finding>) {
        if !warm || self.total == 0 || self.near(at) > 0 {
            return;
        }
        let at = at.to_offset(time::UtcOffset::UTC);
        let day = DAYS
            .get(usize::from(at.weekday().number_days_from_monday()))
            .copied()
            .unwrap_or("?");
        out.push(Finding::new(
            "time",
            35,
            format!(
                "{day} {:02}:{:02} UTC is outside {vendor}'s usual hours",
                at.hour(),
                at.minute()
            ),
        ));
    }
}

/// Scores activity outside every maintenance window of an asset that has some.
pub fn score_maintenance(
    asset: &str,
    windows: &[MaintenanceWindow],
    at: OffsetDateTime,
    out: &mut Vec<Finding>,
) {
    if windows.is_empty() || windows.iter().any(|w| w.contains(at)) {
        return;
    }
    let listed: Vec<String> = windows
        .iter()
        .map(|w| format!("{} {}", w.days, w.hours))
        .collect();
    out.push(Finding::new(
        "time",
        25,
        format!(
            "{asset} is outside its maintenance windows ({})",
            listed.join(", ")
        ),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn odd_hours_score_once_warm() {
        let mut profile = HourProfile::default();
        // Fridays 09:00-16:00.
        for hour in 9..16 {
            for week in 0..4 {
                profile.learn(
                    datetime!(2026-11-06 00:00 UTC)
                        + time::Duration::hours(hour)
                        + time::Duration::weeks(week),
                );
            }
        }
        let mut out = Vec::new();
        profile.score("vendor1", datetime!(2026-12-04 10:30 UTC), true, &mut out);
        profile.score("vendor1", datetime!(2026-12-04 16:30 UTC), true, &mut out);
        assert!(out.is_empty(), "{out:?}");
        profile.score("vendor1", datetime!(2026-12-06 02:14 UTC), false, &mut out);
        assert!(out.is_empty());
        profile.score("vendor1", datetime!(2026-12-06 02:14 UTC), true, &mut out);
        assert_eq!(
            out[0].text,
            "Sun 02:14 UTC is outside vendor1's usual hours"
        );
    }

    #[test]
    fn maintenance_windows_are_checked() {
        let windows = vec![MaintenanceWindow {
            days: "mon-fri".into(),
            hours: "08:00-16:00".parse().unwrap(),
        }];
        let mut out = Vec::new();
        score_maintenance("plc-7", &windows, datetime!(2026-12-04 09:00 UTC), &mut out);
        assert!(out.is_empty());
        score_maintenance("plc-7", &windows, datetime!(2026-12-05 09:00 UTC), &mut out);
        assert!(
            out[0]
                .text
                .contains("plc-7 is outside its maintenance windows (mon-fri 08:00-16:00)")
        );
        score_maintenance("plc-7", &[], datetime!(2026-12-05 09:00 UTC), &mut out);
        assert_eq!(out.len(), 1);
    }
}
