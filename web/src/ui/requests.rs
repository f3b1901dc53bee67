//! Access requests in the browser: everyone sees the requests the broker lets them see (a
//! vendor their own, engineers those of their zones); engineers approve or deny pending
//! ones, confirming with their authenticator code again on levels 0-1. The broker decides
//! who may; the page only hides what it would refuse.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use otgate_broker::{Request, RequestFilter, RequestStatus};
use otgate_policy::{Action, PurdueLevel};

use super::pages::{forged, html, problem};
use super::session::SignedIn;
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

fn level_class(level: PurdueLevel) -> &'static str {
    match level {
        PurdueLevel::L0 | PurdueLevel::L1 => "control",
        PurdueLevel::L2 => "supervisory",
        _ => "site",
    }
}

fn time(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

fn row(request: &Request, decidable: bool) -> Row {
    Row {
        id: request.id.get(),
        vendor: request.requester.to_string(),
        asset: request.asset.to_string(),
        level: request.level.as_str(),
        level_class: level_class(request.level),
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
            time(request.window.start),
            time(request.window.end)
        ),
        reason: request.reason.clone(),
        ticket: request.ticket.clone(),
        status: request.status.to_string(),
        approvals: format!("{}/{}", request.approvals.len(), request.approvals_needed),
        decidable,
        needs_code: request.level.is_control(),
    }
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
        // Approve buttons for pending requests of zones where this user approves, unless it
        // is their own request or they approved it already (the broker refuses both).
        let decidable = request.status == RequestStatus::Pending
            && request.requester != me.principal.user
            && !request
                .approvals
                .iter()
                .any(|a| a.approver == me.principal.user)
            && state
                .broker
                .is_allowed(&me.principal, &request.zone, Action::Approve)
                .await;
        rows.push(row(request, decidable));
    }
    html(&RequestsPage {
        csrf: me.csrf,
        me: me.principal.user.to_string(),
        rows,
    })
}

/// The approve form: levels 0-1 need the approver's authenticator code again.
#[derive(Deserialize)]
pub(super) struct ApproveForm {
    csrf: String,
    #[serde(default)]
    totp: Option<String>,
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
    Form(form): Form<ApproveForm>,
) -> Response {
    if !me.checks(&state, &form.csrf) {
        return problem(forged(), "Refused");
    }
    match approve_as(&state, &me, &id, form.totp.as_deref()).await {
        Ok(()) => Redirect::to("/ui/requests").into_response(),
        Err(e) => problem(e, "Not approved"),
    }
}

/// The deny form.
#[derive(Deserialize)]
pub(super) struct DenyForm {
    csrf: String,
    reason: String,
}

/// `POST /ui/requests/{id}/deny`.
pub(super) async fn deny(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<DenyForm>,
) -> Response {
    if !me.checks(&state, &form.csrf) {
        return problem(forged(), "Refused");
    }
    let result = match grant_id(&id) {
        Ok(id) => state
            .broker
            .deny(&me.principal, id, &form.reason)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Redirect::to("/ui/requests").into_response(),
        Err(e) => problem(e, "Not denied"),
    }
}
