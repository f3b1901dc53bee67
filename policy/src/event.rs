//! The one typed event model: every request, approval, login, credential, refusal and revocation
//! is an [`Event`]. The broker stores them and publishes them on the bus; SIEMs get them as JSON
//! lines or CEF ([`Event::to_cef`]).

mod cef;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::asset::Protocol;
use crate::id::{AssetName, CredentialName, GrantId, OrgName, UserName, ZoneName};
use crate::level::PurdueLevel;

/// Something that happened, who did it, from where, in which zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The user who acted; absent for the system itself and anonymous clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<UserName>,
    /// The client address, for events caused by a network request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub source: Option<IpAddr>,
    /// The zone concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<ZoneName>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Who is quarantined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum QuarantineSubject {
    /// A vendor: no new requests, grants or sessions.
    Vendor(UserName),
    /// An asset: no new grants or sessions to it.
    Asset(AssetName),
}

impl std::fmt::Display for QuarantineSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Vendor(name) => write!(f, "vendor {name}"),
            Self::Asset(name) => write!(f, "asset {name}"),
        }
    }
}

/// What happened, with its details.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A node started serving.
    ServerStarted {
        /// Version of otgate.
        version: String,
        /// Roles the node runs.
        roles: Vec<String>,
    },
    /// A node stopped.
    ServerStopped {
        /// Why.
        reason: String,
    },
    /// A login succeeded.
    LoginSucceeded {
        /// Who.
        user: UserName,
    },
    /// A login failed (wrong password, wrong code, unknown user, disabled).
    LoginFailed {
        /// The name given (untrusted, truncated).
        user: String,
        /// Why.
        reason: String,
    },
    /// Too many failures: further attempts refused for a while.
    LoginThrottled {
        /// The name given (untrusted, truncated).
        user: String,
        /// Seconds until attempts are accepted again.
        retry_after_secs: u64,
    },
    /// A user set a new password.
    PasswordChanged {
        /// Who.
        user: UserName,
    },
    /// A user enrolled an authenticator app.
    TotpEnrolled {
        /// Who.
        user: UserName,
    },
    /// An API token was revoked at logout.
    LoggedOut {
        /// Who.
        user: UserName,
    },
    /// A user account was created.
    UserAdded {
        /// The new user.
        user: UserName,
        /// Roles given, as `role@domain`.
        roles: Vec<String>,
        /// Organisation, for vendors.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        org: Option<OrgName>,
    },
    /// An admin replaced a user's roles.
    UserRolesChanged {
        /// The user.
        user: UserName,
        /// The roles now, as `role@domain`.
        roles: Vec<String>,
        /// The roles before.
        previous: Vec<String>,
    },
    /// An admin disabled an account: its logins and tokens are refused, its grants no longer
    /// open sessions and its live sessions end.
    UserDisabled {
        /// The user.
        user: UserName,
        /// Why.
        reason: String,
    },
    /// An admin enabled a disabled account again.
    UserEnabled {
        /// The user.
        user: UserName,
    },
    /// A user registered an SSH public key.
    KeyRegistered {
        /// Whose key.
        user: UserName,
        /// SHA-256 fingerprint.
        fingerprint: String,
    },
    /// An asset was added or changed.
    AssetSaved {
        /// The asset.
        asset: AssetName,
        /// Its level.
        level: PurdueLevel,
        /// Whether it is new.
        created: bool,
    },
    /// A zone was added or changed.
    ZoneSaved {
        /// The zone.
        name: ZoneName,
    },
    /// An inventory document was imported.
    InventoryImported {
        /// Zones in it.
        zones: usize,
        /// Assets in it.
        assets: usize,
    },
    /// A credential was stored in the vault.
    CredentialStored {
        /// Its name.
        credential: CredentialName,
        /// `password` or `private_key`.
        credential_kind: String,
    },
    /// A vendor asked for access.
    RequestCreated {
        /// Request (and future grant) id.
        request: GrantId,
        /// Who asked.
        requester: UserName,
        /// For which asset.
        asset: AssetName,
        /// Which protocols.
        protocols: Vec<Protocol>,
        /// Preset name, or `custom`.
        scope: String,
        /// Window start.
        #[serde(with = "time::serde::rfc3339")]
        start: OffsetDateTime,
        /// Window end.
        #[serde(with = "time::serde::rfc3339")]
        end: OffsetDateTime,
        /// Why.
        reason: String,
        /// Change or work-order ticket.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ticket: Option<String>,
    },
    /// An engineer approved (more approvals may still be needed).
    RequestApproved {
        /// The request.
        request: GrantId,
        /// Who approved.
        approver: UserName,
        /// Approvals so far.
        approvals: u8,
        /// Approvals needed.
        needed: u8,
    },
    /// An engineer denied.
    RequestDenied {
        /// The request.
        request: GrantId,
        /// Why.
        reason: String,
    },
    /// The requester withdrew.
    RequestWithdrawn {
        /// The request.
        request: GrantId,
    },
    /// The window passed before enough approvals.
    RequestLapsed {
        /// The request.
        request: GrantId,
    },
    /// Enough approvals: the request became a grant.
    GrantIssued {
        /// The grant.
        grant: GrantId,
        /// Who holds it.
        vendor: UserName,
        /// Where.
        asset: AssetName,
        /// Who approved.
        approvers: Vec<UserName>,
    },
    /// The grant's window began.
    GrantActivated {
        /// The grant.
        grant: GrantId,
    },
    /// The grant's window ended.
    GrantExpired {
        /// The grant.
        grant: GrantId,
    },
    /// The grant was revoked; its sessions end and no new ones start.
    GrantRevoked {
        /// The grant.
        grant: GrantId,
        /// Who held it.
        vendor: UserName,
        /// Where.
        asset: AssetName,
        /// Why.
        reason: String,
    },
    /// A vendor or asset was quarantined.
    QuarantineStarted {
        /// Quarantine id.
        id: i64,
        /// Who or what.
        subject: QuarantineSubject,
        /// Until when.
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
        /// Why.
        reason: String,
    },
    /// A quarantine was lifted early or ran out.
    QuarantineEnded {
        /// Quarantine id.
        id: i64,
        /// Who or what.
        subject: QuarantineSubject,
        /// Lifted by someone (true) or expired (false).
        lifted: bool,
    },
    /// An OpenSSH user certificate was issued for a grant.
    CertificateIssued {
        /// The grant.
        grant: GrantId,
        /// Certificate serial.
        serial: u64,
        /// Fingerprint of the certified key.
        key_fingerprint: String,
        /// Valid from.
        #[serde(with = "time::serde::rfc3339")]
        valid_after: OffsetDateTime,
        /// Valid until.
        #[serde(with = "time::serde::rfc3339")]
        valid_before: OffsetDateTime,
    },
    /// A tunnel token (JWT) was issued for a grant.
    TokenIssued {
        /// The grant.
        grant: GrantId,
        /// Token id.
        jti: String,
        /// Expiry.
        #[serde(with = "time::serde::rfc3339")]
        expires: OffsetDateTime,
    },
    /// A vendor's session through the gateway started (and is being recorded).
    SessionStarted {
        /// The session (recording) id.
        session: String,
        /// The grant.
        grant: GrantId,
        /// The vendor.
        vendor: UserName,
        /// The asset.
        asset: AssetName,
        /// `exec`, `shell`, ...
        mode: String,
        /// The vendor's address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
    },
    /// A session ended.
    SessionEnded {
        /// The session.
        session: String,
        /// The grant.
        grant: GrantId,
        /// Why, in words.
        reason: String,
    },
    /// The gateway refused a connection or a session (bad certificate, grant not usable,
    /// asset unreachable or not the pinned one, recording unavailable).
    SessionRefused {
        /// The login name given.
        user: String,
        /// The grant, when one was named.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grant: Option<GrantId>,
        /// Why.
        reason: String,
    },
    /// An engineer asked the gateway to end a live session.
    SessionKillRequested {
        /// The session.
        session: String,
        /// Why.
        reason: String,
    },
    /// An engineer froze a live session (vendor input held, output still shown).
    SessionFreezeRequested {
        /// The session.
        session: String,
        /// Why.
        reason: String,
    },
    /// An engineer let a frozen session go on.
    SessionResumeRequested {
        /// The session.
        session: String,
    },
    /// A command was refused by the grant's scope and never reached the asset.
    CommandDenied {
        /// The session.
        session: String,
        /// The grant.
        grant: GrantId,
        /// The command as sent.
        command: String,
        /// The deciding rule and reason.
        decision: String,
    },
    /// A Modbus request was refused by the grant's scope (or the protocol's limits) and
    /// answered by the gateway with an exception; it never reached the PLC.
    ModbusDenied {
        /// The session.
        session: String,
        /// The grant.
        grant: GrantId,
        /// Unit id.
        unit: u8,
        /// Function code.
        function: u8,
        /// The request in words.
        request: String,
        /// Why, and the exception code answered.
        decision: String,
    },
    /// A Modbus connection carried bytes that are not Modbus/TCP; it was closed and nothing
    /// malformed was forwarded.
    ModbusMalformed {
        /// The session.
        session: String,
        /// The grant.
        grant: GrantId,
        /// What was wrong.
        reason: String,
    },
    /// A session recording was indexed with a verification failure: it was altered or
    /// damaged after it was written.
    RecordingVerificationFailed {
        /// The session.
        session: String,
        /// The vendor.
        vendor: String,
        /// The asset.
        asset: String,
        /// What verification found.
        findings: String,
    },
    /// Retention deleted a session recording.
    RecordingDeleted {
        /// The session.
        session: String,
        /// The vendor, when the index knew the session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vendor: Option<String>,
        /// The asset, when the index knew the session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        asset: Option<String>,
        /// When it was last written.
        #[serde(with = "time::serde::rfc3339")]
        last_written: OffsetDateTime,
        /// The retention period that expired (`90days`).
        retention: String,
        /// Files deleted.
        files: u64,
    },
    /// The detector or an external sensor raised an alert.
    AlertRaised {
        /// Alert id.
        alert: i64,
        /// `detector` or `external`.
        origin: String,
        /// Who raised it (`otgate`, `suricata`, ...).
        sensor: String,
        /// Risk 0-100.
        score: u8,
        /// The asset concerned, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        asset: Option<String>,
        /// The vendor concerned, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vendor: Option<String>,
        /// Live sessions it touched.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sessions: Vec<String>,
        /// What it says, with the findings that drove it.
        title: String,
        /// What the playbook did: `alert`, `freeze`, `terminate`, `quarantine`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response: Option<String>,
    },
    /// An engineer marked an alert as a false positive; the detector learns from it.
    AlertFalsePositive {
        /// Alert id.
        alert: i64,
        /// Why it was not a threat.
        note: String,
    },
    /// The detector failed or fell behind: sessions fell under the playbook's fail mode.
    DetectorFault {
        /// What went wrong.
        reason: String,
        /// Session events it could not score.
        dropped: u64,
        /// Live sessions frozen under the fail mode.
        frozen: Vec<String>,
    },
    /// A request to the API was refused.
    Refused {
        /// HTTP method.
        method: String,
        /// Path (no query string).
        path: String,
        /// HTTP status.
        status: u16,
        /// Machine-readable code.
        code: String,
        /// The message given to the client.
        message: String,
    },
}

