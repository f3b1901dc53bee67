//! The API client of the CLI: HTTPS only, trusting the given CA, with the token saved by
//! `otgate login` (or `OTGATE_TOKEN`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::cli::Cli;

/// What `otgate login` keeps (mode 0600).
#[derive(Serialize, Deserialize)]
pub struct SavedSession {
    /// API address.
    pub server: String,
    /// CA file.
    pub ca: Option<PathBuf>,
    /// Who.
    pub user: String,
    /// Bearer token.
    pub token: String,
}

/// A refusal or failure reported by the API.
#[derive(Debug, thiserror::Error)]
#[error("{message} ({status} {code})")]
pub struct ApiFailure {
    /// HTTP status.
    pub status: u16,
    /// Error code.
    pub code: String,
    /// The server's message.
    pub message: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

fn session_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("OTGATE_CONFIG_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("otgate"))
}

fn session_path() -> Option<PathBuf> {
    session_dir().map(|dir| dir.join("session.json"))
}

/// The saved session, if any.
pub fn load_session() -> Option<SavedSession> {
    let text = std::fs::read_to_string(session_path()?).ok()?;
    serde_json::from_str(&text).ok()
}

/// Saves a session where only the user can read it.
pub fn save_session(session: &SavedSession) -> Result<PathBuf> {
    let path = session_path()
        .context("cannot tell where to keep the session: set HOME or OTGATE_CONFIG_DIR")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(session)?;
    otgate_broker::keys::replace_private(&path, text.as_bytes())?;
    Ok(path)
}

/// Removes the saved session.
pub fn forget_session() {
    if let Some(path) = session_path() {
        let _ = std::fs::remove_file(path);
    }
}

/// An API client.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// The server and CA in use (saved by `login`).
    pub server: String,
    /// The CA in use.
    pub ca: Option<PathBuf>,
}

impl Client {
    /// A client for the server named on the command line, the environment or the saved
    /// session, without a token.
    pub fn anonymous(cli: &Cli) -> Result<Self> {
        let saved = load_session();
        let server = cli
            .server
            .clone()
            .or_else(|| saved.as_ref().map(|s| s.server.clone()))
            .ok_or_else(|| {
                anyhow!("no server: pass --server https://HOST:8443 or set OTGATE_SERVER")
            })?;
        let server = server.trim_end_matches('/').to_owned();
        let same = |s: &&SavedSession| s.server.trim_end_matches('/') == server;
        let ca = cli
            .ca
            .clone()
            .or_else(|| saved.as_ref().filter(same).and_then(|s| s.ca.clone()));
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .timeout(Duration::from_secs(90))
            .connect_timeout(Duration::from_secs(10));
        if let Some(ca) = &ca {
            builder = builder.tls_certs_only([read_ca(ca)?]);
        }
        let http = builder.build().context("setting up HTTPS")?;
        let token = std::env::var("OTGATE_TOKEN")
            .ok()
            .or_else(|| saved.as_ref().filter(same).map(|s| s.token.clone()));
        Ok(Self {
            http,
            base: format!("{server}/api/v1"),
            token,
            server,
            ca,
        })
    }

    /// A client that must send a token.
    pub fn connect(cli: &Cli) -> Result<Self> {
        let client = Self::anonymous(cli)?;
        if client.token.is_none() {
            bail!(
                "not logged in to {}: run `otgate login --user NAME` first",
                client.server
            );
        }
        Ok(client)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn send(&self, builder: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = builder.send().await.map_err(|e| {
            let mut message = format!("cannot reach {}: {e}", self.server);
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            anyhow!(message)
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ApiFailure {
                status,
                code: body.error.code,
                message: body.error.message,
            }
            .into(),
            Err(_) => ApiFailure {
                status,
                code: "http".into(),
                message: text.chars().take(200).collect(),
            }
            .into(),
        })
    }

    /// GET a JSON document.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let response = self.send(self.request(reqwest::Method::GET, path)).await?;
        response.json().await.context("reading the server's answer")
    }

    /// GET raw bytes.
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let response = self.send(self.request(reqwest::Method::GET, path)).await?;
        Ok(response
            .bytes()
            .await
            .context("reading the server's answer")?
            .to_vec())
    }

    /// POST a JSON body, read a JSON answer.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.exchange(reqwest::Method::POST, path, body).await
    }

    /// PUT a JSON body, read a JSON answer.
    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.exchange(reqwest::Method::PUT, path, body).await
    }

    async fn exchange<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let response = self.send(self.request(method, path).json(body)).await?;
        response.json().await.context("reading the server's answer")
    }

    /// POST a JSON body, expect no answer.
    pub async fn post_no_content<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Result<()> {
        self.send(self.request(reqwest::Method::POST, path).json(body))
            .await
            .map(|_| ())
    }
}

fn read_ca(path: &Path) -> Result<reqwest::Certificate> {
    let pem =
        std::fs::read(path).with_context(|| format!("reading the CA file {}", path.display()))?;
    reqwest::Certificate::from_pem(&pem)
        .with_context(|| format!("{} is not a PEM certificate", path.display()))
}

/// Percent-encodes a query-string value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
