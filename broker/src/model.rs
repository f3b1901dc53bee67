//! What the broker hands out: requests (and their grants), users, keys, quarantines,
//! credentials. All serialise as the API's JSON.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use otgate_policy::{
    AssetName, Grant, GrantId, OrgName, Protocol, PurdueLevel, QuarantineSubject, RoleAssignment,
    Scope, UserName, Window, ZoneName,
};

use crate::error::{BrokerError, Result};
use crate::store::from_millis;
use crate::store::rows::{QuarantineRow, RequestRow};

/// Where a request is in its life: `pending -> approved -> active -> expired | revoked`, or
/// `pending -> denied | withdrawn | expired` (lapsed before enough approvals).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for approvals.
    Pending,
    /// Approved; the window has not started.
    Approved,
    /// Approved and inside its window.
    Active,
    /// The window is over.
    Expired,
    /// Revoked by an engineer, an admin or the detector.
    Revoked,
    /// Denied by an engineer.
    Denied,
    /// Withdrawn by the requester.
    Withdrawn,
}

impl RequestStatus {
    /// Every status.
    pub const ALL: [RequestStatus; 7] = [
        Self::Pending,
        Self::Approved,
        Self::Active,
        Self::Expired,
        Self::Revoked,
        Self::Denied,
        Self::Withdrawn,
    ];

    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Denied => "denied",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// Whether the request is a grant that may still be used (approved or active).
    pub fn is_live_grant(self) -> bool {
        matches!(self, Self::Approved | Self::Active)
    }
}

impl std::str::FromStr for RequestStatus {
    type Err = BrokerError;
    fn from_str(value: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| {
                BrokerError::invalid(format!(
                    "unknown status `{}`",
                    value.chars().take(32).collect::<String>()
                ))
            })
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One engineer's approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Approval {
    /// Who approved.
    pub approver: UserName,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// An access request; once approved it is also a grant with the same id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Request {
    /// Id, shared with the grant.
    pub id: GrantId,
    /// The vendor who asked.
    pub requester: UserName,
    /// The asset.
    pub asset: AssetName,
    /// The asset's zone when asked.
    pub zone: ZoneName,
    /// The asset's level when asked.
    pub level: PurdueLevel,
    /// Protocols asked for.
    pub protocols: Vec<Protocol>,
    /// What may be done (a preset made concrete, or a custom scope).
    pub scope: Scope,
    /// Preset name, or `custom`.
    pub scope_name: String,
    /// When.
    pub window: Window,
    /// Why.
    pub reason: String,
    /// Change or work-order ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// Current status.
    pub status: RequestStatus,
    /// Approvals needed.
    pub approvals_needed: u8,
    /// Approvals given.
    pub approvals: Vec<Approval>,
    /// Who denied or revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<UserName>,
    /// Why it was denied or revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<String>,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What stored state plus the clock says the status is.
pub(crate) fn effective_status(
    stored: RequestStatus,
    window: &Window,
    now: OffsetDateTime,
) -> RequestStatus {
    match stored {
        RequestStatus::Pending | RequestStatus::Approved | RequestStatus::Active
            if window.has_ended(now) =>
        {
            RequestStatus::Expired
        }
        RequestStatus::Approved if window.contains(now) => RequestStatus::Active,
        other => other,
    }
}

impl Request {
    pub(crate) fn from_row(
        row: RequestRow,
        approvals: Vec<Approval>,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let corrupt = |what: &str| {
            BrokerError::invalid(format!("stored request {} has a bad {what}", row.id))
        };
        let window = Window {
            start: from_millis(row.start_at)?,
            end: from_millis(row.end_at)?,
        };
        let stored: RequestStatus = row.status.parse()?;
        Ok(Self {
            id: GrantId::new(row.id)?,
            requester: UserName::new(row.requester.clone())?,
            asset: AssetName::new(row.asset.clone())?,
            zone: ZoneName::new(row.zone.clone())?,
            level: row.level.parse()?,
            protocols: serde_json::from_str(&row.protocols)
                .map_err(|_| corrupt("protocol list"))?,
            scope: serde_json::from_str(&row.scope).map_err(|_| corrupt("scope"))?,
            scope_name: row.scope_name,
            status: effective_status(stored, &window, now),
            window,
            reason: row.reason,
            ticket: row.ticket,
            approvals_needed: u8::try_from(row.approvals_needed).unwrap_or(u8::MAX),
            approvals,
            decided_by: row.decided_by.map(UserName::new).transpose()?,
            decision_reason: row.decision_reason,
            created_at: from_millis(row.created_at)?,
            updated_at: from_millis(row.updated_at)?,
        })
    }

