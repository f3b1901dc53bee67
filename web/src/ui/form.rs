//! Posted forms, read without failing in JSON: every UI post arrives as
//! `application/x-www-form-urlencoded` pairs (repeated names kept, for checkboxes), and a
//! body that is not a form or too large is an HTML page that says what happened, recorded as
//! a refusal like every other.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::Response;

use super::pages::problem;
use crate::error::ApiError;

/// A posted form's fields, in order.
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// The first value of `name` as posted (not trimmed), or empty.
    pub(crate) fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// Every value of `name` (checkboxes).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The form token.
    pub(crate) fn csrf(&self) -> &str {
        self.raw("csrf")
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(problem(
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "not_a_form",
                    "this address takes the page's own form: go back, reload and submit it again",
                ),
                "Not a form",
            ));
        }
        let body = Bytes::from_request(request, state).await.map_err(|_| {
            problem(
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!(
                        "the form is larger than {} KiB: shorten the text and submit again",
                        crate::MAX_BODY / 1024
                    ),
                ),
                "Too large",
            )
        })?;
        Ok(Self(
            form_urlencoded::parse(&body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_blank_values_and_raw_text() {
        let fields = Fields(
            form_urlencoded::parse(b"protocol=ssh&protocol=modbus&reason=+&scope=a%0Ab&csrf=t")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        );
        assert_eq!(fields.all("protocol"), ["ssh", "modbus"]);
        assert_eq!(fields.get("reason"), None);
        assert_eq!(fields.raw("scope"), "a\nb");
        assert_eq!(fields.csrf(), "t");
        assert_eq!(fields.get("missing"), None);
    }
}
