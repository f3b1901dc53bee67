//! Forwards to an asset's endpoints, from `ssh -L` (`direct-tcpip`) or a tunnel stream: only
//! to an endpoint of the grant's asset, of a protocol the grant includes and the scope allows. Plain TCP is relayed as it is; Modbus goes through the
//! Modbus inspector (every request checked against the scope, on the record), and the
//! asset's own SSH port is refused (it would bypass the gateway). Every forward is a recorded
//! session.

mod tcp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use otgate_policy::{Endpoint, Event, EventKind, Operation, Protocol};
use otgate_recorder::{EndReason, SessionEvent, SessionInfo, SessionRecorder, Verdict};

use crate::access::{Access, Shared};
use crate::modbus::Inspector;
use crate::modbus::relay::{self as modbus_relay, Context, Ending};
use crate::registry::Registered;

/// How long connecting to the endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The endpoint a forward may reach, or why not.
pub(crate) fn decide(access: &Access, host: &str, port: u32) -> Result<Endpoint, String> {
    let grant = &access.grant;
    let endpoint = access
        .asset
        .endpoints
        .iter()
        .find(|e| e.host == host && u32::from(e.port) == port)
        .ok_or_else(|| {
            let allowed: Vec<String> = access
                .asset
                .endpoints
                .iter()
                .filter(|e| e.protocol != Protocol::Ssh)
                .map(|e| format!("{}:{} ({})", e.host, e.port, e.protocol))
                .collect();
            format!(
                "{host}:{port} is not an endpoint of {}; forwards may reach: {}",
                access.asset.name,
                if allowed.is_empty() {
                    "none".into()
                } else {
                    allowed.join(", ")
                }
            )
        })?;
    match endpoint.protocol {
        Protocol::Ssh => Err("forwarding to the asset's SSH port would bypass the gateway".into()),
        protocol if !grant.protocols.contains(&protocol) => {
            Err(format!("grant {} does not include {protocol}", grant.id))
        }
        Protocol::Modbus if grant.scope.modbus.is_none() => {
            Err(format!("grant {} has no Modbus scope", grant.id))
        }
        Protocol::Modbus => Ok(endpoint.clone()),
        Protocol::Tcp => {
            let decision = grant.scope.check(&Operation::Tcp {
                port: endpoint.port,
            });
            if decision.is_allowed() {
                Ok(endpoint.clone())
            } else {
                Err(format!("grant {} {decision}", grant.id))
            }
        }
    }
}

/// The `host:port` of the endpoint a tunnel stream asks for: by name, or as `host:port`.
pub(crate) fn find(access: &Access, wanted: &str) -> Result<(String, u16), String> {
    if let Some(endpoint) = access
        .asset
        .endpoints
        .iter()
        .find(|e| e.name.as_ref().is_some_and(|n| n.as_str() == wanted))
    {
        return Ok((endpoint.host.clone(), endpoint.port));
    }
    let parsed = wanted
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_owned(), port.parse::<u16>().ok()?)));
    parsed.ok_or_else(|| {
        format!(
            "{} has no endpoint named `{}`",
            access.asset.name,
            wanted.chars().take(64).collect::<String>()
        )
    })
}

/// Connects to the endpoint (before the channel is accepted, so a dead endpoint is a clean
/// `connect failed` for the vendor's ssh).
pub(crate) async fn connect(endpoint: &Endpoint) -> Result<TcpStream, String> {
    let address = (endpoint.host.as_str(), endpoint.port);
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => {
            // Industrial request/response traffic: small packets, no Nagle delay.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(format!(
            "{}:{} is unreachable: {e}",
            endpoint.host, endpoint.port
        )),
        Err(_) => Err(format!(
            "{}:{} did not answer",
            endpoint.host, endpoint.port
        )),
    }
}

