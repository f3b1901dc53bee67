//! A POSIX-shell lexer for exec commands and command patterns (sans-IO).
//!
//! It does not execute or expand anything: it splits a command line into simple commands and
//! their words, removes quoting, and records every piece of shell syntax that could make the
//! asset's shell run something other than the words as written (lists, pipes, redirections,
//! substitutions, expansions, globs, assignments, subshells, comments). Commands nested in
//! substitutions and subshells are returned too, so each can be checked on its own.
//!
//! Input is untrusted (it comes from the vendor's SSH client): lengths and nesting are bounded
//! and nothing here panics.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest command line accepted, in bytes.
pub const MAX_COMMAND_LEN: usize = 16 * 1024;
/// Deepest nesting of substitutions and subshells.
pub const MAX_DEPTH: usize = 8;
/// Most words in one command line, nested commands included.
pub const MAX_WORDS: usize = 4096;

/// Shell syntax that changes what runs beyond the plain words of one command.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Syntax {
    /// Command lists: `;`, `&&`, `||`, newline.
    List,
    /// Pipelines: `|`.
    Pipe,
    /// Background jobs: `&`.
    Background,
    /// Redirections: `<`, `>`, `>>`, `<<`, `>&` ...
    Redirect,
    /// Command substitution: `$(...)` and backquotes.
    Substitution,
    /// Parameter, tilde and brace expansion: `$VAR`, `${VAR}`, `~`, `{a,b}`.
    Expansion,
    /// Pathname expansion: unquoted `*`, `?`, `[`.
    Glob,
    /// Variable assignments before a command: `VAR=value cmd`.
    Assignment,
    /// Subshells: `( ... )`.
    Subshell,
    /// Comments: `# ...`.
    Comment,
}

impl Syntax {
    /// Every kind of syntax.
    pub const ALL: [Syntax; 10] = [
        Self::List,
        Self::Pipe,
        Self::Background,
        Self::Redirect,
        Self::Substitution,
        Self::Expansion,
        Self::Glob,
        Self::Assignment,
        Self::Subshell,
        Self::Comment,
    ];

    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// How the syntax looks, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::List => "command lists (`;`, `&&`, `||`, newline)",
            Self::Pipe => "pipes (`|`)",
            Self::Background => "background jobs (`&`)",
            Self::Redirect => "redirections (`<`, `>`)",
            Self::Substitution => "command substitution (`$(...)`, backquotes)",
            Self::Expansion => "expansions (`$VAR`, `~`, `{a,b}`)",
            Self::Glob => "wildcards (unquoted `*`, `?`, `[`)",
            Self::Assignment => "variable assignments (`VAR=value cmd`)",
            Self::Subshell => "subshells (`( ... )`)",
            Self::Comment => "comments (`#`)",
        }
    }
}

impl fmt::Display for Syntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A set of [`Syntax`] kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyntaxSet(u16);

impl SyntaxSet {
    /// Adds a kind.
    pub fn insert(&mut self, syntax: Syntax) {
        self.0 |= syntax.bit();
    }

    /// Whether a kind is present.
    pub fn contains(self, syntax: Syntax) -> bool {
        self.0 & syntax.bit() != 0
    }

