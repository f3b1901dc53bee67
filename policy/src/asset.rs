//! Assets of the plant: what they are, where they sit, how they are reached.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{PolicyError, Result};
use crate::id::{AssetName, CredentialName, EndpointName, UserName, ZoneName};
use crate::level::PurdueLevel;
use crate::window::MaintenanceWindow;

/// What kind of device an asset is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    /// Programmable logic controller.
    Plc,
    /// Remote terminal unit.
    Rtu,
    /// Human-machine interface.
    Hmi,
    /// Engineering workstation.
    Ews,
    /// Process historian.
    Historian,
    /// Switch, router, firewall.
    Network,
}

/// A protocol a vendor may use to reach an asset.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// SSH (shell, exec, SFTP, port forwarding), proxied by the gateway.
    Ssh,
    /// Modbus/TCP, inspected request by request.
    Modbus,
    /// Plain TCP for tools otgate cannot inspect yet; only explicitly allowed ports.
    Tcp,
}

impl Protocol {
    /// The protocol as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ssh => "ssh",
            Self::Modbus => "modbus",
            Self::Tcp => "tcp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Protocol {
    type Err = PolicyError;
    fn from_str(value: &str) -> Result<Self> {
        match value {
            "ssh" => Ok(Self::Ssh),
            "modbus" => Ok(Self::Modbus),
            "tcp" => Ok(Self::Tcp),
            other => Err(PolicyError::invalid(
                "protocol",
                format!(
                    "unknown protocol `{}`: expected ssh, modbus or tcp",
                    other.chars().take(32).collect::<String>()
                ),
            )),
        }
    }
}

/// One way into an asset: a protocol at a host and port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Name of the endpoint within the asset (defaults to the protocol name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<EndpointName>,
    /// Protocol spoken there.
    pub protocol: Protocol,
    /// Host name or IP address as seen from the gateway.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Modbus unit ids behind this endpoint (Modbus only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<u8>,
    /// The asset's SSH host public key in OpenSSH format, pinned (SSH only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// The vaulted credential the gateway uses to log in (SSH only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialName>,
    /// Login user on the asset for the vaulted credential (SSH only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Endpoint {
    /// The endpoint's name, or its protocol's name when unnamed.
    pub fn label(&self) -> &str {
        self.name
            .as_ref()
            .map_or_else(|| self.protocol.as_str(), |name| name.as_str())
    }
}

/// A device of the plant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    /// Unique name.
    pub name: AssetName,
    /// Device kind.
    pub kind: AssetKind,
    /// Purdue level.
    pub level: PurdueLevel,
    /// IEC 62443 zone.
    pub zone: ZoneName,
    /// Site (plant, building) for grouping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Ways in.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Planned maintenance windows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintenance: Vec<MaintenanceWindow>,
    /// Engineers who own this asset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<UserName>,
}

const MAX_TEXT: usize = 1024;
const MAX_ENDPOINTS: usize = 32;

impl Asset {
    /// Checks what serde cannot: sizes, endpoint consistency, unique endpoint names.
    /// `key` is the dotted path of this asset in its document, for messages.
    pub fn validate(&self, key: &str) -> Result<()> {
        if self.site.as_ref().is_some_and(|s| s.len() > MAX_TEXT)
            || self
                .description
                .as_ref()
                .is_some_and(|s| s.len() > MAX_TEXT)
        {
            return Err(PolicyError::invalid(
                key,
                format!("site and description are limited to {MAX_TEXT} bytes"),
            ));
        }
        if self.endpoints.len() > MAX_ENDPOINTS {
            return Err(PolicyError::invalid(
                format!("{key}.endpoints"),
                format!("at most {MAX_ENDPOINTS} endpoints per asset"),
            ));
        }
        let mut labels = Vec::new();
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            let ekey = format!("{key}.endpoints[{i}]");
            validate_endpoint(endpoint, &ekey)?;
            if labels.contains(&endpoint.label()) {
                return Err(PolicyError::invalid(
                    ekey,
                    format!(
                        "two endpoints are called `{}`: give each a distinct `name`",
                        endpoint.label()
                    ),
                ));
            }
            labels.push(endpoint.label());
        }
        for (i, window) in self.maintenance.iter().enumerate() {
            window.validate(&format!("{key}.maintenance[{i}]"))?;
        }
        Ok(())
    }

    /// Endpoints speaking `protocol`.
    pub fn endpoints_for(&self, protocol: Protocol) -> impl Iterator<Item = &Endpoint> {
        self.endpoints
            .iter()
            .filter(move |e| e.protocol == protocol)
    }

    /// Whether the asset can be reached with `protocol`.
    pub fn offers(&self, protocol: Protocol) -> bool {
        self.endpoints_for(protocol).next().is_some()
    }
}

fn validate_endpoint(endpoint: &Endpoint, key: &str) -> Result<()> {
    let host_ok = !endpoint.host.is_empty()
        && endpoint.host.len() <= 253
        && endpoint
            .host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
    if !host_ok {
        return Err(PolicyError::invalid(
            format!("{key}.host"),
            "expected a host name or an IP address",
        ));
    }
    if endpoint.port == 0 {
        return Err(PolicyError::invalid(
            format!("{key}.port"),
            "port 0 is not a port",
        ));
    }
    match endpoint.protocol {
        Protocol::Modbus => {
            if endpoint.units.is_empty() {
                return Err(PolicyError::invalid(
                    format!("{key}.units"),
                    "a Modbus endpoint lists its unit ids, e.g. units = [1]",
                ));
            }
        }
        Protocol::Ssh | Protocol::Tcp => {
            if !endpoint.units.is_empty() {
                return Err(PolicyError::invalid(
                    format!("{key}.units"),
                    "unit ids only apply to Modbus endpoints",
                ));
            }
        }
    }
    if endpoint.protocol != Protocol::Ssh
        && (endpoint.host_key.is_some() || endpoint.credential.is_some() || endpoint.user.is_some())
    {
        return Err(PolicyError::invalid(
            key,
            "host_key, credential and user only apply to SSH endpoints",
        ));
    }
    if let Some(host_key) = &endpoint.host_key {
        let mut parts = host_key.split_whitespace();
        let algorithm_ok = parts
            .next()
            .is_some_and(|a| a.starts_with("ssh-") || a.starts_with("ecdsa-"));
        if !algorithm_ok || parts.next().is_none() || host_key.len() > 16 * 1024 {
            return Err(PolicyError::invalid(
                format!("{key}.host_key"),
                "expected an OpenSSH public key line such as `ssh-ed25519 AAAA...`",
            ));
        }
    }
    if let Some(user) = &endpoint.user
        && (user.is_empty() || user.len() > 64 || user.chars().any(|c| c.is_control() || c == ' '))
    {
        return Err(PolicyError::invalid(
            format!("{key}.user"),
            "expected a login name without spaces",
        ));
    }
    Ok(())
}
