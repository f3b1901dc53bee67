//! Command lines in a full shell: the gateway keeps its own terminal emulator fed with the
//! asset's output, so it sees each line as the asset's shell displays it (after line editing,
//! history recall and completion). When the vendor presses Enter, the gateway holds the key
//! until the echo has settled, reads the line (minus the prompt captured when the vendor began
//! typing), and either lets the Enter through (a command event) or sends a line-kill instead
//! and says why (a denial).
//!
//! Limits (documented in the README): full-screen programs (the alternate screen) are not
//! checked; a line whose echo is turned off (passwords) reads as empty; a shell whose prompt
//! changes while typing is read from the first keystroke's position; multi-line commands are
//! checked line by line.

use std::time::Duration;

use tokio::time::Instant;

/// How long the echo must be quiet before a held Enter is judged.
pub(crate) const SETTLE: Duration = Duration::from_millis(60);
/// How long the output must be quiet before the first prompt is taken as shown.
pub(crate) const FIRST_PROMPT: Duration = Duration::from_millis(400);
/// The longest input is held.
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(3);

/// Ctrl-U: kill the line being edited.
pub(crate) const LINE_KILL: u8 = 0x15;

/// A terminal dimension; 0 (a client without a terminal) means the usual default.
fn size(value: u32, default: u16) -> std::num::NonZeroU16 {
    let value = match u16::try_from(value) {
        Ok(0) | Err(_) => default,
        Ok(v) => v.min(1000),
    };
    std::num::NonZeroU16::new(value).unwrap_or(std::num::NonZeroU16::MIN)
}

/// What the guard asks the relay to do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send these bytes to the asset now.
    Forward(Vec<u8>),
    /// Hold: wait for [`ShellGuard::deadline`].
    Hold,
}

/// Why input is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// An Enter waits for its line's echo to settle, then for judgement.
    Judge,
    /// After an Enter, the next line waits for the shell's new prompt.
    Settle,
    /// At the start, input waits for the login banner and the first prompt.
    FirstPrompt,
}

impl Wait {
    fn quiet(self) -> Duration {
        match self {
            Self::FirstPrompt => FIRST_PROMPT,
            Self::Judge | Self::Settle => SETTLE,
        }
    }
}

/// What a deadline means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    /// Judge [`ShellGuard::line`], then call [`ShellGuard::judged`].
    Judge,
    /// The shell settled: send these bytes (may be empty).
    Settled(Vec<u8>),
}

/// The guard of one shell session.
pub(crate) struct ShellGuard {
    parser: vt100::Parser,
    /// The prompt: the cursor row up to the cursor when the vendor began the line.
    prompt: Option<String>,
    /// Input not yet forwarded.
    queue: Vec<u8>,
    wait: Option<(Wait, Instant, Instant)>,
}

impl ShellGuard {
    /// A guard whose first input waits for the shell's first prompt.
    pub fn new(cols: u32, rows: u32) -> Self {
        let now = Instant::now();
        Self {
            parser: vt100::Parser::new(size(rows, 24), size(cols, 80), 0),
            prompt: None,
            queue: Vec::new(),
            wait: Some((Wait::FirstPrompt, now + FIRST_PROMPT, now)),
        }
    }

    /// Whether nothing is held.
    pub fn idle(&self) -> bool {
        self.wait.is_none() && self.queue.is_empty()
    }

    pub fn resize(&mut self, cols: u32, rows: u32) {
        self.parser.set_size(size(rows, 24), size(cols, 80));
    }

    /// When held input must be looked at again.
    pub fn deadline(&self) -> Option<Instant> {
        self.wait.map(|(_, deadline, _)| deadline)
    }

    fn hold(&mut self, wait: Wait) {
        let now = Instant::now();
        self.wait = Some((wait, now + SETTLE, now));
    }

    /// The asset's output: the screen moves; held input waits for it to settle.
    pub fn output(&mut self, data: &[u8]) {
        self.parser.process(data);
        if let Some((wait, _, since)) = self.wait {
            let deadline = (Instant::now() + wait.quiet()).min(since + MAX_HOLD);
            self.wait = Some((wait, deadline, since));
        }
    }

    /// The logical line under the cursor: its row joined with the rows that wrap into it.
    fn cursor_row(&self) -> String {
        let screen = self.parser.screen();
        let (row, _) = screen.cursor_position();
        let cols = screen.size().1.get();
        let rows: Vec<String> = screen.rows(0, cols).collect();
        let mut first = row;
        while first > 0 && screen.row_wrapped(first - 1) {
            first -= 1;
        }
        (first..=row)
            .filter_map(|r| rows.get(usize::from(r)).cloned())
            .collect()
    }

    /// Whether the text before the cursor ends like a shell prompt.
    fn at_prompt(&self) -> bool {
        let before = self.before_cursor();
        ["$ ", "# ", "% ", "> "]
            .iter()
            .any(|end| before.ends_with(end))
            || ["$", "#", "%", ">"].iter().any(|end| before.ends_with(end))
    }

    fn before_cursor(&self) -> String {
        let screen = self.parser.screen();
        let (row, col) = screen.cursor_position();
        screen.contents_between(row, 0, row, col)
    }

    /// The vendor's input: what may go to the asset now.
    pub fn input(&mut self, data: &[u8]) -> Step {
        self.queue.extend_from_slice(data);
        if self.wait.is_some() {
            return Step::Hold;
        }
        self.drain()
    }

