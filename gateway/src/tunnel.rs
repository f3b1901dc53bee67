//! The QUIC tunnel (quinn + rustls, TLS 1.3): a vendor's `otgate connect` authenticates each
//! connection with its grant's token, then every bidirectional stream is one TCP connection
//! to one of the grant's endpoints, inspected by protocol (Modbus) or passed through (TCP,
//! when the scope allows it), each a recorded session. Revocation, quarantine, expiry, kills
//! and freezes act on tunnel streams through the same tokens as on SSH sessions.

pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;

use otgate_policy::{Event, EventKind, Protocol};

use crate::access::{Access, Shared};
use crate::control::GatewayError;
use crate::forward;
use wire::{Control, Hello, Open, Opened, TunnelEndpoint, close};

/// How long a client may take to send its first message on a stream.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection without traffic (the client keeps it alive) ends after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most concurrent streams (TCP connections) per tunnel.
const MAX_STREAMS: u32 = 1024;

/// The tunnel's TLS identity: the node's certificate chain and key.
pub struct TunnelConfig {
    /// Certificate chain (leaf first).
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// Private key.
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for TunnelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TunnelConfig { key: [redacted], .. }")
    }
}

/// The QUIC tunnel endpoint.
pub struct TunnelGateway {
    pub(crate) shared: Arc<Shared>,
    pub(crate) server: quinn::ServerConfig,
}

/// The QUIC server configuration: TLS 1.3 only, our ALPN, bounded streams, idle timeout.
pub(crate) fn server_config(config: TunnelConfig) -> Result<quinn::ServerConfig, GatewayError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| GatewayError::Unavailable(format!("tunnel TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(config.cert_chain, config.key)
        .map_err(|e| GatewayError::Unavailable(format!("tunnel certificate: {e}")))?;
    tls.alpn_protocols = vec![wire::ALPN.to_vec()];
    let crypto = QuicServerConfig::try_from(tls)
        .map_err(|e| GatewayError::Unavailable(format!("tunnel TLS for QUIC: {e}")))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(MAX_STREAMS.into())
        .max_concurrent_uni_streams(0u32.into())
        .max_idle_timeout(IDLE_TIMEOUT.try_into().ok());
    server.transport_config(Arc::new(transport));
    Ok(server)
}

impl TunnelGateway {
    /// Serves tunnels on `socket` until the gateway shuts down.
    pub async fn serve(self, socket: std::net::UdpSocket) -> Result<(), GatewayError> {
        let runtime = quinn::default_runtime()
            .ok_or_else(|| GatewayError::Unavailable("no async runtime for QUIC".into()))?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(self.server),
            socket,
            runtime,
        )
        .map_err(|e| GatewayError::Unavailable(format!("the tunnel endpoint failed: {e}")))?;
        loop {
            tokio::select! {
                _ = self.shared.shutdown.cancelled() => break,
                incoming = endpoint.accept() => match incoming {
                    Some(incoming) => {
                        tokio::spawn(connection(self.shared.clone(), incoming));
                    }
                    None => break,
                },
            }
        }
        endpoint.close(close::ENDED.into(), b"the gateway is shutting down");
        endpoint.wait_idle().await;
        Ok(())
    }
}

/// Closes `connection` after telling the client why on the control stream.
async fn refuse(
    shared: &Shared,
    connection: &quinn::Connection,
    send: &mut quinn::SendStream,
    reason: String,
) {
    tracing::info!(peer = %connection.remote_address(), %reason, "tunnel refused");
    shared
        .report(
            Event::now(EventKind::SessionRefused {
                user: "tunnel".into(),
                grant: None,
                reason: reason.clone(),
            })
            .from_addr(Some(connection.remote_address().ip())),
        )
        .await;
    let _ = wire::write(
        send,
        &Control::Refused {
            reason: reason.clone(),
        },
    )
    .await;
    let _ = send.finish();
    let _ = tokio::time::timeout(Duration::from_secs(1), send.stopped()).await;
    connection.close(close::REFUSED.into(), reason.as_bytes());
}

/// The endpoints a tunnel of `access` may reach (not the asset's own SSH port).
fn endpoints(access: &Access) -> Vec<TunnelEndpoint> {
    access
        .asset
        .endpoints
        .iter()
        .filter(|e| e.protocol != Protocol::Ssh && access.grant.protocols.contains(&e.protocol))
        .map(|e| TunnelEndpoint {
            name: e.label().to_owned(),
            protocol: e.protocol.to_string(),
            host: e.host.clone(),
            port: e.port,
        })
        .collect()
}

