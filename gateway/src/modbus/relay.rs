//! Runs the inspector between the vendor's stream and the PLC's TCP connection, until either
//! side closes, the session's token is cancelled, the recorder fails or a frame is malformed.
//! While the session is frozen (or as many requests are in flight as allowed), the vendor's
//! bytes wait; the PLC's responses still flow.

use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use otgate_recorder::{SessionEvent, SessionRecorder};

use super::inspector::{Inspector, Output};

/// Bytes read from either side at a time.
const CHUNK: usize = 8 * 1024;

/// How a relayed Modbus connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The vendor closed it.
    VendorClosed,
    /// The PLC closed it.
    PlcClosed,
    /// Malformed input from either side: why.
    Malformed(String),
    /// The session's token was cancelled (revocation, kill, shutdown...).
    Cancelled,
    /// The recorder failed.
    RecordingFailed,
    /// A read or write failed.
    Io(String),
}

/// The session around a relayed connection.
pub struct Context<'a> {
    /// The session's recorder; every transaction is an event on it.
    pub recorder: &'a SessionRecorder,
    /// Cancelled when the session must end.
    pub token: &'a CancellationToken,
    /// `Some(reason)` while an engineer holds the session.
    pub frozen: watch::Receiver<Option<String>>,
    /// Called for every denied request (an event for the control plane).
    pub denied: &'a (dyn Fn(&SessionEvent) + Sync),
}

/// Byte counts of a relayed connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Bytes the vendor sent.
    pub from_vendor: u64,
    /// Bytes the PLC sent.
    pub from_plc: u64,
}

/// Relays until the connection ends; returns how, and the byte counts.
pub async fn relay<V>(
    vendor: V,
    mut plc: TcpStream,
    mut inspector: Inspector,
    mut context: Context<'_>,
) -> (Ending, Counts)
where
    V: AsyncRead + AsyncWrite + Unpin,
{
    let (mut vendor_read, mut vendor_write) = tokio::io::split(vendor);
    let (mut plc_read, mut plc_write) = plc.split();
    let mut failure = context.recorder.failure();
    let (mut from_vendor, mut from_plc) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut counts = Counts::default();
    let mut watching_freeze = true;
    let ending = loop {
        let hold = inspector.is_full() || context.frozen.borrow().is_some();
        let out = tokio::select! {
            _ = context.token.cancelled() => break Ending::Cancelled,
            _ = failure.changed() => break Ending::RecordingFailed,
            changed = context.frozen.changed(), if watching_freeze => {
                watching_freeze = changed.is_ok();
                continue;
            }
            read = vendor_read.read(&mut from_vendor), if !hold => match read {
                Ok(0) => break Ending::VendorClosed,
                Ok(n) => {
                    counts.from_vendor += n as u64;
                    inspector.from_client(from_vendor.get(..n).unwrap_or_default(), Instant::now())
                }
                Err(e) => break Ending::Io(format!("reading from the vendor: {e}")),
            },
            read = plc_read.read(&mut from_plc) => match read {
                Ok(0) => break Ending::PlcClosed,
                Ok(n) => {
                    counts.from_plc += n as u64;
                    inspector.from_server(from_plc.get(..n).unwrap_or_default(), Instant::now())
                }
                Err(e) => break Ending::Io(format!("reading from the PLC: {e}")),
            },
        };
        let Output {
            to_server,
            to_client,
            events,
            close,
        } = out;
        for event in events {
            if matches!(
                event,
                SessionEvent::Modbus {
                    verdict: otgate_recorder::Verdict::Denied,
                    ..
                }
            ) {
                (context.denied)(&event);
            }
            if context.recorder.event(event).is_err() {
                break;
            }
        }
        if !to_server.is_empty()
            && let Err(e) = plc_write.write_all(&to_server).await
        {
            break Ending::Io(format!("writing to the PLC: {e}"));
        }
        if !to_client.is_empty()
            && let Err(e) = vendor_write.write_all(&to_client).await
        {
            break Ending::Io(format!("writing to the vendor: {e}"));
        }
        if !to_client.is_empty() {
            let _ = vendor_write.flush().await;
        }
        if let Some(why) = close {
            break Ending::Malformed(why);
        }
    };
    let (unanswered, cut) = inspector.finish();
    for event in unanswered {
        let _ = context.recorder.event(event);
    }
    if let Some(text) = cut {
        let _ = context.recorder.event(SessionEvent::Note { text });
    }
    let _ = vendor_write.shutdown().await;
    let _ = plc_write.shutdown().await;
    (ending, counts)
}
