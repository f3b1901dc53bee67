//! The outcome of evaluating an operation against a grant's scope.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::asset::Protocol;
use crate::scope::{Syntax, Table};

/// Which rule of a scope decided; `id` locates it (`ssh.allow[2]`), `text` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    /// Location of the rule in the scope, e.g. `ssh.deny[0]` or `modbus.units`.
    pub id: String,
    /// The rule as written, e.g. `rm **`.
    pub text: String,
}

impl Rule {
    pub(crate) fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
        }
    }

    /// The rule that decides when nothing in the scope allows an operation.
    pub(crate) fn default_deny() -> Self {
        Self::new("default", "nothing in the grant allows this")
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.id, self.text)
    }
}

/// Why an operation was denied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DenyReason {
    /// The grant does not include this protocol.
    ProtocolNotGranted {
        /// The protocol asked for.
        protocol: Protocol,
    },
    /// The input could not be read (bad quoting, control characters, not UTF-8, too long).
    Malformed {
        /// What is wrong.
        detail: String,
    },
    /// The command uses shell syntax the grant does not allow.
    Syntax {
        /// The syntax found.
        syntax: Syntax,
    },
    /// A deny rule matched.
    DeniedByRule {
        /// The command (argv joined).
        command: String,
    },
    /// No allow rule matched.
    NotAllowed {
        /// The command (argv joined), or what was attempted.
        what: String,
    },
    /// Interactive shells are not part of the grant.
    ShellNotAllowed,
    /// SFTP is not allowed at this access level.
    SftpNotAllowed {
        /// Whether write access was asked for.
        write: bool,
    },
    /// The Modbus unit id is outside the grant.
    ModbusUnit {
        /// Unit id.
        unit: u8,
    },
    /// The Modbus function code is outside the grant.
    ModbusFunction {
        /// Function code.
        function: u8,
    },
    /// The addresses are outside the grant.
    ModbusAddress {
        /// Table.
        table: Table,
        /// First address.
        start: u16,
        /// Number of items.
        count: u16,
        /// `read` or `write`.
        access: String,
    },
    /// A written value is outside the allowed bounds.
    ModbusValue {
        /// Register address.
        address: u16,
        /// Value written.
        value: u16,
    },
    /// The TCP port is not in the grant's allow-list.
    TcpPort {
        /// Port.
        port: u16,
    },
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ProtocolNotGranted { protocol } => {
                write!(f, "the grant does not include {protocol}")
            }
            Self::Malformed { detail } => write!(f, "the command cannot be checked: {detail}"),
            Self::Syntax { syntax } => write!(f, "{syntax} are not allowed by this grant"),
            Self::DeniedByRule { command } => write!(f, "`{command}` matches a deny rule"),
            Self::NotAllowed { what } => {
                write!(f, "`{what}` is not among the commands this grant allows")
            }
            Self::ShellNotAllowed => {
                f.write_str("this grant does not include an interactive shell")
            }
            Self::SftpNotAllowed { write: true } => {
                f.write_str("this grant does not allow writing files")
            }
            Self::SftpNotAllowed { write: false } => {
                f.write_str("this grant does not allow file transfer")
            }
            Self::ModbusUnit { unit } => write!(f, "unit {unit} is outside the grant"),
            Self::ModbusFunction { function } => {
                write!(f, "function code {function} is outside the grant")
            }
            Self::ModbusAddress {
                table,
                start,
                count,
                access,
            } => write!(
                f,
                "{access} of {count} {} at {start} is outside the grant",
                table.as_str()
            ),
            Self::ModbusValue { address, value } => {
                write!(
                    f,
                    "value {value} for register {address} is outside the allowed bounds"
                )
            }
            Self::TcpPort { port } => write!(f, "TCP port {port} is outside the grant"),
        }
    }
}

/// Allow or deny, with the rule that decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Decision {
    /// The operation may proceed.
    Allow {
        /// The rule that allowed it.
        rule: Rule,
    },
    /// The operation must not reach the asset.
    Deny {
        /// The rule that decided.
        rule: Rule,
        /// Why.
        reason: DenyReason,
    },
}

impl Decision {
    pub(crate) fn deny(rule: Rule, reason: DenyReason) -> Self {
        Self::Deny { rule, reason }
    }

    /// Whether the operation may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }

    /// The deciding rule.
    pub fn rule(&self) -> &Rule {
        match self {
            Self::Allow { rule } | Self::Deny { rule, .. } => rule,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allow { rule } => write!(f, "allowed by {rule}"),
            Self::Deny { rule, reason } => write!(f, "denied: {reason} ({rule})"),
        }
    }
}
