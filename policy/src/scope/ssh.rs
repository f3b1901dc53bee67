//! The SSH part of a scope: exec command patterns, shell, SFTP.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::pattern::CommandPattern;
use super::shell::{self, Syntax};
use crate::decision::{Decision, DenyReason, Rule};

/// What SFTP may do.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SftpAccess {
    /// No file transfer.
    #[default]
    None,
    /// Download only.
    Read,
    /// Download and upload.
    Write,
}

/// What may be done over SSH.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SshScope {
    /// Whether an interactive shell is allowed (its lines are still checked against `deny`).
    #[serde(default)]
    pub shell: bool,
    /// SFTP access.
    #[serde(default)]
    pub sftp: SftpAccess,
    /// Commands that may be run (exec, or lines of the gateway's console).
    #[serde(default)]
    pub allow: Vec<CommandPattern>,
    /// Commands that never run, whatever `allow` says.
    #[serde(default)]
    pub deny: Vec<CommandPattern>,
    /// Shell syntax allowed in commands; each command inside is still checked.
    #[serde(default)]
    pub syntax: Vec<Syntax>,
}

impl SshScope {
    /// Checks one exec command (or console line) as the vendor's client sent it.
    pub fn check_command(&self, command: &[u8]) -> Decision {
        let text = match std::str::from_utf8(command) {
            Ok(text) => text,
            Err(_) => {
                return Decision::deny(
                    Rule::new("ssh", "commands are UTF-8 text"),
                    DenyReason::Malformed {
                        detail: "the command is not valid UTF-8".into(),
                    },
                );
            }
        };
        let line = match shell::lex(text) {
            Ok(line) => line,
            Err(e) => {
                return Decision::deny(
                    Rule::new("ssh", "commands must be readable"),
                    DenyReason::Malformed {
                        detail: e.to_string(),
                    },
                );
            }
        };
        if let Some(syntax) = line.syntax.iter().find(|s| !self.syntax.contains(s)) {
            return Decision::deny(
                Rule::new("ssh.syntax", "not listed"),
                DenyReason::Syntax { syntax },
            );
        }
        let mut allowed_by = Vec::with_capacity(line.commands.len());
        for command in &line.commands {
            let argv = command.argv();
            if let Some((i, rule)) = self
                .deny
                .iter()
                .enumerate()
                .find(|(_, p)| p.matches_loosely(&argv))
            {
                return Decision::deny(
                    Rule::new(format!("ssh.deny[{i}]"), rule.as_str()),
                    DenyReason::DeniedByRule {
                        command: shorten(&argv),
                    },
                );
            }
            match self
                .allow
                .iter()
                .enumerate()
                .find(|(_, p)| p.matches(&argv))
            {
                Some((i, rule)) => {
                    allowed_by.push(Rule::new(format!("ssh.allow[{i}]"), rule.as_str()))
                }
                None => {
                    return Decision::deny(
                        Rule::default_deny(),
                        DenyReason::NotAllowed {
                            what: shorten(&argv),
                        },
                    );
                }
            }
        }
        match allowed_by.as_slice() {
            [only] => Decision::Allow { rule: only.clone() },
            many => Decision::Allow {
                rule: Rule::new(
                    many.iter()
                        .map(|r| r.id.as_str())
                        .collect::<Vec<_>>()
                        .join(" + "),
                    many.iter()
                        .map(|r| r.text.as_str())
                        .collect::<Vec<_>>()
                        .join(" ; "),
                ),
            },
        }
    }

    /// Checks a request for an interactive shell.
    pub fn check_shell(&self) -> Decision {
        if self.shell {
            Decision::Allow {
                rule: Rule::new("ssh.shell", "true"),
            }
        } else {
            Decision::deny(Rule::new("ssh.shell", "false"), DenyReason::ShellNotAllowed)
        }
    }

    /// Checks an SFTP session or file operation.
    pub fn check_sftp(&self, write: bool) -> Decision {
        let needed = if write {
            SftpAccess::Write
        } else {
            SftpAccess::Read
        };
        let rule = Rule::new("ssh.sftp", format!("{:?}", self.sftp).to_lowercase());
        if self.sftp >= needed {
            Decision::Allow { rule }
        } else {
            Decision::deny(rule, DenyReason::SftpNotAllowed { write })
        }
    }
}

