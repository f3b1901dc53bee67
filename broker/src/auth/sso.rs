//! Single sign-on: a user an OpenID provider vouched for (the web layer validated the ID
//! token) gets a session like a password login. A name seen for the first time becomes a
//! user holding the roles the provider's claims map to; an existing user keeps the roles
//! otgate gives them. No mapped role, or a disabled account, is a refused login like any
//! other: an event, and a message that says what to do.

use std::net::IpAddr;

use time::OffsetDateTime;

use otgate_policy::{RoleAssignment, UserName};

use super::{Session, TOKEN_PREFIX, random_token, store_session};
use crate::Broker;
use crate::error::{BrokerError, Result};
use crate::events::Batch;
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
    /// Signs in a user the identity provider vouched for.
    pub async fn sso_login(&self, who: SsoIdentity) -> Result<Session> {
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
        let token = format!("{TOKEN_PREFIX}{}", random_token()?);
        let now = OffsetDateTime::now_utc();
        let expires_at = now + self.token_ttl;
        let mut batch = Batch::begin(self).await?;
        store_session(&mut batch, &token, &who.name, (now, expires_at), who.source).await?;
        batch.commit(self).await?;
        tracing::info!(user = %who.name, issuer = %who.issuer, "signed in through single sign-on");
        let roles = self.authz.read().await.roles(&who.name);
        Ok(Session {
            token: crate::secret::Secret::new(token),
            user: who.name,
            roles,
            expires_at,
        })
    }
}
