//! Command patterns: argv-aware globs that allow or deny exec commands.
//!
//! A pattern is written like a command, e.g. `systemctl status plc-*` or `journalctl **`, and is
//! split into words with the same lexer as commands. Each pattern word matches one argument:
//! `*` matches any run of characters except `/`, `?` one character except `/`, `**` inside a word
//! any run including `/`. A word that is exactly `**` matches any number of whole arguments
//! (zero or more). Quoted characters are literal. A wildcard never matches an argument that
//! contains a `..` path segment unless the pattern word spells `..` itself, so `cat /var/log/*`
//! cannot be walked out of `/var/log`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::shell::{self, Syntax};

/// Longest pattern, in bytes.
pub const MAX_PATTERN_LEN: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: any run without `/`.
    Star,
    /// `**` inside a word: any run.
    AnyRun,
    /// `?`: one character other than `/`.
    One,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Arg {
    /// A standalone `**`: zero or more whole arguments.
    Rest,
    Word {
        toks: Vec<Tok>,
        spells_dotdot: bool,
    },
}

/// A parsed command pattern; serialises as the text it was written as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommandPattern {
    text: String,
    args: Vec<Arg>,
}

/// Why a pattern was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The lexer refused it.
    #[error("pattern `{pattern}`: {error}")]
    Lex {
        /// The pattern text (truncated).
        pattern: String,
        /// The lexer's reason.
        error: shell::LexError,
    },
    /// It contains shell syntax other than words and wildcards.
    #[error(
        "pattern `{pattern}` uses {syntax}: a pattern is one command; allow the syntax in `syntax` instead"
    )]
    Syntax {
        /// The pattern text (truncated).
        pattern: String,
        /// The syntax found.
        syntax: Syntax,
    },
    /// Over [`MAX_PATTERN_LEN`] bytes.
    #[error("a pattern is longer than {MAX_PATTERN_LEN} bytes")]
    TooLong,
}

