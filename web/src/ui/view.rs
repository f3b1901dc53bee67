//! How things look on every page: Purdue levels and risk in colour and words, times.

use otgate_policy::PurdueLevel;
use time::OffsetDateTime;

/// The colour class of a Purdue level: control (0-1), supervisory (2), site (3 and up).
pub(super) fn level_class(level: PurdueLevel) -> &'static str {
    match level {
        PurdueLevel::L0 | PurdueLevel::L1 => "control",
        PurdueLevel::L2 => "supervisory",
        _ => "site",
    }
}

/// A level in words, for people who do not read colour.
pub(super) fn level_words(level: PurdueLevel) -> &'static str {
    match level {
        PurdueLevel::L0 => "process",
        PurdueLevel::L1 => "basic control",
        PurdueLevel::L2 => "supervisory",
        PurdueLevel::L3 => "site operations",
        PurdueLevel::L3_5 => "industrial DMZ",
        _ => "enterprise",
    }
}

/// Risk in words (also the colour class).
pub(super) fn band(score: u8) -> &'static str {
    match score {
        70.. => "high",
        40..=69 => "medium",
        _ => "low",
    }
}

/// `YYYY-MM-DD HH:MM` (UTC).
pub(super) fn minute(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// `YYYY-MM-DD HH:MM:SS` (UTC).
pub(super) fn second(t: OffsetDateTime) -> String {
    format!("{}:{:02}", minute(t), t.second())
}

/// `MM:SS.s` from seconds into a session.
pub(super) fn clock(seconds: f64) -> String {
    otgate_recorder::replay::clock(seconds)
}
