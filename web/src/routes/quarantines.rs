//! Quarantine of vendors and assets.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use otgate_broker::{NewQuarantine, Quarantine};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, start))
        .routes(routes!(lift))
}

/// Active quarantines and those ended in the last 7 days.
#[utoipa::path(get, path = "/quarantines", tag = "quarantines", security(("bearer" = [])), responses((status = 200, body = [Quarantine]), (status = 403, body = ErrorBody)))]
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Quarantine>>> {
    Ok(Json(state.broker.quarantines(&caller.principal).await?))
}

/// Quarantines a vendor or an asset (default 2 h).
#[utoipa::path(post, path = "/quarantines", tag = "quarantines", security(("bearer" = [])), request_body = NewQuarantine,
    responses((status = 201, body = Quarantine), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn start(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewQuarantine>,
) -> ApiResult<(StatusCode, Json<Quarantine>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.broker.quarantine(&caller.principal, new).await?),
    ))
}

/// Ends a quarantine early.
#[utoipa::path(post, path = "/quarantines/{id}/lift", tag = "quarantines", security(("bearer" = [])),
    params(("id" = i64, Path, description = "quarantine id")),
    responses((status = 200, body = Quarantine), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn lift(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Quarantine>> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("the quarantine id is a number"))?;
    Ok(Json(
        state.broker.lift_quarantine(&caller.principal, id).await?,
    ))
}
