//! The configuration file: raw TOML structs (`deny_unknown_fields`) converted into each
//! crate's typed configuration. Relative paths are relative to the data directory, which is
//! relative to the file. Errors name the file, the key and the fix, and exit with code 64.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use otgate_broker::{BrokerConfig, Database, KeyFiles, LoginLimits, Secret};
use otgate_detector::DetectorConfig;
use otgate_policy::window::parse_duration;
use otgate_policy::{ApprovalConfig, ApprovalRules, Inventory, PolicyError};
use otgate_recorder::Archive;
use otgate_recorder::storage::{LocalStorage, S3Config, S3Storage, Storage, StorageError};

/// A configuration problem: which file, which key, what to do.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {message}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// The key (dotted), or where in the file.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigError {
    pub fn new(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.display().to_string(),
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    data_dir: Option<PathBuf>,
    #[serde(default)]
    web: RawWeb,
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    keys: RawKeys,
    #[serde(default)]
    inventory: RawInventory,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    approval: ApprovalConfig,
    #[serde(default)]
    bus: RawBus,
    #[serde(default)]
    recordings: RawRecordings,
    #[serde(default)]
    gateway: RawGateway,
    #[serde(default)]
    detector: DetectorConfig,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    listen: Option<String>,
    tunnel_listen: Option<String>,
    host_key: Option<PathBuf>,
    recheck_interval: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRecordings {
    storage: Option<String>,
    dir: Option<PathBuf>,
    retention: Option<String>,
    index_interval: Option<String>,
    #[serde(default)]
    s3: Option<RawS3>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawS3 {
    bucket: Option<String>,
    prefix: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    allow_http: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    ca_cert: Option<PathBuf>,
    idle_timeout: Option<String>,
    oidc: Option<RawOidc>,
}

/// `[web.oidc]`: single sign-on.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    issuer: String,
    client_id: String,
    client_secret: Secret<String>,
    redirect_uri: String,
    scopes: Option<Vec<String>>,
    username_claim: Option<String>,
    roles_claim: Option<String>,
    /// A value of the roles claim (a group) and the otgate roles it gives, e.g.
    /// `"plant-engineers" = ["engineer@zone-a"]`.
    #[serde(default)]
    roles: std::collections::BTreeMap<String, Vec<String>>,
}

fn sso(
    raw: RawOidc,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<otgate_web::SsoConfig, ConfigError> {
    let mut roles = Vec::new();
    for (value, assigned) in &raw.roles {
        for text in assigned {
            let role: otgate_policy::RoleAssignment = text
                .parse()
                .map_err(|e| err("web.oidc.roles", format!("for `{value}`: {e}")))?;
            roles.push((value.clone(), role));
        }
    }
    if roles.is_empty() {
        return Err(err(
            "web.oidc.roles",
            "map at least one group to a role, e.g. \"plant-engineers\" = [\"engineer@zone-a\"]"
                .into(),
        ));
    }
    let mut provider = otgate_web::OidcConfig {
        issuer: raw.issuer,
        client_id: raw.client_id,
        client_secret: raw.client_secret,
        redirect_uri: raw.redirect_uri,
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        username_claim: "preferred_username".into(),
        roles_claim: "groups".into(),
    };
    if let Some(scopes) = raw.scopes {
        provider.scopes = scopes;
    }
    if let Some(claim) = raw.username_claim {
        provider.username_claim = claim;
    }
    if let Some(claim) = raw.roles_claim {
        provider.roles_claim = claim;
    }
    Ok(otgate_web::SsoConfig { provider, roles })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    ssh_ca: Option<PathBuf>,
    jwt: Option<PathBuf>,
    vault: Option<PathBuf>,
    recording: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    token_ttl: Option<String>,
    login_max_failures: Option<u32>,
    login_window: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBus {
    kind: Option<String>,
}

/// What this node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    /// The control plane and its clock.
    pub broker: bool,
    /// The HTTPS API.
    pub web: bool,
    /// The SSH gateway.
    pub gateway: bool,
}

/// The SSH gateway's settings.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Where vendors connect with SSH.
    pub listen: SocketAddr,
    /// Where `otgate connect` tunnels arrive (QUIC, UDP); by default the SSH address's IP
    /// and port, over UDP.
    pub tunnel_listen: Option<SocketAddr>,
    /// The gateway's host key (generated at the first start, then kept).
    pub host_key: PathBuf,
    /// How often a running session re-checks its grant.
    pub recheck: Duration,
}

/// The HTTPS server's settings.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// CA clients should trust, when it is ours.
    pub ca: Option<PathBuf>,
    /// A browser session ends after this long without a request.
    pub idle_timeout: Duration,
    /// Single sign-on, when configured.
    pub sso: Option<otgate_web::SsoConfig>,
}

