//! Authentication: passwords (argon2id), TOTP second factor, bearer tokens, login throttling.

mod sso;
mod throttle;

pub use sso::SsoIdentity;

use std::net::IpAddr;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use time::OffsetDateTime;
use totp_rs::{Builder, Totp};
use utoipa::ToSchema;

use otgate_policy::{Event, EventKind, RoleAssignment, UserName};

pub use throttle::LoginLimits;
pub(crate) use throttle::Throttle;

use crate::Broker;
use crate::error::{BrokerError, Result};
use crate::events::Batch;
use crate::secret::Secret;
use crate::store::rows::UserRow;
use crate::store::{millis, on_pool, on_tx};
use crate::vault::random_bytes;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Who.
    pub user: UserName,
    /// From where.
    pub source: Option<IpAddr>,
}

/// What a client presents at login.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// User name as typed.
    pub user: String,
    /// Password.
    pub password: Secret<String>,
    /// Authenticator code, when enrolled.
    pub totp: Option<String>,
    /// New password, when the current one is a one-time password.
    pub new_password: Option<Secret<String>>,
    /// Client address.
    pub source: Option<IpAddr>,
}

/// A logged-in session: the bearer token and who it is.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Session {
    /// Bearer token for `Authorization: Bearer ...`; shown once.
    #[schema(value_type = String)]
    #[serde(serialize_with = "expose")]
    pub token: Secret<String>,
    /// Who.
    pub user: UserName,
    /// Roles held.
    pub roles: Vec<RoleAssignment>,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A second factor to enrol: add it to an authenticator app, then log in with a code.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Base32 secret.
    #[schema(value_type = String)]
    #[serde(serialize_with = "expose")]
    pub secret: Secret<String>,
    /// `otpauth://` URI (for a QR code).
    #[schema(value_type = String)]
    #[serde(serialize_with = "expose")]
    pub otpauth_uri: Secret<String>,
}

fn expose<S: serde::Serializer>(
    secret: &Secret<String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

/// Result of a correct password.
#[derive(Clone, Debug)]
pub enum LoginOutcome {
    /// Logged in.
    Session(Session),
    /// A second factor must be enrolled first; log in again with a code.
    Enrol(TotpEnrolment),
}

/// Shortest acceptable password.
pub const MIN_PASSWORD_LEN: usize = 12;
const TOKEN_PREFIX: &str = "otg_";

/// Hashes a password with argon2id (CPU-bound: call off the async threads).
pub(crate) fn hash_password_blocking(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| BrokerError::Crypto(format!("hashing a password: {e}")))
}

pub(crate) async fn hash_password(password: Secret<String>) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password_blocking(password.expose()))
        .await
        .map_err(|e| BrokerError::Crypto(format!("hashing a password: {e}")))?
}

async fn verify_password(password: Secret<String>, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.expose().as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

pub(crate) fn check_password_strength(password: &str) -> Result<()> {
    let length = password.chars().count();
    if !(MIN_PASSWORD_LEN..=256).contains(&length) {
        return Err(BrokerError::invalid(format!(
            "a password has {MIN_PASSWORD_LEN} to 256 characters; a passphrase of several words is best"
        )));
    }
    Ok(())
}

/// A random secret, URL-safe.
pub(crate) fn random_token() -> Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// A random password of 24 URL-safe characters (144 bits).
pub fn generate_password() -> Result<Secret<String>> {
    Ok(Secret::new(URL_SAFE_NO_PAD.encode(random_bytes::<18>()?)))
}

/// Stores a new session's bearer token (its hash) with its `login_succeeded` event, in the
/// caller's transaction.
pub(crate) async fn store_session(
    batch: &mut Batch,
    token: &str,
    name: &UserName,
    (now, expires_at): (OffsetDateTime, OffsetDateTime),
    source: Option<IpAddr>,
) -> Result<()> {
    on_tx!(&mut batch.tx, conn => sqlx::query(
        "INSERT INTO api_tokens (token_hash, user_name, created_at, expires_at) VALUES ($1, $2, $3, $4)"
    )
    .bind(token_hash(token))
    .bind(name.as_str())
    .bind(millis(now))
    .bind(millis(expires_at))
    .execute(conn)
    .await.map(|r| r.rows_affected()))?;
    batch
        .emit(
            Event::now(EventKind::LoginSucceeded { user: name.clone() })
                .by(Some(name.clone()))
                .from_addr(source),
        )
        .await
}

fn token_hash(token: &str) -> Vec<u8> {
    digest(&SHA256, token.as_bytes()).as_ref().to_vec()
}

pub(crate) fn totp(secret: &[u8], user: &UserName) -> Result<Totp> {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_account_name(user.as_str())
        .with_issuer(Some("otgate"))
        .build()
        .map_err(|e| BrokerError::Crypto(format!("TOTP: {e}")))
}

pub(crate) fn totp_purpose(user: &UserName) -> String {
    format!("totp:{user}")
}

fn unix_now() -> u64 {
    u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0)
}

