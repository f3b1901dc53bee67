//! The terms of a grant: who may do what, where, when. The broker stores grants; the gateway
//! enforces them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::asset::Protocol;
use crate::id::{AssetName, GrantId, UserName, ZoneName};
use crate::level::PurdueLevel;
use crate::scope::Scope;
use crate::window::Window;

/// An approved access request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    /// Id (the request's id).
    pub id: GrantId,
    /// The vendor who holds it.
    pub vendor: UserName,
    /// The asset.
    pub asset: AssetName,
    /// The asset's zone.
    pub zone: ZoneName,
    /// The asset's level.
    pub level: PurdueLevel,
    /// Protocols granted.
    pub protocols: Vec<Protocol>,
    /// What may be done.
    pub scope: Scope,
    /// When.
    pub window: Window,
}

impl Grant {
    /// Whether the grant covers `now` (state aside: revocation is the broker's to say).
    pub fn is_within_window(&self, now: OffsetDateTime) -> bool {
        self.window.contains(now)
    }
}
