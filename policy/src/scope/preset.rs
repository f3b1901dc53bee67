//! Named scope presets, made concrete for one asset and the protocols requested.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::modbus::{Access, ModbusRule, ModbusScope, Span, Table};
use super::pattern::CommandPattern;
use super::ssh::{SftpAccess, SshScope};
use super::{Scope, TcpScope};
use crate::asset::{Asset, Protocol};
use crate::error::{PolicyError, Result};

/// A named scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Look, change nothing: diagnostic commands, SFTP download, Modbus reads of every table.
    ReadOnly,
    /// Full maintenance: interactive shell, any command (destructive ones still denied), SFTP
    /// upload, Modbus reads and writes of every table, every TCP endpoint of the asset.
    Maintenance,
}

/// Commands that only look.
const READ_ONLY_COMMANDS: &[&str] = &[
    "uptime",
    "hostname",
    "date",
    "id",
    "whoami",
    "uname **",
    "df **",
    "free **",
    "ps **",
    "top -b -n *",
    "ls **",
    "stat **",
    "cat /var/log/**",
    "tail /var/log/**",
    "tail -n * /var/log/**",
    "head **",
    "journalctl **",
    "systemctl status **",
    "systemctl list-units **",
    "systemctl is-active **",
    "ip -br addr",
    "ip addr show **",
    "ip route show **",
    "ss **",
];

/// Options of read-only commands that change state.
const READ_ONLY_DENIED: &[&str] = &[
    "journalctl --vacuum-* **",
    "journalctl ** --vacuum-* **",
    "journalctl --rotate **",
    "journalctl ** --rotate **",
    "journalctl --flush **",
    "journalctl ** --flush **",
    "ss ** -K **",
    "ss ** --kill **",
];

/// Commands denied even in maintenance: they destroy the machine or hide tracks.
const MAINTENANCE_DENIED: &[&str] = &[
    "rm -rf /",
    "rm -rf / **",
    "rm ** /",
    "mkfs **",
    "mkfs.* **",
    "dd ** of=/dev/**",
    "shred **",
    "history -c",
    "unset HISTFILE",
];

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 2] = [Preset::ReadOnly, Preset::Maintenance];

    /// The preset's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::Maintenance => "maintenance",
        }
    }

    /// One line for people.
    pub fn summary(self) -> &'static str {
        match self {
            Self::ReadOnly => {
                "diagnostic commands, SFTP download, Modbus reads; no writes, no shell"
            }
            Self::Maintenance => {
                "interactive shell, any non-destructive command, SFTP upload, Modbus reads and writes"
            }
        }
    }

    /// The scope this preset means on `asset` for `protocols`.
    pub fn materialize(self, asset: &Asset, protocols: &[Protocol]) -> Result<Scope> {
        let patterns = |list: &[&str]| -> Result<Vec<CommandPattern>> {
            list.iter()
                .map(|p| {
                    CommandPattern::new(*p)
                        .map_err(|e| PolicyError::invalid("preset", e.to_string()))
                })
                .collect()
        };
        let mut scope = Scope::default();
        for protocol in protocols {
            match protocol {
                Protocol::Ssh => {
                    scope.ssh = Some(match self {
                        Self::ReadOnly => SshScope {
                            shell: false,
                            sftp: SftpAccess::Read,
                            allow: patterns(READ_ONLY_COMMANDS)?,
                            deny: patterns(READ_ONLY_DENIED)?,
                            syntax: Vec::new(),
                        },
                        Self::Maintenance => SshScope {
                            shell: true,
                            sftp: SftpAccess::Write,
                            allow: patterns(&["**"])?,
                            deny: patterns(MAINTENANCE_DENIED)?,
                            syntax: super::shell::Syntax::ALL.to_vec(),
                        },
                    });
                }
                Protocol::Modbus => {
                    let mut units: Vec<u8> = asset
                        .endpoints_for(Protocol::Modbus)
                        .flat_map(|e| e.units.iter().copied())
                        .collect();
                    units.sort_unstable();
                    units.dedup();
                    let everything = Span {
                        first: 0,
                        last: u16::MAX,
                    };
                    let rule = |access, table| ModbusRule {
                        access,
                        table,
                        range: everything,
                        values: None,
                    };
                    let mut allow = vec![
                        rule(Access::Read, Table::Coils),
                        rule(Access::Read, Table::Discrete),
                        rule(Access::Read, Table::Holding),
                        rule(Access::Read, Table::Input),
                    ];
                    let functions = match self {
                        // Reads, plus device identification; diagnostics (8) can restart comms.
                        Self::ReadOnly => vec![1, 2, 3, 4, 43],
                        Self::Maintenance => {
                            allow.push(rule(Access::Write, Table::Coils));
                            allow.push(rule(Access::Write, Table::Holding));
                            vec![1, 2, 3, 4, 5, 6, 15, 16, 22, 23, 24, 43]
                        }
                    };
                    scope.modbus = Some(ModbusScope {
                        units,
                        functions: Some(functions),
                        allow,
                    });
                }
                Protocol::Tcp => {
                    let ports: Vec<u16> =
                        asset.endpoints_for(Protocol::Tcp).map(|e| e.port).collect();
                    match self {
                        Self::ReadOnly => {
                            return Err(PolicyError::invalid(
                                "scope",
                                "the read-only preset cannot allow plain TCP (it cannot be inspected): \
                                 write a scope file with a [tcp] section",
                            ));
                        }
                        Self::Maintenance => scope.tcp = Some(TcpScope { ports }),
                    }
                }
            }
        }
        scope.validate()?;
        Ok(scope)
    }
}

impl std::str::FromStr for Preset {
    type Err = PolicyError;
    fn from_str(value: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == value).ok_or_else(|| {
            PolicyError::invalid(
                "scope",
                format!(
                    "`{}` is neither a scope file nor a preset: presets are read-only, maintenance",
                    value.chars().take(64).collect::<String>()
                ),
            )
        })
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