    /// The grant, if the request was approved (whatever happened since).
    pub fn grant(&self) -> Option<Grant> {
        matches!(
            self.status,
            RequestStatus::Approved
                | RequestStatus::Active
                | RequestStatus::Expired
                | RequestStatus::Revoked
        )
        .then(|| Grant {
            id: self.id,
            vendor: self.requester.clone(),
            asset: self.asset.clone(),
            zone: self.zone.clone(),
            level: self.level,
            protocols: self.protocols.clone(),
            scope: self.scope.clone(),
            window: self.window,
        })
        .filter(|_| self.approvals.len() >= usize::from(self.approvals_needed))
    }
}

/// A user as the API shows it (no secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// Login name.
    pub name: UserName,
    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Vendor organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<OrgName>,
    /// Roles held directly.
    pub roles: Vec<RoleAssignment>,
    /// Whether an authenticator app is enrolled.
    pub totp_enrolled: bool,
    /// Whether the next login must set a new password.
    pub must_change_password: bool,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A registered SSH public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SshKey {
    /// SHA-256 fingerprint.
    pub fingerprint: String,
    /// The key in OpenSSH format.
    pub public_key: String,
    /// Registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A quarantine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Quarantine {
    /// Id.
    pub id: i64,
    /// Who or what.
    pub subject: QuarantineSubject,
    /// Until when.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// Why.
    pub reason: String,
    /// Who started it (absent for the detector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserName>,
    /// Started.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Lifted or ran out.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ended_at: Option<OffsetDateTime>,
}

impl Quarantine {
    pub(crate) fn from_row(row: QuarantineRow) -> Result<Self> {
        let subject = match row.subject_kind.as_str() {
            "vendor" => QuarantineSubject::Vendor(UserName::new(row.subject)?),
            "asset" => QuarantineSubject::Asset(AssetName::new(row.subject)?),
            other => {
                return Err(BrokerError::invalid(format!(
                    "stored quarantine of unknown kind `{other}`"
                )));
            }
        };
        Ok(Self {
            id: row.id,
            subject,
            until: from_millis(row.until_at)?,
            reason: row.reason,
            created_by: row.created_by.map(UserName::new).transpose()?,
            created_at: from_millis(row.created_at)?,
            ended_at: row.ended_at.map(from_millis).transpose()?,
        })
    }

    /// Whether it still holds at `now`.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.ended_at.is_none() && now < self.until
    }
}

/// What kind of secret a vault credential is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A password.
    Password,
    /// An OpenSSH private key.
    PrivateKey,
}

impl CredentialKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::PrivateKey => "private_key",
        }
    }
}

/// A vault entry as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Credential {
    /// Name, referenced by asset endpoints.
    pub name: otgate_policy::CredentialName,
    /// Kind.
    pub kind: CredentialKind,
    /// Last stored.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// An OpenSSH user certificate issued for a grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IssuedCertificate {
    /// The grant.
    pub grant: GrantId,
    /// The certificate line (`ssh-ed25519-cert-v01@openssh.com AAAA...`), for `*-cert.pub`.
    pub certificate: String,
    /// Serial.
    pub serial: u64,
    /// Key id (the grant id).
    pub key_id: String,
    /// Principal (the vendor).
    pub principal: String,
    /// Fingerprint of the certified key.
    pub key_fingerprint: String,
    /// Valid from.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_after: OffsetDateTime,
    /// Valid until.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_before: OffsetDateTime,
}

/// A tunnel token issued for a grant.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedToken {
    /// The grant.
    pub grant: GrantId,
    /// The JWT.
    pub token: String,
    /// Token id.
    pub jti: String,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("grant", &self.grant)
            .field("jti", &self.jti)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// Why a grant cannot be used right now (what the gateway tells the vendor).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccessRefusal {
    /// No such grant.
    #[error("grant {grant} does not exist")]
    Unknown {
        /// The id asked for.
        grant: i64,
    },
    /// Not approved (yet, or ever).
    #[error("grant {grant} is {status}, not approved")]
    NotApproved {
        /// The grant.
        grant: GrantId,
        /// Its status.
        status: RequestStatus,
    },
    /// Before the window.
    #[error("grant {grant} starts at {start}")]
    NotYetValid {
        /// The grant.
        grant: GrantId,
        /// Window start.
        #[serde(with = "time::serde::rfc3339")]
        start: OffsetDateTime,
    },
    /// After the window.
    #[error("grant {grant} expired at {end}")]
    Expired {
        /// The grant.
        grant: GrantId,
        /// Window end.
        #[serde(with = "time::serde::rfc3339")]
        end: OffsetDateTime,
    },
    /// Revoked.
    #[error("grant {grant} was revoked by {by}: {reason}")]
    Revoked {
        /// The grant.
        grant: GrantId,
        /// Who.
        by: String,
        /// Why.
        reason: String,
    },
    /// The vendor's account is disabled.
    #[error("{user}'s account is disabled: ask an otgate admin")]
    AccountDisabled {
        /// The vendor.
        user: UserName,
    },
    /// The vendor or the asset is quarantined.
    #[error("{subject} is quarantined until {until}: {reason}")]
    Quarantined {
        /// Who or what.
        subject: QuarantineSubject,
        /// Until.
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
        /// Why.
        reason: String,
    },
}
