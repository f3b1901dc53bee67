//! A grant's scope: what may be done over each protocol, and its evaluation.
//!
//! Evaluation is a pure function from a scope and an operation to a [`Decision`] naming the rule
//! that decided. Nothing is allowed unless a rule allows it.

mod modbus;
mod pattern;
mod preset;
mod shell;
mod ssh;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use modbus::{
    Access, ModbusRead, ModbusRequest, ModbusRule, ModbusScope, ModbusWrite, Span, Table,
    WriteValues,
};
pub use pattern::{CommandPattern, PatternError};
pub use preset::Preset;
pub use shell::{CommandLine, LexError, SimpleCommand, Syntax, lex};
pub use ssh::{SftpAccess, SshScope};

use crate::asset::Protocol;
use crate::decision::{Decision, DenyReason, Rule};
use crate::error::{PolicyError, Result};

/// Plain TCP ports that may be reached.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpScope {
    /// Allowed destination ports on the asset.
    pub ports: Vec<u16>,
}

/// What a grant allows, per protocol. A protocol without a section allows nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// SSH: commands, shell, SFTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshScope>,
    /// Modbus/TCP: units, functions, ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modbus: Option<ModbusScope>,
    /// Plain TCP: ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpScope>,
}

/// Something a vendor tries to do inside a grant.
#[derive(Clone, Copy, Debug)]
pub enum Operation<'a> {
    /// Run a command (SSH exec, or a line of the gateway's console), as sent.
    Exec(&'a [u8]),
    /// Open an interactive shell.
    Shell,
    /// Transfer files over SFTP.
    Sftp {
        /// Whether the operation writes.
        write: bool,
    },
    /// Send a Modbus request.
    Modbus(&'a ModbusRequest<'a>),
    /// Open a plain TCP connection.
    Tcp {
        /// Destination port.
        port: u16,
    },
}

/// Most command patterns per scope.
const MAX_PATTERNS: usize = 256;

impl Scope {
    /// Parses and validates a scope file; `origin` (a file name) prefixes messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let scope: Scope = toml::from_str(text).map_err(|e| PolicyError::Toml {
            what: origin.to_owned(),
            message: e.to_string(),
        })?;
        scope.validate().map_err(|e| match e {
            PolicyError::Invalid { key, message } => PolicyError::Invalid {
                key: format!("{origin}: {key}"),
                message,
            },
            other => other,
        })?;
        Ok(scope)
    }

    /// Checks limits and consistency that serde cannot.
    pub fn validate(&self) -> Result<()> {
        if let Some(ssh) = &self.ssh
            && (ssh.allow.len() > MAX_PATTERNS || ssh.deny.len() > MAX_PATTERNS)
        {
            return Err(PolicyError::invalid(
                "ssh",
                format!("at most {MAX_PATTERNS} allow and {MAX_PATTERNS} deny patterns"),
            ));
        }
        if let Some(modbus) = &self.modbus {
            modbus.validate()?;
        }
        if let Some(tcp) = &self.tcp
            && (tcp.ports.is_empty() || tcp.ports.contains(&0))
        {
            return Err(PolicyError::invalid(
                "tcp.ports",
                "list the TCP ports this grant may reach, e.g. ports = [44818]",
            ));
        }
        if self.protocols().is_empty() {
            return Err(PolicyError::invalid(
                "scope",
                "the scope allows nothing: add an [ssh], [modbus] or [tcp] section",
            ));
        }
        Ok(())
    }

    /// Protocols that have a section.
    pub fn protocols(&self) -> Vec<Protocol> {
        let mut protocols = Vec::new();
        if self.ssh.is_some() {
            protocols.push(Protocol::Ssh);
        }
        if self.modbus.is_some() {
            protocols.push(Protocol::Modbus);
        }
        if self.tcp.is_some() {
            protocols.push(Protocol::Tcp);
        }
        protocols
    }

    /// Decides whether `operation` is allowed.
    pub fn check(&self, operation: &Operation<'_>) -> Decision {
        let missing = |protocol| {
            Decision::deny(
                Rule::new(protocol_section(protocol), "absent"),
                DenyReason::ProtocolNotGranted { protocol },
            )
        };
        match operation {
            Operation::Exec(command) => self
                .ssh
                .as_ref()
                .map_or_else(|| missing(Protocol::Ssh), |ssh| ssh.check_command(command)),
            Operation::Shell => self
                .ssh
                .as_ref()
                .map_or_else(|| missing(Protocol::Ssh), SshScope::check_shell),
            Operation::Sftp { write } => self
                .ssh
                .as_ref()
                .map_or_else(|| missing(Protocol::Ssh), |ssh| ssh.check_sftp(*write)),
            Operation::Modbus(request) => self
                .modbus
                .as_ref()
                .map_or_else(|| missing(Protocol::Modbus), |modbus| modbus.check(request)),
            Operation::Tcp { port } => match &self.tcp {
                None => missing(Protocol::Tcp),
                Some(tcp) if tcp.ports.contains(port) => Decision::Allow {
                    rule: Rule::new("tcp.ports", format!("{:?}", tcp.ports)),
                },
                Some(tcp) => Decision::deny(
                    Rule::new("tcp.ports", format!("{:?}", tcp.ports)),
                    DenyReason::TcpPort { port: *port },
                ),
            },
        }
    }
}

fn protocol_section(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Ssh => "[ssh]",
        Protocol::Modbus => "[modbus]",
        Protocol::Tcp => "[tcp]",
    }
}

#[cfg(test)]
mod tests;