impl EventKind {
    /// The event type, as in JSON (`request_created`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::ServerStarted { .. } => "server_started",
            Self::ServerStopped { .. } => "server_stopped",
            Self::LoginSucceeded { .. } => "login_succeeded",
            Self::LoginFailed { .. } => "login_failed",
            Self::LoginThrottled { .. } => "login_throttled",
            Self::PasswordChanged { .. } => "password_changed",
            Self::TotpEnrolled { .. } => "totp_enrolled",
            Self::LoggedOut { .. } => "logged_out",
            Self::UserAdded { .. } => "user_added",
            Self::UserRolesChanged { .. } => "user_roles_changed",
            Self::UserDisabled { .. } => "user_disabled",
            Self::UserEnabled { .. } => "user_enabled",
            Self::KeyRegistered { .. } => "key_registered",
            Self::AssetSaved { .. } => "asset_saved",
            Self::ZoneSaved { .. } => "zone_saved",
            Self::InventoryImported { .. } => "inventory_imported",
            Self::CredentialStored { .. } => "credential_stored",
            Self::RequestCreated { .. } => "request_created",
            Self::RequestApproved { .. } => "request_approved",
            Self::RequestDenied { .. } => "request_denied",
            Self::RequestWithdrawn { .. } => "request_withdrawn",
            Self::RequestLapsed { .. } => "request_lapsed",
            Self::GrantIssued { .. } => "grant_issued",
            Self::GrantActivated { .. } => "grant_activated",
            Self::GrantExpired { .. } => "grant_expired",
            Self::GrantRevoked { .. } => "grant_revoked",
            Self::QuarantineStarted { .. } => "quarantine_started",
            Self::QuarantineEnded { .. } => "quarantine_ended",
            Self::CertificateIssued { .. } => "certificate_issued",
            Self::TokenIssued { .. } => "token_issued",
            Self::SessionStarted { .. } => "session_started",
            Self::SessionEnded { .. } => "session_ended",
            Self::SessionRefused { .. } => "session_refused",
            Self::CommandDenied { .. } => "command_denied",
            Self::ModbusDenied { .. } => "modbus_denied",
            Self::ModbusMalformed { .. } => "modbus_malformed",
            Self::SessionKillRequested { .. } => "session_kill_requested",
            Self::SessionFreezeRequested { .. } => "session_freeze_requested",
            Self::SessionResumeRequested { .. } => "session_resume_requested",
            Self::RecordingVerificationFailed { .. } => "recording_verification_failed",
            Self::RecordingDeleted { .. } => "recording_deleted",
            Self::AlertRaised { .. } => "alert_raised",
            Self::AlertFalsePositive { .. } => "alert_false_positive",
            Self::DetectorFault { .. } => "detector_fault",
            Self::Refused { .. } => "refused",
        }
    }

    /// Severity 0-10 (CEF scale): refusals and revocations stand out.
    pub fn severity(&self) -> u8 {
        match self {
            Self::AlertRaised { score, .. } => (score / 10).clamp(5, 10),
            Self::QuarantineStarted { .. }
            | Self::RecordingVerificationFailed { .. }
            | Self::DetectorFault { .. } => 8,
            Self::ModbusMalformed { .. } => 7,
            Self::LoginThrottled { .. } => 7,
            Self::GrantRevoked { .. }
            | Self::SessionRefused { .. }
            | Self::CommandDenied { .. }
            | Self::ModbusDenied { .. }
            | Self::SessionKillRequested { .. }
            | Self::SessionFreezeRequested { .. }
            | Self::Refused {
                status: 401 | 403, ..
            } => 6,
            Self::LoginFailed { .. } | Self::Refused { .. } | Self::RequestDenied { .. } => 5,
            Self::GrantIssued { .. }
            | Self::RecordingDeleted { .. }
            | Self::CertificateIssued { .. }
            | Self::TokenIssued { .. } => 4,
            _ => 3,
        }
    }
}