    /// Kinds present, in [`Syntax::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Syntax> {
        Syntax::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Syntax> for SyntaxSet {
    fn from_iter<I: IntoIterator<Item = Syntax>>(iter: I) -> Self {
        let mut set = SyntaxSet::default();
        for syntax in iter {
            set.insert(syntax);
        }
        set
    }
}

/// Why a command line could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    /// Nothing to run.
    #[error("the command is empty")]
    Empty,
    /// Over [`MAX_COMMAND_LEN`] bytes.
    #[error("the command is longer than {MAX_COMMAND_LEN} bytes")]
    TooLong,
    /// Over [`MAX_WORDS`] words.
    #[error("the command has more than {MAX_WORDS} words")]
    TooManyWords,
    /// Substitutions or subshells nested deeper than [`MAX_DEPTH`].
    #[error("substitutions or subshells are nested more than {MAX_DEPTH} deep")]
    TooDeep,
    /// A byte below 0x20 (other than tab and newline) or DEL.
    #[error("the command contains a control character (0x{0:02x})")]
    ControlCharacter(u32),
    /// A quote, substitution or subshell is not closed.
    #[error("unterminated {0}")]
    Unterminated(&'static str),
    /// A `)` without its `(`.
    #[error("unbalanced `)`")]
    Unbalanced,
    /// Shell syntax otgate refuses to interpret.
    #[error("{0} is not supported")]
    Unsupported(&'static str),
}

/// One character of a word and whether it was quoted or escaped.
pub type Char = (char, bool);

/// A word after quote removal, remembering which characters were quoted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Word(pub Vec<Char>);

impl Word {
    /// The word's text with quoting removed.
    pub fn text(&self) -> String {
        self.0.iter().map(|(c, _)| c).collect()
    }

    fn is_unquoted_digits(&self) -> bool {
        !self.0.is_empty() && self.0.iter().all(|(c, q)| !q && c.is_ascii_digit())
    }

    /// `NAME=...` with an unquoted `=` after a valid shell name.
    fn is_assignment(&self) -> bool {
        let Some(eq) = self.0.iter().position(|(c, q)| *c == '=' && !q) else {
            return false;
        };
        let name = self.0.get(..eq).unwrap_or_default();
        name.first()
            .is_some_and(|(c, q)| !q && (c.is_ascii_alphabetic() || *c == '_'))
            && name
                .iter()
                .all(|(c, q)| !q && (c.is_ascii_alphanumeric() || *c == '_'))
    }

    /// An unquoted `{` ... `,` or `..` ... `}`: bash brace expansion.
    fn has_brace_expansion(&self) -> bool {
        let chars = &self.0;
        let Some(open) = chars.iter().position(|(c, q)| *c == '{' && !q) else {
            return false;
        };
        let rest = chars.get(open + 1..).unwrap_or_default();
        let Some(close) = rest.iter().position(|(c, q)| *c == '}' && !q) else {
            return false;
        };
        let inner = rest.get(..close).unwrap_or_default();
        inner.iter().any(|(c, q)| *c == ',' && !q)
            || inner
                .windows(2)
                .any(|w| matches!(w, [('.', false), ('.', false)]))
    }
}

/// A simple command: its words (argv) after assignments and redirections were taken out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimpleCommand {
    /// The words that form argv.
    pub words: Vec<Word>,
}

impl SimpleCommand {
    /// argv as text.
    pub fn argv(&self) -> Vec<String> {
        self.words.iter().map(Word::text).collect()
    }
}

/// The result of reading a command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandLine {
    /// Every simple command, nested ones included, in reading order.
    pub commands: Vec<SimpleCommand>,
    /// Every kind of syntax used.
    pub syntax: SyntaxSet,
}

/// Reads a command line.
pub fn lex(input: &str) -> Result<CommandLine, LexError> {
    if input.len() > MAX_COMMAND_LEN {
        return Err(LexError::TooLong);
    }
    let chars: Vec<char> = input.chars().collect();
    let mut lexer = Lexer {
        chars: &chars,
        pos: 0,
        out: CommandLine::default(),
        words: 0,
    };
    lexer.list(0, None)?;
    if lexer.out.commands.is_empty() {
        return Err(LexError::Empty);
    }
    Ok(lexer.out)
}

struct Lexer<'a> {
    chars: &'a [char],
    pos: usize,
    out: CommandLine,
    words: usize,
}

/// The command being assembled.
#[derive(Default)]
struct Pending {
    words: Vec<Word>,
    word: Option<Word>,
    /// The next word completes a redirection and is not part of argv.
    redirect_target: bool,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn flag(&mut self, syntax: Syntax) {
        self.out.syntax.insert(syntax);
    }

    fn push_char(&mut self, pending: &mut Pending, c: char, quoted: bool) {
        pending
            .word
            .get_or_insert_with(Word::default)
            .0
            .push((c, quoted));
    }

    fn end_word(&mut self, pending: &mut Pending) -> Result<(), LexError> {
        let Some(word) = pending.word.take() else {
            return Ok(());
        };
        self.words += 1;
        if self.words > MAX_WORDS {
            return Err(LexError::TooManyWords);
        }
        if word.has_brace_expansion() {
            self.flag(Syntax::Expansion);
        }
        if pending.redirect_target {
            pending.redirect_target = false;
        } else {
            pending.words.push(word);
        }
        Ok(())
    }

