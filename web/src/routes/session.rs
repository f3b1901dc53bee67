//! Login, logout, and who am I.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use otgate_broker::{Credentials, LoginOutcome, Secret, Session, TotpEnrolment, User};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller, ClientAddr};

/// Login with a password and, when enrolled or required, an authenticator code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// User name.
    pub user: String,
    /// Password.
    #[schema(value_type = String)]
    pub password: Secret<String>,
    /// 6-digit authenticator code.
    #[serde(default)]
    pub totp: Option<String>,
    /// New password, when the current one is a one-time password.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub new_password: Option<Secret<String>>,
}

/// A session, or the second factor to enrol first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginResponse {
    /// Logged in.
    Session(Session),
    /// Add this secret to an authenticator app, then log in again with a code.
    TotpEnrolment(TotpEnrolment),
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// Logs in; returns a bearer token.
#[utoipa::path(post, path = "/login", tag = "session", request_body = LoginBody, responses(
    (status = 200, body = LoginResponse),
    (status = 401, body = ErrorBody, description = "wrong credentials, code required, or password change required"),
    (status = 429, body = ErrorBody, description = "too many failures; see Retry-After"),
))]
async fn login(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Json<LoginResponse>> {
    let outcome = state
        .broker
        .login(Credentials {
            user: body.user,
            password: body.password,
            totp: body.totp,
            new_password: body.new_password,
            source,
        })
        .await?;
    Ok(Json(match outcome {
        LoginOutcome::Session(session) => LoginResponse::Session(session),
        LoginOutcome::Enrol(enrolment) => LoginResponse::TotpEnrolment(enrolment),
    }))
}

/// Revokes the token used for this call.
#[utoipa::path(post, path = "/logout", tag = "session", security(("bearer" = [])), responses((status = 204)))]
async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    state
        .broker
        .logout(&caller.principal, &caller.token)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's account.
#[utoipa::path(get, path = "/me", tag = "session", security(("bearer" = [])), responses((status = 200, body = User)))]
async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<User>> {
    Ok(Json(state.broker.me(&caller.principal).await?))
}
