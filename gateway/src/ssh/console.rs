//! The gateway's own console, for grants that allow listed commands but no shell: a prompt
//! with the asset's name, line editing (printable input, Backspace, Ctrl-U, Ctrl-C, Ctrl-D,
//! history with the arrow keys, Tab completion of the allowed commands); each entered line is
//! checked against the scope and, if allowed, run on the asset as an exec with its output
//! streamed back. Nothing the vendor types reaches the asset except allowed commands.

/// What a keystroke sequence asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Write this to the vendor's terminal.
    Echo(String),
    /// Run this line.
    Submit(String),
    /// Interrupt (Ctrl-C).
    Interrupt,
    /// End the console (Ctrl-D on an empty line).
    Quit,
}

/// The line editor.
#[derive(Debug, Default)]
pub(crate) struct Editor {
    line: String,
    history: Vec<String>,
    /// Position while browsing history (history.len() = the new line).
    browsing: usize,
    /// An escape sequence being read.
    escape: Vec<u8>,
    /// Literal prefixes of the allowed commands, for Tab.
    commands: Vec<String>,
}

/// The literal part of a pattern (before any wildcard), for completion.
pub(crate) fn literal_prefix(pattern: &str) -> String {
    pattern
        .split_whitespace()
        .take_while(|word| !word.contains(['*', '?', '[']))
        .collect::<Vec<_>>()
        .join(" ")
}

const MAX_LINE: usize = 4096;

impl Editor {
    pub fn new(patterns: &[String]) -> Self {
        let mut commands: Vec<String> = patterns
            .iter()
            .map(|p| literal_prefix(p))
            .filter(|p| !p.is_empty())
            .collect();
        commands.sort();
        commands.dedup();
        Self {
            commands,
            ..Self::default()
        }
    }

    fn replace_line(&mut self, text: String) -> String {
        let mut out = "\x08 \x08".repeat(self.line.chars().count());
        out.push_str(&text);
        self.line = text;
        out
    }

    fn complete(&mut self, prompt: &str) -> String {
        let matches: Vec<&String> = self
            .commands
            .iter()
            .filter(|c| c.starts_with(&self.line))
            .collect();
        match matches.as_slice() {
            [] => "\x07".into(),
            [only] => {
                let rest = only.get(self.line.len()..).unwrap_or_default().to_owned() + " ";
                self.line.push_str(&rest);
                rest
            }
            several => {
                let list: Vec<&str> = several.iter().map(|s| s.as_str()).collect();
                format!("\r\n{}\r\n{prompt}{}", list.join("\r\n"), self.line)
            }
        }
    }

    /// Feeds keystrokes; returns what to do, in order.
    pub fn feed(&mut self, data: &[u8], prompt: &str) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut echo = String::new();
        let flush = |echo: &mut String, actions: &mut Vec<Action>| {
            if !echo.is_empty() {
                actions.push(Action::Echo(std::mem::take(echo)));
            }
        };
        for byte in data.iter().copied() {
            if !self.escape.is_empty() || byte == 0x1b {
                self.escape.push(byte);
                match self.escape.as_slice() {
                    [0x1b] | [0x1b, b'['] | [0x1b, b'O'] => continue,
                    [0x1b, b'[' | b'O', b'A'] => {
                        self.browsing = self.browsing.saturating_sub(1);
                        let text = self.history.get(self.browsing).cloned().unwrap_or_default();
                        echo.push_str(&self.replace_line(text));
                    }
                    [0x1b, b'[' | b'O', b'B'] => {
                        self.browsing = (self.browsing + 1).min(self.history.len());
                        let text = self.history.get(self.browsing).cloned().unwrap_or_default();
                        echo.push_str(&self.replace_line(text));
                    }
                    _ => {}
                }
                self.escape.clear();
                continue;
            }
            match byte {
                b'\r' | b'\n' => {
                    echo.push_str("\r\n");
                    flush(&mut echo, &mut actions);
                    let line = std::mem::take(&mut self.line);
                    if !line.trim().is_empty() && self.history.last() != Some(&line) {
                        self.history.push(line.clone());
                    }
                    self.browsing = self.history.len();
                    actions.push(Action::Submit(line));
                }
                0x7f | 0x08 if self.line.pop().is_some() => echo.push_str("\x08 \x08"),
                0x15 => echo.push_str(&self.replace_line(String::new())),
                0x03 => {
                    self.line.clear();
                    echo.push_str("^C\r\n");
                    flush(&mut echo, &mut actions);
                    actions.push(Action::Interrupt);
                }
                0x04 if self.line.is_empty() => {
                    flush(&mut echo, &mut actions);
                    actions.push(Action::Quit);
                    return actions;
                }
                b'\t' => echo.push_str(&self.complete(prompt)),
                byte if (byte.is_ascii_graphic() || byte == b' ') && self.line.len() < MAX_LINE => {
                    self.line.push(char::from(byte));
                    echo.push(char::from(byte));
                }
                _ => {}
            }
        }
        flush(&mut echo, &mut actions);
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn editor() -> Editor {
        Editor::new(&[
            "systemctl status **".into(),
            "systemctl restart historian".into(),
            "uptime".into(),
        ])
    }

    #[test]
    fn lines_are_edited_submitted_and_recalled() {
        let mut e = editor();
        assert_eq!(
            e.feed(b"uptimx\x7fe\r", "> "),
            vec![
                Action::Echo("uptimx\x08 \x08e\r\n".into()),
                Action::Submit("uptime".into())
            ]
        );
        assert_eq!(e.feed(b"\x1b[A", "> "), vec![Action::Echo("uptime".into())]);
        assert_eq!(
            e.feed(b"\r", "> "),
            vec![Action::Echo("\r\n".into()), Action::Submit("uptime".into())]
        );
        assert_eq!(
            e.feed(b"ls\x15", "> "),
            vec![Action::Echo("ls\x08 \x08\x08 \x08".into())]
        );
        assert_eq!(
            e.feed(b"x\x03", "> "),
            vec![Action::Echo("x^C\r\n".into()), Action::Interrupt]
        );
        assert_eq!(e.feed(b"\x04", "> "), vec![Action::Quit]);
    }

    #[test]
    fn tab_completes_allowed_commands() {
        let mut e = editor();
        assert_eq!(e.feed(b"up\t", "> "), vec![Action::Echo("uptime ".into())]);
        let mut e = editor();
        let listed = e.feed(b"systemctl\t", "> ");
        assert!(
            matches!(&listed[..], [Action::Echo(text)] if text.contains("systemctl restart historian") && text.contains("systemctl status"))
        );
        assert_eq!(literal_prefix("cat /var/log/**"), "cat");
    }
}