    fn end_command(&mut self, pending: &mut Pending) -> Result<(), LexError> {
        self.end_word(pending)?;
        if pending.redirect_target {
            return Err(LexError::Unterminated("redirection (no target)"));
        }
        let mut words = std::mem::take(&mut pending.words);
        let assignments = words.iter().take_while(|w| w.is_assignment()).count();
        if assignments > 0 {
            self.flag(Syntax::Assignment);
            words.drain(..assignments);
        }
        if !words.is_empty() {
            self.out.commands.push(SimpleCommand { words });
        }
        Ok(())
    }

    /// Reads a list of commands until the end, or until `close` at this level.
    fn list(&mut self, depth: usize, close: Option<char>) -> Result<(), LexError> {
        if depth > MAX_DEPTH {
            return Err(LexError::TooDeep);
        }
        let mut pending = Pending::default();
        while let Some(c) = self.peek() {
            if Some(c) == close {
                self.pos += 1;
                return self.end_command(&mut pending);
            }
            self.pos += 1;
            match c {
                ' ' | '\t' => self.end_word(&mut pending)?,
                '\n' | ';' => {
                    self.flag(Syntax::List);
                    self.end_command(&mut pending)?;
                }
                '&' => {
                    if self.peek() == Some('&') {
                        self.pos += 1;
                        self.flag(Syntax::List);
                    } else {
                        self.flag(Syntax::Background);
                    }
                    self.end_command(&mut pending)?;
                }
                '|' => {
                    if self.peek() == Some('|') {
                        self.pos += 1;
                        self.flag(Syntax::List);
                    } else {
                        self.flag(Syntax::Pipe);
                    }
                    self.end_command(&mut pending)?;
                }
                '<' | '>' => {
                    // `2>`: a word of digits right before the operator is a descriptor number.
                    if pending.word.as_ref().is_some_and(Word::is_unquoted_digits) {
                        pending.word = None;
                    }
                    self.end_word(&mut pending)?;
                    self.flag(Syntax::Redirect);
                    while matches!(self.peek(), Some('<' | '>' | '&' | '|' | '-')) {
                        self.pos += 1;
                    }
                    pending.redirect_target = true;
                }
                '(' => {
                    self.end_command(&mut pending)?;
                    self.flag(Syntax::Subshell);
                    self.list(depth + 1, Some(')'))?;
                }
                ')' => return Err(LexError::Unbalanced),
                '\'' => self.single_quoted(&mut pending)?,
                '"' => self.double_quoted(&mut pending, depth)?,
                '\\' => match self.peek() {
                    Some('\n') => self.pos += 1,
                    Some(next) => {
                        self.check_char(next)?;
                        self.pos += 1;
                        self.push_char(&mut pending, next, true);
                    }
                    None => return Err(LexError::Unterminated("escape (trailing backslash)")),
                },
                '$' => self.dollar(&mut pending, depth, false)?,
                '`' => self.backquoted(&mut pending, depth)?,
                '#' if pending.word.is_none() => {
                    self.flag(Syntax::Comment);
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                '*' | '?' | '[' => {
                    self.flag(Syntax::Glob);
                    self.push_char(&mut pending, c, false);
                }
                '~' if pending.word.is_none() => {
                    self.flag(Syntax::Expansion);
                    self.push_char(&mut pending, c, false);
                }
                other => {
                    self.check_char(other)?;
                    self.push_char(&mut pending, other, false);
                }
            }
        }
        match close {
            Some(_) => Err(LexError::Unterminated(if depth > 0 {
                "subshell or substitution"
            } else {
                "group"
            })),
            None => self.end_command(&mut pending),
        }
    }

    fn check_char(&self, c: char) -> Result<(), LexError> {
        let code = u32::from(c);
        if (code < 0x20 && c != '\t' && c != '\n') || code == 0x7f || (0x80..0xa0).contains(&code) {
            Err(LexError::ControlCharacter(code))
        } else {
            Ok(())
        }
    }

    fn single_quoted(&mut self, pending: &mut Pending) -> Result<(), LexError> {
        // An empty '' still makes a word.
        pending.word.get_or_insert_with(Word::default);
        loop {
            match self.peek() {
                None => return Err(LexError::Unterminated("single quote")),
                Some('\'') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(c) => {
                    self.check_char(c)?;
                    self.pos += 1;
                    self.push_char(pending, c, true);
                }
            }
        }
    }

    fn double_quoted(&mut self, pending: &mut Pending, depth: usize) -> Result<(), LexError> {
        pending.word.get_or_insert_with(Word::default);
        loop {
            let Some(c) = self.peek() else {
                return Err(LexError::Unterminated("double quote"));
            };
            self.pos += 1;
            match c {
                '"' => return Ok(()),
                '\\' => match self.peek() {
                    Some('\n') => self.pos += 1,
                    Some(next @ ('$' | '`' | '"' | '\\')) => {
                        self.pos += 1;
                        self.push_char(pending, next, true);
                    }
                    _ => self.push_char(pending, '\\', true),
                },
                '$' => self.dollar(pending, depth, true)?,
                '`' => self.backquoted(pending, depth)?,
                other => {
                    self.check_char(other)?;
                    self.push_char(pending, other, true);
                }
            }
        }
    }

    /// After a `$`: substitution, expansion, or a literal dollar.
    fn dollar(
        &mut self,
        pending: &mut Pending,
        depth: usize,
        quoted: bool,
    ) -> Result<(), LexError> {
        match self.peek() {
            Some('(') if self.peek_at(1) == Some('(') => {
                Err(LexError::Unsupported("arithmetic expansion `$((...))`"))
            }
            Some('(') => {
                self.pos += 1;
                self.flag(Syntax::Substitution);
                // The substitution's output becomes part of this word.
                pending.word.get_or_insert_with(Word::default);
                self.list(depth + 1, Some(')'))
            }
            Some('{') => {
                self.pos += 1;
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.pos += 1;
                }
                if self.pos == start || self.peek() != Some('}') {
                    return Err(LexError::Unsupported(
                        "parameter expansion other than `${NAME}`",
                    ));
                }
                self.pos += 1;
                self.flag(Syntax::Expansion);
                self.push_literal(pending, start.saturating_sub(2), quoted);
                Ok(())
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let start = self.pos - 1;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.pos += 1;
                }
                self.flag(Syntax::Expansion);
                self.push_literal(pending, start, quoted);
                Ok(())
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                self.pos += 1;
                self.flag(Syntax::Expansion);
                self.push_literal(pending, self.pos - 2, quoted);
                Ok(())
            }
            Some('\'' | '"') if !quoted => {
                Err(LexError::Unsupported("`$'...'` and `$\"...\"` quoting"))
            }
            _ => {
                self.push_char(pending, '$', quoted);
                Ok(())
            }
        }
    }

    /// Copies the source text from `start` to the current position into the word, so that an
    /// expansion stays visible (and unmatchable by literal patterns) in argv.
    fn push_literal(&mut self, pending: &mut Pending, start: usize, quoted: bool) {
        let text: Vec<char> = self.chars.get(start..self.pos).unwrap_or_default().to_vec();
        for c in text {
            self.push_char(pending, c, quoted);
        }
    }

    fn backquoted(&mut self, pending: &mut Pending, depth: usize) -> Result<(), LexError> {
        self.flag(Syntax::Substitution);
        pending.word.get_or_insert_with(Word::default);
        let mut inner = String::new();
        loop {
            match self.peek() {
                None => return Err(LexError::Unterminated("backquote")),
                Some('`') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') if matches!(self.peek_at(1), Some('$' | '`' | '\\')) => {
                    if let Some(next) = self.peek_at(1) {
                        inner.push(next);
                    }
                    self.pos += 2;
                }
                Some(c) => {
                    inner.push(c);
                    self.pos += 1;
                }
            }
        }
        if depth + 1 > MAX_DEPTH {
            return Err(LexError::TooDeep);
        }
        let chars: Vec<char> = inner.chars().collect();
        let mut nested = Lexer {
            chars: &chars,
            pos: 0,
            out: CommandLine::default(),
            words: self.words,
        };
        nested.list(depth + 1, None)?;
        self.words = nested.words;
        self.out.commands.extend(nested.out.commands);
        for syntax in nested.out.syntax.iter() {
            self.flag(syntax);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(input: &str) -> Vec<Vec<String>> {
        lex(input)
            .unwrap()
            .commands
            .iter()
            .map(SimpleCommand::argv)
            .collect()
    }

    fn syntax(input: &str) -> Vec<Syntax> {
        lex(input).unwrap().syntax.iter().collect()
    }

    #[test]
    fn splits_words_and_removes_quotes() {
        assert_eq!(
            argvs("systemctl  status 'plc svc'"),
            [["systemctl", "status", "plc svc"]]
        );
        assert_eq!(
            argvs(r#"echo "a \"b\" \$c" d\ e ''"#),
            [["echo", "a \"b\" $c", "d e", ""]]
        );
        assert!(syntax("systemctl status plc").is_empty());
        assert!(syntax(r#"echo "a \$HOME" '$(x)' \; \| \*"#).is_empty());
    }

    #[test]
    fn records_operators_and_nested_commands() {
        assert_eq!(syntax("a; b"), [Syntax::List]);
        assert_eq!(syntax("a && b || c"), [Syntax::List]);
        assert_eq!(syntax("a | b"), [Syntax::Pipe]);
        assert_eq!(syntax("a & b"), [Syntax::Background]);
        assert_eq!(syntax("a\nb"), [Syntax::List]);
        assert_eq!(argvs("cat x > /etc/passwd"), [["cat", "x"]]);
        assert_eq!(syntax("cat x 2>/dev/null"), [Syntax::Redirect]);
        assert_eq!(argvs("cat x 2>/dev/null"), [["cat", "x"]]);
        assert_eq!(
            argvs("echo $(id -u) `whoami`"),
            [vec!["id", "-u"], vec!["whoami"], vec!["echo", "", ""]]
        );
        assert_eq!(syntax("echo \"$(rm -rf /)\""), [Syntax::Substitution]);
        assert_eq!(argvs("echo \"$(rm -rf /)\"")[0], ["rm", "-rf", "/"]);
        assert_eq!(syntax("(cd /; rm x)"), [Syntax::List, Syntax::Subshell]);
        assert_eq!(argvs("(cd /; rm x)"), [["cd", "/"], ["rm", "x"]]);
    }

    #[test]
    fn records_expansions_globs_assignments() {
        assert_eq!(syntax("echo $HOME"), [Syntax::Expansion]);
        assert_eq!(syntax("echo ${HOME}"), [Syntax::Expansion]);
        assert_eq!(syntax("echo \"$1\""), [Syntax::Expansion]);
        assert_eq!(syntax("cat ~root/.ssh/id"), [Syntax::Expansion]);
        assert_eq!(
            syntax("cat /var/log/{a,../../etc/shadow}"),
            [Syntax::Expansion]
        );
        assert!(syntax("find . -exec ls {} +").is_empty());
        assert_eq!(syntax("ls /var/log/*.log"), [Syntax::Glob]);
        assert_eq!(syntax("LD_PRELOAD=/tmp/x.so ls"), [Syntax::Assignment]);
        assert_eq!(argvs("LD_PRELOAD=/tmp/x.so ls"), [["ls"]]);
        assert!(syntax("ls a=b").is_empty());
        assert_eq!(syntax("ls # ; rm -rf /"), [Syntax::Comment]);
        assert!(syntax("echo a#b").is_empty());
        assert_eq!(argvs("echo cost: $ 5"), [["echo", "cost:", "$", "5"]]);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for (input, err) in [
            ("", LexError::Empty),
            ("   ", LexError::Empty),
            ("echo 'abc", LexError::Unterminated("single quote")),
            ("echo \"abc", LexError::Unterminated("double quote")),
            ("echo `abc", LexError::Unterminated("backquote")),
            (
                "echo abc\\",
                LexError::Unterminated("escape (trailing backslash)"),
            ),
            ("echo )", LexError::Unbalanced),
            ("echo a\u{1b}[2J", LexError::ControlCharacter(0x1b)),
            ("echo 'a\u{0}'", LexError::ControlCharacter(0)),
            (
                "echo $((1+2))",
                LexError::Unsupported("arithmetic expansion `$((...))`"),
            ),
        ] {
            assert_eq!(lex(input), Err(err), "{input:?}");
        }
        assert_eq!(
            lex(&"x".repeat(MAX_COMMAND_LEN + 1)),
            Err(LexError::TooLong)
        );
        let deep = format!(
            "{}x{}",
            "$(".repeat(MAX_DEPTH + 2),
            ")".repeat(MAX_DEPTH + 2)
        );
        assert_eq!(lex(&deep), Err(LexError::TooDeep));
        assert_eq!(
            lex(&"a ".repeat(MAX_WORDS + 1)),
            Err(LexError::TooManyWords)
        );
    }
}
