//! Approval rules per Purdue level: how many approvers, how long, at what hours.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset};
use utoipa::ToSchema;

use crate::error::{PolicyError, Result};
use crate::level::PurdueLevel;
use crate::window::{DailyHours, Window, format_duration, parse_duration};

/// The rule for one level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct LevelRule {
    /// Distinct engineers who must approve.
    pub approvals: u8,
    /// Longest window.
    #[schema(value_type = u64)]
    #[serde(serialize_with = "seconds")]
    pub max_duration: Duration,
    /// Hours of the day the whole window must lie in (plant-local time).
    pub allowed_hours: DailyHours,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// Approval rules for every level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRules {
    levels: [LevelRule; 7],
    /// Offset of plant-local time from UTC, for allowed hours.
    pub utc_offset: UtcOffset,
    /// How far ahead a window may start.
    pub max_advance: Duration,
}

/// How far in the past a window may start (clock skew, typing time).
pub const START_GRACE: Duration = Duration::from_secs(120);

impl Default for ApprovalRules {
    /// Two distinct engineers and at most 4 h on levels 0-1; one engineer and 8 h above.
    fn default() -> Self {
        let control = LevelRule {
            approvals: 2,
            max_duration: Duration::from_secs(4 * 3600),
            allowed_hours: DailyHours::ALWAYS,
        };
        let above = LevelRule {
            approvals: 1,
            max_duration: Duration::from_secs(8 * 3600),
            allowed_hours: DailyHours::ALWAYS,
        };
        Self {
            levels: [control, control, above, above, above, above, above],
            utc_offset: UtcOffset::UTC,
            max_advance: Duration::from_secs(30 * 86400),
        }
    }
}

/// Why a window does not fit a level's rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// Starts too long ago.
    #[error("the window starts in the past ({start}): start it now or later")]
    StartInPast {
        /// Requested start.
        start: String,
    },
    /// Zero or negative length.
    #[error("the window is empty: give a positive duration")]
    Empty,
    /// Longer than the level allows.
    #[error(
        "{requested} is longer than the {max} allowed on Purdue level {level}: ask for {max} or less"
    )]
    TooLong {
        /// Requested length.
        requested: String,
        /// Allowed length.
        max: String,
        /// The asset's level.
        level: PurdueLevel,
    },
    /// Starts too far ahead.
    #[error("the window starts more than {max} ahead: ask closer to the work")]
    TooFarAhead {
        /// Allowed lead time.
        max: String,
    },
    /// Not inside the allowed hours.
    #[error(
        "on Purdue level {level} access is allowed {hours} (UTC{offset}) only: move the window inside those hours"
    )]
    OutsideHours {
        /// The asset's level.
        level: PurdueLevel,
        /// Allowed hours.
        hours: DailyHours,
        /// Plant offset.
        offset: String,
    },
}

impl ApprovalRules {
    /// The rule of `level`.
    pub fn for_level(&self, level: PurdueLevel) -> LevelRule {
        let index = PurdueLevel::ALL
            .iter()
            .position(|l| *l == level)
            .unwrap_or(0);
        self.levels.get(index).copied().unwrap_or(LevelRule {
            approvals: 2,
            max_duration: Duration::from_secs(3600),
            allowed_hours: DailyHours::ALWAYS,
        })
    }

    /// Checks a requested window against the level's rule at `now`.
    pub fn check_window(
        &self,
        level: PurdueLevel,
        window: &Window,
        now: OffsetDateTime,
    ) -> Result<(), WindowError> {
        let rule = self.for_level(level);
        let grace = time::Duration::try_from(START_GRACE).unwrap_or(time::Duration::ZERO);
        if window.start < now - grace {
            return Err(WindowError::StartInPast {
                start: window.start.to_string(),
            });
        }
        if window.end <= window.start {
            return Err(WindowError::Empty);
        }
        if window.duration() > rule.max_duration {
            return Err(WindowError::TooLong {
                requested: format_duration(window.duration()),
                max: format_duration(rule.max_duration),
                level,
            });
        }
        let advance = time::Duration::try_from(self.max_advance).unwrap_or(time::Duration::MAX);
        if window.start > now + advance {
            return Err(WindowError::TooFarAhead {
                max: format_duration(self.max_advance),
            });
        }
        if !rule.allowed_hours.contains_window(window, self.utc_offset) {
            return Err(WindowError::OutsideHours {
                level,
                hours: rule.allowed_hours,
                offset: self.utc_offset.to_string(),
            });
        }
        Ok(())
    }

    /// Every level with its rule, for display.
    pub fn levels(&self) -> impl Iterator<Item = (PurdueLevel, LevelRule)> + '_ {
        PurdueLevel::ALL
            .into_iter()
            .zip(self.levels.iter().copied())
    }
}

/// `[approval]` as written in the configuration file.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// Plant-local offset from UTC, e.g. `+01:00`.
    #[serde(default)]
    pub utc_offset: Option<String>,
    /// How far ahead a window may start, e.g. `30d`.
    #[serde(default)]
    pub max_advance: Option<String>,
    /// Rules for groups of levels; unlisted levels keep the defaults.
    #[serde(default)]
    pub levels: Vec<LevelConfig>,
}

