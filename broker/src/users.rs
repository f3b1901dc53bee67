//! User accounts, roles and registered SSH keys.

use serde::{Deserialize, Serialize};
use ssh_key::{Algorithm, HashAlg, PublicKey};
use time::OffsetDateTime;
use utoipa::ToSchema;

use otgate_policy::authz::{self, GROUPING};
use otgate_policy::{Action, Event, EventKind, OrgName, RoleAssignment, UserName};

use crate::auth::{generate_password, hash_password, totp_purpose};
use crate::error::{BrokerError, Result};
use crate::events::Batch;
use crate::model::{SshKey, User};
use crate::secret::Secret;
use crate::store::rows::UserRow;
use crate::store::{casbin, from_millis, is_unique_violation, millis, on_pool, on_tx};
use crate::{Broker, Principal};

/// A user to create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name.
    pub name: UserName,
    /// Full name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Vendor organisation (vendors only); gives the zones the organisation is admitted to.
    #[serde(default)]
    pub org: Option<OrgName>,
    /// Roles and where they hold.
    pub roles: Vec<RoleAssignment>,
}

/// Most keys per user.
const MAX_KEYS: usize = 10;

impl NewUser {
    fn validate(&self) -> Result<()> {
        if self
            .display_name
            .as_ref()
            .is_some_and(|d| d.chars().count() > 128 || d.chars().any(char::is_control))
        {
            return Err(BrokerError::invalid(
                "display_name: at most 128 printable characters",
            ));
        }
        if self.roles.is_empty() && self.org.is_none() {
            return Err(BrokerError::invalid(
                "give the user a role (e.g. --role engineer --zone cell-a) or, for a vendor, an organisation",
            ));
        }
        Ok(())
    }
}

impl User {
    fn from_row(row: UserRow, roles: Vec<RoleAssignment>) -> Result<Self> {
        Ok(Self {
            name: UserName::new(row.name)?,
            display_name: row.display_name,
            org: row.org.map(OrgName::new).transpose()?,
            roles,
            totp_enrolled: row.totp_confirmed,
            must_change_password: row.must_change_password,
            disabled: row.disabled,
            created_at: from_millis(row.created_at)?,
        })
    }
}

impl Broker {
    /// Creates a user with a generated one-time password (admins only); the password must be
    /// changed at first login.
    pub async fn add_user(&self, who: &Principal, new: NewUser) -> Result<(User, Secret<String>)> {
        self.require_everywhere(who, Action::Administer, "create users")
            .await?;
        let password = generate_password()?;
        let user = self
            .provision(Some(who), new, password.clone(), true, None)
            .await?;
        Ok((user, password))
    }