impl CommandPattern {
    /// Parses a pattern.
    pub fn new(text: impl Into<String>) -> Result<Self, PatternError> {
        let text = text.into();
        if text.len() > MAX_PATTERN_LEN {
            return Err(PatternError::TooLong);
        }
        let short = || text.chars().take(80).collect::<String>();
        let line = shell::lex(&text).map_err(|error| PatternError::Lex {
            pattern: short(),
            error,
        })?;
        if let Some(syntax) = line.syntax.iter().find(|s| *s != Syntax::Glob) {
            return Err(PatternError::Syntax {
                pattern: short(),
                syntax,
            });
        }
        let [command] = line.commands.as_slice() else {
            return Err(PatternError::Syntax {
                pattern: short(),
                syntax: Syntax::List,
            });
        };
        let args = command.words.iter().map(|w| word_to_arg(&w.0)).collect();
        Ok(Self { text, args })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `argv` matches the pattern exactly (argv[0] included).
    pub fn matches(&self, argv: &[String]) -> bool {
        match_args(&self.args, argv)
    }

    /// Like [`CommandPattern::matches`], and also with argv[0] reduced to its file name, so a
    /// deny rule for `rm` also catches `/bin/rm`.
    pub fn matches_loosely(&self, argv: &[String]) -> bool {
        if self.matches(argv) {
            return true;
        }
        match argv.split_first() {
            Some((first, rest)) if first.contains('/') => {
                let base = first.rsplit('/').next().unwrap_or_default().to_owned();
                let mut reduced = Vec::with_capacity(argv.len());
                reduced.push(base);
                reduced.extend_from_slice(rest);
                self.matches(&reduced)
            }
            _ => false,
        }
    }
}

fn word_to_arg(chars: &[shell::Char]) -> Arg {
    if matches!(chars, [('*', false), ('*', false)]) {
        return Arg::Rest;
    }
    let mut toks = Vec::with_capacity(chars.len());
    let mut i = 0;
    while let Some(&(c, quoted)) = chars.get(i) {
        let tok = match (c, quoted) {
            ('*', false) if matches!(chars.get(i + 1), Some(('*', false))) => {
                i += 1;
                Tok::AnyRun
            }
            ('*', false) => Tok::Star,
            ('?', false) => Tok::One,
            (c, _) => Tok::Lit(c),
        };
        toks.push(tok);
        i += 1;
    }
    let text: String = chars.iter().map(|(c, _)| c).collect();
    Arg::Word {
        toks,
        spells_dotdot: text.contains(".."),
    }
}

fn has_dotdot_segment(text: &str) -> bool {
    text.split('/').any(|segment| segment == "..")
}

/// Whole-argv match with `Rest` spanning zero or more arguments (dynamic programming, no
/// backtracking blow-up).
fn match_args(pattern: &[Arg], argv: &[String]) -> bool {
    // reach[j]: pattern prefix processed so far can consume exactly argv[..j].
    let mut reach = vec![false; argv.len() + 1];
    if let Some(first) = reach.first_mut() {
        *first = true;
    }
    for arg in pattern {
        let mut next = vec![false; argv.len() + 1];
        match arg {
            Arg::Rest => {
                let mut open = false;
                for (j, slot) in next.iter_mut().enumerate() {
                    if reach.get(j).copied().unwrap_or(false) {
                        open = true;
                    }
                    *slot = open;
                    // A rest cannot swallow an argument that walks up the tree.
                    if argv.get(j).is_some_and(|a| has_dotdot_segment(a)) {
                        open = false;
                    }
                }
            }
            Arg::Word {
                toks,
                spells_dotdot,
            } => {
                for (j, value) in argv.iter().enumerate() {
                    if reach.get(j).copied().unwrap_or(false)
                        && (*spells_dotdot || !has_dotdot_segment(value))
                        && match_word(toks, value)
                        && let Some(slot) = next.get_mut(j + 1)
                    {
                        *slot = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach.last().copied().unwrap_or(false)
}

/// One word against one argument.
fn match_word(toks: &[Tok], value: &str) -> bool {
    let chars: Vec<char> = value.chars().collect();
    // reach[j]: tokens so far can consume exactly chars[..j].
    let mut reach = vec![false; chars.len() + 1];
    if let Some(first) = reach.first_mut() {
        *first = true;
    }
    for tok in toks {
        let mut next = vec![false; chars.len() + 1];
        match tok {
            Tok::Star | Tok::AnyRun => {
                let mut open = false;
                for (j, slot) in next.iter_mut().enumerate() {
                    if reach.get(j).copied().unwrap_or(false) {
                        open = true;
                    }
                    *slot = open;
                    if *tok == Tok::Star && chars.get(j) == Some(&'/') {
                        open = false;
                    }
                }
            }
            Tok::Lit(_) | Tok::One => {
                for (j, c) in chars.iter().enumerate() {
                    let fits = match tok {
                        Tok::Lit(l) => l == c,
                        _ => *c != '/',
                    };
                    if fits
                        && reach.get(j).copied().unwrap_or(false)
                        && let Some(slot) = next.get_mut(j + 1)
                    {
                        *slot = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach.last().copied().unwrap_or(false)
}

impl TryFrom<String> for CommandPattern {
    type Error = PatternError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<CommandPattern> for String {
    fn from(value: CommandPattern) -> String {
        value.text
    }
}

impl fmt::Display for CommandPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    fn m(pattern: &str, words: &[&str]) -> bool {
        CommandPattern::new(pattern).unwrap().matches(&argv(words))
    }

    #[test]
    fn words_match_one_argument_each() {
        assert!(m(
            "systemctl status plc-*",
            &["systemctl", "status", "plc-io"]
        ));
        assert!(!m(
            "systemctl status plc-*",
            &["systemctl", "status", "plc-io", "x"]
        ));
        assert!(!m(
            "systemctl status plc-*",
            &["systemctl", "restart", "plc-io"]
        ));
        assert!(!m(
            "systemctl status plc-*",
            &["/tmp/systemctl", "status", "plc-io"]
        ));
        assert!(m("uptime", &["uptime"]));
        assert!(!m("uptime", &["uptime", "-p"]));
        assert!(m("cat file?.log", &["cat", "file1.log"]));
    }

    #[test]
    fn stars_stay_inside_a_directory() {
        assert!(m("cat /var/log/*", &["cat", "/var/log/syslog"]));
        assert!(!m("cat /var/log/*", &["cat", "/var/log/nginx/access.log"]));
        assert!(m("cat /var/log/**", &["cat", "/var/log/nginx/access.log"]));
        assert!(!m("cat /var/log/**", &["cat", "/var/log/../../etc/shadow"]));
        assert!(!m("cat /var/log/*", &["cat", "/var/log/.."]));
        assert!(m("cat /var/log/../x", &["cat", "/var/log/../x"]));
    }

    #[test]
    fn rest_spans_arguments() {
        assert!(m("journalctl **", &["journalctl"]));
        assert!(m(
            "journalctl **",
            &["journalctl", "-u", "plc", "--since", "today"]
        ));
        assert!(m("ls ** /tmp", &["ls", "-l", "-a", "/tmp"]));
        assert!(!m("journalctl **", &["journalctl", "-D", "/var/../etc"]));
        assert!(m("**", &["anything", "at", "all"]));
    }

    #[test]
    fn quoted_wildcards_are_literal() {
        assert!(m("echo '*'", &["echo", "*"]));
        assert!(!m("echo '*'", &["echo", "x"]));
        assert!(m("echo \"a b\"", &["echo", "a b"]));
    }

    #[test]
    fn loose_matching_reduces_the_program_path() {
        let deny = CommandPattern::new("rm **").unwrap();
        assert!(deny.matches_loosely(&argv(&["/bin/rm", "-rf", "/"])));
        assert!(!deny.matches(&argv(&["/bin/rm", "-rf", "/"])));
    }

    #[test]
    fn patterns_refuse_operators() {
        assert!(CommandPattern::new("ls; rm").is_err());
        assert!(CommandPattern::new("ls | grep x").is_err());
        assert!(CommandPattern::new("cat $HOME").is_err());
        assert!(CommandPattern::new("").is_err());
        assert!(CommandPattern::new("x".repeat(MAX_PATTERN_LEN + 1)).is_err());
    }
}

crate::schema::string_schema!(
    CommandPattern,
    "Command pattern: argv words with * (no slash), ** and ?",
    "systemctl status plc-*"
);
