//! Recorded sessions: list, show, full-text search, and the recording's files (for replay,
//! verification and evidence export by `otgate` clients).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use otgate_broker::{RecordedSession, SearchHit, SessionAction, SessionFilter};
use otgate_recorder::RecorderError;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller};

/// What to search for.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to find, as a phrase, in commands, terminal output and events.
    pub q: String,
    /// At most this many sessions (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A file of a recording.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RecordingFile {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(search))
        .routes(routes!(show))
        .routes(routes!(files))
        .routes(routes!(file))
        .routes(routes!(act))
}

impl From<RecorderError> for ApiError {
    fn from(error: RecorderError) -> Self {
        match error {
            RecorderError::NotFound(_)
            | RecorderError::Storage(otgate_recorder::storage::StorageError::NotFound(_)) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", error.to_string())
            }
            RecorderError::BadSessionId(_)
            | RecorderError::Storage(otgate_recorder::storage::StorageError::BadKey(_)) => {
                Self::bad_request(error.to_string())
            }
            other => {
                tracing::error!(error = %other, "recording storage failure");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "recording storage is unavailable: try again shortly",
                )
            }
        }
    }
}

/// Recorded sessions the caller may see, newest first.
#[utoipa::path(get, path = "/sessions", tag = "sessions", security(("bearer" = [])), params(SessionFilter),
    responses((status = 200, body = [RecordedSession]), (status = 422, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<SessionFilter>,
) -> ApiResult<Json<Vec<RecordedSession>>> {
    Ok(Json(
        state.broker.sessions(&caller.principal, &filter).await?,
    ))
}

/// Sessions whose commands, output or events contain the phrase, with the moments.
#[utoipa::path(get, path = "/sessions/search", tag = "sessions", security(("bearer" = [])), params(SearchQuery),
    responses((status = 200, body = [SearchHit]), (status = 422, body = ErrorBody)))]
async fn search(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Vec<SearchHit>>> {
    Ok(Json(
        state
            .broker
            .search_sessions(&caller.principal, &query.q, query.limit.unwrap_or(20))
            .await?,
    ))
}

/// One recorded session.
#[utoipa::path(get, path = "/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = RecordedSession), (status = 404, body = ErrorBody)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<RecordedSession>> {
    Ok(Json(state.broker.session(&caller.principal, &id).await?))
}

/// The files of a session's recording, as stored.
#[utoipa::path(get, path = "/sessions/{id}/files", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = [RecordingFile]), (status = 404, body = ErrorBody)))]
async fn files(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RecordingFile>>> {
    state.broker.session(&caller.principal, &id).await?;
    let files = state.recordings.files(&id).await?;
    Ok(Json(
        files
            .into_iter()
            .map(|f| RecordingFile {
                name: f.name,
                size: f.size,
            })
            .collect(),
    ))
}

/// One file of a session's recording, byte for byte as stored.
#[utoipa::path(get, path = "/sessions/{id}/files/{name}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "session id"), ("name" = String, Path, description = "file name")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = ErrorBody)))]
async fn file(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    state.broker.session(&caller.principal, &id).await?;
    if !otgate_recorder::layout::valid_session_id(&name) {
        return Err(ApiError::bad_request(format!(
            "{name:?} is not a recording file name"
        )));
    }
    let bytes = state.recordings.get(&id, &name).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Kills, freezes or resumes a live session (engineers of its zone, admins); the gateway acts
/// on it at once and the vendor sees who and why.
#[utoipa::path(post, path = "/sessions/{id}/action", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "session id")), request_body = SessionAction,
    responses((status = 202, body = RecordedSession), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(action): ApiJson<SessionAction>,
) -> ApiResult<(StatusCode, Json<RecordedSession>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(
            state
                .broker
                .session_action(&caller.principal, &id, action)
                .await?,
        ),
    ))
}
