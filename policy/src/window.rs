//! Time: grant windows, daily hours and weekly maintenance windows.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset, Weekday};
use utoipa::ToSchema;

use crate::error::{PolicyError, Result};

/// The interval during which a grant is valid: `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Window {
    /// First instant of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    /// First instant after validity.
    #[serde(with = "time::serde::rfc3339")]
    pub end: OffsetDateTime,
}

impl Window {
    /// A window from `start` lasting `duration`; `None` if it would overflow.
    pub fn starting(start: OffsetDateTime, duration: Duration) -> Option<Self> {
        let end = start.checked_add(time::Duration::try_from(duration).ok()?)?;
        Some(Self { start, end })
    }

    /// Length of the window (zero if inverted).
    pub fn duration(&self) -> Duration {
        Duration::try_from(self.end - self.start).unwrap_or(Duration::ZERO)
    }

    /// Whether `now` lies inside the window.
    pub fn contains(&self, now: OffsetDateTime) -> bool {
        self.start <= now && now < self.end
    }

    /// Whether the window is over at `now`.
    pub fn has_ended(&self, now: OffsetDateTime) -> bool {
        now >= self.end
    }
}

/// Minutes since midnight, 0..=1440.
type Minute = u16;

/// A daily span of hours such as `08:00-16:00`; a start after the end wraps past midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DailyHours {
    start: Minute,
    end: Minute,
}

impl DailyHours {
    /// All day.
    pub const ALWAYS: DailyHours = DailyHours {
        start: 0,
        end: 1440,
    };

    /// Whether the span covers the whole day.
    pub fn is_always(&self) -> bool {
        self.start == 0 && self.end == 1440
    }

    /// Whether the whole of `window` lies in one contiguous span of these hours, in local time at
    /// `offset`.
    pub fn contains_window(&self, window: &Window, offset: UtcOffset) -> bool {
        if self.is_always() {
            return true;
        }
        let start = window.start.to_offset(offset);
        let minute = |t: OffsetDateTime| Minute::from(t.hour()) * 60 + Minute::from(t.minute());
        let begin = minute(start);
        // Length of the span, and how far into it the window starts.
        let span = if self.start < self.end {
            self.end - self.start
        } else {
            1440 - self.start + self.end
        };
        let into = if self.start < self.end {
            if begin < self.start || begin >= self.end {
                return false;
            }
            begin - self.start
        } else if begin >= self.start {
            begin - self.start
        } else if begin < self.end {
            1440 - self.start + begin
        } else {
            return false;
        };
        let seconds_left = i64::from(span - into) * 60 - i64::from(start.second());
        (window.end - window.start).whole_seconds() <= seconds_left
    }
}

fn parse_clock(text: &str) -> Option<Minute> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (Minute, Minute) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

impl std::str::FromStr for DailyHours {
    type Err = PolicyError;
    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            PolicyError::invalid(
                "hours",
                format!(
                    "`{}` is not a span of hours: expected HH:MM-HH:MM such as 06:00-20:00",
                    text.chars().take(32).collect::<String>()
                ),
            )
        };
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let (start, end) = (
            parse_clock(a).ok_or_else(bad)?,
            parse_clock(b).ok_or_else(bad)?,
        );
        if start == end || start == 1440 {
            return Err(bad());
        }
        Ok(Self { start, end })
    }
}

impl TryFrom<String> for DailyHours {
    type Error = PolicyError;
    fn try_from(value: String) -> Result<Self> {
        value.parse()
    }
}

impl From<DailyHours> for String {
    fn from(value: DailyHours) -> String {
        value.to_string()
    }
}

impl fmt::Display for DailyHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// A recurring weekly maintenance window, e.g. `days = "mon-fri"`, `hours = "08:00-16:00"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// Days of the week: `mon-fri`, `sat,sun`, `daily`.
    pub days: String,
    /// Hours of those days.
    pub hours: DailyHours,
}

const DAY_NAMES: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

fn day_index(name: &str) -> Option<usize> {
    let name = name.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|(n, _)| name.starts_with(n) && name.len() <= 9)
}

impl MaintenanceWindow {
    /// The days as a set, Monday first.
    pub fn weekdays(&self) -> Result<[bool; 7]> {
        let mut set = [false; 7];
        let bad = || {
            PolicyError::invalid(
                "days",
                format!(
                    "`{}` is not a set of days: use e.g. mon-fri, sat,sun or daily",
                    self.days.chars().take(32).collect::<String>()
                ),
            )
        };
        if self.days.trim().eq_ignore_ascii_case("daily") {
            return Ok([true; 7]);
        }
        for part in self.days.split(',') {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let (a, b) = (day_index(a).ok_or_else(bad)?, day_index(b).ok_or_else(bad)?);
            let mut i = a;
            loop {
                if let Some(slot) = set.get_mut(i) {
                    *slot = true;
                }
                if i == b {
                    break;
                }
                i = (i + 1) % 7;
            }
        }
        Ok(set)
    }

