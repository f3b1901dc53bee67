//! Single sign-on with OpenID Connect (authorization code with PKCE): the sign-in page's
//! link starts a login whose state, nonce and PKCE verifier travel in a short-lived cookie
//! sealed with the UI key (SameSite=Lax: the provider sends the browser back cross-site);
//! the callback checks them, redeems the code, validates the ID token, maps the provider's
//! groups to otgate roles and signs the user in through the broker. The provider is
//! discovered at the first login, so a provider that is down at start does not stop otgate.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use otgate_broker::SsoIdentity;
use otgate_policy::{RoleAssignment, UserName};

use super::oidc::{OidcConfig, Pending, Provider};
use super::pages::problem;
use super::{SESSION_COOKIE, cookie};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::ClientAddr;

/// The cookie that carries a login in progress.
const SSO_COOKIE: &str = "__Host-otgate-sso";
/// How long a login in progress lasts.
const SSO_SECS: i64 = 600;

/// Single sign-on as configured: the provider, and which claim values give which roles.
#[derive(Clone, Debug)]
pub struct SsoConfig {
    /// The provider.
    pub provider: OidcConfig,
    /// A value of the roles claim (e.g. a group), and the role it gives.
    pub roles: Vec<(String, RoleAssignment)>,
}

/// Single sign-on at run time.
#[derive(Debug)]
pub(crate) struct Sso {
    config: SsoConfig,
    provider: OnceCell<Arc<Provider>>,
}

impl Sso {
    pub(crate) fn new(config: SsoConfig) -> Self {
        Self {
            config,
            provider: OnceCell::new(),
        }
    }

    async fn provider(&self) -> Result<Arc<Provider>, ApiError> {
        self.provider
            .get_or_try_init(|| async {
                Provider::discover(self.config.provider.clone())
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
            .map_err(|e| {
                tracing::warn!(error = %e, "single sign-on: the identity provider is not usable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "sso_unavailable",
                    format!(
                        "single sign-on is not available now ({e}): sign in with your password"
                    ),
                )
            })
    }

    fn roles(&self, claimed: &[String]) -> Vec<RoleAssignment> {
        let mut roles: Vec<RoleAssignment> = self
            .config
            .roles
            .iter()
            .filter(|(value, _)| claimed.contains(value))
            .map(|(_, role)| role.clone())
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }
}

fn sso_cookie(value: &str, max_age: i64) -> Option<header::HeaderValue> {
    super::cookie_value(SSO_COOKIE, value, max_age, "Lax")
}

fn refused(message: impl Into<String>) -> Response {
    problem(
        ApiError::new(StatusCode::UNAUTHORIZED, "sso_refused", message),
        "Single sign-on refused",
    )
}

/// `GET /ui/login/sso`: off to the identity provider.
pub(super) async fn begin(State(state): State<AppState>) -> Response {
    let Some(sso) = &state.ui.sso else {
        return problem(
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "single sign-on is not configured: sign in with your password",
            ),
            "No single sign-on",
        );
    };
    let provider = match sso.provider().await {
        Ok(provider) => provider,
        Err(e) => return problem(e, "No single sign-on"),
    };
    let (url, pending) = match provider.begin() {
        Ok(begun) => begun,
        Err(e) => return refused(e.to_string()),
    };
    let value = pending.to_cookie();
    let sealed = format!("{value}~{}", state.ui_key.token(&format!("sso:{value}")));
    let mut response = Redirect::to(&url).into_response();
    if let Some(cookie) = sso_cookie(&sealed, SSO_SECS) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// What the provider sends back.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Callback {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "signed_in.html")]
struct SignedInPage {
    user: String,
}

/// `GET /ui/login/sso/callback`.
pub(super) async fn callback(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    query: Result<Query<Callback>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(callback) = query.unwrap_or_default();
    let response = finish(&state, source, &headers, callback).await;
    // The login in progress is used once, whatever happened.
    let mut response = response;
    if let Some(clear) = sso_cookie("", 0) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

async fn finish(
    state: &AppState,
    source: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    callback: Callback,
) -> Response {
    let Some(sso) = &state.ui.sso else {
        return refused("single sign-on is not configured");
    };
    if let Some(error) = callback.error {
        return refused(format!(
            "the identity provider said `{}`: sign in again or use your password",
            error.chars().take(80).collect::<String>()
        ));
    }
    let pending = cookie(headers, SSO_COOKIE)
        .and_then(|sealed| sealed.split_once('~'))
        .filter(|(value, tag)| state.ui_key.check(&format!("sso:{value}"), tag))
        .and_then(|(value, _)| Pending::from_cookie(value));
    let Some(pending) = pending else {
        return refused("this sign-in expired or began in another browser: start it again");
    };
    let (Some(code), Some(returned)) = (callback.code, callback.state) else {
        return refused("the identity provider sent no code: start the sign-in again");
    };
    let provider = match sso.provider().await {
        Ok(provider) => provider,
        Err(e) => return problem(e, "No single sign-on"),
    };
    let identity = match provider.finish(pending, &returned, &code).await {
        Ok(identity) => identity,
        Err(e) => {
            tracing::warn!(error = %e, "single sign-on: the login did not check out");
            return refused(e.to_string());
        }
    };
    let Some(name) = identity.otgate_name().and_then(|n| UserName::new(n).ok()) else {
        return refused(format!(
            "`{}` cannot be an otgate user name: the provider's username claim must be letters, digits, `.`, `-` or `_`",
            identity.username.chars().take(80).collect::<String>()
        ));
    };
    let session = state
        .broker
        .sso_login(SsoIdentity {
            roles: sso.roles(&identity.roles),
            display_name: identity.name.clone(),
            issuer: sso.config.provider.issuer.clone(),
            name,
            source,
        })
        .await;
    let session = match session {
        Ok(session) => session,
        Err(e) => return problem(e.into(), "Single sign-on refused"),
    };
    let max_age = (session.expires_at - OffsetDateTime::now_utc()).whole_seconds();
    let page = SignedInPage {
        user: session.user.to_string(),
    };
    // A page, not a redirect: a SameSite=Strict cookie set at the end of a navigation that
    // began on another site is only sent from the next, same-site, navigation.
    let mut response = match super::pages::render(&page) {
        Ok(body) => Html(body).into_response(),
        Err(e) => return e.into_response(),
    };
    if let Some(cookie) = super::set_cookie(SESSION_COOKIE, session.token.expose(), max_age) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
