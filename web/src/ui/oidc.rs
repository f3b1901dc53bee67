//! OpenID Connect relying party: authorization code flow with PKCE (S256).
//!
//! [`Provider::discover`] reads the issuer's metadata and keys once; [`Provider::begin`] makes the
//! authorize URL and a [`Pending`] login that the web layer keeps in a short-lived sealed cookie;
//! [`Provider::finish`] checks `state`, redeems the code and validates the ID token into an
//! [`Identity`]. Invariants: https only (plain http only for a loopback issuer), no redirects
//! followed, bodies of at most 1 MiB, asymmetric signature algorithms only. Never log the client
//! secret, codes, tokens, nonces or the PKCE verifier.

use std::net::IpAddr;
use std::sync::RwLock;
use std::time::Duration;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use reqwest::{RequestBuilder, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use otgate_broker::Secret;

/// Largest metadata, JWKS or token response we read.
const MAX_BODY: usize = 1 << 20;
/// Clock skew allowed on `exp` and `iat`, in seconds.
const LEEWAY: u64 = 60;
/// ID-token signature algorithms we accept, with their JOSE names; never HMAC or `none`.
const ALGORITHMS: [(Algorithm, &str); 6] = [
    (Algorithm::RS256, "RS256"),
    (Algorithm::RS384, "RS384"),
    (Algorithm::RS512, "RS512"),
    (Algorithm::ES256, "ES256"),
    (Algorithm::ES384, "ES384"),
    (Algorithm::EdDSA, "EdDSA"),
];

/// What can go wrong talking to the identity provider; each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// A configured or discovered URL (setting, URL, reason) cannot be used.
    #[error("OIDC {0} `{1}` is not usable: {2}")]
    BadUrl(&'static str, String, &'static str),
    /// The provider could not be reached, or the transfer failed.
    #[error("OIDC {0} request failed (is the provider reachable?): {1}")]
    Http(&'static str, #[source] reqwest::Error),
    /// The provider answered an HTTP error status, with the OAuth `error` code if any.
    #[error("OIDC {0} answered HTTP {1} `{2}`: check issuer, client id and secret, redirect_uri")]
    Status(&'static str, u16, String),
    /// A response was over 1 MiB or not the JSON we expect.
    #[error("OIDC {0} response is not usable: {1}")]
    BadResponse(&'static str, String),
    /// Discovery returned another issuer string (second) than the configured one (first).
    #[error("OIDC discovery names issuer `{1}`, not `{0}`: set `issuer` to exactly `{1}`")]
    IssuerMismatch(String, String),
    /// The callback's `state` is not the one this login started with.
    #[error("login state does not match this browser's login; start the login again")]
    StateMismatch,
    /// The callback's `code` is empty or too long.
    #[error("the callback carries no usable authorization code; start the login again")]
    BadCode,
    /// The ID token names a key that the provider's JWKS does not have.
    #[error("the ID token's signing key `{0}` is not in the provider's JWKS")]
    UnknownKey(String),
    /// The ID token is missing or failed validation.
    #[error("the ID token is invalid: {0}")]
    InvalidToken(String),
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, OidcError>;

fn invalid(why: impl ToString) -> OidcError {
    OidcError::InvalidToken(why.to_string())
}

/// Settings of one OpenID provider, as written in the configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Issuer identifier, exactly as the provider spells it (trailing slash included).
    pub issuer: String,
    /// Client id registered at the provider.
    pub client_id: String,
    /// Client secret registered at the provider.
    pub client_secret: Secret<String>,
    /// Our callback URL, registered at the provider.
    pub redirect_uri: String,
    /// Scopes to ask for (default `openid email profile`); `openid` is added when missing.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Claim holding the user name (default `preferred_username`; or e.g. `email`).
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Claim holding roles (default `groups`): a string or an array; `a.b` walks nested objects.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_roles_claim() -> String {
    "groups".into()
}

/// A login between [`Provider::begin`] and [`Provider::finish`]: random `state`, `nonce` and PKCE
/// verifier, 32 bytes each, base64url. Keep it server-side or in a sealed cookie; use it once.
#[derive(Clone, PartialEq, Eq)]
pub struct Pending {
    state: String,
    nonce: String,
    verifier: String,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending([redacted])")
    }
}

impl Pending {
    fn new() -> Result<Self> {
        Ok(Self {
            state: random()?,
            nonce: random()?,
            verifier: random()?,
        })
    }

    /// `state.nonce.verifier`: 131 characters of base64url and dots. Seal it before use.
    pub fn to_cookie(&self) -> String {
        format!("{}.{}.{}", self.state, self.nonce, self.verifier)
    }

    /// Parses [`Pending::to_cookie`]'s form; `None` unless it is exactly three 32-byte values.
    pub fn from_cookie(cookie: &str) -> Option<Self> {
        let mut parts = cookie.split('.').map(|part| {
            let decoded = URL_SAFE_NO_PAD.decode(part).ok()?;
            (decoded.len() == 32).then(|| part.to_string())
        });
        let (state, nonce, verifier) = (parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(Self {
            state,
            nonce,
            verifier,
        })
    }
}

fn random() -> Result<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| OidcError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn pkce_challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Who logged in, from a validated ID token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The provider's stable subject id (`sub`).
    pub subject: String,
    /// The configured username claim, else `email`, else `sub`.
    pub username: String,
    /// The `email` claim, if the provider sent one.
    pub email: Option<String>,
    /// The `name` claim, if the provider sent one.
    pub name: Option<String>,
    /// The values of the configured roles claim (empty when absent).
    pub roles: Vec<String>,
}

impl Identity {
    /// The otgate user name: `username` lowercased, if it then matches
    /// `^[a-z0-9][a-z0-9._-]{0,62}$`. Nothing else is rewritten (e.g. `@`), so two provider
    /// accounts can only ever meet in one otgate name through letter case.
    pub fn otgate_name(&self) -> Option<String> {
        let name = self.username.to_ascii_lowercase(); // not Unicode: U+212A would become `k`
        let ok = |c: char, first: bool| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || (!first && ".-_".contains(c))
        };
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false));
        (valid && name.len() <= 63).then_some(name)
    }
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// A discovered provider; share it (`Arc`) between requests.
#[derive(Debug)]
pub struct Provider {
    config: OidcConfig,
    http: reqwest::Client,
    authorization_endpoint: Url,
    token_endpoint: Url,
    jwks_uri: Url,
    secret_post: bool,
    jwks: RwLock<JwkSet>,
}

impl Provider {
    /// Fetches `{issuer}/.well-known/openid-configuration` and the JWKS it points to.
    pub async fn discover(config: OidcConfig) -> Result<Self> {
        let issuer = checked_url("issuer", &config.issuer)?;
        if issuer.query().is_some() || issuer.fragment().is_some() {
            let why = "it must not have a query or fragment";
            return Err(OidcError::BadUrl("issuer", config.issuer, why));
        }
        checked_url("redirect_uri", &config.redirect_uri)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .https_only(!is_loopback(&issuer))
            .build()
            .map_err(|e| OidcError::Http("client setup", e))?;
        let base = config.issuer.trim_end_matches('/');
        let url = format!("{base}/.well-known/openid-configuration");
        let url = checked_url("issuer", &url)?;
        let meta: Metadata = fetch("discovery", http.get(url)).await?;
        if meta.issuer != config.issuer {
            return Err(OidcError::IssuerMismatch(config.issuer, meta.issuer));
        }
        let methods = meta.token_endpoint_auth_methods_supported;
        let methods = methods.unwrap_or_default();
        let has = |m: &str| methods.iter().any(|x| x == m);
        let provider = Self {
            authorization_endpoint: checked_url("authorize URL", &meta.authorization_endpoint)?,
            token_endpoint: checked_url("token URL", &meta.token_endpoint)?,
            jwks_uri: checked_url("jwks_uri", &meta.jwks_uri)?,
            secret_post: has("client_secret_post") && !has("client_secret_basic"),
            jwks: RwLock::new(JwkSet { keys: Vec::new() }),
            config,
            http,
        };
        provider.refresh_jwks().await?;
        tracing::info!(issuer = %provider.config.issuer, "OIDC provider discovered");
        Ok(provider)
    }

    /// Starts a login: the URL to send the browser to, and the [`Pending`] state to keep.
    pub fn begin(&self) -> Result<(String, Pending)> {
        let pending = Pending::new()?;
        let mut scopes = self.config.scopes.clone();
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        let mut url = self.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.config.redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pkce_challenge(&pending.verifier))
            .append_pair("code_challenge_method", "S256");
        Ok((url.into(), pending))
    }

    /// Completes a login from the callback's `state` and `code`.
    pub async fn finish(&self, pending: Pending, state: &str, code: &str) -> Result<Identity> {
        verify_slices_are_equal(pending.state.as_bytes(), state.as_bytes())
            .map_err(|_| OidcError::StateMismatch)?;
        if code.is_empty() || code.len() > 4096 {
            return Err(OidcError::BadCode);
        }
        let (id, secret) = (&self.config.client_id, self.config.client_secret.expose());
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.config.redirect_uri),
            ("code_verifier", &pending.verifier),
        ];
        let mut request = self.http.post(self.token_endpoint.clone());
        if self.secret_post {
            form.extend([("client_id", id.as_str()), ("client_secret", secret)]);
        } else {
            // RFC 6749 2.3.1: both are form-encoded before Basic.
            request = request.basic_auth(form_encode(id), Some(form_encode(secret)));
        }
        let request = request.header("accept", "application/json").form(&form);
        let tokens: Map<String, Value> = fetch("token endpoint", request).await?;
        let id_token = text(&tokens, "id_token")
            .ok_or_else(|| invalid("the token response has none; is `openid` in `scopes`?"))?;
        let header = jsonwebtoken::decode_header(&id_token).map_err(invalid)?;
        let key = match self.key_for(&header)? {
            Some(key) => key,
            None => {
                tracing::info!(kid = ?header.kid, "OIDC signing key unknown, refetching JWKS");
                self.refresh_jwks().await?;
                let unknown = || OidcError::UnknownKey(header.kid.clone().unwrap_or_default());
                self.key_for(&header)?.ok_or_else(unknown)?
            }
        };
        self.validate(&id_token, header.alg, &key, &pending.nonce)
    }

    /// The key for this header from the cached JWKS: `None` if it is not there.
    fn key_for(&self, header: &Header) -> Result<Option<DecodingKey>> {
        let Some((_, alg)) = ALGORITHMS.iter().find(|(alg, _)| *alg == header.alg) else {
            let alg = header.alg;
            return Err(invalid(format!("algorithm {alg:?} is not allowed")));
        };
        let jwks = self.jwks.read().unwrap_or_else(|e| e.into_inner());
        let jwk = match &header.kid {
            Some(kid) => jwks.find(kid),
            None if jwks.keys.len() == 1 => jwks.keys.first(),
            None => return Err(invalid("no `kid`, and the JWKS has several keys")),
        };
        let Some(jwk) = jwk else { return Ok(None) };
        let common = &jwk.common;
        let other_alg = common.key_algorithm.is_some_and(|a| a.to_string() != *alg);
        let key_use = common.public_key_use.as_ref();
        let other_use = key_use.is_some_and(|u| *u != PublicKeyUse::Signature);
        if other_alg || other_use {
            return Err(invalid("the JWK's `alg` or `use` does not fit the token"));
        }
        DecodingKey::from_jwk(jwk).map(Some).map_err(invalid)
    }

    fn validate(
        &self,
        token: &str,
        alg: Algorithm,
        key: &DecodingKey,
        nonce: &str,
    ) -> Result<Identity> {
        let config = &self.config;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
            .map_err(invalid)?
            .claims;
        let latest_iat = (jsonwebtoken::get_current_timestamp() + LEEWAY) as f64;
        let iat = claims.get("iat").and_then(Value::as_f64);
        if !iat.is_some_and(|iat| iat <= latest_iat) {
            return Err(invalid(
                "`iat` is missing or in the future (check the clocks)",
            ));
        }
        let got_nonce = text(&claims, "nonce").unwrap_or_default();
        verify_slices_are_equal(got_nonce.as_bytes(), nonce.as_bytes())
            .map_err(|_| invalid("`nonce` does not match this login"))?;
        let aud = claims.get("aud").and_then(Value::as_array);
        let audiences = aud.map_or(1, Vec::len);
        match text(&claims, "azp") {
            Some(azp) if azp != config.client_id => return Err(invalid("`azp` is another client")),
            None if audiences > 1 => return Err(invalid("several audiences but no `azp`")),
            _ => {}
        }
        let subject = text(&claims, "sub").ok_or_else(|| invalid("`sub` is empty"))?;
        let email = text(&claims, "email");
        let username = text(&claims, &config.username_claim).or_else(|| email.clone());
        let roles = match claim(&claims, &config.roles_claim) {
            Some(Value::String(role)) => vec![role.clone()],
            Some(Value::Array(all)) => all
                .iter()
                .filter_map(Value::as_str)
                .map(Into::into)
                .collect(),
            _ => Vec::new(),
        };
        let name = text(&claims, "name");
        Ok(Identity {
            username: username.unwrap_or_else(|| subject.clone()),
            subject,
            email,
            name,
            roles,
        })
    }

    /// Replaces the cached keys with the provider's current JWKS, skipping keys we cannot parse.
    async fn refresh_jwks(&self) -> Result<()> {
        #[derive(Deserialize)]
        struct RawSet {
            keys: Vec<Value>,
        }
        let raw: RawSet = fetch("JWKS", self.http.get(self.jwks_uri.clone())).await?;
        let parse = |key| serde_json::from_value::<Jwk>(key).ok();
        let keys = raw.keys.into_iter().filter_map(parse).collect();
        *self.jwks.write().unwrap_or_else(|e| e.into_inner()) = JwkSet { keys };
        Ok(())
    }
}