/// Relays a forward (the vendor's side is `stream`: an SSH channel or a tunnel stream,
/// named by `via`) as the recorded, registered session `id`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn relay<S>(
    shared: Arc<Shared>,
    access: &Access,
    stream: S,
    tcp: TcpStream,
    endpoint: Endpoint,
    peer: Option<SocketAddr>,
    via: &str,
    id: String,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let grant = &access.grant;
    let info = SessionInfo {
        id: id.clone(),
        grant: Some(grant.id.get()),
        vendor: grant.vendor.to_string(),
        asset: grant.asset.to_string(),
        zone: Some(grant.zone.to_string()),
        protocol: endpoint.protocol.to_string(),
        client: peer.map(|p| p.to_string()),
        width: 80,
        height: 24,
        env: Default::default(),
        started_at: OffsetDateTime::now_utc(),
    };
    let recorder = match shared.recorder.start(info).await {
        Ok(recorder) => recorder,
        Err(error) => {
            tracing::error!(%error, "a forward could not be recorded: closed (fail closed)");
            return;
        }
    };
    let _ = recorder.event(SessionEvent::Forward {
        host: endpoint.host.clone(),
        port: endpoint.port,
        verdict: Verdict::Allowed,
    });
    shared
        .report(
            Event::now(EventKind::SessionStarted {
                session: id.clone(),
                grant: grant.id,
                vendor: grant.vendor.clone(),
                asset: grant.asset.clone(),
                mode: format!("{via} {}:{}", endpoint.host, endpoint.port),
                client: peer.map(|p| p.to_string()),
            })
            .by(Some(grant.vendor.clone()))
            .in_zone(Some(grant.zone.clone())),
        )
        .await;
    let registered = shared.registry.register(
        &id,
        grant.id,
        grant.vendor.as_str(),
        grant.asset.as_str(),
        &access.token,
    );
    let (reason, words) = if endpoint.protocol == Protocol::Modbus {
        inspect(&shared, access, &id, stream, tcp, &recorder, &registered).await
    } else {
        tcp::pass_through(access, stream, tcp, &recorder, &registered).await
    };
    shared.registry.remove(&id);
    let _ = recorder.event(SessionEvent::Note {
        text: words.clone(),
    });
    if let Err(error) = recorder.finish(reason).await {
        tracing::error!(session = %id, %error, "the recording could not be finished");
    }
    shared
        .report(
            Event::now(EventKind::SessionEnded {
                session: id,
                grant: grant.id,
                reason: words,
            })
            .in_zone(Some(grant.zone.clone())),
        )
        .await;
}

/// Modbus: every request checked by the inspector; denials and malformed input are events.
async fn inspect<S>(
    shared: &Arc<Shared>,
    access: &Access,
    session: &str,
    stream: S,
    tcp: TcpStream,
    recorder: &SessionRecorder,
    registered: &Registered,
) -> (EndReason, String)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let grant = &access.grant;
    let reporter = shared.clone();
    let (id, vendor, zone) = (grant.id, grant.vendor.clone(), grant.zone.clone());
    let owned_session = session.to_owned();
    let denied = move |event: &SessionEvent| {
        let SessionEvent::Modbus {
            unit,
            function,
            summary,
            reason,
            exception,
            ..
        } = event
        else {
            return;
        };
        let event = Event::now(EventKind::ModbusDenied {
            session: owned_session.clone(),
            grant: id,
            unit: *unit,
            function: *function,
            request: summary.clone(),
            decision: format!(
                "{} (exception {:02})",
                reason.as_deref().unwrap_or("denied"),
                exception.unwrap_or_default()
            ),
        })
        .by(Some(vendor.clone()))
        .in_zone(Some(zone.clone()));
        let reporter = reporter.clone();
        tokio::spawn(async move { reporter.report(event).await });
    };
    let context = Context {
        recorder,
        token: &registered.token,
        frozen: registered.frozen.clone(),
        denied: &denied,
    };
    let inspector = Inspector::new(grant.scope.clone(), grant.id);
    let (ending, counts) = modbus_relay::relay(stream, tcp, inspector, context).await;
    let bytes = format!(
        "{} bytes from the vendor, {} from the PLC",
        counts.from_vendor, counts.from_plc
    );
    match ending {
        Ending::VendorClosed => (EndReason::Closed, format!("Modbus forward closed: {bytes}")),
        Ending::PlcClosed => (
            EndReason::AssetClosed,
            format!("the PLC closed the connection: {bytes}"),
        ),
        Ending::Io(why) => (EndReason::Closed, format!("Modbus forward ended: {why}")),
        Ending::Cancelled => {
            let why = access.end_reason(registered);
            (
                EndReason::Terminated {
                    by: "otgate".into(),
                    reason: why.clone(),
                },
                why,
            )
        }
        Ending::RecordingFailed => (
            EndReason::RecordingFailed {
                reason: "the recorder failed".into(),
            },
            "recording failed: Modbus forward closed".into(),
        ),
        Ending::Malformed(reason) => {
            shared
                .report(
                    Event::now(EventKind::ModbusMalformed {
                        session: session.to_owned(),
                        grant: grant.id,
                        reason: reason.clone(),
                    })
                    .by(Some(grant.vendor.clone()))
                    .in_zone(Some(grant.zone.clone())),
                )
                .await;
            (EndReason::Closed, format!("closed: {reason}"))
        }
    }
}
