//! Purdue model levels.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::PolicyError;

/// A level of the Purdue reference model, from the physical process (0) to the enterprise (5),
/// with the industrial DMZ at 3.5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PurdueLevel {
    /// Level 0: sensors and actuators.
    L0,
    /// Level 1: basic control (PLCs, RTUs).
    L1,
    /// Level 2: supervisory control (HMIs, SCADA).
    L2,
    /// Level 3: site operations (historians, engineering workstations).
    L3,
    /// Level 3.5: the industrial DMZ.
    L3_5,
    /// Level 4: site business systems.
    L4,
    /// Level 5: enterprise.
    L5,
}

impl PurdueLevel {
    /// Every level, lowest first.
    pub const ALL: [PurdueLevel; 7] = [
        Self::L0,
        Self::L1,
        Self::L2,
        Self::L3,
        Self::L3_5,
        Self::L4,
        Self::L5,
    ];

    /// The level as written in configuration (`"3.5"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::L0 => "0",
            Self::L1 => "1",
            Self::L2 => "2",
            Self::L3 => "3",
            Self::L3_5 => "3.5",
            Self::L4 => "4",
            Self::L5 => "5",
        }
    }

    /// Levels 0 and 1 touch the physical process directly.
    pub fn is_control(self) -> bool {
        matches!(self, Self::L0 | Self::L1)
    }
}

impl std::str::FromStr for PurdueLevel {
    type Err = PolicyError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let trimmed = value.trim().trim_start_matches(['L', 'l']);
        Self::ALL
            .into_iter()
            .find(|level| level.as_str() == trimmed)
            .ok_or_else(|| PolicyError::InvalidLevel(value.chars().take(16).collect()))
    }
}

impl TryFrom<String> for PurdueLevel {
    type Error = PolicyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<PurdueLevel> for String {
    fn from(value: PurdueLevel) -> String {
        value.as_str().to_owned()
    }
}

impl fmt::Display for PurdueLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip_and_order() {
        for level in PurdueLevel::ALL {
            assert_eq!(level.as_str().parse::<PurdueLevel>().ok(), Some(level));
        }
        assert!(PurdueLevel::L3 < PurdueLevel::L3_5 && PurdueLevel::L3_5 < PurdueLevel::L4);
        assert_eq!("L1".parse::<PurdueLevel>().ok(), Some(PurdueLevel::L1));
        assert!("6".parse::<PurdueLevel>().is_err());
    }
}

crate::schema::string_schema!(PurdueLevel, "Purdue level: 0, 1, 2, 3, 3.5, 4 or 5", "1");