/// argv joined for messages, bounded.
fn shorten(argv: &[String]) -> String {
    let joined = argv.join(" ");
    if joined.chars().count() > 200 {
        let mut short: String = joined.chars().take(197).collect();
        short.push_str("...");
        short
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(allow: &[&str], deny: &[&str], syntax: &[Syntax]) -> SshScope {
        SshScope {
            allow: allow
                .iter()
                .map(|p| CommandPattern::new(*p).unwrap())
                .collect(),
            deny: deny
                .iter()
                .map(|p| CommandPattern::new(*p).unwrap())
                .collect(),
            syntax: syntax.to_vec(),
            ..SshScope::default()
        }
    }

    #[test]
    fn allows_listed_commands_only() {
        let s = scope(&["systemctl status *", "uptime"], &[], &[]);
        assert!(s.check_command(b"systemctl status plc").is_allowed());
        assert_eq!(s.check_command(b"uptime").rule().id, "ssh.allow[1]");
        let denied = s.check_command(b"systemctl restart plc");
        assert!(matches!(
            denied,
            Decision::Deny {
                reason: DenyReason::NotAllowed { .. },
                ..
            }
        ));
    }

    #[test]
    fn refuses_syntax_unless_allowed() {
        let s = scope(&["uptime", "rm **"], &[], &[]);
        for (cmd, syntax) in [
            ("uptime; rm -rf /", Syntax::List),
            ("uptime | rm x", Syntax::Pipe),
            ("uptime > /etc/passwd", Syntax::Redirect),
            ("uptime $(rm -rf /)", Syntax::Substitution),
            ("uptime `rm -rf /`", Syntax::Substitution),
            ("uptime &", Syntax::Background),
            ("X=1 uptime", Syntax::Assignment),
        ] {
            assert_eq!(
                s.check_command(cmd.as_bytes()),
                Decision::deny(
                    Rule::new("ssh.syntax", "not listed"),
                    DenyReason::Syntax { syntax }
                ),
                "{cmd}"
            );
        }
    }

    #[test]
    fn allowed_syntax_still_checks_every_command() {
        let s = scope(
            &["uptime", "grep *"],
            &[],
            &[Syntax::Pipe, Syntax::Substitution],
        );
        assert!(s.check_command(b"uptime | grep load").is_allowed());
        assert!(!s.check_command(b"uptime | sh").is_allowed());
        assert!(!s.check_command(b"grep \"$(rm -rf /)\"").is_allowed());
    }

    #[test]
    fn deny_wins_and_catches_paths() {
        let s = scope(&["**"], &["rm **"], &[]);
        assert!(s.check_command(b"ls -l").is_allowed());
        assert!(matches!(
            s.check_command(b"/bin/rm -rf /"),
            Decision::Deny {
                reason: DenyReason::DeniedByRule { .. },
                ..
            }
        ));
    }

    #[test]
    fn malformed_input_is_denied_with_a_reason() {
        let s = scope(&["**"], &[], &[]);
        assert!(matches!(
            s.check_command(b"echo \xff"),
            Decision::Deny {
                reason: DenyReason::Malformed { .. },
                ..
            }
        ));
        assert!(matches!(
            s.check_command(b"echo 'x"),
            Decision::Deny {
                reason: DenyReason::Malformed { .. },
                ..
            }
        ));
        assert!(matches!(
            s.check_command(b"echo \x1b[2J"),
            Decision::Deny {
                reason: DenyReason::Malformed { .. },
                ..
            }
        ));
    }

    #[test]
    fn shell_and_sftp_levels() {
        let mut s = SshScope::default();
        assert!(!s.check_shell().is_allowed());
        assert!(!s.check_sftp(false).is_allowed());
        s.sftp = SftpAccess::Read;
        s.shell = true;
        assert!(s.check_shell().is_allowed());
        assert!(s.check_sftp(false).is_allowed());
        assert!(!s.check_sftp(true).is_allowed());
    }
}
