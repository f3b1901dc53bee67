//! Alerts in the browser: what drove each one in words, what the playbook did, the sessions
//! it touched; engineers mark false positives (the detector then learns the events as
//! normal). Who sees which alerts is the broker's decision, as in the API.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use otgate_broker::{Alert, AlertFilter};

use super::form::Fields;
use super::pages::{forged, html, problem};
use super::session::SignedIn;
use super::view::band;
use crate::AppState;
use crate::error::ApiError;

/// One row of the table.
struct Row {
    id: i64,
    at: String,
    score: u8,
    band: &'static str,
    asset: String,
    vendor: String,
    findings: Vec<String>,
    source: String,
    response: String,
    sessions: Vec<String>,
    judged: Option<String>,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    csrf: String,
    me: String,
    rows: Vec<Row>,
}

fn row(alert: Alert) -> Row {
    let at = alert.at;
    Row {
        id: alert.id,
        at: format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        ),
        score: alert.score,
        band: band(alert.score),
        asset: alert.asset.unwrap_or_default(),
        vendor: alert.vendor.unwrap_or_default(),
        findings: alert.findings.into_iter().map(|f| f.text).collect(),
        source: format!("{} ({})", alert.source, alert.origin),
        response: alert.response.unwrap_or_else(|| "-".into()),
        sessions: alert.sessions,
        judged: alert
            .false_positive_by
            .zip(alert.false_positive_note)
            .map(|(by, note)| format!("false positive ({by}): {note}")),
    }
}

/// `GET /ui/alerts`.
pub(super) async fn list(State(state): State<AppState>, me: SignedIn) -> Response {
    match state
        .broker
        .alerts(&me.principal, &AlertFilter::default())
        .await
    {
        Ok(alerts) => html(&AlertsPage {
            csrf: me.csrf,
            me: me.principal.user.to_string(),
            rows: alerts.into_iter().map(row).collect(),
        }),
        Err(e) => problem(e.into(), "Not available"),
    }
}

/// `POST /ui/alerts/{id}/false-positive`.
pub(super) async fn false_positive(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<String>,
    form: Fields,
) -> Response {
    if !me.checks(&state, form.csrf()) {
        return problem(forged(), "Refused");
    }
    let Ok(id) = id.parse::<i64>() else {
        return problem(
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the alert id is a number",
            ),
            "Not marked",
        );
    };
    match state
        .broker
        .mark_false_positive(&me.principal, id, form.get("note").unwrap_or_default())
        .await
    {
        Ok(_) => Redirect::to("/ui/alerts").into_response(),
        Err(e) => problem(e.into(), "Not marked"),
    }
}
