//! The gateway's door to the control plane when both run in this process: the broker itself.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use otgate_broker::{Broker, CredentialKind};
use otgate_gateway::{AssetSecret, ControlPlane, GatewayError, Refusal};
use otgate_policy::{Asset, AssetName, CredentialName, Event, Grant, GrantId, UserName};

/// The in-process broker as the gateway's control plane.
pub struct LocalControl(pub Arc<Broker>);

fn unavailable(error: impl std::fmt::Display) -> GatewayError {
    GatewayError::Unavailable(error.to_string())
}

#[async_trait]
impl ControlPlane for LocalControl {
    async fn grant(
        &self,
        id: GrantId,
        now: OffsetDateTime,
    ) -> Result<Result<Grant, Refusal>, GatewayError> {
        Ok(self
            .0
            .access(id, now)
            .await
            .map_err(unavailable)?
            .map_err(|refusal| Refusal(refusal.to_string())))
    }

    async fn tunnel_grant(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Result<Grant, Refusal>, GatewayError> {
        let claims = match self.0.verify_token(token) {
            Ok(claims) => claims,
            Err(refusal) => return Ok(Err(Refusal(refusal.to_string()))),
        };
        let Ok(id) = GrantId::new(claims.grant) else {
            return Ok(Err(Refusal("the tunnel token names no grant".into())));
        };
        let grant = match self.grant(id, now).await? {
            Ok(grant) => grant,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if grant.vendor.as_str() != claims.sub {
            return Ok(Err(Refusal(format!(
                "the tunnel token is for {}, grant {id} belongs to {}",
                claims.sub, grant.vendor
            ))));
        }
        Ok(Ok(grant))
    }

    async fn grants_of(
        &self,
        vendor: &UserName,
        now: OffsetDateTime,
    ) -> Result<Result<Vec<Grant>, Refusal>, GatewayError> {
        Ok(self
            .0
            .usable_grants(vendor, now)
            .await
            .map_err(unavailable)?
            .map_err(|refusal| Refusal(refusal.to_string())))
    }

    async fn has_key(&self, vendor: &UserName, fingerprint: &str) -> Result<bool, GatewayError> {
        self.0
            .has_key(vendor, fingerprint)
            .await
            .map_err(unavailable)
    }

    async fn asset(&self, name: &AssetName) -> Result<Option<Asset>, GatewayError> {
        self.0.find_asset(name).await.map_err(unavailable)
    }

    async fn secret(&self, name: &CredentialName) -> Result<AssetSecret, GatewayError> {
        let (kind, secret) = self.0.credential_secret(name).await.map_err(unavailable)?;
        let text = String::from_utf8(secret.expose().clone())
            .map_err(|_| unavailable(format!("credential {name} is not text")))?;
        Ok(match kind {
            CredentialKind::Password => AssetSecret::Password(text),
            CredentialKind::PrivateKey => AssetSecret::PrivateKey(text),
        })
    }

    async fn report(&self, event: Event) -> Result<(), GatewayError> {
        self.0.record(event).await.map_err(unavailable)
    }

    fn subscribe(&self) -> tokio::sync::mpsc::Receiver<Event> {
        let mut events = self.0.subscribe();
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(stored) => {
                        if tx.send(stored.event).await.is_err() {
                            return;
                        }
                    }
                    // Missed events are caught by the gateway's periodic re-check.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the gateway missed control-plane events");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        rx
    }
}
