//! The UI's own files, compiled in: nothing is fetched from another host.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Name, content type, bytes.
const ASSETS: [(&str, &str, &[u8]); 3] = [
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../assets/favicon.svg"),
    ),
];

fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, bytes)) => {
            let mut response = (StatusCode::OK, *bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => crate::error::ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no UI file `{}`", name.chars().take(64).collect::<String>()),
        )
        .into_response(),
    }
}

/// `/ui/assets/{name}`.
pub(super) async fn serve(Path(name): Path<String>) -> Response {
    asset(&name)
}

/// `/favicon.ico`: browsers ask for it whatever the page says.
pub(super) async fn favicon() -> Response {
    asset("favicon.svg")
}

/// The terminal's colours (the 256 of xterm, as classes the screen frames use).
static TERMINAL_CSS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(otgate_recorder::screen::stylesheet);

/// `/ui/assets/term.css`.
pub(super) async fn terminal_css() -> Response {
    let mut response = (StatusCode::OK, TERMINAL_CSS.as_str()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
