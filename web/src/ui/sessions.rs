//! Sessions in the browser: the list (live ones first, with their risk) and search over
//! commands, output and events; the session page with the player, its markers and event
//! table, the verification badge and the evidence bundle; and, for engineers, freeze,
//! resume and terminate. Who sees which session is the broker's decision, as in the API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use otgate_broker::{AlertFilter, RecordedSession, SessionAction, SessionFilter, SessionState};
use otgate_policy::{Action, ZoneName};
use otgate_recorder::screen::ScreenFrame;
use otgate_recorder::{Recording, Status};

use super::form::Fields;
use super::pages::{forged, html, problem};
use super::player;
use super::session::SignedIn;
use super::view;
use crate::AppState;
use crate::error::ApiError;

/// Recordings kept after reading, so a player asking for the next window does not read and
/// verify the whole recording again.
const KEPT: usize = 4;

/// The recordings read last, with the file listing they were read from.
#[derive(Debug, Default)]
pub(crate) struct Recent(Mutex<Vec<(String, String, Arc<Recording>)>>);

/// Reads session `id` (the caller checked access), from the cache while its files are
/// unchanged.
pub(super) async fn load(state: &AppState, id: &str) -> Result<Arc<Recording>, ApiError> {
    let files = state.recordings.files(id).await?;
    let listing: String = files
        .iter()
        .map(|f| format!("{}:{};", f.name, f.size))
        .collect();
    if let Ok(recent) = state.ui.recent.0.lock()
        && let Some((_, _, recording)) = recent.iter().find(|(i, l, _)| i == id && *l == listing)
    {
        return Ok(recording.clone());
    }
    let recording = Arc::new(
        otgate_recorder::read(
            &state.recordings,
            id,
            state.ui.options.verifying_key.as_ref(),
        )
        .await?,
    );
    if let Ok(mut recent) = state.ui.recent.0.lock() {
        recent.retain(|(i, _, _)| i != id);
        recent.insert(0, (id.to_owned(), listing, recording.clone()));
        recent.truncate(KEPT);
    }
    Ok(recording)
}

/// Session `id`'s recording, when the broker lets `me` see the session.
async fn readable(state: &AppState, me: &SignedIn, id: &str) -> Result<Arc<Recording>, ApiError> {
    state.broker.session(&me.principal, id).await?;
    load(state, id).await
}

/// A row of the list.
struct Row {
    id: String,
    vendor: String,
    asset: String,
    zone: String,
    level: String,
    level_class: &'static str,
    protocol: String,
    started: String,
    duration: String,
    state: String,
    risk: Option<(u8, &'static str)>,
    denials: i64,
    alerts: i64,
    verification: String,
    moments: Vec<(i64, String, String)>,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    csrf: String,
    me: String,
    query: ListQuery,
    rows: Vec<Row>,
    searched: bool,
}

/// The list's filters.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    vendor: String,
    #[serde(default)]
    asset: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    live: Option<String>,
}

