//! otgate-web: the HTTPS server: the REST API under `/api/v1` with its OpenAPI document at
//! `/api/v1/openapi.json`, and the browser UI under `/ui/` (server-rendered pages, live view
//! over a WebSocket, replay from frames the server renders).
//!
//! Invariants:
//! - Every handler authenticates the caller and leaves authorization to the broker, which asks
//!   `policy`; the API never decides access by itself.
//! - Every error is a JSON body `{"error": {"code", "message"}}` with a message that says what to
//!   change, produced in one place (`error`); every 4xx is recorded as an event (`refusals`).
//! - Bodies are limited to [`MAX_BODY`]; internal errors never reach clients.
//!
//! Layout: `routes/` (one module per subject), `ui/` (the pages), `extract` (caller, JSON,
//! query, ids), `error`, `refusals`, [`tls`].
//!
//! Never: depend on `gateway`, or hold state of its own beyond the broker and recordings
//! handles.

mod error;
mod extract;
mod refusals;
mod routes;
pub mod tls;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use otgate_broker::Broker;
use otgate_recorder::Archive;

pub use error::{ApiError, ErrorBody};

/// Largest request body accepted.
pub const MAX_BODY: usize = 256 * 1024;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    broker: Arc<Broker>,
    recordings: Archive,
    intake: Option<Arc<dyn AlertIntake>>,
    ui_key: ui::UiKey,
    ui: Arc<ui::UiState>,
}

/// What the browser UI needs from the rest of the node besides the broker and recordings.
#[derive(Clone, Debug)]
pub struct UiOptions {
    /// Where vendors connect with OpenSSH (shown as the exact `ssh` command).
    pub ssh: Option<SocketAddr>,
    /// Where vendors open tunnels (`otgate connect --gateway`).
    pub tunnel: Option<SocketAddr>,
    /// The gateway's recorder when this node runs the gateway: live view follows its
    /// sessions.
    pub live: Option<otgate_recorder::Recorder>,
    /// The public recording key: the session page checks signatures with it.
    pub verifying_key: Option<otgate_recorder::VerifyingKey>,
    /// A browser session ends after this long without a request.
    pub idle_timeout: Duration,
    /// The detector's playbook in words, for the admin page.
    pub playbook: Vec<String>,
    /// Single sign-on with OpenID Connect, when configured.
    pub sso: Option<SsoConfig>,
}

pub use ui::{OidcConfig, SsoConfig};

impl Default for UiOptions {
    fn default() -> Self {
        Self {
            ssh: None,
            tunnel: None,
            live: None,
            verifying_key: None,
            idle_timeout: Duration::from_secs(15 * 60),
            playbook: Vec::new(),
            sso: None,
        }
    }
}

/// Where external alerts go on a node that runs the detector: it scores them against the
/// asset's live sessions, applies the playbook, and stores the alert with the sessions it
/// touched.
#[async_trait::async_trait]
pub trait AlertIntake: Send + Sync {
    /// Handles an alert about `asset`.
    async fn external(
        &self,
        alert: otgate_detector::ExternalAlert,
        asset: otgate_policy::Asset,
    ) -> Result<otgate_broker::Alert, otgate_broker::BrokerError>;
}

/// Errors of the web server.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Certificates or keys are missing or wrong.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server failed.
    #[error("HTTPS server: {0}")]
    Serve(#[from] std::io::Error),
    /// No key for the UI's form tokens.
    #[error("UI: {0}")]
    Ui(String),
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "otgate API",
        description = "Just-in-time, device- and command-scoped access to industrial assets: requests, approvals, grants, credentials, revocation, events, recorded sessions."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "session", description = "Login and identity"),
        (name = "users", description = "Users and SSH keys"),
        (name = "inventory", description = "Zones, assets, vault"),
        (name = "requests", description = "Access requests and approvals"),
        (name = "grants", description = "Grants, credentials, revocation"),
        (name = "quarantines", description = "Quarantine of vendors and assets"),
        (name = "events", description = "The event log"),
        (name = "sessions", description = "Recorded sessions: list, search, recording files"),
        (name = "alerts", description = "Detector and external alerts, false positives"),
        (name = "meta", description = "Health, presets, rules"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

fn parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", routes::api())
        .split_for_parts()
}

/// The OpenAPI document, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// The OpenAPI document as pretty JSON (what is committed as `web/openapi.json`).
pub fn openapi_json() -> String {
    openapi().to_pretty_json().unwrap_or_default()
}

async fn api_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The whole application: the API over `broker`, recordings read from `recordings`,
/// external alerts handed to `intake` when this node runs the detector, and the browser UI
/// set up by `options`.
pub fn router(
    broker: Arc<Broker>,
    recordings: Archive,
    intake: Option<Arc<dyn AlertIntake>>,
    options: UiOptions,
) -> Result<Router, WebError> {
    let state = AppState {
        broker,
        recordings,
        intake,
        ui_key: ui::UiKey::generate().map_err(|e| WebError::Ui(e.to_string()))?,
        ui: Arc::new(ui::UiState::new(options)),
    };
    let (api, _) = parts();
    let api = api.merge(ui::routes());
    let document = Arc::new(openapi_json());
    Ok(api
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        document.as_str().to_owned(),
                    )
                        .into_response()
                }
            }),
        )
        .fallback(|| async { error::generic(axum::http::StatusCode::NOT_FOUND) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refusals::record,
        ))
        .layer(axum::middleware::map_response(api_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state))
}

/// Serves `app` over TLS on `listener` until `shutdown`, then drains for up to 10 s.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: CancellationToken,
) -> Result<(), WebError> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stopper.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )?
    .handle(handle)
    .serve(app.into_make_service_with_connect_info::<SocketAddr>())
    .await?;
    Ok(())
}
