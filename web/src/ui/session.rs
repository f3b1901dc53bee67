//! Who is signed in: the session cookie's token, authenticated by the broker like a bearer
//! token, with the form token for this session. Pages that need a user take [`SignedIn`]; a
//! request without a valid session is sent to the sign-in page. A session without a request
//! for the idle timeout is signed out (its token revoked); the absolute timeout is the
//! token's lifetime.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};

use otgate_broker::Principal;

use super::{SESSION_COOKIE, cookie};
use crate::AppState;
use crate::extract::ClientAddr;

/// Last activity per browser session, keyed by a digest of its token (never the token).
#[derive(Debug)]
pub(crate) struct Idle {
    timeout: Duration,
    seen: Mutex<HashMap<[u8; 32], Instant>>,
}

/// Sessions tracked before the stale ones are swept.
const SWEEP_AT: usize = 10_000;

fn digest(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    for (slot, byte) in out.iter_mut().zip(hash.as_ref()) {
        *slot = *byte;
    }
    out
}

impl Idle {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            seen: Mutex::default(),
        }
    }

    /// Notes activity now; false when the session had been idle too long (it is then
    /// forgotten, and must be signed out).
    pub(crate) fn touch(&self, token: &str) -> bool {
        let key = digest(token);
        let now = Instant::now();
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        if seen.len() >= SWEEP_AT {
            let timeout = self.timeout;
            seen.retain(|_, at| now.duration_since(*at) < timeout);
        }
        match seen.get(&key) {
            Some(at) if now.duration_since(*at) >= self.timeout => {
                seen.remove(&key);
                false
            }
            _ => {
                seen.insert(key, now);
                true
            }
        }
    }

    /// Forgets a session (signed out).
    pub(crate) fn forget(&self, token: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(&digest(token));
        }
    }

    /// The idle timeout in whole minutes (at least 1), for the sign-in page.
    pub(crate) fn minutes(&self) -> u64 {
        self.timeout.as_secs().div_ceil(60).max(1)
    }
}

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
        if !state.ui.idle.touch(token) {
            // Idle too long: the token is revoked, so the API refuses it too.
            if let Err(e) = state.broker.logout(&principal, token).await {
                tracing::warn!(error = %e, "an idle session could not be revoked");
            }
            return Err(Redirect::to("/ui/login?idle=1").into_response());
        }
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