/// Where recordings go and how they are written, indexed and kept.
#[derive(Clone, Debug)]
pub struct RecordingsConfig {
    /// The local store, or the spool of open and not-yet-uploaded segments with S3.
    pub dir: PathBuf,
    /// The S3-compatible store, when configured.
    pub s3: Option<S3Config>,
    /// Delete recordings last written longer ago than this; keep forever when absent.
    pub retention: Option<Duration>,
    /// How often the index catches up with the recordings.
    pub index_interval: Duration,
}

impl RecordingsConfig {
    /// The configured store.
    pub fn storage(&self) -> Result<Arc<dyn Storage>, StorageError> {
        Ok(match &self.s3 {
            Some(s3) => Arc::new(S3Storage::new(s3)?),
            None => Arc::new(LocalStorage::new(&self.dir)),
        })
    }

    /// Recordings as readers see them (the store, plus the spool with S3).
    pub fn archive(&self) -> Result<Archive, StorageError> {
        Ok(Archive::new(
            self.storage()?,
            Some(LocalStorage::new(&self.dir)),
        ))
    }
}

/// The whole typed configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Roles of this node.
    pub roles: Roles,
    /// Data directory.
    pub data_dir: PathBuf,
    /// HTTPS server.
    pub web: WebConfig,
    /// Control plane.
    pub broker: BrokerConfig,
    /// Recording signing key.
    pub recording_key: PathBuf,
    /// GitOps inventory file, imported at start.
    pub inventory: Option<PathBuf>,
    /// Session recordings.
    pub recordings: RecordingsConfig,
    /// The SSH gateway.
    pub gateway: GatewayConfig,
    /// The detector and its playbook.
    pub detector: DetectorConfig,
}

/// Default API address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

/// Default SSH gateway address.
pub const DEFAULT_SSH_LISTEN: &str = "127.0.0.1:2222";

fn toml_location(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(1, |before| before.lines().count().max(1));
            format!("line {line}")
        }
        None => "(file)".to_owned(),
    }
}

