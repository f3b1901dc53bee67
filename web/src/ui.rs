//! The browser UI: server-rendered pages (askama templates compiled into the binary), our own
//! stylesheet, script and icon embedded, nothing from any other host. A session cookie
//! carries the API token (`__Host-`, HttpOnly, Secure, SameSite=Strict); every form carries a
//! CSRF token bound to the session (or, before login, to a cookie of its own); every page
//! gets a strict Content-Security-Policy without inline scripts. Each page authorizes
//! through the broker exactly as the API does.

mod accounts;
mod admin;
mod alerts;
mod assets;
mod csrf;
mod form;
mod gzip;
mod live;
mod oidc;
mod pages;
mod player;
mod requests;
mod session;
mod sessions;
mod sso;
mod vendor;
mod view;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use axum::routing::{any, get, post};

use crate::{AppState, UiOptions};

pub use oidc::OidcConfig;
pub(crate) use session::Idle;
pub use sso::SsoConfig;

pub(crate) use csrf::UiKey;

/// The session cookie (the `__Host-` prefix: Secure, Path=/, no Domain).
pub(crate) const SESSION_COOKIE: &str = "__Host-otgate";
/// The pre-login CSRF cookie.
pub(crate) const LOGIN_COOKIE: &str = "__Host-otgate-login";

/// The policy every page is served with.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the UI keeps besides the broker: its options, the sessions' last activity (idle
/// timeout), and the recordings read last (replay asks for frames a window at a time).
#[derive(Debug)]
pub(crate) struct UiState {
    /// As configured.
    pub options: UiOptions,
    /// Last activity per browser session.
    pub idle: Idle,
    /// Recordings read last.
    pub recent: sessions::Recent,
    /// Single sign-on, when configured.
    pub sso: Option<sso::Sso>,
}

impl UiState {
    pub(crate) fn new(options: UiOptions) -> Self {
        Self {
            sso: options.sso.clone().map(sso::Sso::new),
            idle: Idle::new(options.idle_timeout),
            options,
            recent: sessions::Recent::default(),
        }
    }
}

/// The UI's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::root))
        .route("/ui/", get(pages::home))
        .route("/ui/login", get(pages::login_form).post(pages::login))
        .route("/ui/login/sso", get(sso::begin))
        .route("/ui/login/sso/callback", get(sso::callback))
        .route("/ui/login/sso/enrol", post(sso::enrol))
        .route("/ui/logout", post(pages::logout))
        .route("/ui/requests", get(requests::list).post(vendor::create))
        .route("/ui/requests/new", get(vendor::new_form))
        .route("/ui/requests/{id}", get(requests::show))
        .route("/ui/requests/{id}/withdraw", post(vendor::withdraw))
        .route("/ui/grants", get(vendor::grants))
        .route("/ui/grants/{id}/certificate", post(vendor::certificate))
        .route("/ui/grants/{id}/revoke", post(admin::revoke))
        .route("/ui/quarantines", post(admin::quarantine))
        .route("/ui/sessions", get(sessions::list))
        .route("/ui/sessions/{id}", get(sessions::show))
        .route("/ui/sessions/{id}/frames", get(sessions::frames))
        .route("/ui/sessions/{id}/bundle", get(sessions::bundle))
        .route("/ui/sessions/{id}/action", post(sessions::act))
        .route("/ui/sessions/{id}/live", any(live::socket))
        .route("/ui/plant", get(admin::plant))
        .route("/ui/users", get(admin::users).post(admin::add_user))
        .route("/ui/users/{name}", get(accounts::show))
        .route("/ui/users/{name}/roles", post(accounts::set_roles))
        .route("/ui/users/{name}/disable", post(accounts::disable))
        .route("/ui/users/{name}/enable", post(accounts::enable))
        .route("/ui/rules", get(admin::rules))
        .route("/ui/assets/term.css", get(assets::terminal_css))
        .route("/ui/requests/{id}/approve", post(requests::approve))
        .route("/ui/requests/{id}/deny", post(requests::deny))
        .route("/ui/alerts", get(alerts::list))
        .route(
            "/ui/alerts/{id}/false-positive",
            post(alerts::false_positive),
        )
        .route("/ui/assets/{name}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .layer(axum::middleware::map_response(page_headers))
}

async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value for `name`: HttpOnly, Secure, SameSite=Strict, Path=/, living
/// `max_age` seconds (0 removes it).
pub(crate) fn set_cookie(name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
    cookie_value(name, value, max_age, "Strict")
}

/// The same with `SameSite=same_site` (`Lax` for a cookie that must come back from another
/// site, as single sign-on's).
pub(crate) fn cookie_value(
    name: &str,
    value: &str,
    max_age: i64,
    same_site: &str,
) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite={same_site}; Max-Age={}",
        max_age.max(0)
    ))
    .ok()
}
