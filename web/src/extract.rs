//! Extractors that turn every bad input into an [`ApiError`] with a JSON body: the caller's
//! identity, JSON bodies, query strings, ids in paths.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Json, Query, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use otgate_broker::Principal;
use otgate_policy::{GrantId, UserName};

use crate::AppState;
use crate::error::ApiError;

/// The authenticated caller and the token used.
pub(crate) struct Caller {
    pub principal: Principal,
    pub token: String,
}

/// Filled by [`Caller`], read by the refusal recorder: who made a refused request.
#[derive(Clone, Default)]
pub(crate) struct ActorSlot(Arc<OnceLock<UserName>>);

impl ActorSlot {
    pub fn get(&self) -> Option<UserName> {
        self.0.get().cloned()
    }

    /// Names who made the request, for its refusal event.
    pub(crate) fn set(&self, user: UserName) {
        let _ = self.0.set(user);
    }
}

/// The client's address, when the server knows it.
pub(crate) struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthenticated(
                "log in first (otgate login) and send Authorization: Bearer <token>",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthenticated("the Authorization header must be `Bearer <token>`")
            })?;
        let principal = state.broker.authenticate(token, source).await?;
        if let Some(slot) = parts.extensions.get::<ActorSlot>() {
            let _ = slot.0.set(principal.user.clone());
        }
        Ok(Self {
            principal,
            token: token.to_owned(),
        })
    }
}

/// A JSON body whose every rejection says what to fix.
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            )),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::bad_request(format!(
                "the body is not valid JSON: {}",
                e.body_text()
            ))),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                e.body_text(),
            )),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!(
                        "the request body is larger than {} KiB",
                        crate::MAX_BODY / 1024
                    ),
                ))
            }
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

/// A query string whose rejection says what to fix.
pub(crate) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|e: QueryRejection| ApiError::bad_request(e.body_text()))
    }
}

/// Parses an id from a path segment.
pub(crate) fn grant_id(text: &str) -> Result<GrantId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "`{}` is not a request or grant id",
            text.chars().take(32).collect::<String>()
        ))
    })
}

/// Parses a name from a path segment.
pub(crate) fn name<T: std::str::FromStr<Err = otgate_policy::PolicyError>>(
    text: &str,
) -> Result<T, ApiError> {
    text.parse()
        .map_err(|e: otgate_policy::PolicyError| ApiError::bad_request(e.to_string()))
}
