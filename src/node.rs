//! A running node: the broker, its clock, the recording indexer, and the HTTPS API, under one
//! cancellation token and task tracker, so shutdown is one mechanism.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use otgate_broker::{Broker, LocalBus};
use otgate_policy::{Event, EventKind};

use otgate_gateway::ssh::{SshConfig, SshGateway};
use otgate_gateway::tunnel::TunnelConfig;
use otgate_recorder::{Recorder, RecorderConfig};

use crate::config::Config;
use crate::control::LocalControl;
use crate::indexer::Indexer;

/// How often the clock applies grant activation, expiry and quarantine ends.
const TICK: Duration = Duration::from_secs(1);

/// A started node.
pub struct Node {
    /// The control plane.
    pub broker: Arc<Broker>,
    /// Where the API listens, when this node serves it.
    pub api: Option<SocketAddr>,
    /// Where the SSH gateway listens, and its host key, when this node runs it.
    pub ssh: Option<(SocketAddr, ssh_key::PublicKey)>,
    /// Where the QUIC tunnel listens (UDP), when this node runs the gateway.
    pub tunnel: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Node {
    /// Opens everything the configuration names and starts serving. `listen` overrides the
    /// configured API address.
    pub async fn start(
        config: &Config,
        listen: Option<SocketAddr>,
        ssh_listen: Option<SocketAddr>,
    ) -> Result<Self> {
        // Fail closed: a node that could not sign recordings does not start.
        let recording_key = otgate_recorder::RecordingKey::load(&config.recording_key)
            .context("loading the recording key")?;
        std::fs::create_dir_all(&config.recordings.dir).with_context(|| {
            format!(
                "creating the recordings directory {}",
                config.recordings.dir.display()
            )
        })?;
        let archive = config
            .recordings
            .archive()
            .context("opening the recording storage")?;
        let broker = Arc::new(
            Broker::open(&config.broker, Arc::new(LocalBus::new(4096)))
                .await
                .context("opening the control plane")?,
        );
        if let Some(inventory) = config.inventory()? {
            broker
                .load_inventory(None, inventory)
                .await
                .context("importing the inventory")?;
        }
        let verifying_key = recording_key.verifying_key();
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let mut roles = Vec::new();
        if config.roles.broker {
            roles.push("broker".to_owned());
            let (clock, stop) = (broker.clone(), shutdown.clone());
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(TICK);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {
                            if let Err(e) = clock.advance(OffsetDateTime::now_utc()).await {
                                tracing::error!(error = %e, "applying grant and quarantine times failed");
                            }
                        }
                    }
                }
            });
            let indexer = Indexer {
                broker: broker.clone(),
                archive: archive.clone(),
                key: recording_key.verifying_key(),
                interval: config.recordings.index_interval,
                retention: config.recordings.retention,
            };
            tasks.spawn(indexer.run(shutdown.clone()));
        }
        // The gateway's recorder feeds the detector, which writes its alerts back into the
        // recordings and takes external alerts from the API.
        let mut watched = None;
        let mut intake: Option<Arc<dyn otgate_web::AlertIntake>> = None;
        let mut live_view = None;
        if config.roles.gateway {
            let storage = config
                .recordings
                .storage()
                .context("opening the recording storage")?;
            let (tap, queue) = crate::detection::tap(&config.detector);
            let recorder = Recorder::new(
                config.recordings.dir.clone(),
                storage,
                Arc::new(recording_key),
                RecorderConfig::default(),
            )
            .with_tap(tap);
            let (door, task) = crate::detection::start(
                queue,
                broker.clone(),
                recorder.clone(),
                config.detector.clone(),
                shutdown.clone(),
            );
            tasks.spawn(async move {
                if let Err(error) = task.await {
                    tracing::error!(%error, "the detector's supervisor stopped");
                }
            });
            intake = Some(door);
            live_view = Some(recorder.clone());
            watched = Some(recorder);
        }
        let mut ssh = None;
        let mut tunnel = None;
        if let Some(recorder) = watched {
            roles.push("gateway".to_owned());
            let host_key = crate::hostkey::load_or_create(&config.gateway.host_key)?;
            let public = host_key.public_key().clone();
            let user_ca = ssh_key::PublicKey::from_openssh(&broker.keys().ssh_ca_public())
                .context("reading the SSH user CA")?;
            let address = ssh_listen.unwrap_or(config.gateway.listen);
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("listening for SSH on {address}"))?;
            ssh = Some((listener.local_addr()?, public));
            let gateway = SshGateway::new(
                SshConfig {
                    host_key,
                    user_ca,
                    recheck: config.gateway.recheck,
                },
                Arc::new(LocalControl(broker.clone())),
                recorder,
                shutdown.clone(),
            );
            let tunnel_address = config
                .gateway
                .tunnel_listen
                .unwrap_or(listener.local_addr()?);
            let socket = std::net::UdpSocket::bind(tunnel_address)
                .with_context(|| format!("listening for tunnels on {tunnel_address} (UDP)"))?;
            tunnel = Some(socket.local_addr()?);
            let tunnel_gateway = gateway
                .tunnel(tunnel_identity(&config.web.cert, &config.web.key)?)
                .context("setting up the QUIC tunnel")?;
            let stop = shutdown.clone();
            tasks.spawn(async move {
                if let Err(e) = tunnel_gateway.serve(socket).await {
                    tracing::error!(error = %e, "the tunnel endpoint stopped");
                    stop.cancel();
                }
            });
            tracing::info!(address = %tunnel_address, "QUIC tunnel listening");
            let stop = shutdown.clone();
            tasks.spawn(async move {
                if let Err(e) = gateway.serve(listener).await {
                    tracing::error!(error = %e, "the SSH gateway stopped");
                    stop.cancel();
                }
            });
            tracing::info!(%address, "SSH gateway listening");
        }
        let mut api = None;
        if config.roles.web {
            roles.push("web".to_owned());
            let tls = otgate_web::tls::server_config(&config.web.cert, &config.web.key)?;
            let address = listen.unwrap_or(config.web.listen);
            let listener =
                TcpListener::bind(address).with_context(|| format!("listening on {address}"))?;
            api = Some(listener.local_addr()?);
            let options = otgate_web::UiOptions {
                ssh: ssh.as_ref().map(|(address, _)| *address),
                tunnel,
                live: live_view,
                verifying_key: Some(verifying_key),
                idle_timeout: config.web.idle_timeout,
                sso: config.web.sso.clone(),
                playbook: if config.roles.gateway {
                    otgate_detector::Playbook::new(&config.detector.playbook)
                        .map(|p| p.describe())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                },
            };
            let app = otgate_web::router(broker.clone(), archive.clone(), intake, options)?;
            let stop = shutdown.clone();
            tasks.spawn(async move {
                if let Err(e) = otgate_web::serve(listener, tls, app, stop.clone()).await {
                    tracing::error!(error = %e, "the HTTPS server stopped");
                    stop.cancel();
                }
            });
            tracing::info!(%address, api = ?api, "API listening");
        }
        broker
            .record(Event::now(EventKind::ServerStarted {
                version: env!("CARGO_PKG_VERSION").into(),
                roles,
            }))
            .await?;
        Ok(Self {
            broker,
            api,
            ssh,
            tunnel,
            shutdown,
            tasks,
        })
    }

    /// Runs until SIGINT or SIGTERM (or a fatal task error), then drains.
    pub async fn run_until_signal(self) -> Result<()> {
        let reason = tokio::select! {
            reason = signal() => reason,
            _ = self.shutdown.cancelled() => "a server task failed".to_owned(),
        };
        tracing::info!(%reason, "shutting down");
        if let Err(e) = self
            .broker
            .record(Event::now(EventKind::ServerStopped { reason }))
            .await
        {
            tracing::warn!(error = %e, "could not record the shutdown");
        }
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(Duration::from_secs(15), self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("tasks did not finish within 15 s");
        }
        self.broker.close().await;
        Ok(())
    }
}

/// The tunnel's TLS identity: the node's HTTPS certificate and key.
fn tunnel_identity(cert: &std::path::Path, key: &std::path::Path) -> Result<TunnelConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert_chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    Ok(TunnelConfig { cert_chain, key })
}

async fn signal() -> String {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "interrupted".to_owned(),
                _ = term.recv() => "terminated".to_owned(),
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "interrupted".to_owned()
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "interrupted".to_owned()
    }
}
