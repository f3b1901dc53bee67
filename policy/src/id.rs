//! Identifiers: validated names and numeric ids that cross crate boundaries.
//!
//! Names are restricted to `[A-Za-z0-9][A-Za-z0-9._-]{0,63}` so that they are safe as SSH login
//! names (`vendor+asset` uses `+` as separator), file names, casbin subjects and log fields.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::PolicyError;

/// Longest accepted name.
pub const MAX_NAME_LEN: usize = 64;

fn check_name(kind: &'static str, value: &str) -> Result<(), PolicyError> {
    let mut chars = value.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if first_ok && rest_ok && value.len() <= MAX_NAME_LEN {
        Ok(())
    } else {
        Err(PolicyError::InvalidName {
            kind,
            value: value.chars().take(MAX_NAME_LEN + 1).collect(),
        })
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a name.
            pub fn new(value: impl Into<String>) -> Result<Self, PolicyError> {
                let value = value.into();
                check_name($kind, &value)?;
                Ok(Self(value))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = PolicyError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = PolicyError;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A user (vendor, engineer, auditor or admin) by login name.
    UserName,
    "user"
);
name_type!(
    /// An asset of the inventory (PLC, RTU, HMI, ...).
    AssetName,
    "asset"
);
name_type!(
    /// An IEC 62443 zone; zones are the domains of authorization.
    ZoneName,
    "zone"
);
name_type!(
    /// A vendor organisation.
    OrgName,
    "organisation"
);
name_type!(
    /// A credential stored in the vault (an asset's password or private key).
    CredentialName,
    "credential"
);
name_type!(
    /// A named endpoint of an asset (e.g. `ssh`, `modbus`).
    EndpointName,
    "endpoint"
);

/// A grant (an approved access request); the request and its grant share this number.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(try_from = "i64", into = "i64")]
#[schema(value_type = i64, minimum = 1)]
pub struct GrantId(i64);

impl GrantId {
    /// Wraps a positive id.
    pub fn new(value: i64) -> Result<Self, PolicyError> {
        if value > 0 {
            Ok(Self(value))
        } else {
            Err(PolicyError::InvalidGrantId(value.to_string()))
        }
    }

    /// The id as a number.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for GrantId {
    type Error = PolicyError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<GrantId> for i64 {
    fn from(value: GrantId) -> i64 {
        value.0
    }
}

impl std::str::FromStr for GrantId {
    type Err = PolicyError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let trimmed = value.trim_start_matches('#');
        trimmed
            .parse::<i64>()
            .map_err(|_| PolicyError::InvalidGrantId(value.chars().take(32).collect()))
            .and_then(Self::new)
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_plain_identifiers() {
        for ok in ["plc-7", "PLC_7", "vendor1", "a", "ews.plant-a"] {
            assert!(UserName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn names_refuse_separators_and_oddities() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            "-x",
            "a+b",
            "a b",
            "a,b",
            "*",
            "a/b",
            "é",
            long.as_str(),
        ] {
            assert!(AssetName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grant_ids_are_positive() {
        assert!(GrantId::new(0).is_err());
        assert_eq!("#42".parse::<GrantId>().map(GrantId::get).ok(), Some(42));
        assert!("x".parse::<GrantId>().is_err());
    }
}
