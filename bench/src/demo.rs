//! `otgate demo` as a child process, and HTTPS sessions against it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The release binary beside this one.
pub fn otgate() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("otgate");
    if !path.is_file() {
        bail!(
            "{} not found: run `cargo build --release` first",
            path.display()
        );
    }
    Ok(path)
}

pub struct Demo {
    child: Child,
    dir: PathBuf,
    pub file: Value,
}

impl Demo {
    pub fn start() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("otgate-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let child = Command::new(otgate()?)
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--ssh-listen",
                "127.0.0.1:0",
                "--dir",
            ])
            .arg(dir.join("plant"))
            .env("OTGATE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(file) = std::fs::read_to_string(dir.join("plant/demo.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
            {
                return Ok(Self { child, dir, file });
            }
            if Instant::now() > deadline {
                bail!("the demo did not start");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub async fn session(&self, user: &str) -> Result<Session> {
        let ca = std::fs::read(self.file["ca"].as_str().context("ca")?)?;
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca)?])
            .build()?;
        let base = format!("{}/api/v1", self.file["api"].as_str().context("api")?);
        let entry = self.file["users"]
            .as_array()
            .context("users")?
            .iter()
            .find(|u| u["name"] == user)
            .context("user")?;
        let mut body = json!({ "user": user, "password": entry["password"] });
        if let Some(secret) = entry["totp_secret"].as_str() {
            let seed =
                totp_rs::Secret::try_from_base32(secret).map_err(|e| anyhow::anyhow!("{e}"))?;
            let totp = totp_rs::Builder::new()
                .with_secret(seed.as_ref().to_vec())
                .build()?;
            body["totp"] = json!(
                totp.generate(time::OffsetDateTime::now_utc().unix_timestamp() as u64)
                    .to_string()
            );
        }
        let answer: Value = http
            .post(format!("{base}/login"))
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = answer["session"]["token"]
            .as_str()
            .context("token")?
            .to_owned();
        Ok(Session { http, base, token })
    }
}

impl Demo {
    /// The demo's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The demo process (broker, web and gateway in one).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Session {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Session {
    /// The session's bearer token (for the `otgate` CLI: `OTGATE_TOKEN`).
    pub fn token(&self) -> &str {
        &self.token
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = response.status();
        let value: Value = response.json().await?;
        if !status.is_success() {
            bail!("{path}: {status} {value}");
        }
        Ok(value)
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let value: Value = response.json().await?;
        if !status.is_success() {
            bail!("{path}: {status} {value}");
        }
        Ok(value)
    }
}
