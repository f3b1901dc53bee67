//! The tunnel's wire format over QUIC (ALPN `otgate-tunnel/1`). The client opens a control
//! stream and sends a [`Hello`] with its grant's token; the gateway answers with
//! [`Control::Welcome`] or [`Control::Refused`], and later sends notices and, when the grant
//! stops being usable, [`Control::Ended`] before closing. Every further bidirectional stream
//! is one TCP connection: the client sends an [`Open`], the gateway answers [`Opened`], then
//! the stream carries the connection's bytes. Messages are JSON lines of at most
//! [`MAX_LINE`] bytes.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// ALPN protocol id.
pub const ALPN: &[u8] = b"otgate-tunnel/1";
/// Longest message line.
pub const MAX_LINE: usize = 16 * 1024;

/// Connection close codes.
pub mod close {
    /// The token or the grant was refused.
    pub const REFUSED: u32 = 1;
    /// The grant stopped being usable (revoked, quarantined, expired) or the gateway stops.
    pub const ENDED: u32 = 2;
    /// The client broke the protocol.
    pub const PROTOCOL: u32 = 3;
}

/// The client's first message on the control stream.
#[derive(Clone, Serialize, Deserialize)]
pub struct Hello {
    /// The grant's tunnel token (JWT).
    pub token: String,
}

impl std::fmt::Debug for Hello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hello { token: [redacted] }")
    }
}

/// An endpoint the tunnel may reach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelEndpoint {
    /// Its name (or `host:port` when it has none).
    pub name: String,
    /// `modbus` or `tcp`.
    pub protocol: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// What the gateway says on the control stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Control {
    /// The token is good and the grant usable.
    Welcome {
        /// The grant.
        grant: i64,
        /// The vendor.
        vendor: String,
        /// The asset.
        asset: String,
        /// When the grant's window ends (RFC 3339).
        ends_at: String,
        /// What the tunnel may reach.
        endpoints: Vec<TunnelEndpoint>,
    },
    /// No tunnel: why.
    Refused {
        /// Why, for the vendor.
        reason: String,
    },
    /// Something the vendor should know (the window ends soon).
    Notice {
        /// The notice.
        text: String,
    },
    /// The tunnel is closing: who ended it and why.
    Ended {
        /// Why.
        reason: String,
    },
}

/// The client's first message on a connection stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Open {
    /// The endpoint's name, or `host:port`.
    pub endpoint: String,
}

/// The gateway's answer on a connection stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Opened {
    /// Connected; bytes follow.
    Ok {
        /// The recorded session.
        session: String,
    },
    /// Refused: why.
    Refused {
        /// Why.
        reason: String,
    },
}

/// A message could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The stream failed or ended early.
    #[error("the stream ended: {0}")]
    Io(#[from] std::io::Error),
    /// Longer than [`MAX_LINE`].
    #[error("a message longer than {MAX_LINE} bytes")]
    TooLong,
    /// Not the expected JSON.
    #[error("not a valid message: {0}")]
    Json(#[from] serde_json::Error),
}

/// Reads one message (a JSON line) without reading past its end, so the bytes that follow
/// stay in the stream.
pub async fn read<R, T>(reader: &mut R) -> Result<T, WireError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut line = Vec::new();
    loop {
        let byte = reader.read_u8().await?;
        if byte == b'\n' {
            break;
        }
        if line.len() == MAX_LINE {
            return Err(WireError::TooLong);
        }
        line.push(byte);
    }
    Ok(serde_json::from_slice(&line)?)
}

/// Writes one message.
pub async fn write<W, T>(writer: &mut W, message: &T) -> Result<(), WireError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let mut line = serde_json::to_vec(message)?;
    line.push(b'\n');
    writer.write_all(&line).await?;
    writer.flush().await?;
    Ok(())
}
