//! Access requests in the browser: everyone sees the requests the broker lets them see (a
//! vendor their own, engineers those of their zones); engineers approve or deny pending
//! ones, confirming with their authenticator code again on levels 0-1. The broker decides
//! who may; the page only hides what it would refuse.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use otgate_broker::{AlertFilter, Request, RequestFilter, RequestStatus, SessionFilter};
use otgate_policy::{Action, Preset};

use super::form::Fields;
use super::pages::{forged, form_target, html, problem};
use super::session::SignedIn;
use super::view;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::grant_id;

/// One row of the table.
struct Row {
    id: i64,
    vendor: String,
    asset: String,
    level: &'static str,
    level_class: &'static str,
    zone: String,
    scope: String,
    protocols: String,
    window: String,
    reason: String,
    ticket: Option<String>,
    status: String,
    approvals: String,
    approvers: String,
    decidable: bool,
    needs_code: bool,
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage {
    csrf: String,
    me: String,
    rows: Vec<Row>,
}

fn row(request: &Request, decidable: bool) -> Row {
    Row {
        id: request.id.get(),
        vendor: request.requester.to_string(),
        asset: request.asset.to_string(),
        level: request.level.as_str(),
        level_class: view::level_class(request.level),
        zone: request.zone.to_string(),
        scope: request.scope_name.clone(),
        protocols: request
            .protocols
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        window: format!(
            "{} - {}",
            view::minute(request.window.start),
            view::minute(request.window.end)
        ),
        reason: request.reason.clone(),
        ticket: request.ticket.clone(),
        status: request.status.to_string(),
        approvals: format!("{}/{}", request.approvals.len(), request.approvals_needed),
        approvers: request
            .approvals
            .iter()
            .map(|a| a.approver.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        decidable,
        needs_code: request.level.is_control(),
    }
}

/// What the decision rests on: who asks, what they asked compared with the preset, and
/// their history on this asset.
#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage {
    csrf: String,
    me: String,
    row: Row,
    org: String,
    display: String,
    scope: String,
    preset: String,
    extra: Vec<String>,
    sessions: Vec<(String, String, String, i64, i64)>,
    alerts: Vec<(i64, u8, &'static str, String)>,
    decision: Option<String>,
}

fn scope_text(scope: &otgate_policy::Scope) -> String {
    toml::to_string(scope).unwrap_or_else(|e| format!("(cannot show the scope: {e})"))
}

/// `GET /ui/requests/{id}`: one request with the context to decide it.
pub(super) async fn show(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let loaded = async {
        let id = grant_id(&id)?;
        let request = state.broker.request(&me.principal, id).await?;
        let asset = state.broker.asset(&me.principal, &request.asset).await?;
        let vendor = state.broker.user_summary(&request.requester).await?;
        let sessions = state
            .broker
            .sessions(
                &me.principal,
                &SessionFilter {
                    vendor: Some(request.requester.to_string()),
                    asset: Some(request.asset.to_string()),
                    limit: Some(20),
                    ..SessionFilter::default()
                },
            )
            .await?;
        let alerts = state
            .broker
            .alerts(
                &me.principal,
                &AlertFilter {
                    vendor: Some(request.requester.to_string()),
                    asset: Some(request.asset.to_string()),
                    ..AlertFilter::default()
                },
            )
            .await?;
        Ok::<_, ApiError>((request, asset, vendor, sessions, alerts))
    }
    .await;
    let (request, asset, vendor, sessions, alerts) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return problem(e, "Not available"),
    };
    let decidable = decidable(&state, &me, &request).await;
    let scope = scope_text(&request.scope);
    let preset = Preset::ReadOnly
        .materialize(&asset, &request.protocols)
        .map(|s| scope_text(&s))
        .unwrap_or_default();
    let baseline: std::collections::HashSet<&str> = preset.lines().collect();
    let extra = scope
        .lines()
        .filter(|line| !line.trim().is_empty() && !baseline.contains(line))
        .map(str::to_owned)
        .collect();
    html(&RequestPage {
        csrf: me.csrf,
        me: me.principal.user.to_string(),
        org: vendor.1.unwrap_or_else(|| "no organisation".into()),
        display: vendor.0.unwrap_or_else(|| request.requester.to_string()),
        scope,
        preset,
        extra,
        sessions: sessions
            .into_iter()
            .map(|s| {
                (
                    s.id,
                    view::minute(s.started_at),
                    s.state.as_str().to_owned(),
                    s.denials,
                    s.alerts,
                )
            })
            .collect(),
        alerts: alerts
            .into_iter()
            .map(|a| {
                (
                    a.id,
                    a.score,
                    view::band(a.score),
                    a.findings
                        .first()
                        .map(|f| f.text.clone())
                        .unwrap_or_default(),
                )
            })
            .collect(),
        decision: request.decided_by.as_ref().map(|by| {
            format!(
                "{} by {by}: {}",
                request.status,
                request.decision_reason.clone().unwrap_or_default()
            )
        }),
        row: row(&request, decidable),
    })
}

async fn decidable(state: &AppState, me: &SignedIn, request: &Request) -> bool {
    // Approve buttons for pending requests of zones where this user approves, unless it is
    // their own request or they approved it already (the broker refuses both).
    request.status == RequestStatus::Pending
        && request.requester != me.principal.user
        && !request
            .approvals
            .iter()
            .any(|a| a.approver == me.principal.user)
        && state
            .broker
            .is_allowed(&me.principal, &request.zone, Action::Approve)
            .await
}

/// `GET /ui/requests`.
pub(super) async fn list(State(state): State<AppState>, me: SignedIn) -> Response {
    let requests = match state
        .broker
        .requests(&me.principal, &RequestFilter::default())
        .await
    {
        Ok(requests) => requests,
        Err(e) => return problem(e.into(), "Not available"),
    };
    let mut rows = Vec::with_capacity(requests.len());
    for request in &requests {
        rows.push(row(request, decidable(&state, &me, request).await));
    }
    html(&RequestsPage {
        csrf: me.csrf,
        me: me.principal.user.to_string(),
        rows,
    })
}

/// Approves `id` as `me`, confirming the authenticator code first for levels 0-1.
async fn approve_as(
    state: &AppState,
    me: &SignedIn,
    id: &str,
    totp: Option<&str>,
) -> Result<(), ApiError> {
    let id = grant_id(id)?;
    let request = state.broker.request(&me.principal, id).await?;
    if request.level.is_control() {
        let code = totp
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "totp_required",
                    format!(
                        "{} is on level {}: confirm the approval with your authenticator code",
                        request.asset,
                        request.level.as_str()
                    ),
                )
            })?;
        state.broker.confirm_totp(&me.principal, code).await?;
    }
    state.broker.approve(&me.principal, id).await?;
    Ok(())
}

/// `POST /ui/requests/{id}/approve`.
pub(super) async fn approve(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<String>,
    form: Fields,
) -> Response {
    if !me.checks(&state, form.csrf()) {
        return problem(forged(), "Refused");
    }
    match approve_as(&state, &me, &id, form.get("totp")).await {
        Ok(()) => Redirect::to(&format!("/ui/requests/{id}")).into_response(),
        Err(e) => problem(e, "Not approved"),
    }
}

/// `POST /ui/requests/{id}/deny`.
pub(super) async fn deny(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<String>,
    form: Fields,
) -> Response {
    let id = match form_target(&state, &me, &form, &id, "Not denied") {
        Ok(id) => id,
        Err(page) => return *page,
    };
    let reason = form.get("reason").unwrap_or_default();
    match state.broker.deny(&me.principal, id, reason).await {
        Ok(_) => Redirect::to("/ui/requests").into_response(),
        Err(e) => problem(e.into(), "Not denied"),
    }
}
