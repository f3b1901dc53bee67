//! Changing accounts (admins): replacing a user's roles, disabling and enabling an account.
//! The last enabled admin can neither lose the role nor be disabled, so the plant is never
//! left without someone who can manage it. Account changes take turns in the database (one
//! SQLite writer at a time; a transaction-scoped advisory lock on PostgreSQL, whichever node
//! they run on) and read the roles they check from the database, not from a node's memory.

use std::collections::BTreeSet;

use otgate_policy::authz::{self, GROUPING};
use otgate_policy::{Action, Domain, Event, EventKind, Role, RoleAssignment, UserName};

use crate::error::{BrokerError, Result};
use crate::events::Batch;
use crate::grants::check_reason;
use crate::model::User;
use crate::store::rows::UserRow;
use crate::store::{Tx, casbin, on_tx};
use crate::{Broker, Principal};

/// Most role assignments one user may hold.
const MAX_ROLES: usize = 64;

/// The PostgreSQL advisory lock account changes take turns on ("otgate" and 1).
const ACCOUNTS_LOCK: i64 = 0x6f74_6761_7465_0001;

fn role_texts(roles: &[RoleAssignment]) -> Vec<String> {
    roles.iter().map(ToString::to_string).collect()
}

fn administers_everywhere(roles: &[RoleAssignment]) -> bool {
    roles
        .iter()
        .any(|r| r.role == Role::Admin && r.domain == Domain::Any)
}

fn needs_totp(roles: &[RoleAssignment]) -> bool {
    roles.iter().any(|r| r.role.requires_totp())
}

/// Every direct role assignment, as stored.
async fn assignments(batch: &mut Batch) -> Result<Vec<(UserName, RoleAssignment)>> {
    Ok(casbin::rules(&mut batch.tx, GROUPING)
        .await?
        .iter()
        .filter_map(|rule| authz::rule_role(rule))
        .collect())
}

/// `name`'s roles among `all`, sorted.
fn roles_of(all: &[(UserName, RoleAssignment)], name: &UserName) -> Vec<RoleAssignment> {
    let mut roles: Vec<RoleAssignment> = all
        .iter()
        .filter(|(user, _)| user == name)
        .map(|(_, role)| role.clone())
        .collect();
    roles.sort();
    roles
}

/// Refuses unless an enabled user other than `leaving` administers every zone.
async fn keep_an_admin(
    batch: &mut Batch,
    all: &[(UserName, RoleAssignment)],
    leaving: &UserName,
) -> Result<()> {
    let enabled: Vec<String> = on_tx!(&mut batch.tx, conn => sqlx::query_scalar(
        "SELECT name FROM users WHERE NOT disabled"
    )
    .fetch_all(conn)
    .await)?;
    let another = all.iter().any(|(user, role)| {
        user != leaving
            && role.role == Role::Admin
            && role.domain == Domain::Any
            && enabled.iter().any(|e| e == user.as_str())
    });
    if another {
        Ok(())
    } else {
        Err(BrokerError::Conflict(format!(
            "{leaving} is the last enabled admin: make someone else admin@* first"
        )))
    }
}