async fn connection(shared: Arc<Shared>, incoming: quinn::Incoming) {
    let peer = incoming.remote_address();
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(error) => {
            tracing::debug!(%peer, %error, "a tunnel handshake failed");
            return;
        }
    };
    let (mut send, mut recv) =
        match tokio::time::timeout(HELLO_TIMEOUT, connection.accept_bi()).await {
            Ok(Ok(streams)) => streams,
            _ => {
                connection.close(close::PROTOCOL.into(), b"no control stream");
                return;
            }
        };
    let hello: Hello = match tokio::time::timeout(HELLO_TIMEOUT, wire::read(&mut recv)).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(e)) => {
            return refuse(&shared, &connection, &mut send, format!("bad hello: {e}")).await;
        }
        Err(_) => {
            return refuse(&shared, &connection, &mut send, "no hello in time".into()).await;
        }
    };
    let now = OffsetDateTime::now_utc();
    let grant = match shared.control.tunnel_grant(&hello.token, now).await {
        Ok(Ok(grant)) => grant,
        Ok(Err(refusal)) => return refuse(&shared, &connection, &mut send, refusal.0).await,
        Err(e) => {
            let reason = format!("the grant cannot be confirmed ({e}): no tunnel");
            return refuse(&shared, &connection, &mut send, reason).await;
        }
    };
    let access = match shared.resolve(grant).await {
        Ok(access) => Arc::new(access),
        Err(reason) => return refuse(&shared, &connection, &mut send, reason).await,
    };
    let reachable = endpoints(&access);
    if reachable.is_empty() {
        let reason = format!(
            "grant {} has no endpoint a tunnel can reach (Modbus or TCP)",
            access.grant.id
        );
        access.token.cancel();
        return refuse(&shared, &connection, &mut send, reason).await;
    }
    let welcome = Control::Welcome {
        grant: access.grant.id.get(),
        vendor: access.grant.vendor.to_string(),
        asset: access.asset.name.to_string(),
        ends_at: access
            .grant
            .window
            .end
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        endpoints: reachable,
    };
    if wire::write(&mut send, &welcome).await.is_err() {
        access.token.cancel();
        return;
    }
    tracing::info!(%peer, grant = %access.grant.id, "tunnel open");
    let mut notices = access.notice.subscribe();
    notices.mark_changed();
    loop {
        tokio::select! {
            _ = access.token.cancelled() => {
                let reason = access
                    .ended
                    .lock()
                    .ok()
                    .and_then(|slot| slot.clone())
                    .unwrap_or_else(|| "the gateway is shutting down".into());
                let _ = wire::write(&mut send, &Control::Ended { reason: reason.clone() }).await;
                let _ = send.finish();
                let _ = tokio::time::timeout(Duration::from_millis(500), send.stopped()).await;
                connection.close(close::ENDED.into(), reason.as_bytes());
                break;
            }
            changed = notices.changed() => {
                if changed.is_err() {
                    continue;
                }
                let text = notices.borrow_and_update().clone();
                if let Some(text) = text {
                    let _ = wire::write(&mut send, &Control::Notice { text }).await;
                }
            }
            stream = connection.accept_bi() => match stream {
                Ok((stream_send, stream_recv)) => {
                    tokio::spawn(open(shared.clone(), access.clone(), stream_send, stream_recv, peer));
                }
                Err(_) => break,
            },
        }
    }
    // The client went away or the grant ended: every stream of this tunnel ends.
    access.token.cancel();
}

/// One stream: which endpoint, checked like a port forward, then relayed as a session.
async fn open(
    shared: Arc<Shared>,
    access: Arc<Access>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    peer: SocketAddr,
) {
    let request: Open = match tokio::time::timeout(HELLO_TIMEOUT, wire::read(&mut recv)).await {
        Ok(Ok(open)) => open,
        _ => {
            let _ = send.reset(close::PROTOCOL.into());
            return;
        }
    };
    let decided = match shared.confirm(&access).await {
        Ok(()) => match forward::find(&access, &request.endpoint) {
            Ok((host, port)) => forward::decide(&access, &host, u32::from(port)),
            Err(reason) => Err(reason),
        },
        Err(reason) => Err(reason),
    };
    let decided = match decided {
        Ok(endpoint) => forward::connect(&endpoint).await.map(|tcp| (endpoint, tcp)),
        Err(reason) => Err(reason),
    };
    match decided {
        Ok((endpoint, tcp)) => {
            let session = otgate_recorder::layout::new_session_id();
            if wire::write(
                &mut send,
                &Opened::Ok {
                    session: session.clone(),
                },
            )
            .await
            .is_err()
            {
                return;
            }
            let stream = tokio::io::join(recv, send);
            forward::relay(
                shared,
                &access,
                stream,
                tcp,
                endpoint,
                Some(peer),
                "tunnel",
                session,
            )
            .await;
        }
        Err(reason) => {
            let reason = format!("tunnel to {} refused: {reason}", request.endpoint);
            shared
                .report(
                    Event::now(EventKind::SessionRefused {
                        user: access.grant.vendor.to_string(),
                        grant: Some(access.grant.id),
                        reason: reason.clone(),
                    })
                    .by(Some(access.grant.vendor.clone()))
                    .in_zone(Some(access.grant.zone.clone())),
                )
                .await;
            let _ = wire::write(&mut send, &Opened::Refused { reason }).await;
            let _ = send.finish();
        }
    }
}