    /// Whether `at` (in its own offset) falls in the window; a span past midnight belongs to
    /// the day it starts on.
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        let Ok(days) = self.weekdays() else {
            return false;
        };
        let minute = Minute::from(at.hour()) * 60 + Minute::from(at.minute());
        let day = usize::from(at.weekday().number_days_from_monday());
        let (start, end) = (self.hours.start, self.hours.end);
        if start < end {
            days.get(day).copied().unwrap_or(false) && (start..end).contains(&minute)
        } else {
            let yesterday = (day + 6) % 7;
            (days.get(day).copied().unwrap_or(false) && minute >= start)
                || (days.get(yesterday).copied().unwrap_or(false) && minute < end)
        }
    }

    /// Checks the days field; `key` names the window in its document.
    pub fn validate(&self, key: &str) -> Result<()> {
        self.weekdays()
            .map(|_| ())
            .map_err(|e| PolicyError::invalid(format!("{key}.days"), e.to_string()))
    }
}

/// Parses a duration such as `90s`, `15m`, `4h`, `1h 30m`, `2d`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        PolicyError::invalid(
            "duration",
            format!(
                "`{}` is not a duration ({e}): use e.g. 30m, 2h or 1h30m",
                text.chars().take(32).collect::<String>()
            ),
        )
    })
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(duration: Duration) -> String {
    humantime::format_duration(Duration::from_secs(duration.as_secs())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn window(start: OffsetDateTime, minutes: u64) -> Window {
        Window::starting(start, Duration::from_secs(minutes * 60)).unwrap()
    }

    #[test]
    fn daily_hours_contain_windows() {
        let day: DailyHours = "06:00-20:00".parse().unwrap();
        let utc = UtcOffset::UTC;
        assert!(day.contains_window(&window(datetime!(2026-12-04 06:00 UTC), 60), utc));
        assert!(day.contains_window(&window(datetime!(2026-12-04 16:00 UTC), 240), utc));
        assert!(!day.contains_window(&window(datetime!(2026-12-04 16:00 UTC), 241), utc));
        assert!(!day.contains_window(&window(datetime!(2026-12-04 05:59 UTC), 10), utc));
        let plus_two = UtcOffset::from_hms(2, 0, 0).unwrap();
        assert!(day.contains_window(&window(datetime!(2026-12-04 04:00 UTC), 60), plus_two));
    }

    #[test]
    fn maintenance_windows_contain_moments() {
        let weekdays = MaintenanceWindow {
            days: "mon-fri".into(),
            hours: "08:00-16:00".parse().unwrap(),
        };
        // 2026-12-04 is a Friday.
        assert!(weekdays.contains(datetime!(2026-12-04 08:00 UTC)));
        assert!(!weekdays.contains(datetime!(2026-12-04 16:00 UTC)));
        assert!(!weekdays.contains(datetime!(2026-12-05 10:00 UTC)));
        let friday_night = MaintenanceWindow {
            days: "fri".into(),
            hours: "22:00-02:00".parse().unwrap(),
        };
        assert!(friday_night.contains(datetime!(2026-12-04 23:30 UTC)));
        assert!(friday_night.contains(datetime!(2026-12-05 01:59 UTC)));
        assert!(!friday_night.contains(datetime!(2026-12-05 23:30 UTC)));
    }

    #[test]
    fn night_hours_wrap_midnight() {
        let night: DailyHours = "22:00-06:00".parse().unwrap();
        let utc = UtcOffset::UTC;
        assert!(night.contains_window(&window(datetime!(2026-12-04 23:00 UTC), 420), utc));
        assert!(!night.contains_window(&window(datetime!(2026-12-04 23:00 UTC), 421), utc));
        assert!(night.contains_window(&window(datetime!(2026-12-05 01:00 UTC), 60), utc));
        assert!(!night.contains_window(&window(datetime!(2026-12-05 12:00 UTC), 60), utc));
    }

    #[test]
    fn hours_refuse_nonsense() {
        for bad in [
            "",
            "8-16",
            "25:00-26:00",
            "10:00-10:00",
            "10:60-11:00",
            "24:00-01:00",
        ] {
            assert!(bad.parse::<DailyHours>().is_err(), "{bad}");
        }
        assert!("00:00-24:00".parse::<DailyHours>().unwrap().is_always());
    }

    #[test]
    fn weekdays_parse_ranges() {
        let w = |days: &str| MaintenanceWindow {
            days: days.into(),
            hours: DailyHours::ALWAYS,
        };
        assert_eq!(
            w("mon-fri").weekdays().unwrap(),
            [true, true, true, true, true, false, false]
        );
        assert_eq!(
            w("sat,sun").weekdays().unwrap(),
            [false, false, false, false, false, true, true]
        );
        assert_eq!(
            w("fri-mon").weekdays().unwrap(),
            [true, false, false, false, true, true, true]
        );
        assert!(w("funday").weekdays().is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("soon").is_err());
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h 30m");
    }
}

crate::schema::string_schema!(
    DailyHours,
    "Daily hours HH:MM-HH:MM, wrapping past midnight when start > end",
    "06:00-20:00"
);
