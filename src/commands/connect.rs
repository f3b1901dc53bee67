//! `otgate connect GRANT --gateway H:P --listen 127.0.0.1:5020 [--endpoint NAME]`: the
//! vendor's tunnel client. It fetches the grant's token, opens a QUIC connection to the
//! gateway (its certificate checked against the CA), and forwards every local TCP
//! connection as a stream to the grant's endpoint. It shows the grant, the time left and a
//! line per connection; when the grant ends it prints who ended it and why and stops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use otgate_broker::IssuedToken;
use otgate_gateway::tunnel::wire::{self, Control, Hello, Open, Opened, TunnelEndpoint};

use crate::cli::{Cli, ConnectArgs};
use crate::client::Client;

/// The client's QUIC configuration: TLS 1.3, the gateway's certificate checked against `ca`.
fn client_config(ca: &std::path::Path) -> Result<quinn::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)
        .with_context(|| format!("reading the CA {}", ca.display()))?
    {
        roots
            .add(cert.with_context(|| format!("reading the CA {}", ca.display()))?)
            .context("the CA certificate is not usable")?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![wire::ALPN.to_vec()];
    let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(10)));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// The endpoint to use: the one asked for, or the only one.
fn pick<'a>(endpoints: &'a [TunnelEndpoint], wanted: Option<&str>) -> Result<&'a TunnelEndpoint> {
    let listing = || {
        endpoints
            .iter()
            .map(|e| format!("{} ({} {}:{})", e.name, e.protocol, e.host, e.port))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match wanted {
        Some(name) => endpoints
            .iter()
            .find(|e| e.name == name || format!("{}:{}", e.host, e.port) == name)
            .ok_or_else(|| anyhow!("the grant has no endpoint `{name}`: {}", listing())),
        None => match endpoints {
            [only] => Ok(only),
            _ => bail!(
                "the grant has several endpoints: choose one with --endpoint ({})",
                listing()
            ),
        },
    }
}

fn left(ends_at: &str) -> String {
    match OffsetDateTime::parse(ends_at, &Rfc3339) {
        Ok(end) => {
            let minutes = (end - OffsetDateTime::now_utc()).whole_minutes().max(0);
            format!("{}h{:02}m left", minutes / 60, minutes % 60)
        }
        Err(_) => String::new(),
    }
}

pub async fn run(cli: &Cli, args: &ConnectArgs) -> Result<()> {
    let client = Client::connect(cli)?;
    let ca = client
        .ca
        .clone()
        .context("the gateway's certificate is checked against the CA: log in with --ca (otgate demo's `ca`)")?;
    let issued: IssuedToken = client
        .post(&format!("/grants/{}/token", args.grant), &json!({}))
        .await?;
    let gateway: SocketAddr = tokio::net::lookup_host(&args.gateway)
        .await
        .with_context(|| format!("resolving {}", args.gateway))?
        .next()
        .with_context(|| format!("{} has no address", args.gateway))?;
    let host = args
        .gateway
        .rsplit_once(':')
        .map_or(args.gateway.as_str(), |(host, _)| host)
        .trim_matches(['[', ']']);
    let bind: SocketAddr = if gateway.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    }
    .parse()?;
    let mut endpoint = quinn::Endpoint::client(bind).context("opening a UDP socket")?;
    endpoint.set_default_client_config(client_config(&ca)?);
    let connection = endpoint
        .connect(gateway, host)?
        .await
        .with_context(|| format!("connecting to the gateway at {}", args.gateway))?;
    let (mut control, mut events) = connection.open_bi().await?;
    wire::write(
        &mut control,
        &Hello {
            token: issued.token,
        },
    )
    .await?;
    let (grant, asset, ends_at, endpoints) = match wire::read::<_, Control>(&mut events).await? {
        Control::Welcome {
            grant,
            asset,
            ends_at,
            endpoints,
            ..
        } => (grant, asset, ends_at, endpoints),
        Control::Refused { reason } => bail!("the gateway refused the tunnel: {reason}"),
        other => bail!("unexpected answer from the gateway: {other:?}"),
    };
    let target = pick(&endpoints, args.endpoint.as_deref())?.clone();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!(
        "grant {grant} on {asset}: {} {}:{} ({} until {ends_at})",
        target.protocol,
        target.host,
        target.port,
        left(&ends_at)
    );
    println!(
        "listening on {}: point your tool there",
        listener.local_addr()?
    );
    let counter = Arc::new(AtomicU64::new(0));
    loop {
        tokio::select! {
            message = wire::read::<_, Control>(&mut events) => match message {
                Ok(Control::Notice { text }) => println!("notice: {text}"),
                Ok(Control::Ended { reason }) => {
                    println!("tunnel closed: {reason}");
                    connection.close(0u32.into(), b"");
                    endpoint.wait_idle().await;
                    bail!("the gateway ended the tunnel: {reason}");
                }
                Ok(other) => println!("gateway: {other:?}"),
                Err(_) => {
                    let why = match connection.close_reason() {
                        Some(quinn::ConnectionError::ApplicationClosed(close)) => {
                            String::from_utf8_lossy(&close.reason).into_owned()
                        }
                        Some(other) => other.to_string(),
                        None => "the control stream ended".into(),
                    };
                    bail!("the tunnel closed: {why}");
                }
            },
            accepted = listener.accept() => {
                let (local, from) = accepted.context("accepting a local connection")?;
                let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                let (connection, target) = (connection.clone(), target.clone());
                tokio::spawn(async move {
                    if let Err(e) = forward(connection, local, &target, n, from).await {
                        println!("connection {n} from {from}: {e:#}");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => {
                connection.close(0u32.into(), b"closed by the vendor");
                endpoint.wait_idle().await;
                return Ok(());
            }
        }
    }
}

/// One local connection as one stream.
async fn forward(
    connection: quinn::Connection,
    mut local: tokio::net::TcpStream,
    target: &TunnelEndpoint,
    n: u64,
    from: SocketAddr,
) -> Result<()> {
    let _ = local.set_nodelay(true);
    let (mut send, mut recv) = connection.open_bi().await?;
    wire::write(
        &mut send,
        &Open {
            endpoint: target.name.clone(),
        },
    )
    .await?;
    match wire::read::<_, Opened>(&mut recv).await? {
        Opened::Ok { session } => println!(
            "connection {n} from {from} -> {} {}:{} (session {session})",
            target.protocol, target.host, target.port
        ),
        Opened::Refused { reason } => bail!("refused: {reason}"),
    }
    let mut stream = tokio::io::join(recv, send);
    let (up, down) = tokio::io::copy_bidirectional(&mut local, &mut stream)
        .await
        .unwrap_or((0, 0));
    println!("connection {n} closed: {up} bytes sent, {down} received");
    Ok(())
}