    /// Creates a user with a known password (and optionally a TOTP seed, for the demo) without
    /// an authorization check: for `otgate init` and `otgate demo`, which run as the operator.
    pub async fn provision(
        &self,
        by: Option<&Principal>,
        new: NewUser,
        password: Secret<String>,
        must_change_password: bool,
        totp_secret: Option<&[u8]>,
    ) -> Result<User> {
        new.validate()?;
        let hash = hash_password(password).await?;
        let sealed = totp_secret
            .map(|secret| self.keys.vault.seal(&totp_purpose(&new.name), secret))
            .transpose()?;
        let now = OffsetDateTime::now_utc();
        let mut batch = Batch::begin(self).await?;
        let inserted = on_tx!(&mut batch.tx, conn => sqlx::query(
            "INSERT INTO users (name, display_name, org, password_hash, must_change_password, totp_secret, \
             totp_confirmed, totp_last_step, disabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, FALSE, $8)"
        )
        .bind(new.name.as_str())
        .bind(new.display_name.clone())
        .bind(new.org.as_ref().map(|o| o.as_str().to_owned()))
        .bind(hash)
        .bind(must_change_password)
        .bind(sealed.clone())
        .bind(sealed.is_some())
        .bind(millis(now))
        .execute(conn)
        .await.map(|r| r.rows_affected()));
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(BrokerError::Conflict(format!(
                    "user `{}` already exists",
                    new.name
                )));
            }
            other => other?,
        };
        for assignment in &new.roles {
            casbin::insert_rule(
                &mut batch.tx,
                GROUPING,
                &authz::role_rule(&new.name, assignment.role, &assignment.domain),
            )
            .await?;
        }
        if let Some(org) = &new.org {
            // Membership gives the vendor role in the zones the organisation is admitted to.
            casbin::insert_rule(&mut batch.tx, GROUPING, &authz::member_rule(&new.name, org))
                .await?;
        }
        let roles: Vec<String> = new.roles.iter().map(ToString::to_string).collect();
        batch
            .emit(
                Event::now(EventKind::UserAdded {
                    user: new.name.clone(),
                    roles,
                    org: new.org.clone(),
                })
                .by(by.map(|p| p.user.clone()))
                .from_addr(by.and_then(|p| p.source)),
            )
            .await?;
        batch.commit(self).await?;
        self.authz.write().await.reload().await?;
        self.user_view(&new.name).await
    }

    pub(crate) async fn user_view(&self, name: &UserName) -> Result<User> {
        let row = self
            .user_row(name)
            .await?
            .ok_or_else(|| BrokerError::NotFound(format!("no user `{name}`")))?;
        let roles = self.authz.read().await.roles(name);
        User::from_row(row, roles)
    }

    /// The caller's own account.
    pub async fn me(&self, who: &Principal) -> Result<User> {
        self.user_view(&who.user).await
    }

    /// A user's display name and organisation, for the people deciding on their requests
    /// (callers show it only next to a request the viewer may already see).
    pub async fn user_summary(&self, name: &UserName) -> Result<(Option<String>, Option<String>)> {
        let user = self.user_view(name).await?;
        Ok((user.display_name, user.org.map(|o| o.to_string())))
    }

    /// Every user (admins only).
    pub async fn users(&self, who: &Principal) -> Result<Vec<User>> {
        self.require_everywhere(who, Action::Administer, "list users")
            .await?;
        let rows = on_pool!(&self.store, pool => sqlx::query_as::<_, UserRow>(
            "SELECT name, display_name, org, password_hash, must_change_password, totp_secret, totp_confirmed, \
             totp_last_step, disabled, created_at FROM users ORDER BY name"
        )
        .fetch_all(pool)
        .await)?;
        let authz = self.authz.read().await;
        rows.into_iter()
            .map(|row| {
                let roles = UserName::new(row.name.clone())
                    .map(|n| authz.roles(&n))
                    .unwrap_or_default();
                User::from_row(row, roles)
            })
            .collect()
    }

    /// Registers an SSH public key for the caller.
    pub async fn register_key(&self, who: &Principal, text: &str) -> Result<SshKey> {
        if text.len() > 16 * 1024 {
            return Err(BrokerError::invalid("the public key is larger than 16 KiB"));
        }
        let key = PublicKey::from_openssh(text.trim()).map_err(|e| {
            BrokerError::invalid(format!(
                "not an OpenSSH public key ({e}): pass the .pub file, e.g. ~/.ssh/id_ed25519.pub"
            ))
        })?;
        if matches!(key.algorithm(), Algorithm::Dsa) {
            return Err(BrokerError::invalid(
                "DSA keys are not accepted: use ssh-keygen -t ed25519",
            ));
        }
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let public_key = key
            .to_openssh()
            .map_err(|e| BrokerError::invalid(format!("the key cannot be re-encoded: {e}")))?;
        let existing = self.keys_of(who).await?;
        if existing.len() >= MAX_KEYS {
            return Err(BrokerError::Conflict(format!(
                "you have {MAX_KEYS} keys registered already"
            )));
        }
        let now = OffsetDateTime::now_utc();
        let mut batch = Batch::begin(self).await?;
        let inserted = on_tx!(&mut batch.tx, conn => sqlx::query(
            "INSERT INTO ssh_keys (fingerprint, user_name, public_key, created_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(&fingerprint)
        .bind(who.user.as_str())
        .bind(&public_key)
        .bind(millis(now))
        .execute(conn)
        .await.map(|r| r.rows_affected()));
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(BrokerError::Conflict(format!(
                    "key {fingerprint} is registered already"
                )));
            }
            other => other?,
        };
        batch
            .emit(
                Event::now(EventKind::KeyRegistered {
                    user: who.user.clone(),
                    fingerprint: fingerprint.clone(),
                })
                .by(Some(who.user.clone()))
                .from_addr(who.source),
            )
            .await?;
        batch.commit(self).await?;
        Ok(SshKey {
            fingerprint,
            public_key,
            created_at: now,
        })
    }

    /// Whether `vendor` registered the key with this SHA-256 fingerprint (for the gateway).
    pub async fn has_key(&self, vendor: &UserName, fingerprint: &str) -> Result<bool> {
        let found: Option<String> = on_pool!(&self.store, pool => sqlx::query_scalar(
            "SELECT fingerprint FROM ssh_keys WHERE user_name = $1 AND fingerprint = $2"
        )
        .bind(vendor.as_str())
        .bind(fingerprint)
        .fetch_optional(pool)
        .await)?;
        Ok(found.is_some())
    }

    /// The caller's registered keys.
    pub async fn keys_of(&self, who: &Principal) -> Result<Vec<SshKey>> {
        let rows: Vec<(String, String, i64)> = on_pool!(&self.store, pool => sqlx::query_as(
            "SELECT fingerprint, public_key, created_at FROM ssh_keys WHERE user_name = $1 ORDER BY created_at"
        )
        .bind(who.user.as_str())
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|(fingerprint, public_key, created_at)| {
                Ok(SshKey {
                    fingerprint,
                    public_key,
                    created_at: from_millis(created_at)?,
                })
            })
            .collect()
    }

    /// Refuses unless `who` may take `action` in every zone.
    pub(crate) async fn require_everywhere(
        &self,
        who: &Principal,
        action: Action,
        what: &str,
    ) -> Result<()> {
        if self
            .authz
            .read()
            .await
            .is_allowed_everywhere(&who.user, action)
        {
            Ok(())
        } else {
            Err(BrokerError::Forbidden(format!(
                "{} may not {what}: it needs the `{action}` permission in every zone",
                who.user
            )))
        }
    }

    /// Refuses unless `who` may take `action` in `domain`.
    pub(crate) async fn require(
        &self,
        who: &Principal,
        action: Action,
        zone: &otgate_policy::ZoneName,
        what: &str,
    ) -> Result<()> {
        if self.authz.read().await.is_allowed(&who.user, zone, action) {
            Ok(())
        } else {
            Err(BrokerError::Forbidden(format!(
                "{} may not {what}: it needs the `{action}` permission in zone {zone}",
                who.user
            )))
        }
    }
}