impl Event {
    /// An event happening now.
    pub fn now(kind: EventKind) -> Self {
        Self {
            at: OffsetDateTime::now_utc(),
            actor: None,
            source: None,
            zone: None,
            kind,
        }
    }

    /// Sets the actor.
    pub fn by(mut self, actor: Option<UserName>) -> Self {
        self.actor = actor;
        self
    }

    /// Sets the client address.
    pub fn from_addr(mut self, source: Option<IpAddr>) -> Self {
        self.source = source;
        self
    }

    /// Sets the zone.
    pub fn in_zone(mut self, zone: Option<ZoneName>) -> Self {
        self.zone = zone;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_events_round_trip_beside_the_envelope_fields() {
        // Field names of a kind must not collide with the envelope's (`at`, `actor`,
        // `source`, `zone`): the kind is flattened into the same object.
        let kinds = [
            EventKind::AlertRaised {
                alert: 1,
                origin: "external".into(),
                sensor: "suricata".into(),
                score: 90,
                asset: Some("plc-7".into()),
                vendor: None,
                sessions: vec!["s1".into()],
                title: "t".into(),
                response: Some("freeze".into()),
            },
            EventKind::AlertFalsePositive {
                alert: 1,
                note: "planned test".into(),
            },
            EventKind::DetectorFault {
                reason: "queue full".into(),
                dropped: 3,
                frozen: vec!["s1".into()],
            },
        ];
        for kind in kinds {
            let event = Event::now(kind).from_addr(Some("10.0.0.9".parse().unwrap()));
            let text = serde_json::to_string(&event).unwrap();
            let back: Event = serde_json::from_str(&text).unwrap();
            assert_eq!(back, event, "{text}");
        }
    }
}