/// A non-empty string claim.
fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    let value = claim(claims, name).and_then(Value::as_str);
    value.filter(|s| !s.is_empty()).map(String::from)
}

/// The claim named exactly `name`, else the dotted path `a.b.c` through nested objects.
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    claims.get(name).or_else(|| {
        let mut parts = name.split('.');
        let first = claims.get(parts.next()?)?;
        parts.try_fold(first, |value, part| value.get(part))
    })
}

/// Parses `url` and requires https, or http to a loopback host.
fn checked_url(what: &'static str, url: &str) -> Result<Url> {
    let bad = |why| OidcError::BadUrl(what, url.to_string(), why);
    let parsed = Url::parse(url).map_err(|_| bad("it is not an absolute URL"))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        _ => Err(bad("use https (http only to 127.0.0.1, ::1 or localhost)")),
    }
}

fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    let ip = ip.parse::<IpAddr>();
    host == "localhost" || ip.is_ok_and(|ip| ip.is_loopback())
}

/// `application/x-www-form-urlencoded` escaping of everything but unreserved characters.
fn form_encode(s: &str) -> String {
    let keep = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    let escape = |b: u8| {
        if keep(b) {
            char::from(b).to_string()
        } else {
            format!("%{b:02X}")
        }
    };
    s.bytes().map(escape).collect()
}

