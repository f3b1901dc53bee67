//! otgate-broker: the control plane.
//!
//! Role: users and identities (argon2id passwords, TOTP, hashed bearer tokens, login
//! throttling), the plant inventory in storage, access requests and their approvals, grants,
//! credentials bound to grants (OpenSSH user certificates, EdDSA JWTs), revocation and
//! quarantine, the vault of asset credentials, the event log, and the event bus.
//!
//! Invariants:
//! - Every state change and its events are written in one transaction; events are published
//!   on the bus only after commit, so a subscriber never sees an event that was not stored.
//! - Every operation is authorized through `policy` before it touches storage.
//! - Secrets (passwords, vaulted credentials, TOTP seeds, tokens) are never returned after
//!   creation, never logged, and stored hashed or sealed.
//!
//! Layout: [`store`] (SQLite/PostgreSQL, migrations, casbin adapter), [`bus`], [`keys`],
//! [`vault`], [`model`], and the broker's operations by subject: `auth`, `users`, `inventory`,
//! `requests`, `grants`, `credentials`, `events`, `sessions` (the recording index).
//!
//! Never: open network listeners (that is `web` and `gateway`), or depend on `gateway`.

mod accounts;
mod alerts;
mod auth;
pub mod bus;
mod credentials;
pub mod error;
mod events;
mod grants;
mod inventory;
pub mod keys;
pub mod model;
mod requests;
pub mod secret;
mod sessions;
pub mod store;
mod users;
pub mod vault;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;

use otgate_policy::{ApprovalRules, Authorizer};

pub use alerts::{Alert, AlertFilter, NewAlert};
pub use auth::{
    Credentials, LoginLimits, LoginOutcome, Principal, Session, SsoIdentity, TotpEnrolment,
    generate_password,
};
pub use bus::{EventBus, LocalBus, StoredEvent};
pub use credentials::TunnelClaims;
pub use error::{BrokerError, Result};
pub use events::EventPage;
pub use grants::NewQuarantine;
pub use inventory::NewCredential;
pub use keys::{KeyFiles, Keys};
pub use model::{
    AccessRefusal, Approval, Credential, CredentialKind, IssuedCertificate, IssuedToken,
    Quarantine, Request, RequestStatus, SshKey, User,
};
pub use requests::{NewRequest, RequestFilter, ScopeSpec};
pub use secret::Secret;
pub use sessions::{
    IndexedText, Moment, RecordedSession, SearchHit, SessionAction, SessionFilter, SessionIndex,
    SessionState, parse_since,
};
pub use store::{Database, Store};
pub use users::NewUser;

/// How the broker is set up.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Storage.
    pub database: Database,
    /// Key files.
    pub keys: KeyFiles,
    /// Approval rules per level.
    pub approval: ApprovalRules,
    /// Lifetime of API tokens issued at login.
    pub token_ttl: Duration,
    /// Login throttling.
    pub login: LoginLimits,
}

/// The control plane: one per process, shared by the API, the gateway link and the CLI wiring.
pub struct Broker {
    store: Store,
    bus: Arc<dyn EventBus>,
    authz: RwLock<Authorizer>,
    keys: Keys,
    rules: ApprovalRules,
    token_ttl: Duration,
    throttle: auth::Throttle,
    dummy_hash: String,
}

impl Broker {
    /// Connects to storage (migrating it), loads keys and authorization rules.
    pub async fn open(config: &BrokerConfig, bus: Arc<dyn EventBus>) -> Result<Self> {
        let keys = config.keys.load()?;
        let store = Store::connect(&config.database).await?;
        let authz = Authorizer::new(store::casbin::CasbinAdapter::new(store.clone())).await?;
        Ok(Self {
            store,
            bus,
            authz: RwLock::new(authz),
            keys,
            rules: config.approval.clone(),
            token_ttl: config.token_ttl,
            throttle: auth::Throttle::new(config.login),
            dummy_hash: auth::hash_password_blocking("otgate timing equaliser")?,
        })
    }

    /// Whether `who` holds `action` in `zone`: for interfaces that hide what the broker
    /// would refuse anyway (every operation still checks for itself).
    pub async fn is_allowed(
        &self,
        who: &Principal,
        zone: &otgate_policy::ZoneName,
        action: otgate_policy::Action,
    ) -> bool {
        self.authz.read().await.is_allowed(&who.user, zone, action)
    }

    /// The approval rules in force.
    pub fn rules(&self) -> &ApprovalRules {
        &self.rules
    }

    /// The key material.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Which storage backend is in use.
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Closes storage.
    pub async fn close(&self) {
        self.store.close().await;
    }
}
