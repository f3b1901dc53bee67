//! The SSH gateway: vendors log in with stock OpenSSH and the user certificate the broker
//! issued for their grant; the gateway logs in to the asset with the pinned host key and the
//! vaulted credential, checks every command against the grant's scope, records everything,
//! and ends the session the moment the grant stops being usable.

mod channel;
mod console;
mod login;
pub mod sftp;
mod shellguard;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{Certificate, HashAlg, PrivateKey, PublicKey};
use russh::server::{self, Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use otgate_policy::{Event, EventKind};
use otgate_recorder::Recorder;

use crate::access::{Access, Shared};
use crate::control::{ControlPlane, GatewayError};
use crate::forward;
use crate::registry::Registry;
use crate::tunnel::{TunnelConfig, TunnelGateway};
use login::{check_certificate, check_pick, list_grants, parse_login, pick_grant};
use upstream::Upstream;

/// Environment variables a vendor may pass to the asset.
fn env_allowed(name: &str) -> bool {
    name == "LANG" || name == "TERM" || name.starts_with("LC_")
}

/// How the SSH gateway runs.
pub struct SshConfig {
    /// The gateway's host key (generated once, persisted).
    pub host_key: PrivateKey,
    /// The CA that signs vendors' user certificates.
    pub user_ca: PublicKey,
    /// How often a running session re-checks its grant (a missed revocation message cannot
    /// keep a session alive longer than this).
    pub recheck: Duration,
}

/// The outcome of a login: access, or a message that explains what to do.
pub(crate) struct Login {
    user: String,
    outcome: Result<Access, String>,
}

/// One vendor connection.
struct Connection {
    shared: Arc<Shared>,
    peer: Option<SocketAddr>,
    login: Option<Arc<Login>>,
    upstream: Arc<tokio::sync::Mutex<Option<Arc<Upstream>>>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(Ok(access)) = self.login.as_ref().map(|l| &l.outcome) {
            access.token.cancel();
        }
    }
}

struct Factory {
    shared: Arc<Shared>,
}

