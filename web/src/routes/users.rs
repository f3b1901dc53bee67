//! Users (admins) and the caller's SSH keys.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use otgate_broker::{NewUser, SshKey, User};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};

/// A created user and the one-time password to hand over.
#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    /// The user.
    pub user: User,
    /// Must be changed at first login; shown once.
    pub one_time_password: String,
}

/// An SSH public key to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// The key in OpenSSH format (the `.pub` file's line).
    pub public_key: String,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, add_user))
        .routes(routes!(list_keys, add_key))
}

/// Every user (admins).
#[utoipa::path(get, path = "/users", tag = "users", security(("bearer" = [])), responses((status = 200, body = [User]), (status = 403, body = ErrorBody)))]
async fn list_users(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(state.broker.users(&caller.principal).await?))
}

/// Creates a user with a one-time password (admins).
#[utoipa::path(post, path = "/users", tag = "users", security(("bearer" = [])), request_body = NewUser, responses(
    (status = 201, body = CreatedUser), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<CreatedUser>)> {
    let (user, password) = state.broker.add_user(&caller.principal, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user,
            one_time_password: password.expose().clone(),
        }),
    ))
}

/// The caller's registered SSH keys.
#[utoipa::path(get, path = "/keys", tag = "users", security(("bearer" = [])), responses((status = 200, body = [SshKey])))]
async fn list_keys(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<SshKey>>> {
    Ok(Json(state.broker.keys_of(&caller.principal).await?))
}

/// Registers an SSH public key for the caller.
#[utoipa::path(post, path = "/keys", tag = "users", security(("bearer" = [])), request_body = NewKey, responses(
    (status = 201, body = SshKey), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewKey>,
) -> ApiResult<(StatusCode, Json<SshKey>)> {
    Ok((
        StatusCode::CREATED,
        Json(
            state
                .broker
                .register_key(&caller.principal, &new.public_key)
                .await?,
        ),
    ))
}
