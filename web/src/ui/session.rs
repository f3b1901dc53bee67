//! Who is signed in: the session cookie's token, authenticated by the broker like a bearer
//! token, with the form token for this session. Pages that need a user take [`SignedIn`]; a
//! request without a valid session is sent to the sign-in page.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};

use otgate_broker::Principal;

use super::{SESSION_COOKIE, cookie};
use crate::AppState;
use crate::extract::ClientAddr;

/// A signed-in user.
pub(crate) struct SignedIn {
    /// Who.
    pub principal: Principal,
    /// The session's API token (from the cookie).
    pub token: String,
    /// The form token for this session.
    pub csrf: String,
}

impl SignedIn {
    /// Whether a posted form token belongs to this session.
    pub(crate) fn checks(&self, state: &AppState, posted: &str) -> bool {
        state.ui_key.check(&self.token, posted)
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let ClientAddr(source) = match ClientAddr::from_request_parts(parts, state).await {
            Ok(found) => found,
            Err(never) => match never {},
        };
        let to_login = || Redirect::to("/ui/login").into_response();
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(to_login)?;
        let principal = state
            .broker
            .authenticate(token, source)
            .await
            .map_err(|_| to_login())?;
        if let Some(slot) = parts.extensions.get::<crate::extract::ActorSlot>() {
            slot.set(principal.user.clone());
        }
        Ok(Self {
            csrf: state.ui_key.token(token),
            principal,
            token: token.to_owned(),
        })
    }
}