fn nonempty(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

async fn row(
    state: &AppState,
    me: &SignedIn,
    levels: &HashMap<String, otgate_policy::PurdueLevel>,
    session: RecordedSession,
) -> Row {
    let level = levels.get(&session.asset).copied();
    let risk = if session.state == SessionState::Live || session.alerts > 0 {
        state
            .broker
            .alerts(
                &me.principal,
                &AlertFilter {
                    session: Some(session.id.clone()),
                    limit: Some(20),
                    ..AlertFilter::default()
                },
            )
            .await
            .ok()
            .and_then(|alerts| alerts.iter().map(|a| a.score).max())
            .map(|score| (score, view::band(score)))
    } else {
        None
    };
    Row {
        level: level.map_or("?", |l| l.as_str()).to_owned(),
        level_class: level.map_or("site", view::level_class),
        started: view::second(session.started_at),
        duration: view::clock(session.duration_ms as f64 / 1000.0),
        state: session.state.as_str().to_owned(),
        zone: session.zone.clone().unwrap_or_default(),
        risk,
        denials: session.denials,
        alerts: session.alerts,
        verification: session.verification.clone(),
        moments: Vec::new(),
        id: session.id,
        vendor: session.vendor,
        asset: session.asset,
        protocol: session.protocol,
    }
}

/// `GET /ui/sessions`: live and recorded sessions, filtered or searched.
pub(super) async fn list(
    State(state): State<AppState>,
    me: SignedIn,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = query.unwrap_or_default();
    let levels: HashMap<String, otgate_policy::PurdueLevel> = state
        .broker
        .assets(&me.principal)
        .await
        .map(|assets| {
            assets
                .into_iter()
                .map(|a| (a.name.to_string(), a.level))
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    if let Some(q) = nonempty(&query.q) {
        let hits = match state.broker.search_sessions(&me.principal, &q, 50).await {
            Ok(hits) => hits,
            Err(e) => return problem(e.into(), "Search refused"),
        };
        for hit in hits {
            let mut row = row(&state, &me, &levels, hit.session).await;
            row.moments = hit
                .moments
                .into_iter()
                .map(|m| (m.offset_ms / 1000, m.kind, m.snippet))
                .collect();
            rows.push(row);
        }
    } else {
        let filter = SessionFilter {
            vendor: nonempty(&query.vendor),
            asset: nonempty(&query.asset),
            since: nonempty(&query.since),
            live: query.live.is_some(),
            limit: Some(200),
        };
        let mut sessions = match state.broker.sessions(&me.principal, &filter).await {
            Ok(sessions) => sessions,
            Err(e) => return problem(e.into(), "Not available"),
        };
        sessions.sort_by_key(|s| s.state != SessionState::Live);
        for session in sessions {
            rows.push(row(&state, &me, &levels, session).await);
        }
    }
    html(&SessionsPage {
        csrf: me.csrf,
        me: me.principal.user.to_string(),
        searched: !query.q.trim().is_empty(),
        query,
        rows,
    })
}

/// An event in the table beside the player.
struct EventRow {
    t: f64,
    clock: String,
    kind: &'static str,
    marker: &'static str,
    text: String,
}

#[derive(Template)]
#[template(path = "session.html")]
struct SessionPage {
    csrf: String,
    me: String,
    id: String,
    session: RecordedSession,
    level: String,
    level_class: &'static str,
    started: String,
    duration: f64,
    duration_text: String,
    at: f64,
    screen: ScreenFrame,
    events: Vec<EventRow>,
    markers: Vec<(f64, &'static str, String)>,
    badge: &'static str,
    badge_text: String,
    problems: Vec<String>,
    watchable: bool,
    can_act: bool,
    grant: Option<i64>,
    modbus: bool,
    modbus_table: Option<String>,
}

/// Where to start (`?t=` seconds, from search results).
#[derive(Debug, Default, Deserialize)]
pub(super) struct At {
    #[serde(default)]
    t: Option<f64>,
}

/// Most rows in the event table.
const MAX_EVENT_ROWS: usize = 2000;

/// `GET /ui/sessions/{id}`: the player, the events, the verification.
pub(super) async fn show(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<String>,
    at: Result<Query<At>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(at) = at.unwrap_or_default();
    let session = match state.broker.session(&me.principal, &id).await {
        Ok(session) => session,
        Err(e) => return problem(e.into(), "Not available"),
    };
    let recording = match load(&state, &id).await {
        Ok(recording) => recording,
        Err(e) => return problem(e, "Recording not available"),
    };
    let asset = match otgate_policy::AssetName::new(&session.asset) {
        Ok(name) => state.broker.asset(&me.principal, &name).await.ok(),
        Err(_) => None,
    };
    let duration = player::duration(&recording);
    let at =
        at.t.filter(|t| t.is_finite())
            .unwrap_or(0.0)
            .clamp(0.0, duration);
    let mut events = Vec::new();
    let mut markers = Vec::new();
    let mut modbus = false;
    for line in &recording.events {
        modbus |= matches!(line.event, otgate_recorder::SessionEvent::Modbus { .. });
        if matches!(line.event, otgate_recorder::SessionEvent::Resize { .. }) {
            continue;
        }
        let marker = player::marker(&line.event);
        if let Some(kind) = marker {
            markers.push((line.t, kind, line.event.describe()));
        }
        if events.len() < MAX_EVENT_ROWS {
            events.push(EventRow {
                t: line.t,
                clock: view::clock(line.t),
                kind: line.event.kind(),
                marker: marker.unwrap_or(""),
                text: line.event.describe(),
            });
        }
    }
    let verification = &recording.verification;
    let (badge, badge_text) = match (verification.status, verification.signatures_checked) {
        (Status::Ok, true) => ("ok", "Verified: chain and signatures intact".to_owned()),
        (Status::Ok, false) => (
            "partial",
            "Chain intact; signatures not checked (no recording key on this node)".to_owned(),
        ),
        (Status::Incomplete, _) if session.state == SessionState::Live => (
            "partial",
            format!(
                "Live: sealed and intact up to {:.0} s",
                verification.intact_until
            ),
        ),
        (Status::Incomplete, _) => (
            "partial",
            format!(
                "Incomplete: intact up to {:.1} s, not finished",
                verification.intact_until
            ),
        ),
        (Status::Failed, _) => (
            "failed",
            "FAILED: the recording was altered or is damaged".to_owned(),
        ),
    };
    let live = session.state == SessionState::Live;
    let zone = session.zone.clone().unwrap_or_default();
    let can_act = match ZoneName::new(&zone) {
        Ok(zone) => {
            state
                .broker
                .is_allowed(&me.principal, &zone, Action::Approve)
                .await
                || state
                    .broker
                    .is_allowed(&me.principal, &zone, Action::Observe)
                    .await
                || state
                    .broker
                    .is_allowed(&me.principal, &zone, Action::Administer)
                    .await
        }
        Err(_) => false,
    };
    html(&SessionPage {
        csrf: me.csrf,
        me: me.principal.user.to_string(),
        id: id.clone(),
        level: asset.as_ref().map_or("?", |a| a.level.as_str()).to_owned(),
        level_class: asset
            .as_ref()
            .map_or("site", |a| view::level_class(a.level)),
        started: view::second(session.started_at),
        duration,
        duration_text: view::clock(duration),
        at,
        screen: player::screen_at(&recording, at),
        events,
        markers,
        badge,
        badge_text,
        // A live recording has no manifest and an open segment yet: nothing to report.
        problems: if live {
            Vec::new()
        } else {
            verification
                .problems
                .iter()
                .map(ToString::to_string)
                .chain(verification.notes.iter().cloned())
                .collect()
        },
        watchable: live && state.ui.options.live.is_some(),
        can_act: live && can_act,
        grant: session.grant,
        modbus_table: if modbus {
            otgate_recorder::modbus_table(&recording)
        } else {
            None
        },
        modbus,
        session,
    })
}

/// The window of frames asked for.
#[derive(Debug, Deserialize)]
pub(super) struct Window {
    from: f64,
    #[serde(default)]
    to: Option<f64>,
}

/// Longest window of frames in one answer (seconds).
const WINDOW: f64 = 120.0;

/// `GET /ui/sessions/{id}/frames?from=&to=`: screen frames for the player (gzip'd when the
/// browser accepts it).
pub(super) async fn frames(
    State(state): State<AppState>,
    me: SignedIn,
    headers: HeaderMap,
    Path(id): Path<String>,
    window: Result<Query<Window>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(window)) = window else {
        return ApiError::bad_request("give `from` (and `to`) in seconds: ?from=0&to=60")
            .into_response();
    };
    let recording = match readable(&state, &me, &id).await {
        Ok(recording) => recording,
        Err(e) => return e.into_response(),
    };
    let from = if window.from.is_finite() {
        window.from.max(0.0)
    } else {
        0.0
    };
    let to = window
        .to
        .filter(|t| t.is_finite())
        .unwrap_or(from + WINDOW)
        .clamp(from, from + WINDOW);
    super::gzip::json(&headers, &player::frames(&recording, from, to)).await
}

/// `GET /ui/sessions/{id}/bundle`: the evidence bundle (zip).
pub(super) async fn bundle(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let recording = match readable(&state, &me, &id).await {
        Ok(recording) => recording,
        Err(e) => return problem(e, "Not available"),
    };
    let key = state.ui.options.verifying_key.as_ref();
    match otgate_recorder::evidence_bundle(&state.recordings, &recording, key).await {
        Ok(zip) => (
            [
                (header::CONTENT_TYPE, "application/zip".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"otgate-{id}-evidence.zip\""),
                ),
            ],
            zip,
        )
            .into_response(),
        Err(e) => problem(e.into(), "Bundle not available"),
    }
}

/// `POST /ui/sessions/{id}/action`: freeze, resume or terminate a live session.
pub(super) async fn act(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<String>,
    fields: Fields,
) -> Response {
    if !me.checks(&state, fields.csrf()) {
        return problem(forged(), "Refused");
    }
    let reason = fields.get("reason").unwrap_or_default().to_owned();
    let action = match fields.get("action") {
        Some("kill") => SessionAction::Kill { reason },
        Some("freeze") => SessionAction::Freeze { reason },
        Some("resume") => SessionAction::Resume,
        _ => {
            return problem(
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "choose freeze, resume or terminate",
                ),
                "Nothing done",
            );
        }
    };
    match state
        .broker
        .session_action(&me.principal, &id, action)
        .await
    {
        Ok(_) => Redirect::to(&format!("/ui/sessions/{id}")).into_response(),
        Err(e) => problem(e.into(), "Nothing done"),
    }
}
