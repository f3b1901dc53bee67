//! Live view: a session's terminal in the browser over a WebSocket, painted from the same
//! screen frames as replay. The recording so far is read from the spool (the recorder
//! flushes it and starts the feed in one step, so nothing is missed or shown twice), then
//! every change is sent as the rows that changed, at most one frame per 30 ms. Typed events
//! (Modbus requests, commands, alerts, freezes) follow for the table beside it. The socket
//! closes, saying why, when the session ends, the viewer falls behind, or the viewer's
//! sign-in ends.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, sleep_until};

use otgate_recorder::screen::{ScreenFrame, Terminal};
use otgate_recorder::{LiveChunk, SessionEvent};

use super::player::{self, Paint};
use super::session::SignedIn;
use super::view;
use crate::AppState;
use crate::error::ApiError;

/// Shortest time between two frames sent.
const FRAME_GAP: Duration = Duration::from_millis(30);
/// How often the viewer's sign-in is checked again.
const RECHECK: Duration = Duration::from_secs(15);
/// Events sent from the history when the view opens.
const HISTORY_EVENTS: usize = 200;

/// Whether the upgrade comes from our own pages (browsers always send `Origin` on a
/// WebSocket handshake; axum does not check it).
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    matches!((host, origin), (Some(host), Some(origin)) if origin == format!("https://{host}"))
}

/// `GET /ui/sessions/{id}/live` (WebSocket).
pub(super) async fn socket(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "origin",
            "live view opens only from otgate's own pages",
        )
        .into_response();
    }
    if let Err(e) = state.broker.session(&me.principal, &id).await {
        return ApiError::from(e).into_response();
    }
    upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            let reason = watch(&state, &me, &id, socket).await;
            tracing::debug!(session = %id, viewer = %me.principal.user, %reason, "live view closed");
        })
}

fn text(value: &serde_json::Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

fn event_json(t: f64, event: &SessionEvent) -> serde_json::Value {
    json!({"event": {
        "t": t,
        "clock": view::clock(t),
        "kind": event.kind(),
        "marker": player::marker(event).unwrap_or(""),
        "text": event.describe(),
    }})
}

async fn close(mut socket: WebSocket, reason: &str) -> String {
    let _ = socket.send(text(&json!({ "ended": reason }))).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: Utf8Bytes::from(reason.chars().take(100).collect::<String>()),
        })))
        .await;
    reason.to_owned()
}

async fn watch(state: &AppState, me: &SignedIn, id: &str, mut socket: WebSocket) -> String {
    let Some(recorder) = &state.ui.options.live else {
        return close(socket, "live view needs the gateway on this node").await;
    };
    let Some(mut feed) = recorder.watch(id).await else {
        return close(socket, "the session is not live (it has ended)").await;
    };
    let history = match otgate_recorder::read(&state.recordings, id, None).await {
        Ok(history) => history,
        Err(e) => {
            tracing::warn!(session = %id, error = %e, "live view: the recording so far is unreadable");
            return close(socket, "the recording so far cannot be read").await;
        }
    };
    let mut term: Terminal = player::terminal(&history);
    let mut shown_until = 0.0f64;
    for frame in &history.frames {
        player::apply(&mut term, frame.code, &frame.data);
        shown_until = frame.t;
    }
    let mut events_until = history.events.last().map_or(0.0, |e| e.t);
    let mut shown: ScreenFrame = term.frame();
    let first = Paint::Full {
        t: shown_until,
        full: shown.clone(),
    };
    if socket
        .send(text(&serde_json::to_value(&first).unwrap_or_default()))
        .await
        .is_err()
    {
        return "viewer left".into();
    }
    let recent = history
        .events
        .iter()
        .filter(|e| !matches!(e.event, SessionEvent::Resize { .. }))
        .rev()
        .take(HISTORY_EVENTS)
        .collect::<Vec<_>>();
    for line in recent.into_iter().rev() {
        if socket
            .send(text(&event_json(line.t, &line.event)))
            .await
            .is_err()
        {
            return "viewer left".into();
        }
    }
    drop(history);
    let mut due: Option<Instant> = None;
    let mut last_sent = Instant::now();
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.reset();
    loop {
        tokio::select! {
            chunk = feed.recv() => match chunk {
                Ok(LiveChunk::Output { t, text: data }) if t > shown_until => {
                    term.feed(&data);
                    shown_until = t;
                    due.get_or_insert(last_sent + FRAME_GAP);
                }
                Ok(LiveChunk::Resize { t, cols, rows }) if t > shown_until => {
                    term.resize(cols, rows);
                    shown_until = t;
                    due.get_or_insert(last_sent + FRAME_GAP);
                }
                Ok(LiveChunk::Event { t, event }) if t > events_until => {
                    events_until = t;
                    if !matches!(*event, SessionEvent::Resize { .. })
                        && socket.send(text(&event_json(t, &event))).await.is_err()
                    {
                        return "viewer left".into();
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    return close(socket, "the view fell behind the session: reload to catch up").await;
                }
                Err(RecvError::Closed) => {
                    let now = term.frame();
                    if let Some(paint) = Paint::between(shown_until, &shown, &now) {
                        let _ = socket.send(text(&serde_json::to_value(&paint).unwrap_or_default())).await;
                    }
                    return close(socket, "the session has ended").await;
                }
            },
            () = async { if let Some(at) = due { sleep_until(at).await } else { std::future::pending().await } } => {
                due = None;
                last_sent = Instant::now();
                let now = term.frame();
                if let Some(paint) = Paint::between(shown_until, &shown, &now) {
                    shown = now;
                    if socket.send(text(&serde_json::to_value(&paint).unwrap_or_default())).await.is_err() {
                        return "viewer left".into();
                    }
                }
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return "viewer left".into(),
                Some(Ok(_)) => {}
            },
            _ = recheck.tick() => {
                // Watching is activity: the idle timeout does not end a watcher's sign-in.
                if !state.ui.idle.touch(&me.token)
                    || state.broker.authenticate(&me.token, None).await.is_err()
                {
                    return close(socket, "your sign-in has ended: sign in again to watch").await;
                }
            }
        }
    }
}
