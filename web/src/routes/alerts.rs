//! Alerts: external sensors post them (generic JSON or Suricata EVE); engineers list them,
//! read them with the sessions they touched, and mark false positives.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use otgate_broker::{Alert, AlertFilter, BrokerError, NewAlert};
use otgate_detector::{AssetRef, ExternalAlert};
use otgate_policy::{AssetName, Finding};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, report))
        .routes(routes!(show))
        .routes(routes!(false_positive))
}

/// Why an alert was not a threat.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FalsePositiveBody {
    /// Why (the detector learns the alert's events as normal).
    pub note: String,
}

fn alert_id(text: &str) -> Result<i64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("the alert id is a number"))
}

/// Alerts the caller may see, newest first (engineers: their zones; auditors, admins: all).
#[utoipa::path(get, path = "/alerts", tag = "alerts", security(("bearer" = [])), params(AlertFilter),
    responses((status = 200, body = [Alert])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<AlertFilter>,
) -> ApiResult<Json<Vec<Alert>>> {
    Ok(Json(state.broker.alerts(&caller.principal, &filter).await?))
}

/// One alert with its findings and the sessions it touched.
#[utoipa::path(get, path = "/alerts/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = i64, Path, description = "alert id")),
    responses((status = 200, body = Alert), (status = 404, body = ErrorBody)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Alert>> {
    Ok(Json(
        state
            .broker
            .alert(&caller.principal, alert_id(&id)?)
            .await?,
    ))
}

/// Marks an alert a false positive: the detector learns its events as normal.
#[utoipa::path(post, path = "/alerts/{id}/false-positive", tag = "alerts", security(("bearer" = [])),
    params(("id" = i64, Path, description = "alert id")), request_body = FalsePositiveBody,
    responses((status = 200, body = Alert), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn false_positive(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FalsePositiveBody>,
) -> ApiResult<Json<Alert>> {
    Ok(Json(
        state
            .broker
            .mark_false_positive(&caller.principal, alert_id(&id)?, &body.note)
            .await?,
    ))
}

/// Reports an external alert: a generic one (`source`, `severity` 0-10 or low/medium/high/
/// critical, `asset` or `ip`, `title`, `details`) or a Suricata EVE `alert` record. Live
/// sessions to the asset get the alert's severity as risk and the playbook acts on them;
/// the answer lists the sessions touched. Sensors (role `sensor`) and admins may report.
#[utoipa::path(post, path = "/alerts", tag = "alerts", security(("bearer" = [])),
    request_body(content = Object, description = "generic alert or Suricata EVE alert record"),
    responses((status = 201, body = Alert), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn report(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<Alert>)> {
    state.broker.check_reporter(&caller.principal).await?;
    let alert = ExternalAlert::parse(&body).map_err(|e| BrokerError::Invalid(e.to_string()))?;
    let mut found = None;
    for reference in &alert.assets {
        found = match reference {
            AssetRef::Name(name) => match AssetName::new(name.clone()) {
                Ok(name) => state.broker.find_asset(&name).await?,
                Err(_) => None,
            },
            AssetRef::Address(ip) => state.broker.find_asset_by_host(ip).await?,
        };
        if found.is_some() {
            break;
        }
    }
    let Some(asset) = found else {
        let named: Vec<String> = alert
            .assets
            .iter()
            .map(|a| match a {
                AssetRef::Name(n) => format!("name `{n}`"),
                AssetRef::Address(ip) => format!("address {ip}"),
            })
            .collect();
        return Err(BrokerError::Invalid(format!(
            "no asset in the inventory has {}: the alert was not stored",
            named.join(" or ")
        ))
        .into());
    };
    let stored = match &state.intake {
        Some(intake) => intake.external(alert, asset).await?,
        // No detector on this node: stored, shown, and no session acted on.
        None => {
            state
                .broker
                .raise_alert(NewAlert {
                    origin: "external".into(),
                    source: alert.source.clone(),
                    severity: alert.severity,
                    score: alert.severity.saturating_mul(10),
                    asset: Some(asset.name.to_string()),
                    vendor: None,
                    zone: Some(asset.zone.clone()),
                    title: alert.title.clone(),
                    findings: vec![Finding::new(
                        "external",
                        alert.severity.saturating_mul(10),
                        format!("external alert on {}: {}", asset.name, alert.title),
                    )],
                    sessions: Vec::new(),
                    response: None,
                    rule: None,
                    details: alert.details,
                    evidence: Value::Array(Vec::new()),
                })
                .await?
        }
    };
    Ok((StatusCode::CREATED, Json(stored)))
}
