//! Plays a recording in a terminal with its real timing (idle gaps capped), with the
//! session's events shown between frames, and exports it as plain asciicast v2.

use std::io::Write;
use std::time::Duration;

use crate::cast::{Code, Frame, Header};
use crate::model::SessionEvent;
use crate::read::{Recording, Status};
use crate::writer::EventLine;

/// How to play.
#[derive(Clone, Debug, PartialEq)]
pub struct PlayOptions {
    /// Speed factor (2.0 plays twice as fast).
    pub speed: f64,
    /// Start at this many seconds: earlier output is drawn at once, without waiting.
    pub from: f64,
    /// Longest pause between two frames, in recording seconds.
    pub idle_cap: f64,
    /// Show the session's events between frames.
    pub events: bool,
}

impl Default for PlayOptions {
    fn default() -> Self {
        Self {
            speed: 1.0,
            from: 0.0,
            idle_cap: 2.0,
            events: true,
        }
    }
}

enum Item<'a> {
    Frame(&'a Frame),
    Event(&'a EventLine),
}

impl Item<'_> {
    fn t(&self) -> f64 {
        match self {
            Self::Frame(frame) => frame.t,
            Self::Event(line) => line.t,
        }
    }
}

fn shown(event: &SessionEvent) -> bool {
    !matches!(
        event,
        SessionEvent::RecordingStarted { .. }
            | SessionEvent::Resize { .. }
            | SessionEvent::Capture { .. }
    )
}

/// `mm:ss.s`.
pub fn clock(t: f64) -> String {
    let minutes = (t / 60.0).floor();
    format!("{:02}:{:04.1}", minutes as u64, t - minutes * 60.0)
}

/// Plays `recording` into `out`; `sleep` waits (the CLI passes `std::thread::sleep`).
pub fn play(
    recording: &Recording,
    out: &mut dyn Write,
    options: &PlayOptions,
    sleep: &mut dyn FnMut(Duration),
) -> std::io::Result<()> {
    let speed = if options.speed.is_finite() && options.speed > 0.0 {
        options.speed
    } else {
        1.0
    };
    let mut items: Vec<Item<'_>> = recording.frames.iter().map(Item::Frame).collect();
    if options.events {
        items.extend(
            recording
                .events
                .iter()
                .filter(|line| shown(&line.event))
                .map(Item::Event),
        );
    }
    items.sort_by(|a, b| a.t().total_cmp(&b.t()));
    let mut previous = options.from;
    for item in items {
        let t = item.t();
        let catching_up = t < options.from;
        if !catching_up {
            let gap = (t - previous).clamp(0.0, options.idle_cap.max(0.0)) / speed;
            if gap > 0.0 {
                out.flush()?;
                sleep(Duration::from_secs_f64(gap));
            }
            previous = t;
        }
        match item {
            Item::Frame(frame) if frame.code == Code::Output => {
                out.write_all(frame.data.as_bytes())?;
            }
            Item::Frame(_) => {}
            Item::Event(line) if !catching_up => {
                write!(
                    out,
                    "\r\n\x1b[7m[otgate {}] {}\x1b[0m\r\n",
                    clock(line.t),
                    line.event.describe()
                )?;
            }
            Item::Event(_) => {}
        }
    }
    if recording.verification.status != Status::Ok {
        let reason = recording
            .verification
            .problems
            .first()
            .map(ToString::to_string)
            .or_else(|| recording.verification.notes.first().cloned())
            .unwrap_or_default();
        write!(
            out,
            "\r\n\x1b[7m[otgate] the recording stops here ({:.1} s intact): {reason}\x1b[0m\r\n",
            recording.verification.intact_until
        )?;
    }
    out.flush()
}

/// The intact terminal stream as one plain asciicast v2 file.
pub fn export_cast(recording: &Recording) -> String {
    let header = recording.header.clone().unwrap_or_else(|| Header {
        version: 2,
        width: recording.info.as_ref().map_or(80, |i| i.width),
        height: recording.info.as_ref().map_or(24, |i| i.height),
        timestamp: recording
            .info
            .as_ref()
            .map(|i| i.started_at.unix_timestamp()),
        title: recording.info.as_ref().map(|i| i.title()),
        env: Default::default(),
    });
    let mut out = serde_json::to_string(&header).unwrap_or_default();
    out.push('\n');
    for frame in &recording.frames {
        out.push_str(&frame.to_line());
        out.push('\n');
    }
    out
}

/// The intact event log as JSON lines (without the chain hashes).
pub fn export_events(recording: &Recording) -> String {
    recording
        .events
        .iter()
        .filter_map(|line| serde_json::to_string(line).ok())
        .map(|line| line + "\n")
        .collect()
}