impl server::Server for Factory {
    type Handler = Connection;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Connection {
        Connection {
            shared: self.shared.clone(),
            peer,
            login: None,
            upstream: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    fn handle_session_error(&mut self, error: russh::Error) {
        tracing::debug!(%error, "a vendor connection ended with an error");
    }
}

impl Connection {
    /// Records a refused channel.
    async fn refuse_channel(&self, user: &str, access: &Access, reason: String) {
        self.shared
            .report(
                Event::now(EventKind::SessionRefused {
                    user: user.to_owned(),
                    grant: Some(access.grant.id),
                    reason,
                })
                .by(Some(access.grant.vendor.clone()))
                .in_zone(Some(access.grant.zone.clone())),
            )
            .await;
    }

    /// Records a refused login or session (an event, and the log).
    async fn report_refusal(
        &self,
        user: &str,
        grant: Option<otgate_policy::GrantId>,
        reason: String,
    ) {
        tracing::info!(%user, %reason, "login refused");
        self.shared
            .report(
                Event::now(EventKind::SessionRefused {
                    user: user.to_owned(),
                    grant,
                    reason,
                })
                .from_addr(self.peer.map(|p| p.ip())),
            )
            .await;
    }

    /// A login accepted only to say on the vendor's terminal why no session opens: recorded
    /// as a refusal now.
    async fn explained(
        &mut self,
        user: &str,
        grant: Option<otgate_policy::GrantId>,
        outcome: Result<Access, String>,
    ) -> Auth {
        if let Err(message) = &outcome {
            self.report_refusal(user, grant, message.clone()).await;
        }
        self.login = Some(Arc::new(Login {
            user: user.to_owned(),
            outcome,
        }));
        Auth::Accept
    }

    async fn refuse(
        &self,
        user: &str,
        grant: Option<otgate_policy::GrantId>,
        reason: String,
    ) -> Auth {
        self.report_refusal(user, grant, reason).await;
        Auth::Reject {
            proceed_with_methods: Some(MethodSet::from(&[MethodKind::PublicKey][..])),
            partial_success: false,
        }
    }
}

impl server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &Certificate,
    ) -> Result<Auth, Self::Error> {
        let target = parse_login(user);
        let now = OffsetDateTime::now_utc();
        let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let grant_id =
            match check_certificate(certificate, &self.shared.user_ca, &target.vendor, unix) {
                Ok(id) => id,
                Err(reason) => return Ok(self.refuse(user, None, reason).await),
            };
        let grant = match self.shared.control.grant(grant_id, now).await {
            Ok(Ok(grant)) => grant,
            Ok(Err(refusal)) => return Ok(self.refuse(user, Some(grant_id), refusal.0).await),
            Err(GatewayError::Unavailable(e)) => {
                return Ok(self
                    .refuse(
                        user,
                        Some(grant_id),
                        format!("the control plane is unavailable ({e}): no session (fail closed)"),
                    )
                    .await);
            }
        };
        if grant.vendor.as_str() != target.vendor {
            return Ok(self
                .refuse(
                    user,
                    Some(grant_id),
                    format!("grant {grant_id} belongs to {}", grant.vendor),
                )
                .await);
        }
        // A wrong target is explained on the vendor's terminal, which SSH only allows after login.
        let outcome = match check_pick(&target, &grant) {
            Ok(()) => self.shared.resolve(grant).await,
            Err(message) => {
                let grants = self
                    .shared
                    .control
                    .grants_of(&grant.vendor, now)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                Err(format!(
                    "{message}.\r\n{}",
                    list_grants(&target.vendor, &grants)
                ))
            }
        };
        Ok(self.explained(user, Some(grant_id), outcome).await)
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        // A registered key logs in when it leads to exactly one usable grant.
        let target = parse_login(user);
        let Ok(vendor) = otgate_policy::UserName::new(&target.vendor) else {
            return Ok(self.refuse(user, None, "not a user name".into()).await);
        };
        let fingerprint = key.public_key.fingerprint(HashAlg::Sha256).to_string();
        match self.shared.control.has_key(&vendor, &fingerprint).await {
            Ok(true) => {}
            Ok(false) => {
                let reason = format!(
                    "key {fingerprint} is not registered for {vendor}: use your grant's certificate (otgate grant cert ID)"
                );
                return Ok(self.refuse(user, None, reason).await);
            }
            Err(e) => {
                let reason = format!("the control plane is unavailable ({e})");
                return Ok(self.refuse(user, None, reason).await);
            }
        }
        let grants = match self
            .shared
            .control
            .grants_of(&vendor, OffsetDateTime::now_utc())
            .await
        {
            Ok(grants) => grants,
            Err(e) => {
                let reason = format!("the control plane is unavailable ({e})");
                return Ok(self.refuse(user, None, reason).await);
            }
        };
        // Why no grant may be used (a disabled account) is shown on the terminal, like a
        // grant that does not match.
        let picked = grants
            .map_err(|refusal| refusal.0)
            .and_then(|grants| pick_grant(&target, &grants));
        let outcome = match picked {
            Ok(grant) => self.shared.resolve(grant).await,
            Err(message) => Err(message),
        };
        Ok(self.explained(user, None, outcome).await)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(login) = self.login.clone() else {
            return Ok(());
        };
        if let Ok(access) = &login.outcome
            && let Err(reason) = self.shared.confirm(access).await
        {
            self.refuse_channel(&login.user, access, format!("session refused: {reason}"))
                .await;
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        reply.accept().await;
        let task = channel::ChannelTask {
            shared: self.shared.clone(),
            login,
            upstream: self.upstream.clone(),
            peer: self.peer,
        };
        tokio::spawn(task.run(channel));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _: &str,
        _: u32,
        reply: server::ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(login) = self.login.clone() else {
            return Ok(());
        };
        let Ok(access) = &login.outcome else {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let decided = match self.shared.confirm(access).await {
            Ok(()) => forward::decide(access, host, port),
            Err(reason) => Err(reason),
        };
        let decided = match decided {
            Ok(endpoint) => forward::connect(&endpoint).await.map(|tcp| (endpoint, tcp)),
            Err(reason) => Err(reason),
        };
        match decided {
            Ok((endpoint, tcp)) => {
                reply.accept().await;
                let (shared, peer) = (self.shared.clone(), self.peer);
                tokio::spawn(async move {
                    if let Ok(access) = &login.outcome {
                        let stream = channel.into_stream();
                        let id = otgate_recorder::layout::new_session_id();
                        forward::relay(shared, access, stream, tcp, endpoint, peer, "forward", id)
                            .await;
                    }
                });
            }
            Err(reason) => {
                let reason = format!("port forward to {host}:{port} refused: {reason}");
                self.refuse_channel(&login.user, access, reason).await;
                reply
                    .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                    .await;
            }
        }
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _: &str,
        _: u32,
        _: u32,
        _: u32,
        _: u32,
        _: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        _: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if env_allowed(name) {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        _: u32,
        _: u32,
        _: u32,
        _: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // SFTP when the scope allows at least downloads; nothing else.
        let allowed = name == "sftp"
            && self.login.as_ref().is_some_and(|login| {
                login.outcome.as_ref().is_ok_and(|access| {
                    access
                        .grant
                        .scope
                        .check(&otgate_policy::Operation::Sftp { write: false })
                        .is_allowed()
                })
            });
        if allowed {
            session.channel_success(channel)
        } else {
            if let Some(login) = &self.login {
                self.shared
                    .report(Event::now(EventKind::SessionRefused {
                        user: login.user.clone(),
                        grant: login.outcome.as_ref().ok().map(|a| a.grant.id),
                        reason: format!("subsystem {name} refused: the grant does not allow it"),
                    }))
                    .await;
            }
            session.channel_failure(channel)
        }
    }
}

/// The SSH gateway.
pub struct SshGateway {
    shared: Arc<Shared>,
    config: Arc<server::Config>,
}

impl SshGateway {
    /// A gateway asking `control`, recording with `recorder`, stopping with `shutdown`.
    pub fn new(
        config: SshConfig,
        control: Arc<dyn ControlPlane>,
        recorder: Recorder,
        shutdown: CancellationToken,
    ) -> Self {
        let ca = config.user_ca.fingerprint(HashAlg::Sha256);
        let server = server::Config {
            keys: vec![config.host_key],
            auth_rejection_time: Duration::from_millis(300),
            auth_rejection_time_initial: Some(Duration::ZERO),
            inactivity_timeout: Some(Duration::from_secs(3600)),
            keepalive_interval: Some(Duration::from_secs(30)),
            methods: MethodSet::from(&[MethodKind::PublicKey][..]),
            // Keystrokes and their echo are single small packets: no Nagle delay.
            nodelay: true,
            ..server::Config::default()
        };
        Self {
            shared: Arc::new(Shared {
                control,
                registry: Arc::new(Registry::default()),
                recorder,
                user_ca: ca,
                recheck: config.recheck,
                shutdown,
            }),
            config: Arc::new(server),
        }
    }

    /// The QUIC tunnel endpoint, sharing this gateway's control plane, registry and
    /// recorder (so kills, freezes and revocations reach tunnel streams too).
    pub fn tunnel(&self, config: TunnelConfig) -> Result<TunnelGateway, GatewayError> {
        Ok(TunnelGateway {
            shared: self.shared.clone(),
            server: crate::tunnel::server_config(config)?,
        })
    }

    /// The live sessions.
    pub fn registry(&self) -> Arc<Registry> {
        self.shared.registry.clone()
    }

    /// Serves vendors on `listener` until shutdown.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> Result<(), GatewayError> {
        let mut events = self.shared.control.subscribe();
        let (registry, stop) = (self.shared.registry.clone(), self.shared.shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    event = events.recv() => match event {
                        Some(event) => {
                            let touched = registry.apply(&event);
                            if touched > 0 {
                                tracing::info!(kind = event.kind.name(), touched, "sessions acted on");
                            }
                        }
                        None => return,
                    },
                }
            }
        });
        let mut factory = Factory {
            shared: self.shared.clone(),
        };
        let running = factory.run_on_socket(self.config, &listener);
        let handle = running.handle();
        let shutdown = self.shared.shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.shutdown("the gateway is shutting down".into());
        });
        running
            .await
            .map_err(|e| GatewayError::Unavailable(format!("the SSH listener failed: {e}")))
    }
}
