//! Users (admins) and the caller's SSH keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use otgate_broker::{NewUser, SshKey, User};
use otgate_policy::{RoleAssignment, UserName};

use super::requests::Reason;
use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller, name};

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

/// A user's roles, replacing the ones they hold.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    /// Roles and where they hold; may be empty for a vendor, who keeps their organisation.
    pub roles: Vec<RoleAssignment>,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, add_user))
        .routes(routes!(set_roles))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
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

/// Replaces a user's roles (admins; the last enabled admin keeps `admin@*`).
#[utoipa::path(put, path = "/users/{name}/roles", tag = "users", security(("bearer" = [])), request_body = Roles,
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_roles(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    ApiJson(body): ApiJson<Roles>,
) -> ApiResult<Json<User>> {
    let user: UserName = name(&user)?;
    Ok(Json(
        state
            .broker
            .set_roles(&caller.principal, &user, body.roles)
            .await?,
    ))
}

/// Disables an account (admins, not their own): its logins and tokens are refused, its grants
/// open no session and its live sessions end.
#[utoipa::path(post, path = "/users/{name}/disable", tag = "users", security(("bearer" = [])), request_body = Reason,
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn disable_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    ApiJson(body): ApiJson<Reason>,
) -> ApiResult<Json<User>> {
    let user: UserName = name(&user)?;
    Ok(Json(
        state
            .broker
            .disable_user(&caller.principal, &user, &body.reason)
            .await?,
    ))
}

/// Enables a disabled account again (admins); the user signs in afresh.
#[utoipa::path(post, path = "/users/{name}/enable", tag = "users", security(("bearer" = [])),
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn enable_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> ApiResult<Json<User>> {
    let user: UserName = name(&user)?;
    Ok(Json(
        state.broker.enable_user(&caller.principal, &user).await?,
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
