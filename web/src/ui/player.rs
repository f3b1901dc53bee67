//! Replay as the browser plays it: the recording's output run through the recorder's
//! terminal emulator, cut into screen frames (the whole screen first, then only the rows
//! that changed, at most one frame per [`STEP`] of recording time), a window of time at a
//! time so that a long recording costs the page only what it shows. Markers and the event
//! table come from the same recording.

use serde::Serialize;

use otgate_recorder::Recording;
use otgate_recorder::cast::{Code, parse_size};
use otgate_recorder::model::{SessionEvent, Verdict};
use otgate_recorder::screen::{Line, ScreenFrame, Terminal};

/// Shortest time between two frames sent (recording time).
pub(crate) const STEP: f64 = 0.04;
/// Most frames in one answer; the player asks again from where it stopped.
const MAX_FRAMES: usize = 3000;

/// One frame for the painter.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Paint {
    /// The whole screen.
    Full {
        /// Seconds from the start.
        t: f64,
        /// The screen.
        full: ScreenFrame,
    },
    /// Rows that changed, and the cursor.
    Rows {
        /// Seconds from the start.
        t: f64,
        /// `[row, line]` pairs.
        rows: Vec<(u16, Line)>,
        /// `[row, column, visible]`.
        cursor: (u16, u16, bool),
    },
}

impl Paint {
    /// What changed from `before` to `now`, if anything.
    pub(crate) fn between(t: f64, before: &ScreenFrame, now: &ScreenFrame) -> Option<Self> {
        match now.changes(before) {
            None => Some(Self::Full {
                t,
                full: now.clone(),
            }),
            Some(rows) if rows.is_empty() && now.cursor == before.cursor => None,
            Some(rows) => Some(Self::Rows {
                t,
                rows,
                cursor: now.cursor,
            }),
        }
    }
}

/// Frames of `recording` from `from` to `to` seconds.
#[derive(Debug, Serialize)]
pub(crate) struct Frames {
    /// Where these frames start.
    pub from: f64,
    /// Up to where they go: ask again from here.
    pub until: f64,
    /// Whether the recording ends here.
    pub last: bool,
    /// The frames, the first one whole.
    pub frames: Vec<Paint>,
}

/// Applies one recorded terminal frame; true when it can change the screen.
pub(crate) fn apply(term: &mut Terminal, code: Code, data: &str) -> bool {
    match code {
        Code::Output => {
            term.feed(data);
            true
        }
        Code::Resize => match parse_size(data) {
            Some((cols, rows)) => {
                term.resize(cols, rows);
                true
            }
            None => false,
        },
        Code::Input | Code::Marker => false,
    }
}

/// A terminal the size the recording started with.
pub(crate) fn terminal(recording: &Recording) -> Terminal {
    let (cols, rows) = recording
        .header
        .as_ref()
        .map_or((80, 24), |h| (h.width, h.height));
    Terminal::new(cols, rows)
}

/// The screen at `at` seconds.
pub(crate) fn screen_at(recording: &Recording, at: f64) -> ScreenFrame {
    let mut term = terminal(recording);
    for frame in recording.frames.iter().take_while(|f| f.t <= at) {
        apply(&mut term, frame.code, &frame.data);
    }
    term.frame()
}

/// The frames between `from` and `to`.
pub(crate) fn frames(recording: &Recording, from: f64, to: f64) -> Frames {
    let mut term = terminal(recording);
    let mut items = recording.frames.iter().peekable();
    while let Some(frame) = items.next_if(|f| f.t <= from) {
        apply(&mut term, frame.code, &frame.data);
    }
    let mut shown = term.frame();
    let mut out = vec![Paint::Full {
        t: from,
        full: shown.clone(),
    }];
    let mut last_t = from;
    let mut until = to;
    let mut dirty = false;
    while let Some(frame) = items.next_if(|f| f.t <= to) {
        dirty |= apply(&mut term, frame.code, &frame.data);
        let quiet = items.peek().is_none_or(|next| next.t - frame.t >= STEP);
        if dirty && (frame.t - last_t >= STEP || quiet) {
            let now = term.frame();
            if let Some(paint) = Paint::between(frame.t, &shown, &now) {
                out.push(paint);
            }
            shown = now;
            last_t = frame.t;
            dirty = false;
            if out.len() >= MAX_FRAMES {
                until = frame.t;
                break;
            }
        }
    }
    let end = duration(recording);
    Frames {
        from,
        until,
        last: until >= end,
        frames: out,
    }
}

/// How long the recording runs.
pub(crate) fn duration(recording: &Recording) -> f64 {
    let frames = recording.frames.last().map_or(0.0, |f| f.t);
    let events = recording.events.last().map_or(0.0, |e| e.t);
    frames.max(events)
}

/// What a marker on the timeline stands for.
pub(crate) fn marker(event: &SessionEvent) -> Option<&'static str> {
    let denied = |v: &Verdict| *v == Verdict::Denied;
    Some(match event {
        SessionEvent::Command { verdict, .. } if denied(verdict) => "denied",
        SessionEvent::Command { .. } => "command",
        SessionEvent::Modbus { verdict, .. }
        | SessionEvent::Forward { verdict, .. }
        | SessionEvent::FileTransfer { verdict, .. }
            if denied(verdict) =>
        {
            "denied"
        }
        SessionEvent::Alert { .. } => "alert",
        SessionEvent::Frozen { .. } => "freeze",
        SessionEvent::Resumed { .. } => "resume",
        SessionEvent::RecordingEnded { .. } | SessionEvent::RecordingFailed { .. } => "end",
        _ => return None,
    })
}
