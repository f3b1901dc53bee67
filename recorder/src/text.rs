//! The searchable text of a recording: commands from the event log, and terminal output as
//! a terminal shows it (rendered through `vt100`, so escape sequences, line editing and
//! full-screen redraws do not pollute the index), each with the moment it appeared.

use std::collections::HashSet;
use std::num::NonZeroU16;

use serde::Serialize;

use crate::cast::{Code, parse_size};
use crate::model::SessionEvent;
use crate::read::Recording;

/// What a piece of text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextKind {
    /// A command line from the event log.
    Command,
    /// Lines of terminal output.
    Output,
    /// A notable event in words (denials, alerts, Modbus, transfers).
    Event,
}

impl TextKind {
    /// The name stored in the index.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Output => "output",
            Self::Event => "event",
        }
    }
}

/// One piece of searchable text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TextFragment {
    /// Seconds since the session started.
    pub offset: f64,
    /// What it is.
    pub kind: TextKind,
    /// The text.
    pub text: String,
}

/// Renders terminal output into lines as they become final.
struct Screen {
    parser: vt100::Parser,
    seen: HashSet<String>,
    since: Option<f64>,
    last_snapshot: f64,
    newlines: usize,
    out: Vec<TextFragment>,
    budget: usize,
}

fn size(value: u16, default: u16) -> NonZeroU16 {
    NonZeroU16::new(value.clamp(1, 1000))
        .or(NonZeroU16::new(default))
        .unwrap_or(NonZeroU16::MIN)
}

impl Screen {
    fn rows(&self) -> usize {
        usize::from(self.parser.screen().size().0.get())
    }

    /// Indexes rows not seen in the previous snapshot; the cursor's row waits until it is
    /// final (the cursor left it) unless `all`.
    fn snapshot(&mut self, t: f64, all: bool) {
        let screen = self.parser.screen();
        let (cols, cursor_row) = (screen.size().1.get(), screen.cursor_position().0);
        let rows: Vec<String> = screen
            .rows(0, cols)
            .enumerate()
            .filter(|(index, _)| all || *index != usize::from(cursor_row))
            .map(|(_, row)| row.trim_end().to_owned())
            .filter(|row| !row.trim().is_empty())
            .collect();
        let fresh: Vec<&String> = rows
            .iter()
            .filter(|row| !self.seen.contains(*row))
            .collect();
        if !fresh.is_empty() && self.budget > 0 {
            let text = fresh
                .iter()
                .map(|row| row.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            self.budget = self.budget.saturating_sub(text.len());
            self.out.push(TextFragment {
                offset: self.since.unwrap_or(t),
                kind: TextKind::Output,
                text,
            });
        }
        self.seen = rows.into_iter().collect();
        self.since = None;
        self.last_snapshot = t;
        self.newlines = 0;
    }

    fn feed(&mut self, t: f64, data: &str) {
        if t - self.last_snapshot >= 1.0 && self.since.is_some() {
            self.snapshot(t, false);
        }
        self.since.get_or_insert(t);
        // Take a snapshot before half a screen scrolls by, so no line scrolls away unseen.
        let limit = (self.rows() / 2).max(1);
        let mut rest = data;
        while !rest.is_empty() {
            let room = limit.saturating_sub(self.newlines).max(1);
            let cut = rest
                .match_indices('\n')
                .nth(room - 1)
                .map_or(rest.len(), |(at, _)| at + 1);
            let (chunk, tail) = rest.split_at(cut);
            self.parser.process(chunk.as_bytes());
            self.newlines += chunk.matches('\n').count();
            if self.newlines >= limit {
                self.snapshot(t, false);
                self.since = Some(t);
            }
            rest = tail;
        }
    }
}

/// How much output, in multiples of the text budget, is rendered at most.
const RENDER_FACTOR: usize = 16;

/// The searchable text of the intact part of `recording`, at most about `budget` bytes of
/// output text, read from at most 16 times `budget` bytes of output (commands and events are
/// always all there).
pub fn fragments(recording: &Recording, budget: usize) -> Vec<TextFragment> {
    let (width, height) = recording
        .header
        .as_ref()
        .map_or((80, 24), |h| (h.width, h.height));
    let mut screen = Screen {
        parser: vt100::Parser::new(size(height, 24), size(width, 80), 0),
        seen: HashSet::new(),
        since: None,
        last_snapshot: 0.0,
        newlines: 0,
        out: Vec::new(),
        budget,
    };
    let mut end = 0.0f64;
    // Output that repeats itself adds no text but still costs rendering: stop after
    // RENDER_FACTOR times the budget.
    let mut render = budget.saturating_mul(RENDER_FACTOR);
    for frame in &recording.frames {
        end = end.max(frame.t);
        match frame.code {
            Code::Output if screen.budget == 0 || render == 0 => {}
            Code::Output => {
                render = render.saturating_sub(frame.data.len());
                screen.feed(frame.t, &frame.data);
            }
            Code::Resize => {
                if let Some((cols, rows)) = parse_size(&frame.data) {
                    screen.snapshot(frame.t, true);
                    screen.parser.set_size(size(rows, 24), size(cols, 80));
                }
            }
            Code::Input | Code::Marker => {}
        }
    }
    screen.snapshot(end, true);
    let mut out = screen.out;
    for line in &recording.events {
        let (kind, text) = match &line.event {
            SessionEvent::Command { command, .. } => (TextKind::Command, command.clone()),
            event @ (SessionEvent::Modbus { .. }
            | SessionEvent::FileTransfer { .. }
            | SessionEvent::Forward { .. }
            | SessionEvent::Alert { .. }
            | SessionEvent::Frozen { .. }
            | SessionEvent::RecordingFailed { .. }
            | SessionEvent::RecordingEnded { .. }) => (TextKind::Event, event.describe()),
            _ => continue,
        };
        out.push(TextFragment {
            offset: line.t,
            kind,
            text,
        });
    }
    out.sort_by(|a, b| a.offset.total_cmp(&b.offset));
    out
}
