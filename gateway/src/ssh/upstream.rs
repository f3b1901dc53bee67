//! The gateway's own SSH connection to the asset: the endpoint from the inventory, the host
//! key pinned there (anything else: no session), and the vaulted credential.

use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};

use otgate_policy::Endpoint;

use crate::control::AssetSecret;

/// How long connecting and logging in to the asset may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Accepts exactly the pinned host key.
pub(crate) struct Pinned {
    expected: PublicKey,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.key_data() == self.expected.key_data()
            }
            PublicKeyOrCertificate::Certificate(_) => false,
        })
    }
}

/// A logged-in connection to the asset.
pub(crate) type Upstream = client::Handle<Pinned>;

/// Connects to `endpoint` of `asset` and logs in as `user`; the error is a message for the
/// vendor and the event log.
pub(crate) async fn connect(
    asset: &str,
    endpoint: &Endpoint,
    user: &str,
    secret: AssetSecret,
) -> Result<Upstream, String> {
    let pinned = endpoint.host_key.as_deref().ok_or_else(|| {
        format!("asset {asset} has no pinned host key in the inventory: no session")
    })?;
    let expected = PublicKey::from_openssh(pinned)
        .map_err(|e| format!("asset {asset}: the pinned host key cannot be read ({e})"))?;
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        nodelay: true,
        ..client::Config::default()
    });
    let address = (endpoint.host.clone(), endpoint.port);
    let where_ = format!("{asset} ({}:{})", endpoint.host, endpoint.port);
    let login = async {
        let mut handle = match client::connect(config, address, Pinned { expected }).await {
            Ok(handle) => handle,
            Err(russh::Error::UnknownKey) => {
                return Err(format!(
                    "the host key of {where_} is not the one pinned in the inventory: refusing to connect"
                ));
            }
            Err(e) => return Err(format!("{where_} is unreachable: {e}")),
        };
        let result = match secret {
            AssetSecret::Password(password) => handle.authenticate_password(user, password).await,
            AssetSecret::PrivateKey(pem) => {
                let key = russh::keys::decode_secret_key(&pem, None)
                    .map_err(|e| format!("the vaulted key for {asset} cannot be read ({e})"))?;
                let hash = handle
                    .best_supported_rsa_hash()
                    .await
                    .ok()
                    .flatten()
                    .flatten();
                handle
                    .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
                    .await
            }
        };
        match result {
            Ok(outcome) if outcome.success() => Ok(handle),
            Ok(_) => Err(format!("{where_} refused the gateway's login as {user}")),
            Err(e) => Err(format!("logging in to {where_} failed: {e}")),
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, login)
        .await
        .map_err(|_| {
            format!(
                "{where_} did not answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )
        })?
}
