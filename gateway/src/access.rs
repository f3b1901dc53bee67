//! What the gateway's protocols share: the control plane, the live registry and the
//! recorder ([`Shared`]), and the access a usable grant gives a connection ([`Access`]):
//! the asset, a token the grant's re-check cancels when the grant stops being usable, and
//! notices for the vendor (the window is about to end).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::ssh_key::Fingerprint;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use otgate_policy::{Asset, Endpoint, Event, Grant, Protocol};
use otgate_recorder::Recorder;

use crate::control::ControlPlane;
use crate::registry::{Registered, Registry};

/// How long before the grant's window ends the vendor is warned.
const WINDOW_WARNING: time::Duration = time::Duration::minutes(5);

/// What every gateway connection shares: the control plane, the live registry, the
/// recorder.
pub(crate) struct Shared {
    /// The broker, local or remote.
    pub(crate) control: Arc<dyn ControlPlane>,
    /// Live sessions, for kills, freezes and revocations.
    pub(crate) registry: Arc<Registry>,
    /// Every session is recorded.
    pub(crate) recorder: Recorder,
    /// The CA that signs vendors' SSH user certificates.
    pub(crate) user_ca: Fingerprint,
    /// How often a connection re-checks its grant.
    pub(crate) recheck: Duration,
    /// Cancelled when the gateway stops.
    pub(crate) shutdown: CancellationToken,
}

impl Shared {
    /// Stores and publishes an event; a failure is logged (the session goes on).
    pub(crate) async fn report(&self, event: Event) {
        if let Err(error) = self.control.report(event).await {
            tracing::error!(%error, "a gateway event could not be stored");
        }
    }

    /// Asks the control plane again whether the grant is usable now, before a new channel
    /// opens: a revocation between two re-checks cannot open one. A refusal ends the
    /// connection's sessions as the re-check would.
    pub(crate) async fn confirm(&self, access: &Access) -> Result<(), String> {
        let reason = if access.token.is_cancelled() {
            access
                .ended
                .lock()
                .ok()
                .and_then(|slot| slot.clone())
                .unwrap_or_else(|| "the grant is no longer usable".into())
        } else {
            match self
                .control
                .grant(access.grant.id, OffsetDateTime::now_utc())
                .await
            {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(refusal)) => refusal.0,
                Err(e) => format!("the grant cannot be confirmed ({e})"),
            }
        };
        if let Ok(mut slot) = access.ended.lock() {
            slot.get_or_insert_with(|| reason.clone());
        }
        access.token.cancel();
        Err(reason)
    }

    /// The access a usable grant gives: its asset, and a token that the grant's re-check
    /// cancels when the grant stops being usable.
    pub(crate) async fn resolve(self: &Arc<Self>, grant: Grant) -> Result<Access, String> {
        let asset = match self.control.asset(&grant.asset).await {
            Ok(Some(asset)) => asset,
            Ok(None) => {
                return Err(format!(
                    "asset {} is no longer in the inventory",
                    grant.asset
                ));
            }
            Err(e) => return Err(format!("the control plane is unavailable ({e})")),
        };
        // A PLC has no SSH endpoint: its vendors log in for port forwarding only.
        let endpoint = asset
            .endpoints
            .iter()
            .find(|e| e.protocol == Protocol::Ssh)
            .cloned();
        let token = self.shutdown.child_token();
        let ended = Arc::new(Mutex::new(None));
        let (notice, _) = tokio::sync::watch::channel(None);
        tokio::spawn(watch(
            self.clone(),
            grant.id,
            grant.window.end,
            token.clone(),
            ended.clone(),
            notice.clone(),
        ));
        Ok(Access {
            grant,
            asset,
            endpoint,
            token,
            ended,
            notice,
        })
    }
}

/// A usable grant, resolved at login.
pub(crate) struct Access {
    pub(crate) grant: Grant,
    pub(crate) asset: Asset,
    /// The asset's SSH endpoint; `None` when the asset is reached by forwarding only.
    pub(crate) endpoint: Option<Endpoint>,
    /// Cancelled when the grant stops being usable, the gateway stops or the connection ends.
    pub(crate) token: CancellationToken,
    /// Why the token was cancelled, for the vendor's terminal.
    pub(crate) ended: Arc<Mutex<Option<String>>>,
    /// Notices for the vendor's terminal (the window is about to end).
    pub(crate) notice: tokio::sync::watch::Sender<Option<String>>,
}

impl Access {
    /// Why a session of this access ended: its own reason (a kill), else the grant's or
    /// the connection's (revocation, quarantine, window end), else shutdown.
    pub(crate) fn end_reason(&self, session: &Registered) -> String {
        [&session.ended, &self.ended]
            .into_iter()
            .find_map(|slot| slot.lock().ok().and_then(|reason| reason.clone()))
            .unwrap_or_else(|| "the gateway is shutting down".into())
    }
}

/// Re-checks the grant until the session ends; cancels it with the reason when the grant
/// stops being usable or cannot be confirmed (fail closed).
async fn watch(
    shared: Arc<Shared>,
    grant: otgate_policy::GrantId,
    window_end: OffsetDateTime,
    token: CancellationToken,
    ended: Arc<Mutex<Option<String>>>,
    notice: tokio::sync::watch::Sender<Option<String>>,
) {
    let mut tick = tokio::time::interval(shared.recheck);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {
                let now = OffsetDateTime::now_utc();
                if !warned && window_end - now <= WINDOW_WARNING {
                    warned = true;
                    let minutes = ((window_end - now).whole_seconds().max(0) + 59) / 60;
                    notice.send_replace(Some(format!(
                        "grant {grant} ends at {window_end} (in about {minutes} min): the session will be closed then"
                    )));
                }
                let reason = match shared.control.grant(grant, now).await {
                    Ok(Ok(_)) => continue,
                    Ok(Err(refusal)) => refusal.0,
                    Err(error) => format!("the grant cannot be confirmed ({error}): ending the session (fail closed)"),
                };
                if let Ok(mut slot) = ended.lock() {
                    *slot = Some(reason);
                }
                token.cancel();
                return;
            }
        }
    }
}
