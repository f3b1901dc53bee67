//! What the detector reads: sessions as they start, and what happens in them (commands,
//! Modbus requests, forwards, file transfers, logins), each with its verdict.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use otgate_policy::{MaintenanceWindow, PurdueLevel};

/// A session as it starts: who, where, and the asset's place in the plant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionContext {
    /// The session (recording) id.
    pub id: String,
    /// The grant it runs under.
    pub grant: Option<i64>,
    /// The vendor.
    pub vendor: String,
    /// The asset.
    pub asset: String,
    /// The asset's zone.
    pub zone: Option<String>,
    /// The asset's Purdue level, when known (unknown is treated as level 1: strictest).
    pub level: Option<PurdueLevel>,
    /// The asset's addresses (host names and IP addresses of its endpoints).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The asset's maintenance windows.
    #[serde(default)]
    pub maintenance: Vec<MaintenanceWindow>,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

/// A Modbus table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Coils (read-write bits).
    Coils,
    /// Discrete inputs (read-only bits).
    DiscreteInputs,
    /// Holding registers (read-write words).
    Holding,
    /// Input registers (read-only words).
    Input,
}

impl Table {
    /// Reads the recorder's table names (`holding registers`) and the short ones (`holding`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "coils" | "coil" => Some(Self::Coils),
            "discrete inputs" | "discrete" | "discrete_inputs" => Some(Self::DiscreteInputs),
            "holding registers" | "holding" => Some(Self::Holding),
            "input registers" | "input" => Some(Self::Input),
            _ => None,
        }
    }

    /// The name in words.
    pub fn name(self) -> &'static str {
        match self {
            Self::Coils => "coil",
            Self::DiscreteInputs => "discrete input",
            Self::Holding => "holding",
            Self::Input => "input register",
        }
    }
}

/// A Modbus request as the gateway saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModbusRequest {
    /// Unit id.
    pub unit: u8,
    /// Function code.
    pub function: u8,
    /// Table read or written.
    #[serde(default)]
    pub table: Option<Table>,
    /// First address.
    #[serde(default)]
    pub start: Option<u16>,
    /// Number of items.
    #[serde(default)]
    pub count: Option<u16>,
    /// Values written.
    #[serde(default)]
    pub values: Vec<u16>,
    /// Exception code in the response, if any.
    #[serde(default)]
    pub exception: Option<u8>,
}

impl ModbusRequest {
    /// Whether the request writes.
    pub fn is_write(&self) -> bool {
        matches!(self.function, 5 | 6 | 15 | 16 | 22 | 23)
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Observed {
    /// A command line, allowed or denied by the grant's scope.
    Command {
        /// The line.
        line: String,
        /// Whether the scope let it through.
        allowed: bool,
    },
    /// A Modbus request.
    Modbus {
        /// The request.
        #[serde(flatten)]
        request: ModbusRequest,
        /// Whether the scope let it through.
        allowed: bool,
    },
    /// A port forward.
    Forward {
        /// Target host.
        host: String,
        /// Target port.
        port: u16,
        /// Whether the scope let it through.
        allowed: bool,
    },
    /// A file transfer.
    FileTransfer {
        /// Path on the asset.
        path: String,
        /// Whether it went to the asset.
        upload: bool,
        /// Whether the scope let it through.
        allowed: bool,
    },
    /// A plain TCP flow seen in a capture (offline evaluation): `client` talked to
    /// `server:port` with a payload that is not Modbus.
    Flow {
        /// The client address.
        client: String,
        /// The server address.
        server: String,
        /// The server port.
        port: u16,
    },
}

impl Observed {
    /// Whether the scope refused it.
    pub fn denied(&self) -> bool {
        match self {
            Self::Command { allowed, .. }
            | Self::Modbus { allowed, .. }
            | Self::Forward { allowed, .. }
            | Self::FileTransfer { allowed, .. } => !allowed,
            Self::Flow { .. } => false,
        }
    }
}

/// One event of a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The session.
    pub session: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What.
    #[serde(flatten)]
    pub what: Observed,
}
