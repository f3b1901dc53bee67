//! Single sign-on: a user an OpenID provider vouched for (the web layer validated the ID
//! token) gets a session like a password login. A name seen for the first time becomes a
//! user holding the roles the provider's claims map to; an existing user keeps the roles
//! otgate gives them. No mapped role, or a disabled account, is a refused login like any
//! other: an event, and a message that says what to do.
//!
//! Roles that need a second factor (engineers and admins) enrol an otgate
//! authenticator at their first single sign-on, as at a first password login: approving
//! access to levels 0-1 asks for a fresh code from it, whoever vouched for the sign-in.

use std::net::IpAddr;

use time::OffsetDateTime;

use otgate_policy::{Event, EventKind, RoleAssignment, UserName};

use super::throttle::{Key, Throttle};
use super::{
    LoginOutcome, Session, TOKEN_PREFIX, random_token, store_session, totp, totp_purpose, unix_now,
};
use crate::Broker;
use crate::error::{BrokerError, Result};
use crate::events::Batch;
use crate::store::on_tx;
use crate::users::NewUser;

/// Who the identity provider says is signing in.
#[derive(Clone, Debug)]
pub struct SsoIdentity {
    /// The otgate user name (from the provider's username claim).
    pub name: UserName,
    /// Display name, when the provider gave one.
    pub display_name: Option<String>,
    /// The roles the provider's claims map to.
    pub roles: Vec<RoleAssignment>,
    /// The issuer, for the event log.
    pub issuer: String,
    /// Client address.
    pub source: Option<IpAddr>,
}

impl Broker {
    /// Signs in a user the identity provider vouched for, or starts enrolling their
    /// authenticator when their roles need one and none is confirmed yet
    /// ([`Broker::sso_enrol`] finishes).
    pub async fn sso_login(&self, who: SsoIdentity) -> Result<LoginOutcome> {
        let refuse = |message: String, code: &'static str| BrokerError::LoginRefused {
            message,
            code,
            retry_after: None,
        };
        if who.roles.is_empty() {
            self.note_refusal(
                who.name.as_str(),
                who.source,
                "single sign-on: no mapped role",
            )
            .await?;
            return Err(refuse(
                format!(
                    "{} holds no otgate role at the identity provider: ask an admin to map one of your groups",
                    who.name
                ),
                "sso_no_role",
            ));
        }
        match self.user_row(&who.name).await? {
            None => {
                let password = super::generate_password()?;
                self.provision(
                    None,
                    NewUser {
                        name: who.name.clone(),
                        display_name: who.display_name.clone(),
                        org: None,
                        roles: who.roles.clone(),
                    },
                    password,
                    false,
                    None,
                )
                .await?;
            }
            Some(row) if row.disabled => {
                self.note_refusal(
                    who.name.as_str(),
                    who.source,
                    "single sign-on: account disabled",
                )
                .await?;
                return Err(refuse(
                    format!("{} is disabled in otgate: ask an admin", who.name),
                    "disabled",
                ));
            }
            Some(_) => {}
        }
        let needs_totp = self.authz.read().await.requires_totp(&who.name);
        let enrolled = self
            .user_row(&who.name)
            .await?
            .is_some_and(|row| row.totp_confirmed);
        if needs_totp && !enrolled {
            return self
                .start_enrolment(&who.name, None)
                .await
                .map(LoginOutcome::Enrol);
        }
        tracing::info!(user = %who.name, issuer = %who.issuer, "signed in through single sign-on");
        let batch = Batch::begin(self).await?;
        self.sso_session(batch, who.name, who.source)
            .await
            .map(LoginOutcome::Session)
    }

    /// Finishes a single sign-on that began an enrolment: the first code from the new
    /// authenticator confirms it and signs the user in. A wrong or reused code is refused,
    /// counts towards throttling and is an event.
    pub async fn sso_enrol(
        &self,
        name: &UserName,
        code: &str,
        source: Option<IpAddr>,
    ) -> Result<Session> {
        let keys = Throttle::keys(name.as_str(), source);
        if let Some(retry_after_secs) = self.throttle.retry_after(&keys) {
            self.record(
                Event::now(EventKind::LoginThrottled {
                    user: name.to_string(),
                    retry_after_secs,
                })
                .from_addr(source),
            )
            .await?;
            return Err(BrokerError::LoginRefused {
                message: format!("too many wrong codes: try again in {retry_after_secs} s"),
                code: "throttled",
                retry_after: Some(retry_after_secs),
            });
        }
        let row = self.user_row(name).await?.filter(|row| !row.disabled);
        let Some((row, sealed)) = row.and_then(|row| {
            let sealed = row.totp_secret.clone()?;
            (!row.totp_confirmed).then_some((row, sealed))
        }) else {
            return self
                .refuse_enrolment(
                    name,
                    source,
                    &keys,
                    "no enrolment in progress: sign in again",
                    false,
                )
                .await;
        };
        let secret = self.keys.vault.open(&totp_purpose(name), &sealed)?;
        let step = totp(secret.expose(), name)?
            .check(code.trim(), unix_now())
            .and_then(|step| i64::try_from(step).ok())
            .filter(|step| *step > row.totp_last_step);
        let Some(step) = step else {
            return self
                .refuse_enrolment(name, source, &keys, "wrong authenticator code", true)
                .await;
        };
        let mut batch = Batch::begin(self).await?;
        let updated = on_tx!(&mut batch.tx, conn => sqlx::query(
            "UPDATE users SET totp_last_step = $1, totp_confirmed = TRUE \
             WHERE name = $2 AND NOT totp_confirmed AND totp_last_step < $1"
        )
        .bind(step)
        .bind(name.as_str())
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        if updated == 0 {
            drop(batch);
            return self
                .refuse_enrolment(name, source, &keys, "authenticator code reused", true)
                .await;
        }
        batch
            .emit(
                Event::now(EventKind::TotpEnrolled { user: name.clone() })
                    .by(Some(name.clone()))
                    .from_addr(source),
            )
            .await?;
        self.throttle.clear(&keys);
        tracing::info!(user = %name, "enrolled an authenticator at single sign-on");
        self.sso_session(batch, name.clone(), source).await
    }

    /// Refuses an enrolment's code: an event, a throttling count when `counts`, and the
    /// reason (the provider already said who this is, so naming it reveals nothing).
    async fn refuse_enrolment<T>(
        &self,
        name: &UserName,
        source: Option<IpAddr>,
        keys: &[Key],
        reason: &str,
        counts: bool,
    ) -> Result<T> {
        if counts {
            self.throttle.fail(keys);
        }
        self.note_refusal(name.as_str(), source, reason).await?;
        Err(BrokerError::LoginRefused {
            message: reason.to_owned(),
            code: "enrolment_refused",
            retry_after: None,
        })
    }

    /// A new session for `name`, stored with the rest of `batch`.
    async fn sso_session(
        &self,
        mut batch: Batch,
        name: UserName,
        source: Option<IpAddr>,
    ) -> Result<Session> {
        let token = format!("{TOKEN_PREFIX}{}", random_token()?);
        let now = OffsetDateTime::now_utc();
        let expires_at = now + self.token_ttl;
        store_session(&mut batch, &token, &name, (now, expires_at), source).await?;
        batch.commit(self).await?;
        let roles = self.authz.read().await.roles(&name);
        Ok(Session {
            token: crate::secret::Secret::new(token),
            user: name,
            roles,
            expires_at,
        })
    }
}