impl Broker {
    pub(crate) async fn user_row(&self, name: &UserName) -> Result<Option<UserRow>> {
        Ok(on_pool!(&self.store, pool => sqlx::query_as::<_, UserRow>(
            "SELECT name, display_name, org, password_hash, must_change_password, totp_secret, totp_confirmed, \
             totp_last_step, disabled, created_at FROM users WHERE name = $1"
        )
        .bind(name.as_str())
        .fetch_optional(pool)
        .await)?)
    }

    /// Logs a user in: password, then (for engineers, admins and anyone enrolled) a TOTP code.
    /// A one-time password must be replaced by `new_password` in the same call.
    pub async fn login(&self, credentials: Credentials) -> Result<LoginOutcome> {
        let shown: String = credentials.user.chars().take(64).collect();
        let keys = Throttle::keys(&shown, credentials.source);
        if let Some(retry_after_secs) = self.throttle.retry_after(&keys) {
            self.record(
                Event::now(EventKind::LoginThrottled {
                    user: shown,
                    retry_after_secs,
                })
                .from_addr(credentials.source),
            )
            .await?;
            return Err(BrokerError::LoginRefused {
                message: format!("too many failed logins: try again in {retry_after_secs} s"),
                code: "throttled",
                retry_after: Some(retry_after_secs),
            });
        }
        let row = match UserName::new(credentials.user.clone()) {
            Ok(name) => self.user_row(&name).await?,
            Err(_) => None,
        };
        let Some(row) = row else {
            // Same work as a real check, so timing does not reveal which names exist.
            verify_password(credentials.password.clone(), self.dummy_hash.clone()).await;
            return self
                .refuse_login(shown, credentials.source, &keys, "unknown user", true)
                .await;
        };
        if !verify_password(credentials.password.clone(), row.password_hash.clone()).await {
            return self
                .refuse_login(shown, credentials.source, &keys, "wrong password", true)
                .await;
        }
        if row.disabled {
            return self
                .refuse_login(shown, credentials.source, &keys, "account disabled", true)
                .await;
        }
        let name = UserName::new(row.name.clone())?;

        let mut new_hash = None;
        if row.must_change_password {
            let Some(new_password) = credentials.new_password.clone() else {
                self.note_refusal(
                    &shown,
                    credentials.source,
                    "one-time password must be changed",
                )
                .await?;
                return Err(BrokerError::LoginRefused {
                    message: format!(
                        "this is a one-time password: choose a new password of at least {MIN_PASSWORD_LEN} characters"
                    ),
                    code: "password_change_required",
                    retry_after: None,
                });
            };
            check_password_strength(new_password.expose())?;
            if new_password.expose() == credentials.password.expose() {
                return Err(BrokerError::invalid(
                    "the new password must differ from the one-time password",
                ));
            }
            new_hash = Some(hash_password(new_password).await?);
        }

        let needs_totp = self.authz.read().await.requires_totp(&name) || row.totp_secret.is_some();
        let mut confirmed_step = None;
        if needs_totp {
            let Some(sealed) = &row.totp_secret else {
                return self
                    .start_enrolment(&name, new_hash)
                    .await
                    .map(LoginOutcome::Enrol);
            };
            let secret = self.keys.vault.open(&totp_purpose(&name), sealed)?;
            let totp = totp(secret.expose(), &name)?;
            let Some(code) = credentials.totp.as_deref() else {
                self.note_refusal(&shown, credentials.source, "authenticator code missing")
                    .await?;
                return Err(BrokerError::LoginRefused {
                    message: "enter the 6-digit code from your authenticator app".into(),
                    code: "totp_required",
                    retry_after: None,
                });
            };
            match totp.check(code.trim(), unix_now()) {
                Some(step) if i64::try_from(step).unwrap_or(0) > row.totp_last_step => {
                    confirmed_step = Some(step)
                }
                Some(_) => {
                    return self
                        .refuse_login(
                            shown,
                            credentials.source,
                            &keys,
                            "authenticator code reused",
                            true,
                        )
                        .await;
                }
                None => {
                    return self
                        .refuse_login(
                            shown,
                            credentials.source,
                            &keys,
                            "wrong authenticator code",
                            true,
                        )
                        .await;
                }
            }
        }

        let token = format!("{TOKEN_PREFIX}{}", random_token()?);
        let now = OffsetDateTime::now_utc();
        let expires_at = now + self.token_ttl;
        let mut batch = Batch::begin(self).await?;
        let actor = Some(name.clone());
        if let Some(hash) = new_hash {
            on_tx!(&mut batch.tx, conn => sqlx::query(
                "UPDATE users SET password_hash = $1, must_change_password = FALSE WHERE name = $2"
            )
            .bind(hash)
            .bind(name.as_str())
            .execute(conn)
            .await.map(|r| r.rows_affected()))?;
            batch
                .emit(
                    Event::now(EventKind::PasswordChanged { user: name.clone() })
                        .by(actor.clone())
                        .from_addr(credentials.source),
                )
                .await?;
        }
        if let Some(step) = confirmed_step {
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            let updated = on_tx!(&mut batch.tx, conn => sqlx::query(
                "UPDATE users SET totp_last_step = $1, totp_confirmed = TRUE WHERE name = $2 AND totp_last_step < $1"
            )
            .bind(step)
            .bind(name.as_str())
            .execute(conn)
            .await.map(|r| r.rows_affected()))?;
            if updated == 0 {
                drop(batch);
                return self
                    .refuse_login(
                        shown,
                        credentials.source,
                        &keys,
                        "authenticator code reused",
                        true,
                    )
                    .await;
            }
            if !row.totp_confirmed {
                batch
                    .emit(
                        Event::now(EventKind::TotpEnrolled { user: name.clone() })
                            .by(actor.clone())
                            .from_addr(credentials.source),
                    )
                    .await?;
            }
        }
        store_session(
            &mut batch,
            &token,
            &name,
            (now, expires_at),
            credentials.source,
        )
        .await?;
        batch.commit(self).await?;
        self.throttle.clear(&keys);
        let roles = self.authz.read().await.roles(&name);
        Ok(LoginOutcome::Session(Session {
            token: Secret::new(token),
            user: name,
            roles,
            expires_at,
        }))
    }

