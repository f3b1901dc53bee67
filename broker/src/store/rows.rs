//! Rows as stored, decoded the same way on both backends.

/// A user account.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct UserRow {
    pub name: String,
    pub display_name: Option<String>,
    pub org: Option<String>,
    pub password_hash: String,
    pub must_change_password: bool,
    pub totp_secret: Option<Vec<u8>>,
    pub totp_confirmed: bool,
    pub totp_last_step: i64,
    pub disabled: bool,
    pub created_at: i64,
}

/// An access request and, once approved, its grant.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RequestRow {
    pub id: i64,
    pub requester: String,
    pub asset: String,
    pub zone: String,
    pub level: String,
    pub protocols: String,
    pub scope: String,
    pub scope_name: String,
    pub start_at: i64,
    pub end_at: i64,
    pub reason: String,
    pub ticket: Option<String>,
    pub status: String,
    pub approvals_needed: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
}

/// Columns of `requests`, in [`RequestRow`] order (a macro, so queries stay `&'static str`).
macro_rules! request_columns {
    () => {
        "id, requester, asset, zone, level, protocols, scope, scope_name, start_at, end_at, reason, ticket, \
         status, approvals_needed, created_at, updated_at, decided_by, decision_reason"
    };
}
pub(crate) use request_columns;

/// A quarantine of a vendor or an asset.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct QuarantineRow {
    pub id: i64,
    pub subject_kind: String,
    pub subject: String,
    pub until_at: i64,
    pub reason: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub ended_at: Option<i64>,
}

/// Columns of `quarantines`, in [`QuarantineRow`] order.
macro_rules! quarantine_columns {
    () => {
        "id, subject_kind, subject, until_at, reason, created_by, created_at, ended_at"
    };
}
pub(crate) use quarantine_columns;

/// A stored event.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EventRow {
    pub seq: i64,
    pub body: String,
}

/// A recorded session in the index.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub id: String,
    pub grant_id: Option<i64>,
    pub vendor: String,
    pub asset: String,
    pub zone: Option<String>,
    pub protocol: String,
    pub client: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    pub state: String,
    pub verification: String,
    pub findings: String,
    pub duration_ms: i64,
    pub events: i64,
    pub commands: i64,
    pub denials: i64,
    pub alerts: i64,
    pub output_bytes: i64,
    pub input_bytes: i64,
    pub stored_bytes: i64,
}

/// Columns of `recorded_sessions`, in [`SessionRow`] order.
macro_rules! session_columns {
    () => {
        "id, grant_id, vendor, asset, zone, protocol, client, started_at, ended_at, end_reason, \
         state, verification, findings, duration_ms, events, commands, denials, alerts, \
         output_bytes, input_bytes, stored_bytes"
    };
}
pub(crate) use session_columns;

/// A search hit in the text index.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TextHitRow {
    pub session_id: String,
    pub offset_ms: i64,
    pub kind: String,
    pub snippet: String,
}

/// An alert.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AlertRow {
    pub id: i64,
    pub at: i64,
    pub origin: String,
    pub source: String,
    pub severity: i64,
    pub score: i64,
    pub asset: Option<String>,
    pub vendor: Option<String>,
    pub zone: Option<String>,
    pub title: String,
    pub findings: String,
    pub response: Option<String>,
    pub rule: Option<String>,
    pub details: String,
    pub false_positive_by: Option<String>,
    pub false_positive_at: Option<i64>,
    pub false_positive_note: Option<String>,
}

/// Columns of `alerts`, in [`AlertRow`] order.
macro_rules! alert_columns {
    () => {
        "id, at, origin, source, severity, score, asset, vendor, zone, title, findings, response, rule, \
         details, false_positive_by, false_positive_at, false_positive_note"
    };
}
pub(crate) use alert_columns;
