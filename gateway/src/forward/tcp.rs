//! Plain TCP forwards: bytes both ways, counted, and captured into the recording (up to
//! [`CAPTURE_LIMIT`] per session, then counted only) so an auditor can export the stream as
//! pcap. While the session is frozen the vendor's bytes wait; the asset's still flow.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use otgate_recorder::{EndReason, SessionEvent, SessionRecorder};

use crate::access::Access;
use crate::registry::Registered;

/// Most bytes captured per session (both directions together).
pub(crate) const CAPTURE_LIMIT: u64 = 64 * 1024 * 1024;
/// Bytes read at a time.
const CHUNK: usize = 16 * 1024;

/// Records `data` as captured (while under the limit).
async fn capture(
    recorder: &SessionRecorder,
    captured: &mut u64,
    to_asset: bool,
    data: &[u8],
) -> Result<(), ()> {
    if *captured >= CAPTURE_LIMIT {
        return Ok(());
    }
    *captured += data.len() as u64;
    let event = SessionEvent::Capture {
        to_asset,
        data: STANDARD.encode(data),
    };
    recorder
        .event_paced(event, data.len() * 4 / 3)
        .await
        .map_err(|_| ())?;
    if *captured >= CAPTURE_LIMIT {
        let text = format!(
            "capture limit reached ({} MiB): the rest of this forward is counted, not captured",
            CAPTURE_LIMIT / 1024 / 1024
        );
        recorder
            .event(SessionEvent::Note { text })
            .map_err(|_| ())?;
    }
    Ok(())
}

/// Relays until either side closes, the session ends or the recorder fails.
pub(crate) async fn pass_through<S>(
    access: &Access,
    stream: S,
    tcp: TcpStream,
    recorder: &SessionRecorder,
    registered: &Registered,
) -> (EndReason, String)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut vendor_read, mut vendor_write) = tokio::io::split(stream);
    let (mut asset_read, mut asset_write) = tcp.into_split();
    let mut failure = recorder.failure();
    let mut frozen = registered.frozen.clone();
    let mut watching_freeze = true;
    // Each side's end is passed on (half-close) and the other direction keeps flowing.
    let (mut vendor_done, mut asset_done) = (false, false);
    let (mut up, mut down, mut captured) = (0u64, 0u64, 0u64);
    let (mut from_vendor, mut from_asset) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let failed = || {
        (
            EndReason::RecordingFailed {
                reason: "the recorder failed".into(),
            },
            "recording failed: forward closed".to_owned(),
        )
    };
    let closed = |up: u64, down: u64| {
        (
            EndReason::Closed,
            format!("forward closed: {up} bytes to the asset, {down} back"),
        )
    };
    loop {
        let hold = frozen.borrow().is_some();
        tokio::select! {
            _ = registered.token.cancelled() => {
                let why = access.end_reason(registered);
                return (EndReason::Terminated { by: "otgate".into(), reason: why.clone() }, why);
            }
            _ = failure.changed() => return failed(),
            changed = frozen.changed(), if watching_freeze => watching_freeze = changed.is_ok(),
            read = vendor_read.read(&mut from_vendor), if !hold && !vendor_done => {
                let n = match read {
                    Ok(0) => {
                        vendor_done = true;
                        let _ = asset_write.shutdown().await;
                        if asset_done {
                            return closed(up, down);
                        }
                        continue;
                    }
                    Err(_) => return closed(up, down),
                    Ok(n) => n,
                };
                let data = from_vendor.get(..n).unwrap_or_default();
                if capture(recorder, &mut captured, true, data).await.is_err() {
                    return failed();
                }
                if asset_write.write_all(data).await.is_err() {
                    return closed(up, down);
                }
                up += n as u64;
            }
            read = asset_read.read(&mut from_asset), if !asset_done => {
                let n = match read {
                    Ok(0) => {
                        asset_done = true;
                        let _ = vendor_write.shutdown().await;
                        if vendor_done {
                            return closed(up, down);
                        }
                        continue;
                    }
                    Err(_) => return closed(up, down),
                    Ok(n) => n,
                };
                let data = from_asset.get(..n).unwrap_or_default();
                if capture(recorder, &mut captured, false, data).await.is_err() {
                    return failed();
                }
                if vendor_write.write_all(data).await.is_err() || vendor_write.flush().await.is_err() {
                    return closed(up, down);
                }
                down += n as u64;
            }
        }
    }
}