impl Config {
    /// Reads and converts a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                path,
                "(file)",
                format!("cannot read it ({e}); create one with `otgate init --dir DIR`"),
            )
        })?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| {
            ConfigError::new(path, toml_location(&text, &e), e.message().to_owned())
        })?;
        Self::convert(path, raw)
    }

    fn convert(path: &Path, raw: RawConfig) -> Result<Self, ConfigError> {
        let err = |key: &str, message: String| ConfigError::new(path, key, message);
        let base = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let data_dir = base.join(raw.data_dir.unwrap_or_else(|| PathBuf::from(".")));
        let at = |p: Option<PathBuf>, default: &str| {
            data_dir.join(p.unwrap_or_else(|| PathBuf::from(default)))
        };

        let mut roles = Roles {
            broker: false,
            web: false,
            gateway: false,
        };
        for role in raw
            .roles
            .unwrap_or_else(|| vec!["broker".into(), "web".into(), "gateway".into()])
        {
            match role.as_str() {
                "broker" => roles.broker = true,
                "web" => roles.web = true,
                "gateway" => roles.gateway = true,
                "recorder" | "detector" => {
                    return Err(err(
                        "roles",
                        format!(
                            "role `{role}` is not available in this version: use broker, web and gateway"
                        ),
                    ));
                }
                other => {
                    return Err(err(
                        "roles",
                        format!("unknown role `{other}`: expected broker, web or gateway"),
                    ));
                }
            }
        }
        if (roles.web || roles.gateway) && !roles.broker {
            return Err(err(
                "roles",
                "the web and gateway roles need the broker role in the same process in this version"
                    .into(),
            ));
        }
        if !roles.broker {
            return Err(err(
                "roles",
                "name at least one role: roles = [\"broker\", \"web\"]".into(),
            ));
        }

        let listen_text = raw.web.listen.unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            err(
                "web.listen",
                format!("`{listen_text}` is not an address: use IP:PORT such as 0.0.0.0:8443"),
            )
        })?;
        let web = WebConfig {
            listen,
            cert: at(raw.web.tls_cert, "tls/server.pem"),
            key: at(raw.web.tls_key, "tls/server.key"),
            ca: raw.web.ca_cert.map(|p| data_dir.join(p)),
            idle_timeout: match raw.web.idle_timeout {
                Some(text) => {
                    parse_duration(&text).map_err(|e| err("web.idle_timeout", e.to_string()))?
                }
                None => Duration::from_secs(15 * 60),
            },
            sso: raw.web.oidc.map(|oidc| sso(oidc, &err)).transpose()?,
        };
        if web.idle_timeout < Duration::from_secs(60) {
            return Err(err(
                "web.idle_timeout",
                "at least 1m: browser sessions end after this long without a request".into(),
            ));
        }

        let url = raw
            .database
            .url
            .unwrap_or_else(|| "sqlite://otgate.db".into());
        let database = if let Some(file) = url.strip_prefix("sqlite://") {
            if file.is_empty() {
                return Err(err(
                    "database.url",
                    "name the SQLite file, e.g. sqlite://otgate.db".into(),
                ));
            }
            Database::Sqlite(data_dir.join(file))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Database::Postgres(Secret::new(url))
        } else {
            return Err(err(
                "database.url",
                "expected sqlite://FILE or postgres://USER@HOST/DB".into(),
            ));
        };

        let keys = KeyFiles {
            ssh_ca: at(raw.keys.ssh_ca, "keys/ssh-ca"),
            jwt: at(raw.keys.jwt, "keys/jwt.pem"),
            vault: at(raw.keys.vault, "keys/vault.key"),
        };
        let recording_key = at(raw.keys.recording, "keys/recording.pem");

        let duration = |key: &str,
                        value: Option<String>,
                        default: Duration|
         -> Result<Duration, ConfigError> {
            match value {
                None => Ok(default),
                Some(text) => parse_duration(&text).map_err(|e| err(key, e.to_string())),
            }
        };
        let token_ttl = duration(
            "auth.token_ttl",
            raw.auth.token_ttl,
            Duration::from_secs(12 * 3600),
        )?;
        if token_ttl.is_zero() || token_ttl > Duration::from_secs(7 * 86400) {
            return Err(err("auth.token_ttl", "between 1 second and 7 days".into()));
        }
        let defaults = LoginLimits::default();
        let login = LoginLimits {
            max_failures: raw.auth.login_max_failures.unwrap_or(defaults.max_failures),
            window: duration("auth.login_window", raw.auth.login_window, defaults.window)?,
        };
        if login.max_failures == 0 {
            return Err(err("auth.login_max_failures", "at least 1".into()));
        }

        let approval = ApprovalRules::try_from(&raw.approval).map_err(|e| match e {
            PolicyError::Invalid { key, message } => ConfigError::new(path, key, message),
            other => err("approval", other.to_string()),
        })?;

        match raw.bus.kind.as_deref() {
            None | Some("memory") => {}
            Some(other) => {
                return Err(err(
                    "bus.kind",
                    format!("`{other}` is not available in this version: use \"memory\""),
                ));
            }
        }

        let recordings = recordings(raw.recordings, &data_dir, &err, &duration)?;
        let gateway_listen = raw
            .gateway
            .listen
            .unwrap_or_else(|| DEFAULT_SSH_LISTEN.into());
        let gateway = GatewayConfig {
            listen: gateway_listen.parse().map_err(|_| {
                err(
                    "gateway.listen",
                    format!(
                        "`{gateway_listen}` is not an address: use IP:PORT such as 0.0.0.0:2222"
                    ),
                )
            })?,
            tunnel_listen: raw
                .gateway
                .tunnel_listen
                .map(|text| {
                    text.parse().map_err(|_| {
                        err(
                            "gateway.tunnel_listen",
                            format!("`{text}` is not an address: use IP:PORT (UDP)"),
                        )
                    })
                })
                .transpose()?,
            host_key: at(raw.gateway.host_key, "keys/gateway_host_ed25519"),
            recheck: duration(
                "gateway.recheck_interval",
                raw.gateway.recheck_interval,
                Duration::from_secs(1),
            )?,
        };
        if gateway.recheck.is_zero() || gateway.recheck > Duration::from_secs(60) {
            return Err(err(
                "gateway.recheck_interval",
                "between 1ms and 60s: a missed revocation lasts at most this long".into(),
            ));
        }

        otgate_detector::Playbook::new(&raw.detector.playbook)
            .map_err(|e| err("detector.playbook", e.to_string()))?;
        if raw.detector.queue < 16 || raw.detector.quarantine_severity > 10 {
            return Err(err(
                "detector",
                "queue is at least 16 events; quarantine_severity is 0-10".into(),
            ));
        }

        Ok(Self {
            path: path.to_owned(),
            roles,
            data_dir,
            web,
            broker: BrokerConfig {
                database,
                keys,
                approval,
                token_ttl,
                login,
            },
            recording_key,
            inventory: raw.inventory.file.map(|p| base.join(p)),
            recordings,
            gateway,
            detector: raw.detector,
        })
    }
}