/// Ends every sign-in of `name` (their API tokens and browser sessions).
async fn end_sign_ins(batch: &mut Batch, name: &UserName) -> Result<()> {
    on_tx!(&mut batch.tx, conn => sqlx::query("DELETE FROM api_tokens WHERE user_name = $1")
        .bind(name.as_str())
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

impl Broker {
    /// A transaction in which account changes take turns.
    async fn account_change(&self) -> Result<Batch> {
        let mut batch = Batch::begin(self).await?;
        // SQLite's write transaction already excludes every other writer.
        if let Tx::Postgres(tx) = &mut batch.tx {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(ACCOUNTS_LOCK)
                .execute(&mut **tx)
                .await?;
        }
        Ok(batch)
    }

    /// Replaces `name`'s roles (admins only). A vendor keeps their organisation, so a vendor
    /// may be left with no direct role. Roles that newly need a second factor end the user's
    /// sign-ins, so that the next one asks for it (or enrols it).
    pub async fn set_roles(
        &self,
        who: &Principal,
        name: &UserName,
        roles: Vec<RoleAssignment>,
    ) -> Result<User> {
        self.require_everywhere(who, Action::Administer, "change roles")
            .await?;
        let roles: Vec<RoleAssignment> = roles
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if roles.len() > MAX_ROLES {
            return Err(BrokerError::invalid(format!(
                "at most {MAX_ROLES} role assignments per user"
            )));
        }
        let row = self.existing_user(name).await?;
        if roles.is_empty() && row.org.is_none() {
            return Err(BrokerError::invalid(
                "give the user a role (e.g. engineer@cell-a) or disable the account instead",
            ));
        }
        let mut batch = self.account_change().await?;
        let all = assignments(&mut batch).await?;
        let previous = roles_of(&all, name);
        if previous == roles {
            drop(batch);
            return self.user_view(name).await;
        }
        if !row.disabled && administers_everywhere(&previous) && !administers_everywhere(&roles) {
            keep_an_admin(&mut batch, &all, name).await?;
        }
        for old in &previous {
            casbin::delete_rule(
                &mut batch.tx,
                GROUPING,
                &authz::role_rule(name, old.role, &old.domain),
            )
            .await?;
        }
        for new in &roles {
            casbin::insert_rule(
                &mut batch.tx,
                GROUPING,
                &authz::role_rule(name, new.role, &new.domain),
            )
            .await?;
        }
        if needs_totp(&roles) && !needs_totp(&previous) {
            end_sign_ins(&mut batch, name).await?;
        }
        batch
            .emit(
                Event::now(EventKind::UserRolesChanged {
                    user: name.clone(),
                    roles: role_texts(&roles),
                    previous: role_texts(&previous),
                })
                .by(Some(who.user.clone()))
                .from_addr(who.source),
            )
            .await?;
        batch.commit(self).await?;
        self.authz.write().await.reload().await?;
        self.user_view(name).await
    }

    /// Disables `name` (admins only, not oneself): logins and API tokens are refused at once
    /// (the tokens are deleted), the gateway refuses the user's grants, and every gateway ends
    /// the user's live sessions when it sees the event.
    pub async fn disable_user(
        &self,
        who: &Principal,
        name: &UserName,
        reason: &str,
    ) -> Result<User> {
        self.require_everywhere(who, Action::Administer, "disable users")
            .await?;
        check_reason(reason)?;
        if *name == who.user {
            return Err(BrokerError::Conflict(
                "an admin cannot disable their own account: ask another admin".into(),
            ));
        }
        self.existing_user(name).await?;
        let mut batch = self.account_change().await?;
        let all = assignments(&mut batch).await?;
        if administers_everywhere(&roles_of(&all, name)) {
            keep_an_admin(&mut batch, &all, name).await?;
        }
        let changed = on_tx!(&mut batch.tx, conn => sqlx::query(
            "UPDATE users SET disabled = TRUE WHERE name = $1 AND NOT disabled"
        )
        .bind(name.as_str())
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        if changed == 0 {
            return Err(BrokerError::Conflict(format!("{name} is already disabled")));
        }
        end_sign_ins(&mut batch, name).await?;
        batch
            .emit(
                Event::now(EventKind::UserDisabled {
                    user: name.clone(),
                    reason: reason.trim().to_owned(),
                })
                .by(Some(who.user.clone()))
                .from_addr(who.source),
            )
            .await?;
        batch.commit(self).await?;
        self.user_view(name).await
    }

    /// Enables a disabled account again (admins only). Its old tokens stay deleted: the user
    /// signs in again.
    pub async fn enable_user(&self, who: &Principal, name: &UserName) -> Result<User> {
        self.require_everywhere(who, Action::Administer, "enable users")
            .await?;
        self.existing_user(name).await?;
        let mut batch = self.account_change().await?;
        let changed = on_tx!(&mut batch.tx, conn => sqlx::query(
            "UPDATE users SET disabled = FALSE WHERE name = $1 AND disabled"
        )
        .bind(name.as_str())
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        if changed == 0 {
            return Err(BrokerError::Conflict(format!("{name} is not disabled")));
        }
        batch
            .emit(
                Event::now(EventKind::UserEnabled { user: name.clone() })
                    .by(Some(who.user.clone()))
                    .from_addr(who.source),
            )
            .await?;
        batch.commit(self).await?;
        self.user_view(name).await
    }

    /// Whether `name`'s account is disabled (an unknown user counts as disabled).
    pub(crate) async fn is_disabled(&self, name: &UserName) -> Result<bool> {
        Ok(self.user_row(name).await?.is_none_or(|row| row.disabled))
    }

    async fn existing_user(&self, name: &UserName) -> Result<UserRow> {
        self.user_row(name)
            .await?
            .ok_or_else(|| BrokerError::NotFound(format!("no user `{name}`")))
    }
}