    /// Forwards queued input up to the next Enter, which it holds.
    fn drain(&mut self) -> Step {
        if self.parser.screen().alternate_screen() {
            self.prompt = None;
            return Step::Forward(std::mem::take(&mut self.queue));
        }
        let enter = self.queue.iter().position(|b| *b == b'\r' || *b == b'\n');
        let forward: Vec<u8> = match enter {
            Some(at) => self.queue.drain(..at).collect(),
            None => std::mem::take(&mut self.queue),
        };
        if self.prompt.is_none() && (!forward.is_empty() || enter.is_some()) {
            self.prompt = Some(self.before_cursor());
        }
        if enter.is_some() {
            self.hold(Wait::Judge);
        }
        if forward.is_empty() && enter.is_some() {
            Step::Hold
        } else {
            Step::Forward(forward)
        }
    }

    /// The deadline passed.
    pub fn expire(&mut self) -> Expired {
        match self.wait.take() {
            Some((Wait::Judge, ..)) => {
                // Still held until judged.
                self.wait = Some((Wait::Judge, Instant::now() + MAX_HOLD, Instant::now()));
                Expired::Judge
            }
            // Quiet, but no prompt yet: keep waiting, up to the longest hold.
            Some((wait @ (Wait::Settle | Wait::FirstPrompt), _, since))
                if !self.at_prompt()
                    && !self.parser.screen().alternate_screen()
                    && since.elapsed() < MAX_HOLD =>
            {
                self.wait = Some((wait, Instant::now() + SETTLE, since));
                Expired::Settled(Vec::new())
            }
            Some((Wait::Settle | Wait::FirstPrompt, ..)) | None => match self.drain() {
                Step::Forward(bytes) => Expired::Settled(bytes),
                Step::Hold => Expired::Settled(Vec::new()),
            },
        }
    }

    /// The held line, as the shell shows it, without the prompt: the part after the prompt
    /// seen when the vendor began typing, or (when typed ahead of the prompt) after the first
    /// prompt-like `$ `, `# `, `% ` or `> ` of the row.
    pub fn line(&self) -> String {
        let row = self.cursor_row();
        let row = row.trim_end();
        let known = self
            .prompt
            .as_deref()
            .map(str::trim_end)
            .filter(|p| !p.is_empty())
            .and_then(|p| row.strip_prefix(p));
        let line = known.unwrap_or_else(|| {
            ["$ ", "# ", "% ", "> "]
                .iter()
                .filter_map(|end| row.find(end).map(|at| at + end.len()))
                .min()
                .and_then(|at| row.get(at..))
                .unwrap_or(row)
        });
        line.trim().to_owned()
    }

    /// The judgement of the held line: the bytes to send (the Enter, or a line-kill and an
    /// empty Enter for a fresh prompt). The next line waits for the shell to settle.
    pub fn judged(&mut self, allowed: bool) -> Vec<u8> {
        let enter = if self.queue.is_empty() {
            b'\r'
        } else {
            self.queue.remove(0)
        };
        self.prompt = None;
        self.hold(Wait::Settle);
        if allowed {
            vec![enter]
        } else {
            vec![LINE_KILL, b'\r']
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_line_is_read_as_the_shell_shows_it() {
        let mut guard = ShellGuard::new(80, 24);
        // Input before the first prompt waits for it.
        assert_eq!(guard.input(b"systemctl restrat"), Step::Hold);
        guard.output(b"root@ews-1:~# ");
        assert_eq!(
            guard.expire(),
            Expired::Settled(b"systemctl restrat".to_vec())
        );
        assert!(guard.deadline().is_none());
        guard.queue.clear();
        guard.prompt = None;
        guard.output(b"\r\x1b[Kroot@ews-1:~# ");
        assert_eq!(
            guard.input(b"systemctl restrat"),
            Step::Forward(b"systemctl restrat".to_vec())
        );
        // The shell echoes, then the vendor fixes the typo with backspaces.
        guard.output(b"systemctl restrat");
        assert_eq!(
            guard.input(b"\x08\x08\x08art x\rls\r"),
            Step::Forward(b"\x08\x08\x08art x".to_vec())
        );
        guard.output(b"\x08\x08\x08\x1b[Kart x");
        assert!(guard.deadline().is_some());
        assert_eq!(guard.expire(), Expired::Judge);
        assert_eq!(guard.line(), "systemctl restart x");
        assert_eq!(guard.judged(false), vec![LINE_KILL, b'\r']);
        // The next line waits for the new prompt, then is read after it.
        guard.output(b"\r\nroot@ews-1:~# ");
        assert_eq!(guard.expire(), Expired::Settled(b"ls".to_vec()));
        guard.output(b"ls");
        assert_eq!(guard.expire(), Expired::Judge);
        assert_eq!(guard.line(), "ls");
        assert_eq!(guard.judged(true), vec![b'\r']);
        // Typed ahead of a slow prompt: the row's prompt is recognised anyway.
        guard.prompt = Some("earlier output".into());
        guard.output(b"\r\nroot@ews-1:~# shred /etc/passwd");
        assert_eq!(guard.line(), "shred /etc/passwd");
    }

    #[tokio::test]
    async fn full_screen_programs_are_not_judged() {
        let mut guard = ShellGuard::new(80, 24);
        guard.output(b"\x1b[?1049h");
        assert_eq!(guard.expire(), Expired::Settled(Vec::new()));
        assert_eq!(guard.input(b":wq\r"), Step::Forward(b":wq\r".to_vec()));
        assert!(guard.deadline().is_none());
    }
}
