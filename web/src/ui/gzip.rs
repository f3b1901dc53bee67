//! The player's frames as gzip'd JSON when the browser accepts it: a one-hour recording's
//! frames are megabytes of repetitive JSON. Only for bodies that hold no secret of the
//! session and nothing from the request (the recording's frames), so sizes cannot leak a
//! secret the way compressed pages can (BREACH); pages are never compressed.

use std::io::Write;

use axum::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;

/// Bodies smaller than this go as they are.
const SMALLEST: usize = 1024;

/// Whether `Accept-Encoding` admits gzip (`gzip` or `*`, not with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

fn failed(what: &str, error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "{what}");
    crate::error::generic(StatusCode::INTERNAL_SERVER_ERROR).into_response()
}

/// `body` as JSON, gzip'd (off the async threads) when the request admits it.
pub(super) async fn json(request: &HeaderMap, body: &impl Serialize) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(bytes) => bytes,
        Err(e) => return failed("frames could not be serialized", e),
    };
    let vary = (VARY, "accept-encoding");
    if bytes.len() < SMALLEST || !accepts_gzip(request) {
        return ([(CONTENT_TYPE, "application/json"), vary], bytes).into_response();
    }
    let compressed = tokio::task::spawn_blocking(move || {
        let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 8), Compression::fast());
        encoder.write_all(&bytes)?;
        encoder.finish()
    })
    .await;
    match compressed {
        Ok(Ok(gzip)) => (
            [
                (CONTENT_TYPE, "application/json"),
                (CONTENT_ENCODING, "gzip"),
                vary,
            ],
            gzip,
        )
            .into_response(),
        Ok(Err(e)) => failed("frames could not be compressed", e),
        Err(e) => failed("the compression task failed", e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Read;

    use axum::http::HeaderValue;

    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn accept_encoding_is_read_with_its_weights() {
        assert!(accepts_gzip(&with("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(&with("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("gzip; q=0.0, br")));
        assert!(!accepts_gzip(&with("identity")));
        assert!(!accepts_gzip(&with("gzipx")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn large_bodies_are_gzipped_and_read_back_whole() {
        let body: Vec<String> = (0..500).map(|i| format!("row {i}")).collect();
        let response = json(&with("gzip"), &body).await;
        assert_eq!(response.headers()[CONTENT_ENCODING], "gzip");
        assert_eq!(response.headers()[VARY], "accept-encoding");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, serde_json::to_string(&body).unwrap());
        let plain = json(&with("identity"), &body).await;
        assert!(plain.headers().get(CONTENT_ENCODING).is_none());
        let small = json(&with("gzip"), &["tiny"]).await;
        assert!(small.headers().get(CONTENT_ENCODING).is_none());
    }
}