/// Reads an optional duration setting: (key, value, default).
type DurationSetting<'a> =
    &'a dyn Fn(&str, Option<String>, Duration) -> Result<Duration, ConfigError>;

fn recordings(
    raw: RawRecordings,
    data_dir: &Path,
    err: &dyn Fn(&str, String) -> ConfigError,
    duration: DurationSetting<'_>,
) -> Result<RecordingsConfig, ConfigError> {
    let retention = match raw.retention.as_deref() {
        None | Some("forever") => None,
        Some(text) => {
            let keep =
                parse_duration(text).map_err(|e| err("recordings.retention", e.to_string()))?;
            if keep < Duration::from_secs(86400) {
                return Err(err(
                    "recordings.retention",
                    "at least 1 day (or \"forever\")".into(),
                ));
            }
            Some(keep)
        }
    };
    let index_interval = duration(
        "recordings.index_interval",
        raw.index_interval,
        Duration::from_secs(5),
    )?;
    if index_interval.is_zero() {
        return Err(err("recordings.index_interval", "more than 0".into()));
    }
    let s3 = match (raw.storage.as_deref(), raw.s3) {
        (None | Some("local"), _) => None,
        (Some("s3"), None) => {
            return Err(err(
                "recordings.s3",
                "storage = \"s3\" needs a [recordings.s3] section with bucket and region".into(),
            ));
        }
        (Some("s3"), Some(s3)) => {
            let bucket = s3
                .bucket
                .filter(|b| !b.is_empty())
                .ok_or_else(|| err("recordings.s3.bucket", "name the bucket".into()))?;
            let access_key_id = s3
                .access_key_id
                .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok())
                .ok_or_else(|| {
                    err(
                        "recordings.s3.access_key_id",
                        "set it here or in AWS_ACCESS_KEY_ID".into(),
                    )
                })?;
            let secret_access_key = s3
                .secret_access_key
                .or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").ok())
                .ok_or_else(|| {
                    err(
                        "recordings.s3.secret_access_key",
                        "set it here or (better) in AWS_SECRET_ACCESS_KEY".into(),
                    )
                })?;
            let endpoint = s3.endpoint;
            let allow_http = s3.allow_http.unwrap_or(false);
            if let Some(url) = &endpoint
                && url.starts_with("http://")
                && !allow_http
            {
                return Err(err(
                    "recordings.s3.endpoint",
                    "plain http:// is refused: use https://, or allow_http = true on a test network"
                        .into(),
                ));
            }
            Some(S3Config {
                bucket,
                prefix: s3.prefix.unwrap_or_default(),
                endpoint,
                region: s3.region.unwrap_or_else(|| "us-east-1".into()),
                access_key_id,
                secret_access_key,
                allow_http,
            })
        }
        (Some(other), _) => {
            return Err(err(
                "recordings.storage",
                format!("`{other}` is not a storage: use \"local\" or \"s3\""),
            ));
        }
    };
    Ok(RecordingsConfig {
        dir: data_dir.join(raw.dir.unwrap_or_else(|| PathBuf::from("recordings"))),
        s3,
        retention,
        index_interval,
    })
}

impl Config {
    /// The GitOps inventory named in the configuration, read and validated.
    pub fn inventory(&self) -> Result<Option<Inventory>, ConfigError> {
        let Some(file) = &self.inventory else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(file).map_err(|e| {
            ConfigError::new(
                &self.path,
                "inventory.file",
                format!("cannot read {} ({e})", file.display()),
            )
        })?;
        Inventory::from_toml(&text, &file.display().to_string())
            .map(Some)
            .map_err(|e| ConfigError::new(&self.path, "inventory.file", e.to_string()))
    }
}