/// One `[[approval.levels]]` entry.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LevelConfig {
    /// Levels this rule applies to, e.g. `["0", "1"]`.
    pub levels: Vec<PurdueLevel>,
    /// Distinct approvers needed (1-5).
    pub approvals: u8,
    /// Longest window, e.g. `4h`.
    pub max_duration: String,
    /// Allowed hours, e.g. `06:00-20:00`.
    #[serde(default)]
    pub allowed_hours: Option<DailyHours>,
}

impl TryFrom<&ApprovalConfig> for ApprovalRules {
    type Error = PolicyError;
    fn try_from(config: &ApprovalConfig) -> Result<Self> {
        let mut rules = ApprovalRules::default();
        if let Some(offset) = &config.utc_offset {
            let format =
                time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
            rules.utc_offset = UtcOffset::parse(offset, &format).map_err(|_| {
                PolicyError::invalid(
                    "approval.utc_offset",
                    "expected an offset such as +01:00 or -05:00",
                )
            })?;
        }
        if let Some(advance) = &config.max_advance {
            rules.max_advance = parse_duration(advance)
                .map_err(|e| PolicyError::invalid("approval.max_advance", e.to_string()))?;
        }
        for (i, entry) in config.levels.iter().enumerate() {
            let key = format!("approval.levels[{i}]");
            if !(1..=5).contains(&entry.approvals) {
                return Err(PolicyError::invalid(
                    format!("{key}.approvals"),
                    "between 1 and 5 approvers",
                ));
            }
            let max_duration = parse_duration(&entry.max_duration)
                .map_err(|e| PolicyError::invalid(format!("{key}.max_duration"), e.to_string()))?;
            if max_duration.is_zero() || max_duration > Duration::from_secs(7 * 86400) {
                return Err(PolicyError::invalid(
                    format!("{key}.max_duration"),
                    "between 1 second and 7 days",
                ));
            }
            if entry.levels.is_empty() {
                return Err(PolicyError::invalid(
                    format!("{key}.levels"),
                    "name at least one level",
                ));
            }
            for level in &entry.levels {
                let index = PurdueLevel::ALL
                    .iter()
                    .position(|l| l == level)
                    .unwrap_or(0);
                if let Some(slot) = rules.levels.get_mut(index) {
                    *slot = LevelRule {
                        approvals: entry.approvals,
                        max_duration,
                        allowed_hours: entry.allowed_hours.unwrap_or(DailyHours::ALWAYS),
                    };
                }
            }
        }
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-04 10:00 UTC);

    fn window(start: OffsetDateTime, hours: u64) -> Window {
        Window::starting(start, Duration::from_secs(hours * 3600)).unwrap()
    }

    #[test]
    fn defaults_follow_the_levels() {
        let rules = ApprovalRules::default();
        assert_eq!(rules.for_level(PurdueLevel::L1).approvals, 2);
        assert_eq!(rules.for_level(PurdueLevel::L3).approvals, 1);
        assert!(
            rules
                .check_window(PurdueLevel::L1, &window(NOW, 4), NOW)
                .is_ok()
        );
        assert!(matches!(
            rules.check_window(PurdueLevel::L1, &window(NOW, 5), NOW),
            Err(WindowError::TooLong { .. })
        ));
        assert!(
            rules
                .check_window(PurdueLevel::L2, &window(NOW, 8), NOW)
                .is_ok()
        );
        let past = window(datetime!(2026-12-04 09:00 UTC), 1);
        assert!(matches!(
            rules.check_window(PurdueLevel::L2, &past, NOW),
            Err(WindowError::StartInPast { .. })
        ));
        let far = window(datetime!(2027-02-04 09:00 UTC), 1);
        assert!(matches!(
            rules.check_window(PurdueLevel::L2, &far, NOW),
            Err(WindowError::TooFarAhead { .. })
        ));
    }

    #[test]
    fn configured_rules_override_defaults() {
        let config: ApprovalConfig = toml::from_str(
            r#"
utc_offset = "+01:00"
[[levels]]
levels = ["2"]
approvals = 2
max_duration = "2h"
allowed_hours = "06:00-18:00"
"#,
        )
        .unwrap();
        let rules = ApprovalRules::try_from(&config).unwrap();
        assert_eq!(rules.for_level(PurdueLevel::L2).approvals, 2);
        assert_eq!(rules.for_level(PurdueLevel::L3).approvals, 1);
        let late = window(datetime!(2026-12-04 17:30 UTC), 1);
        let err = rules
            .check_window(PurdueLevel::L2, &late, NOW)
            .unwrap_err()
            .to_string();
        assert!(err.contains("06:00-18:00"), "{err}");
        let bad: ApprovalConfig =
            toml::from_str("[[levels]]\nlevels=[\"1\"]\napprovals=0\nmax_duration=\"1h\"").unwrap();
        assert!(
            ApprovalRules::try_from(&bad)
                .unwrap_err()
                .to_string()
                .contains("approval.levels[0].approvals")
        );
    }
}
