//! The learnt models, as stored: per vendor (commands, hours, assets reached), per asset
//! (Modbus units, flows) and per vendor-and-asset (registers written, sessions).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::commands::{Calibration, Counts};
use crate::hours::HourProfile;
use crate::industrial::UnitProfile;

/// Most assets remembered per vendor, flows per asset, registers per vendor-and-asset.
pub const MAX_ITEMS: usize = 4096;

/// What is normal for one vendor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VendorProfile {
    /// Commands used.
    pub commands: Counts,
    /// The usual score of a block of this vendor's commands.
    pub calibration: Calibration,
    /// When the vendor works.
    pub hours: HourProfile,
    /// Sessions per asset.
    pub assets: BTreeMap<String, u32>,
    /// Sessions learnt.
    pub sessions: u32,
}

/// What is normal on one asset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AssetProfile {
    /// Modbus profile per unit id.
    pub units: BTreeMap<u8, UnitProfile>,
    /// Flows seen (`client>server:port`), for captures.
    pub flows: BTreeSet<String>,
    /// Most Modbus requests seen in ten seconds of one session.
    #[serde(default)]
    pub peak_rate: u32,
}

/// What one vendor does on one asset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PairProfile {
    /// Registers and coils this vendor wrote here (table and address, as one number).
    pub written: BTreeSet<u32>,
    /// Modbus requests learnt.
    pub requests: u64,
}
