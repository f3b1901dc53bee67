//! Single sign-on with OpenID Connect (authorization code with PKCE): the sign-in page's
//! link starts a login whose state, nonce and PKCE verifier travel in a short-lived cookie
//! sealed with the UI key (SameSite=Lax: the provider sends the browser back cross-site);
//! the callback checks them, redeems the code, validates the ID token, maps the provider's
//! groups to otgate roles and signs the user in through the broker. The provider is
//! discovered at the first login, so a provider that is down at start does not stop otgate.
//!
//! A user whose roles need a second factor and who has none yet enrols an authenticator
//! before the session starts: the callback shows the QR code, and the name travels to the
//! code's form in a 10-minute cookie signed with the UI key (SameSite=Strict).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use otgate_broker::{LoginOutcome, Session, SsoIdentity, TotpEnrolment};
use otgate_policy::{RoleAssignment, UserName};

use super::form::Fields;
use super::oidc::{OidcConfig, Pending, Provider};
use super::pages::{EnrolPage, problem, qr_svg, render};
use super::{SESSION_COOKIE, cookie};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::ClientAddr;

/// The cookie that carries a login in progress.
const SSO_COOKIE: &str = "__Host-otgate-sso";
/// How long a login in progress lasts.
const SSO_SECS: i64 = 600;
/// The cookie that names the user enrolling an authenticator at single sign-on.
const ENROL_COOKIE: &str = "__Host-otgate-sso-enrol";

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
    let user = name.clone();
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
        Ok(LoginOutcome::Session(session)) => session,
        Ok(LoginOutcome::Enrol(enrolment)) => return begin_enrolment(state, &user, &enrolment),
        Err(e) => return problem(e.into(), "Single sign-on refused"),
    };
    signed_in(session)
}

/// The page that sets the session cookie and moves on to the home page.
fn signed_in(session: Session) -> Response {
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

/// The signed value of the enrolment cookie for `user`, valid for 10 minutes from now.
fn enrolment_cookie(state: &AppState, user: &UserName) -> String {
    let until = OffsetDateTime::now_utc().unix_timestamp() + SSO_SECS;
    let value = format!("{user}.{until}");
    format!(
        "{value}~{}",
        state.ui_key.token(&format!("sso-enrol:{value}"))
    )
}

/// The user named by a valid, unexpired enrolment cookie, and the cookie's value (what the
/// form token is made from).
fn enrolling(state: &AppState, headers: &HeaderMap) -> Option<(UserName, String)> {
    let (value, tag) = cookie(headers, ENROL_COOKIE)?.split_once('~')?;
    if !state.ui_key.check(&format!("sso-enrol:{value}"), tag) {
        return None;
    }
    let (name, until) = value.rsplit_once('.')?;
    let until: i64 = until.parse().ok()?;
    if until < OffsetDateTime::now_utc().unix_timestamp() {
        return None;
    }
    Some((UserName::new(name).ok()?, value.to_owned()))
}

/// The enrolment page: the QR code and secret when first shown, the code's form, and what
/// was wrong with the last code.
fn enrol_page(
    state: &AppState,
    user: &UserName,
    value: &str,
    enrolment: Option<&TotpEnrolment>,
    mistake: Option<String>,
) -> Result<String, ApiError> {
    render(&EnrolPage {
        csrf: state.ui_key.token(&format!("sso-enrol-form:{value}")),
        user: user.to_string(),
        qr: enrolment.map_or_else(String::new, |e| qr_svg(e.otpauth_uri.expose())),
        secret: enrolment.map_or_else(String::new, |e| e.secret.expose().clone()),
        sso: true,
        mistake,
    })
}

/// The callback's answer for a user who must enrol an authenticator first.
fn begin_enrolment(state: &AppState, user: &UserName, enrolment: &TotpEnrolment) -> Response {
    let sealed = enrolment_cookie(state, user);
    let value = sealed.split_once('~').map_or("", |(value, _)| value);
    let mut response = match enrol_page(state, user, value, Some(enrolment), None) {
        Ok(body) => Html(body).into_response(),
        Err(e) => return e.into_response(),
    };
    if let Some(cookie) = super::set_cookie(ENROL_COOKIE, &sealed, SSO_SECS) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /ui/login/sso/enrol`: the first code from the new authenticator signs the user in.
pub(super) async fn enrol(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    form: Fields,
) -> Response {
    let Some((user, value)) = enrolling(&state, &headers) else {
        return refused("this enrolment expired or began in another browser: sign in again");
    };
    if !state
        .ui_key
        .check(&format!("sso-enrol-form:{value}"), form.csrf())
    {
        return problem(super::pages::forged(), "Refused");
    }
    let code = form.get("totp").unwrap_or_default();
    match state.broker.sso_enrol(&user, code, source).await {
        Ok(session) => {
            let mut response = Redirect::to("/ui/").into_response();
            for cookie in [
                super::set_cookie(
                    SESSION_COOKIE,
                    session.token.expose(),
                    (session.expires_at - OffsetDateTime::now_utc()).whole_seconds(),
                ),
                super::set_cookie(ENROL_COOKIE, "", 0),
            ]
            .into_iter()
            .flatten()
            {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => {
            let error = ApiError::from(e);
            let mistake = format!(
                "{}: enter the 6 digits your app shows now for otgate (if you did not scan the QR code, sign in again for a new one)",
                error.message()
            );
            match enrol_page(&state, &user, &value, None, Some(mistake)) {
                Ok(body) => error.page(body),
                Err(e) => e.into_response(),
            }
        }
    }
}
