//! What the gateway needs from the control plane.

use async_trait::async_trait;
use time::OffsetDateTime;

use otgate_policy::{Event, Grant, GrantId};

/// Why a grant cannot be used now, in words for the vendor ("grant 42 was revoked by eng1:
/// ...").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// The control plane could not answer (fail closed: no session).
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Storage or the broker is unreachable.
    #[error("control plane unavailable: {0}")]
    Unavailable(String),
}

/// The gateway's view of the broker.
#[async_trait]
pub trait ControlPlane: Send + Sync {
    /// The grant, if it may be used at `now` (approved, in its window, not revoked, vendor and
    /// asset not quarantined); otherwise why not.
    async fn grant(
        &self,
        id: GrantId,
        now: OffsetDateTime,
    ) -> Result<Result<Grant, Refusal>, GatewayError>;

    /// Stores and publishes a session event.
    async fn report(&self, event: Event) -> Result<(), GatewayError>;
}