    async fn start_enrolment(
        &self,
        name: &UserName,
        new_hash: Option<String>,
    ) -> Result<TotpEnrolment> {
        let secret = random_bytes::<20>()?;
        let totp = totp(&secret, name)?;
        let sealed = self.keys.vault.seal(&totp_purpose(name), &secret)?;
        let mut batch = Batch::begin(self).await?;
        // Never over a confirmed authenticator (two sign-ins at once, one of them confirming).
        let started = on_tx!(&mut batch.tx, conn => sqlx::query(
            "UPDATE users SET totp_secret = $1, totp_confirmed = FALSE, \
             password_hash = COALESCE($2, password_hash), \
             must_change_password = CASE WHEN $2 IS NULL THEN must_change_password ELSE FALSE END \
             WHERE name = $3 AND NOT totp_confirmed"
        )
        .bind(sealed)
        .bind(new_hash.clone())
        .bind(name.as_str())
        .execute(conn)
        .await.map(|r| r.rows_affected()))?;
        if started == 0 {
            return Err(BrokerError::Conflict(
                "an authenticator was enrolled meanwhile: sign in again with its code".into(),
            ));
        }
        if new_hash.is_some() {
            batch
                .emit(
                    Event::now(EventKind::PasswordChanged { user: name.clone() })
                        .by(Some(name.clone())),
                )
                .await?;
        }
        batch.commit(self).await?;
        Ok(TotpEnrolment {
            secret: Secret::new(totp.secret().to_base32()),
            otpauth_uri: Secret::new(
                totp.to_url()
                    .map_err(|e| BrokerError::Crypto(format!("TOTP URI: {e}")))?,
            ),
        })
    }