/// The commented configuration `otgate init` writes.
pub fn template(listen: SocketAddr, ssh_listen: SocketAddr, inventory: Option<&str>) -> String {
    let inventory_line = match inventory {
        Some(file) => format!("file = \"{file}\""),
        None => "# file = \"inventory.toml\"".to_owned(),
    };
    format!(
        r#"# otgate configuration. Relative paths are relative to data_dir, itself relative to this file.
# Validate changes with `otgate check --config otgate.toml`.

# What this node runs: "broker" (control plane, its clock, the recording index), "web" (the
# HTTPS API) and "gateway" (the SSH gateway vendors connect to).
roles = ["broker", "web", "gateway"]
data_dir = "."

[web]
listen = "{listen}"
tls_cert = "tls/server.pem"
tls_key = "tls/server.key"
# The CA clients trust (otgate login --ca ...); generated by init.
ca_cert = "tls/ca.pem"
# The browser UI signs a session out after this long without a request.
idle_timeout = "15m"

# Single sign-on with OpenID Connect (authorization code with PKCE). Users signing in for
# the first time get the roles their groups map to.
# [web.oidc]
# issuer = "https://login.example.com/realms/plant"
# client_id = "otgate"
# client_secret = "..."
# redirect_uri = "https://otgate.example.com:8443/ui/login/sso/callback"
# username_claim = "preferred_username"
# roles_claim = "groups"
# [web.oidc.roles]
# "plant-engineers" = ["engineer@zone-a"]

[gateway]
# Vendors connect here with stock OpenSSH and their grant's certificate.
listen = "{ssh_listen}"
# `otgate connect` tunnels (QUIC over UDP, TLS with the [web] certificate); by default the
# same IP and port as `listen`, over UDP.
# tunnel_listen = "0.0.0.0:2222"
host_key = "keys/gateway_host_ed25519"
# A running session re-checks its grant this often (revocation, quarantine, window end).
recheck_interval = "1s"

[database]
# sqlite://FILE (embedded default) or postgres://USER:PASSWORD@HOST/DB (several nodes).
url = "sqlite://otgate.db"

[keys]
# OpenSSH user-certificate CA, JWT signing key, vault master key, recording signing key.
ssh_ca = "keys/ssh-ca"
jwt = "keys/jwt.pem"
vault = "keys/vault.key"
recording = "keys/recording.pem"

[inventory]
# GitOps: zones and assets imported from this file at every start (relative to this file).
{inventory_line}

[auth]
token_ttl = "12h"
login_max_failures = 5
login_window = "5m"

[approval]
# Plant-local time, for allowed hours.
utc_offset = "+00:00"
max_advance = "30d"

[[approval.levels]]
levels = ["0", "1"]
approvals = 2
max_duration = "4h"
allowed_hours = "00:00-24:00"

[[approval.levels]]
levels = ["2", "3", "3.5", "4", "5"]
approvals = 1
max_duration = "8h"
allowed_hours = "00:00-24:00"

[bus]
# "memory" (one process); NATS JetStream arrives with scale-out.
kind = "memory"

[recordings]
# "local" keeps recordings in `dir`; "s3" uploads sealed segments to [recordings.s3] and uses
# `dir` as the spool of open and not-yet-uploaded segments.
storage = "local"
dir = "recordings"
# Delete recordings last written longer ago than this ("forever" keeps them).
retention = "forever"
# How often the search index catches up with the recordings.
index_interval = "5s"

# [recordings.s3]
# bucket = "otgate-recordings"
# prefix = "plant-a"
# endpoint = "https://minio.plant.example:9000"   # omit for AWS
# region = "us-east-1"
# access_key_id = "..."                            # or AWS_ACCESS_KEY_ID
# secret_access_key from AWS_SECRET_ACCESS_KEY     # keep secrets out of this file
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!(
            "otgate-config-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("otgate.toml");
        std::fs::write(&path, text).unwrap();
        let result = Config::load(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    #[test]
    fn the_template_is_valid() {
        let config = load(&template(
            "127.0.0.1:8443".parse().unwrap(),
            "127.0.0.1:2222".parse().unwrap(),
            Some("inventory.toml"),
        ))
        .unwrap();
        assert!(config.roles.broker && config.roles.web && config.roles.gateway);
        assert!(matches!(config.broker.database, Database::Sqlite(_)));
        assert!(config.inventory.unwrap().ends_with("inventory.toml"));
    }

    #[test]
    fn errors_name_key_and_fix() {
        let bad = |text: &str, key: &str| {
            let err = load(text).unwrap_err();
            assert_eq!(err.key, key, "{err}");
            assert!(err.to_string().contains("otgate.toml"), "{err}");
        };
        bad("[web]\nlisten = \"nowhere\"", "web.listen");
        bad("[database]\nurl = \"mysql://x\"", "database.url");
        bad("roles = [\"gateway\"]", "roles");
        bad("[gateway]\nlisten = \"port 22\"", "gateway.listen");
        bad("[auth]\ntoken_ttl = \"forever\"", "auth.token_ttl");
        bad("[bus]\nkind = \"kafka\"", "bus.kind");
        bad(
            "[[approval.levels]]\nlevels = [\"1\"]\napprovals = 9\nmax_duration = \"1h\"",
            "approval.levels[0].approvals",
        );
        let unknown = load("colour = \"red\"").unwrap_err();
        assert_eq!(unknown.key, "line 1");
        assert!(unknown.message.contains("colour"), "{unknown}");
    }
}
