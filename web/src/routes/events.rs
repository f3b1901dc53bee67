//! The event log: pages, and long polling for `--follow`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use otgate_broker::EventPage;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{ApiQuery, Caller};

/// Which events.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events after this sequence number (default 0).
    #[serde(default)]
    pub after: i64,
    /// At most this many (1-1000, default 100).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Seconds to wait for a first event when none is there yet (0-60, default 0).
    #[serde(default)]
    pub wait: u64,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// Events the caller may see, oldest first.
#[utoipa::path(get, path = "/events", tag = "events", security(("bearer" = [])), params(EventQuery), responses((status = 200, body = EventPage)))]
async fn events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    let limit = query.limit.unwrap_or(100);
    let wait = Duration::from_secs(query.wait.min(60));
    Ok(Json(
        state
            .broker
            .wait_events(&caller.principal, query.after, limit, wait)
            .await?,
    ))
}