    async fn note_refusal(&self, shown: &str, source: Option<IpAddr>, reason: &str) -> Result<()> {
        self.record(
            Event::now(EventKind::LoginFailed {
                user: shown.to_owned(),
                reason: reason.to_owned(),
            })
            .from_addr(source),
        )
        .await
    }

    async fn refuse_login<T>(
        &self,
        shown: String,
        source: Option<IpAddr>,
        keys: &[throttle::Key],
        reason: &str,
        counts: bool,
    ) -> Result<T> {
        if counts {
            self.throttle.fail(keys);
        }
        self.note_refusal(&shown, source, reason).await?;
        Err(BrokerError::LoginRefused {
            message: "invalid user name, password or authenticator code".into(),
            code: "invalid_credentials",
            retry_after: None,
        })
    }

    /// Asks a signed-in user for their authenticator code again (before approving access to
    /// levels 0-1 in the browser): the code must be current and newer than any used before.
    /// A wrong or reused code is refused, counts towards throttling and is an event.
    pub async fn confirm_totp(&self, who: &Principal, code: &str) -> Result<()> {
        let shown = who.user.as_str().to_owned();
        let keys = Throttle::keys(&shown, who.source);
        if let Some(retry_after_secs) = self.throttle.retry_after(&keys) {
            return Err(BrokerError::Forbidden(format!(
                "too many wrong codes: try again in {retry_after_secs} s"
            )));
        }
        let refused = |reason: &'static str| BrokerError::Forbidden(reason.to_owned());
        let row = self
            .user_row(&who.user)
            .await?
            .ok_or_else(|| refused("unknown user"))?;
        let Some(sealed) = &row.totp_secret else {
            return Err(refused(
                "enrol an authenticator app first (`otgate login` shows the secret)",
            ));
        };
        let secret = self.keys.vault.open(&totp_purpose(&who.user), sealed)?;
        let step = totp(secret.expose(), &who.user)?.check(code.trim(), unix_now());
        let step = step.and_then(|s| i64::try_from(s).ok());
        let updated = match step {
            Some(step) => on_pool!(&self.store, pool => sqlx::query(
                "UPDATE users SET totp_last_step = $1 WHERE name = $2 AND totp_last_step < $1"
            )
            .bind(step)
            .bind(who.user.as_str())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?,
            None => 0,
        };
        if updated == 0 {
            self.throttle.fail(&keys);
            let reason = if step.is_some() {
                "authenticator code reused"
            } else {
                "wrong authenticator code"
            };
            self.note_refusal(&shown, who.source, reason).await?;
            return Err(BrokerError::Forbidden(format!(
                "{reason}: enter the current code from your authenticator app"
            )));
        }
        Ok(())
    }

    /// Resolves a bearer token to its user.
    pub async fn authenticate(&self, token: &str, source: Option<IpAddr>) -> Result<Principal> {
        let well_formed = token.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
            rest.len() == 43
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if !well_formed {
            return Err(BrokerError::Unauthenticated(
                "the bearer token is malformed: log in again with `otgate login`".into(),
            ));
        }
        let user: Option<String> = on_pool!(&self.store, pool => sqlx::query_scalar(
            "SELECT u.name FROM api_tokens t JOIN users u ON u.name = t.user_name \
             WHERE t.token_hash = $1 AND t.expires_at > $2 AND NOT u.disabled"
        )
        .bind(token_hash(token))
        .bind(millis(OffsetDateTime::now_utc()))
        .fetch_optional(pool)
        .await)?;
        match user {
            Some(name) => Ok(Principal {
                user: UserName::new(name)?,
                source,
            }),
            None => Err(BrokerError::Unauthenticated(
                "the bearer token is unknown or expired: log in again with `otgate login`".into(),
            )),
        }
    }

    /// Revokes the token used for this call.
    pub async fn logout(&self, who: &Principal, token: &str) -> Result<()> {
        let mut batch = Batch::begin(self).await?;
        on_tx!(&mut batch.tx, conn => sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1")
            .bind(token_hash(token))
            .execute(conn)
            .await.map(|r| r.rows_affected()))?;
        batch
            .emit(
                Event::now(EventKind::LoggedOut {
                    user: who.user.clone(),
                })
                .by(Some(who.user.clone()))
                .from_addr(who.source),
            )
            .await?;
        batch.commit(self).await
    }
}
