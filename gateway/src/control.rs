//! What the gateway needs from the control plane.

use async_trait::async_trait;
use time::OffsetDateTime;

use otgate_policy::{Asset, AssetName, CredentialName, Event, Grant, GrantId, UserName};

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

/// The secret the gateway logs in to an asset with (never shown to the vendor, never logged).
pub enum AssetSecret {
    /// A password.
    Password(String),
    /// An OpenSSH private key (PEM).
    PrivateKey(String),
}

impl std::fmt::Debug for AssetSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password([redacted])"),
            Self::PrivateKey(_) => f.write_str("PrivateKey([redacted])"),
        }
    }
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

    /// The grant a tunnel token (JWT) names, if the token is valid (signature, audience,
    /// expiry) and the grant may be used at `now`; otherwise why not.
    async fn tunnel_grant(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Result<Grant, Refusal>, GatewayError>;

    /// The grants `vendor` may use at `now`, or why they may use none (a disabled account).
    async fn grants_of(
        &self,
        vendor: &UserName,
        now: OffsetDateTime,
    ) -> Result<Result<Vec<Grant>, Refusal>, GatewayError>;

    /// Whether `vendor` registered the key with this SHA-256 fingerprint (`SHA256:...`).
    async fn has_key(&self, vendor: &UserName, fingerprint: &str) -> Result<bool, GatewayError>;

    /// The asset as in the inventory (endpoints, pinned host keys, credential names).
    async fn asset(&self, name: &AssetName) -> Result<Option<Asset>, GatewayError>;

    /// A vaulted credential, unsealed.
    async fn secret(&self, name: &CredentialName) -> Result<AssetSecret, GatewayError>;

    /// Stores and publishes a session event.
    async fn report(&self, event: Event) -> Result<(), GatewayError>;

    /// Events as the control plane publishes them (revocations, quarantines, kills, freezes),
    /// so that sessions end within milliseconds; a missed one is caught by the re-check.
    fn subscribe(&self) -> tokio::sync::mpsc::Receiver<Event>;
}