/// Sends `request` and reads at most [`MAX_BODY`] bytes of JSON; an error status becomes
/// [`OidcError::Status`] with the body's OAuth `error` code.
async fn fetch<T: DeserializeOwned>(what: &'static str, request: RequestBuilder) -> Result<T> {
    let http = |e| OidcError::Http(what, e);
    let mut response = request.send().await.map_err(http)?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(OidcError::BadResponse(what, "it is over 1 MiB".into()));
        }
        body.extend_from_slice(&chunk);
    }
    let status = response.status();
    if !status.is_success() {
        let body: Map<String, Value> = serde_json::from_slice(&body).unwrap_or_default();
        let error = text(&body, "error").unwrap_or_default();
        let error = error.chars().filter(char::is_ascii_graphic).take(64);
        let error = error.collect();
        return Err(OidcError::Status(what, status.as_u16(), error));
    }
    serde_json::from_slice(&body).map_err(|e| OidcError::BadResponse(what, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    use jsonwebtoken::{EncodingKey, encode};
    use serde_json::json;

    const ISS: &str = "https://idp.example";
    const CLIENT: &str = "otgate";

    fn config() -> OidcConfig {
        OidcConfig {
            issuer: ISS.into(),
            client_id: CLIENT.into(),
            client_secret: Secret::new("s3cret".into()),
            redirect_uri: "https://otgate.example/oidc/callback".into(),
            scopes: default_scopes(),
            username_claim: default_username_claim(),
            roles_claim: default_roles_claim(),
        }
    }

    fn provider(keys: Vec<Value>) -> Provider {
        let keys = keys
            .into_iter()
            .map(|k| serde_json::from_value(k).unwrap())
            .collect();
        Provider {
            config: config(),
            http: reqwest::Client::new(),
            authorization_endpoint: Url::parse("https://idp.example/authorize?x=1").unwrap(),
            token_endpoint: Url::parse("https://idp.example/token").unwrap(),
            jwks_uri: Url::parse("https://idp.example/jwks").unwrap(),
            secret_post: false,
            jwks: RwLock::new(JwkSet { keys }),
        }
    }

    /// A fresh P-256 key: its signing key and its public JWK with `kid` "k1".
    fn ec_key() -> (EncodingKey, Value) {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref().to_vec(); // 0x04 || x || y
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])});
        (
            EncodingKey::from_ec_der(pair.to_pkcs8v1().unwrap().as_ref()),
            jwk,
        )
    }

    fn claims(nonce: &str) -> Value {
        let now = jsonwebtoken::get_current_timestamp();
        json!({"iss": ISS, "aud": CLIENT, "sub": "u-42", "exp": now + 300, "iat": now,
            "nonce": nonce, "preferred_username": "Eng3", "email": "eng3@plant.example",
            "groups": ["otgate-engineers", "ops"]})
    }

    fn sign(key: &EncodingKey, alg: Algorithm, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some("k1".into());
        encode(&header, claims, key).unwrap()
    }

    /// `finish` after the token exchange, without the network.
    fn check(p: &Provider, token: &str, nonce: &str) -> Result<Identity> {
        let header = jsonwebtoken::decode_header(token).map_err(invalid)?;
        let key = p
            .key_for(&header)?
            .ok_or(OidcError::UnknownKey(String::new()))?;
        p.validate(token, header.alg, &key, nonce)
    }

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        // Cross-checked with `openssl dgst -sha256 -binary | base64` (url-safe, unpadded).
        let challenge = pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn pending_round_trips_and_hides_itself() {
        let pending = Pending::new().unwrap();
        let cookie = pending.to_cookie();
        assert_eq!(cookie.len(), 131);
        assert_eq!(Pending::from_cookie(&cookie), Some(pending.clone()));
        assert_ne!(Pending::new().unwrap(), pending);
        assert_eq!(format!("{pending:?}"), "Pending([redacted])");
        assert!(!format!("{:?}", config()).contains("s3cret"));
    }

    #[test]
    fn bad_cookies_are_rejected() {
        let good = Pending::new().unwrap().to_cookie();
        let a = random().unwrap();
        for bad in [
            String::new(),
            "a.b.c".into(),
            format!("{a}.{a}"),
            format!("{good}.{a}"),
            format!("{good}."),
            format!("{a}=.{a}.{a}"),
            format!("{}.{a}.{a}", &a[..42]),
            format!("{}+.{a}.{a}", &a[..42]),
            format!("{a}A.{a}.{a}"),
        ] {
            assert_eq!(Pending::from_cookie(&bad), None, "{bad}");
        }
    }

    #[test]
    fn begin_builds_the_authorize_url() {
        let p = provider(Vec::new());
        let (url, pending) = p.begin().unwrap();
        let url = Url::parse(&url).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["x"], "1");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], CLIENT);
        assert_eq!(q["redirect_uri"], "https://otgate.example/oidc/callback");
        assert_eq!(q["scope"], "openid email profile");
        assert_eq!(q["state"], pending.state);
        assert_eq!(q["nonce"], pending.nonce);
        assert_eq!(q["code_challenge"], pkce_challenge(&pending.verifier));
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(url.as_str().contains("scope=openid+email+profile"));
    }

    #[test]
    fn valid_token_gives_identity() {
        let (key, jwk) = ec_key();
        let p = provider(vec![jwk]);
        let id = check(&p, &sign(&key, Algorithm::ES256, &claims("n1")), "n1").unwrap();
        assert_eq!(id.subject, "u-42");
        assert_eq!(id.username, "Eng3");
        assert_eq!(id.otgate_name().as_deref(), Some("eng3"));
        assert_eq!(id.email.as_deref(), Some("eng3@plant.example"));
        assert_eq!(id.roles, ["otgate-engineers", "ops"]);
    }

    #[test]
    fn hmac_tokens_are_rejected_even_with_an_oct_jwk() {
        let oct = json!({"kty": "oct", "kid": "k1", "k": URL_SAFE_NO_PAD.encode(b"shared")});
        let p = provider(vec![oct]);
        let token = sign(
            &EncodingKey::from_secret(b"shared").unwrap(),
            Algorithm::HS256,
            &claims("n1"),
        );
        assert!(
            matches!(check(&p, &token, "n1"), Err(OidcError::InvalidToken(m)) if m.contains("not allowed"))
        );
        // `alg: none` does not even parse as a header.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode("{}")
        );
        assert!(check(&p, &none, "n1").is_err());
    }

    #[test]
    fn wrong_claims_are_rejected() {
        let (key, jwk) = ec_key();
        let p = provider(vec![jwk]);
        let now = jsonwebtoken::get_current_timestamp();
        let cases: [(&str, Value); 11] = [
            ("nonce", json!("other")),
            ("aud", json!("someone-else")),
            ("iss", json!("https://evil.example")),
            ("exp", json!(now - 120)),
            ("iat", json!(now + 600)),
            ("iat", Value::Null),
            ("aud", json!([CLIENT, "other"])),
            ("azp", json!("other")),
            ("sub", json!("")),
            ("nbf", json!(now + 600)),
            ("exp", Value::Null),
        ];
        for (name, value) in cases {
            let mut c = claims("n1");
            match value {
                Value::Null => c.as_object_mut().unwrap().remove(name),
                v => c.as_object_mut().unwrap().insert(name.into(), v),
            };
            let result = check(&p, &sign(&key, Algorithm::ES256, &c), "n1");
            assert!(
                matches!(result, Err(OidcError::InvalidToken(_))),
                "{name}: {result:?}"
            );
        }
        // Several audiences are fine with the right azp; a missing nonce is not.
        let mut c = claims("n1");
        c["aud"] = json!([CLIENT, "other"]);
        c["azp"] = json!(CLIENT);
        assert!(check(&p, &sign(&key, Algorithm::ES256, &c), "n1").is_ok());
        c.as_object_mut().unwrap().remove("nonce");
        assert!(check(&p, &sign(&key, Algorithm::ES256, &c), "n1").is_err());
    }

    #[test]
    fn other_keys_do_not_verify() {
        let (key, _) = ec_key();
        let (_, other_jwk) = ec_key();
        let p = provider(vec![other_jwk]);
        assert!(check(&p, &sign(&key, Algorithm::ES256, &claims("n1")), "n1").is_err());
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k2".into());
        let token = encode(&header, &claims("n1"), &key).unwrap();
        assert!(matches!(
            check(&p, &token, "n1"),
            Err(OidcError::UnknownKey(_))
        ));
    }

    #[test]
    fn claims_fall_back_and_nest() {
        let (key, jwk) = ec_key();
        let mut p = provider(vec![jwk]);
        p.config.roles_claim = "realm_access.roles".into();
        let mut c = claims("n1");
        c.as_object_mut().unwrap().remove("preferred_username");
        c["realm_access"] = json!({"roles": "admin"});
        let id = check(&p, &sign(&key, Algorithm::ES256, &c), "n1").unwrap();
        assert_eq!(
            (id.username.as_str(), id.roles.as_slice()),
            ("eng3@plant.example", ["admin".to_string()].as_slice())
        );
        assert_eq!(id.otgate_name(), None);
    }

    #[test]
    fn otgate_names() {
        let id = |u: &str| Identity {
            username: u.into(),
            subject: "s".into(),
            email: None,
            name: None,
            roles: vec![],
        };
        assert_eq!(
            id("Eng3.Smith_x-1").otgate_name().as_deref(),
            Some("eng3.smith_x-1")
        );
        for bad in [
            "",
            ".eng",
            "-eng",
            "a b",
            "eng@plant",
            "ingénieur",
            "\u{212A}elvin",
            &"a".repeat(64),
        ] {
            assert_eq!(id(bad).otgate_name(), None, "{bad}");
        }
        assert!(id(&"a".repeat(63)).otgate_name().is_some());
    }

    #[test]
    fn urls_and_encoding() {
        assert!(checked_url("issuer", "http://127.0.0.1:9400").is_ok());
        assert!(checked_url("issuer", "http://[::1]:9400/x").is_ok());
        assert!(checked_url("issuer", "http://localhost").is_ok());
        assert!(checked_url("issuer", "https://idp.example").is_ok());
        assert!(checked_url("issuer", "http://idp.example").is_err());
        assert!(checked_url("issuer", "http://127.0.0.1.evil.example").is_err());
        assert!(checked_url("issuer", "idp.example").is_err());
        assert_eq!(form_encode("a b:c%d+é~"), "a%20b%3Ac%25d%2B%C3%A9~");
    }
}
