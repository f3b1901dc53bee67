//! The plant inventory: zones and assets, loadable from a TOML file (GitOps) or the API.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::asset::Asset;
use crate::error::{PolicyError, Result};
use crate::id::{OrgName, ZoneName};

/// An IEC 62443 zone: a group of assets with the same security requirements.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// Unique name.
    pub name: ZoneName,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Vendor organisations whose vendors may request access to assets in this zone.
    #[serde(default)]
    pub vendor_orgs: Vec<OrgName>,
}

/// Zones and assets, as one document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// Zones defined by this document.
    #[serde(default)]
    pub zones: Vec<Zone>,
    /// Assets defined by this document.
    #[serde(default)]
    pub assets: Vec<Asset>,
}

/// Most assets one document may hold.
pub const MAX_ASSETS: usize = 10_000;

impl Inventory {
    /// Parses and validates a TOML document; `origin` (a file name) prefixes messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let inventory: Inventory = toml::from_str(text).map_err(|e| PolicyError::Toml {
            what: origin.to_owned(),
            message: e.to_string(),
        })?;
        inventory.validate(&[]).map_err(|e| match e {
            PolicyError::Invalid { key, message } => PolicyError::Invalid {
                key: format!("{origin}: {key}"),
                message,
            },
            other => other,
        })?;
        Ok(inventory)
    }

    /// Checks names are unique and every asset's zone is defined here or in `known_zones`.
    pub fn validate(&self, known_zones: &[ZoneName]) -> Result<()> {
        if self.assets.len() > MAX_ASSETS || self.zones.len() > MAX_ASSETS {
            return Err(PolicyError::invalid(
                "assets",
                format!("at most {MAX_ASSETS} assets and zones per document"),
            ));
        }
        let mut zones = BTreeSet::new();
        for (i, zone) in self.zones.iter().enumerate() {
            if !zones.insert(&zone.name) {
                return Err(PolicyError::invalid(
                    format!("zones[{i}].name"),
                    format!("zone `{}` is defined twice", zone.name),
                ));
            }
            if zone.description.as_ref().is_some_and(|d| d.len() > 1024) {
                return Err(PolicyError::invalid(
                    format!("zones[{i}].description"),
                    "limited to 1024 bytes",
                ));
            }
        }
        let mut assets = BTreeSet::new();
        for (i, asset) in self.assets.iter().enumerate() {
            let key = format!("assets[{i}]");
            if !assets.insert(&asset.name) {
                return Err(PolicyError::invalid(
                    format!("{key}.name"),
                    format!("asset `{}` is defined twice", asset.name),
                ));
            }
            if !zones.contains(&asset.zone) && !known_zones.contains(&asset.zone) {
                return Err(PolicyError::invalid(
                    format!("{key}.zone"),
                    format!(
                        "zone `{}` is not defined: add a [[zones]] entry named `{}`",
                        asset.zone, asset.zone
                    ),
                ));
            }
            asset.validate(&key)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLANT: &str = r#"
[[zones]]
name = "cell-a"
vendor_orgs = ["acme"]

[[assets]]
name = "plc-7"
kind = "plc"
level = "1"
zone = "cell-a"
maintenance = [{ days = "mon-fri", hours = "08:00-16:00" }]
endpoints = [{ protocol = "modbus", host = "10.0.1.7", port = 502, units = [1] }]

[[assets]]
name = "ews-1"
kind = "ews"
level = "3"
zone = "cell-a"
endpoints = [{ protocol = "ssh", host = "10.0.3.5", port = 22, user = "maint", credential = "ews-1-maint", host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE" }]
"#;

    #[test]
    fn parses_a_plant() {
        let inventory = Inventory::from_toml(PLANT, "plant.toml").unwrap();
        assert_eq!(inventory.assets.len(), 2);
        assert_eq!(inventory.zones[0].vendor_orgs[0].as_str(), "acme");
    }

    #[test]
    fn errors_name_the_key() {
        let bad = PLANT.replace(
            "zone = \"cell-a\"\nmaintenance",
            "zone = \"cell-b\"\nmaintenance",
        );
        let err = Inventory::from_toml(&bad, "plant.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("plant.toml: assets[0].zone"), "{err}");
        let bad = PLANT.replace("units = [1]", "units = []");
        let err = Inventory::from_toml(&bad, "plant.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("assets[0].endpoints[0].units"), "{err}");
        let bad = PLANT.replace("kind = \"plc\"", "kind = \"plc\"\ncolour = \"red\"");
        let err = Inventory::from_toml(&bad, "plant.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("plant.toml") && err.contains("colour"),
            "{err}"
        );
        let bad = PLANT.replace("level = \"1\"", "level = \"7\"");
        assert!(
            Inventory::from_toml(&bad, "p")
                .unwrap_err()
                .to_string()
                .contains("Purdue")
        );
    }
}
