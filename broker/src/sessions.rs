//! The index of session recordings: metadata per session and the searchable text (SQLite
//! FTS5 on the embedded default, PostgreSQL full-text search at scale). The recorder owns the
//! recordings; the binary's indexer feeds this index from them.
//!
//! Who sees what: vendors their own sessions; auditors and admins everything; engineers the
//! sessions in zones where they approve, observe or audit.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use otgate_policy::window::parse_duration;
use otgate_policy::{Action, Authorizer, Event, EventKind, ZoneName};

use crate::error::{BrokerError, Result};
use crate::events::Batch;
use crate::store::rows::{SessionRow, TextHitRow, session_columns};
use crate::store::{Store, from_millis, millis, on_pool, on_tx};
use crate::{Broker, Principal};

/// Where a session's recording stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Being recorded now.
    Live,
    /// Ended, with a signed manifest.
    Ended,
    /// Ended without a manifest (crash, kill, power loss) or not readable.
    Incomplete,
}

impl SessionState {
    /// The state as a word: `live`, `ended`, `incomplete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Ended => "ended",
            Self::Incomplete => "incomplete",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "live" => Self::Live,
            "ended" => Self::Ended,
            _ => Self::Incomplete,
        }
    }
}

/// A recorded session as indexed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecordedSession {
    /// Session id.
    pub id: String,
    /// The grant it ran under.
    pub grant: Option<i64>,
    /// The vendor.
    pub vendor: String,
    /// The asset.
    pub asset: String,
    /// The asset's zone.
    pub zone: Option<String>,
    /// `ssh`, `modbus`, ...
    pub protocol: String,
    /// Client address.
    pub client: Option<String>,
    /// Start.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    /// End, when it ended cleanly.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<OffsetDateTime>,
    /// Why it ended, in words.
    pub end_reason: Option<String>,
    /// Live, ended or incomplete.
    pub state: SessionState,
    /// `ok`, `incomplete` or `failed` (chain, digests, signatures).
    pub verification: String,
    /// What verification found, when not ok.
    pub findings: String,
    /// Length in milliseconds.
    pub duration_ms: i64,
    /// Event lines.
    pub events: i64,
    /// Commands checked.
    pub commands: i64,
    /// Denials.
    pub denials: i64,
    /// Detector alerts.
    pub alerts: i64,
    /// Terminal output bytes.
    pub output_bytes: i64,
    /// Terminal input bytes.
    pub input_bytes: i64,
    /// Bytes stored.
    pub stored_bytes: i64,
}

/// Searchable text of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedText {
    /// Milliseconds from the start.
    pub offset_ms: i64,
    /// `command`, `output` or `event`.
    pub kind: String,
    /// The text.
    pub body: String,
}

/// What the indexer stores for one session.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionIndex {
    /// Metadata.
    pub session: RecordedSession,
    /// Digest of the recording's file list (names, sizes); unchanged means nothing to do.
    pub fingerprint: String,
    /// Searchable text.
    pub text: Vec<IndexedText>,
}

/// Which sessions to list.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionFilter {
    /// Only this vendor's.
    pub vendor: Option<String>,
    /// Only this asset's.
    pub asset: Option<String>,
    /// Only sessions started after this: an RFC 3339 time or a duration back from now (`24h`).
    pub since: Option<String>,
    /// Only live sessions.
    #[serde(default)]
    pub live: bool,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// A moment in a session where the searched text appears.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Moment {
    /// Milliseconds from the start: seek the replay here.
    pub offset_ms: i64,
    /// `command`, `output` or `event`.
    pub kind: String,
    /// The text around the match, the match in `[brackets]`.
    pub snippet: String,
}

/// A session that matches a search, with the moments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    /// The session.
    pub session: RecordedSession,
    /// Where in it (at most 5, earliest first).
    pub moments: Vec<Moment>,
}

/// What an engineer asks the gateway to do with a live session.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SessionAction {
    /// End it now.
    Kill {
        /// Why (shown to the vendor).
        reason: String,
    },
    /// Hold the vendor's input; output still flows.
    Freeze {
        /// Why (shown to the vendor).
        reason: String,
    },
    /// Let a frozen session go on.
    Resume,
}

/// Longest list.
const MAX_SESSIONS: u32 = 1000;
/// Moments shown per session.
const MOMENTS_PER_SESSION: usize = 5;
/// Text hits examined per search.
const SEARCH_SCAN: i64 = 2000;

fn to_session(row: SessionRow) -> Result<RecordedSession> {
    Ok(RecordedSession {
        started_at: from_millis(row.started_at)?,
        ended_at: row.ended_at.map(from_millis).transpose()?,
        state: SessionState::parse(&row.state),
        id: row.id,
        grant: row.grant_id,
        vendor: row.vendor,
        asset: row.asset,
        zone: row.zone,
        protocol: row.protocol,
        client: row.client,
        end_reason: row.end_reason,
        verification: row.verification,
        findings: row.findings,
        duration_ms: row.duration_ms,
        events: row.events,
        commands: row.commands,
        denials: row.denials,
        alerts: row.alerts,
        output_bytes: row.output_bytes,
        input_bytes: row.input_bytes,
        stored_bytes: row.stored_bytes,
    })
}

fn sees(authz: &Authorizer, who: &Principal, all: bool, session: &RecordedSession) -> bool {
    all || session.vendor == who.user.as_str()
        || session
            .zone
            .as_deref()
            .and_then(|z| ZoneName::new(z).ok())
            .is_some_and(|zone| {
                [Action::Approve, Action::Observe, Action::Audit]
                    .into_iter()
                    .any(|action| authz.is_allowed(&who.user, &zone, action))
            })
}

/// Parses `since`: RFC 3339, or a duration back from `now`.
pub fn parse_since(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime> {
    if let Ok(time) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok(time);
    }
    parse_duration(text).map(|d| now - d).map_err(|_| {
        BrokerError::invalid(format!(
            "since: {text:?} is neither an RFC 3339 time (2026-12-01T00:00:00Z) nor a duration (24h, 7days)"
        ))
    })
}

/// An FTS5 phrase query for `text`.
fn fts5_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

impl Broker {
    async fn sees_all(&self, who: &Principal) -> bool {
        let authz = self.authz.read().await;
        authz.is_allowed_everywhere(&who.user, Action::Audit)
            || authz.is_allowed_everywhere(&who.user, Action::Administer)
    }

    /// Every indexed session and the fingerprint of its entry (for the indexer, which
    /// rebuilds an entry when the recording's fingerprint differs).
    pub async fn session_fingerprints(&self) -> Result<HashMap<String, String>> {
        let rows: Vec<(String, String)> = on_pool!(&self.store, pool => sqlx::query_as(
            "SELECT id, fingerprint FROM recorded_sessions"
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().collect())
    }

    /// Stores (or replaces) a session's index entry. A verification failure that is new is
    /// recorded as an event.
    pub async fn index_session(&self, index: SessionIndex) -> Result<()> {
        let s = &index.session;
        let mut batch = Batch::begin(self).await?;
        let previous: Option<String> = on_tx!(&mut batch.tx, conn => sqlx::query_scalar(
            "SELECT verification FROM recorded_sessions WHERE id = $1"
        )
        .bind(&s.id)
        .fetch_optional(conn)
        .await)?;
        on_tx!(&mut batch.tx, conn => sqlx::query("DELETE FROM session_text WHERE session_id = $1")
            .bind(&s.id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        on_tx!(&mut batch.tx, conn => sqlx::query(concat!(
            "INSERT INTO recorded_sessions (", session_columns!(), ", fingerprint, indexed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) \
             ON CONFLICT (id) DO UPDATE SET grant_id = excluded.grant_id, vendor = excluded.vendor, \
             asset = excluded.asset, zone = excluded.zone, protocol = excluded.protocol, \
             client = excluded.client, started_at = excluded.started_at, ended_at = excluded.ended_at, \
             end_reason = excluded.end_reason, state = excluded.state, verification = excluded.verification, \
             findings = excluded.findings, duration_ms = excluded.duration_ms, events = excluded.events, \
             commands = excluded.commands, denials = excluded.denials, alerts = excluded.alerts, \
             output_bytes = excluded.output_bytes, input_bytes = excluded.input_bytes, \
             stored_bytes = excluded.stored_bytes, fingerprint = excluded.fingerprint, \
             indexed_at = excluded.indexed_at"
        ))
        .bind(&s.id)
        .bind(s.grant)
        .bind(&s.vendor)
        .bind(&s.asset)
        .bind(&s.zone)
        .bind(&s.protocol)
        .bind(&s.client)
        .bind(millis(s.started_at))
        .bind(s.ended_at.map(millis))
        .bind(&s.end_reason)
        .bind(s.state.as_str())
        .bind(&s.verification)
        .bind(&s.findings)
        .bind(s.duration_ms)
        .bind(s.events)
        .bind(s.commands)
        .bind(s.denials)
        .bind(s.alerts)
        .bind(s.output_bytes)
        .bind(s.input_bytes)
        .bind(s.stored_bytes)
        .bind(&index.fingerprint)
        .bind(millis(OffsetDateTime::now_utc()))
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        for text in &index.text {
            on_tx!(&mut batch.tx, conn => sqlx::query(
                "INSERT INTO session_text (session_id, offset_ms, kind, body) VALUES ($1, $2, $3, $4)"
            )
            .bind(&s.id)
            .bind(text.offset_ms)
            .bind(&text.kind)
            .bind(&text.body)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        }
        if s.verification == "failed" && previous.as_deref() != Some("failed") {
            let zone = s.zone.as_deref().and_then(|z| ZoneName::new(z).ok());
            batch
                .emit(
                    Event::now(EventKind::RecordingVerificationFailed {
                        session: s.id.clone(),
                        vendor: s.vendor.clone(),
                        asset: s.asset.clone(),
                        findings: s.findings.clone(),
                    })
                    .in_zone(zone),
                )
                .await?;
        }
        batch.commit(self).await
    }

    /// Removes a session whose recording retention deleted, with its event.
    pub async fn unindex_session(
        &self,
        id: &str,
        last_written: OffsetDateTime,
        retention: &str,
        files: u64,
    ) -> Result<()> {
        let mut batch = Batch::begin(self).await?;
        let row: Option<SessionRow> = on_tx!(&mut batch.tx, conn => sqlx::query_as(concat!(
            "SELECT ", session_columns!(), " FROM recorded_sessions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        on_tx!(&mut batch.tx, conn => sqlx::query("DELETE FROM session_text WHERE session_id = $1")
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        on_tx!(&mut batch.tx, conn => sqlx::query("DELETE FROM recorded_sessions WHERE id = $1")
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        let zone = row
            .as_ref()
            .and_then(|r| r.zone.as_deref())
            .and_then(|z| ZoneName::new(z).ok());
        batch
            .emit(
                Event::now(EventKind::RecordingDeleted {
                    session: id.to_owned(),
                    vendor: row.as_ref().map(|r| r.vendor.clone()),
                    asset: row.as_ref().map(|r| r.asset.clone()),
                    last_written,
                    retention: retention.to_owned(),
                    files,
                })
                .in_zone(zone),
            )
            .await?;
        batch.commit(self).await
    }

    async fn session_row(&self, id: &str) -> Result<Option<RecordedSession>> {
        let row: Option<SessionRow> = on_pool!(&self.store, pool => sqlx::query_as(concat!(
            "SELECT ", session_columns!(), " FROM recorded_sessions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        row.map(to_session).transpose()
    }

    /// One session, if `who` may see it.
    pub async fn session(&self, who: &Principal, id: &str) -> Result<RecordedSession> {
        let all = self.sees_all(who).await;
        let found = self.session_row(id).await?;
        let authz = self.authz.read().await;
        found.filter(|s| sees(&authz, who, all, s)).ok_or_else(|| {
            BrokerError::NotFound(format!("no recorded session {id} that you may see"))
        })
    }

    /// Asks the gateway to kill, freeze or resume a live session: engineers who approve or
    /// observe in the session's zone, and admins. The request is an event; the gateway acts
    /// on it as it is published.
    pub async fn session_action(
        &self,
        who: &Principal,
        id: &str,
        action: SessionAction,
    ) -> Result<RecordedSession> {
        let session = self.session(who, id).await?;
        let zone = session.zone.as_deref().and_then(|z| ZoneName::new(z).ok());
        let allowed = {
            let authz = self.authz.read().await;
            authz.is_allowed_everywhere(&who.user, Action::Administer)
                || zone.as_ref().is_some_and(|zone| {
                    [Action::Approve, Action::Observe]
                        .into_iter()
                        .any(|a| authz.is_allowed(&who.user, zone, a))
                })
        };
        if !allowed {
            return Err(BrokerError::Forbidden(format!(
                "you may not act on session {id}: engineers of its zone and admins may"
            )));
        }
        if session.state != SessionState::Live {
            return Err(BrokerError::Conflict(format!("session {id} is not live")));
        }
        let check = |reason: &str| {
            if reason.trim().is_empty() || reason.chars().count() > 500 {
                Err(BrokerError::invalid(
                    "give a reason (at most 500 characters): the vendor sees it",
                ))
            } else {
                Ok(())
            }
        };
        let kind = match action {
            SessionAction::Kill { reason } => {
                check(&reason)?;
                EventKind::SessionKillRequested {
                    session: id.to_owned(),
                    reason,
                }
            }
            SessionAction::Freeze { reason } => {
                check(&reason)?;
                EventKind::SessionFreezeRequested {
                    session: id.to_owned(),
                    reason,
                }
            }
            SessionAction::Resume => EventKind::SessionResumeRequested {
                session: id.to_owned(),
            },
        };
        self.record(
            Event::now(kind)
                .by(Some(who.user.clone()))
                .from_addr(who.source)
                .in_zone(zone),
        )
        .await?;
        Ok(session)
    }

    /// Sessions `who` may see, newest first.
    pub async fn sessions(
        &self,
        who: &Principal,
        filter: &SessionFilter,
    ) -> Result<Vec<RecordedSession>> {
        let limit = filter.limit.unwrap_or(100).clamp(1, MAX_SESSIONS) as usize;
        let since = filter
            .since
            .as_deref()
            .map(|s| parse_since(s, OffsetDateTime::now_utc()))
            .transpose()?
            .map_or(i64::MIN, millis);
        let all = self.sees_all(who).await;
        let rows: Vec<SessionRow> = on_pool!(&self.store, pool => sqlx::query_as(concat!(
            "SELECT ", session_columns!(), " FROM recorded_sessions \
             WHERE ($1 IS NULL OR vendor = $1) AND ($2 IS NULL OR asset = $2) \
             AND started_at >= $3 AND (NOT $4 OR state = 'live') \
             ORDER BY started_at DESC, id DESC LIMIT $5"
        ))
        .bind(&filter.vendor)
        .bind(&filter.asset)
        .bind(since)
        .bind(filter.live)
        .bind(i64::from(MAX_SESSIONS) * 10)
        .fetch_all(pool)
        .await)?;
        let authz = self.authz.read().await;
        let mut out = Vec::new();
        for row in rows {
            let session = to_session(row)?;
            if sees(&authz, who, all, &session) {
                out.push(session);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Sessions whose commands, output or events contain `query` (as a phrase), with the
    /// moments where it appears.
    pub async fn search_sessions(
        &self,
        who: &Principal,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>> {
        let query = query.trim();
        if !query.chars().any(char::is_alphanumeric) {
            return Err(BrokerError::invalid(
                "search needs at least one word (letters or digits)",
            ));
        }
        if query.chars().count() > 200 {
            return Err(BrokerError::invalid("search is limited to 200 characters"));
        }
        let rows: Vec<TextHitRow> = match &self.store {
            Store::Sqlite(pool) => sqlx::query_as(
                "SELECT t.session_id, t.offset_ms, t.kind, \
                 snippet(session_text_fts, 0, '[', ']', '...', 16) AS snippet \
                 FROM session_text_fts JOIN session_text t ON t.id = session_text_fts.rowid \
                 WHERE session_text_fts MATCH $1 \
                 ORDER BY t.session_id DESC, t.offset_ms LIMIT $2",
            )
            .bind(fts5_phrase(query))
            .bind(SEARCH_SCAN)
            .fetch_all(pool)
            .await?,
            Store::Postgres(pool) => sqlx::query_as(
                "SELECT t.session_id, t.offset_ms, t.kind, \
                 ts_headline('simple', t.body, q, 'StartSel=[, StopSel=], MaxWords=24, MinWords=6') AS snippet \
                 FROM session_text t, phraseto_tsquery('simple', $1) q WHERE t.tsv @@ q \
                 ORDER BY t.session_id DESC, t.offset_ms LIMIT $2",
            )
            .bind(query)
            .bind(SEARCH_SCAN)
            .fetch_all(pool)
            .await?,
        };
        let all = self.sees_all(who).await;
        let mut hits: Vec<SearchHit> = Vec::new();
        for row in rows {
            let moment = Moment {
                offset_ms: row.offset_ms,
                kind: row.kind,
                snippet: row.snippet.replace(['\n', '\r'], " "),
            };
            if let Some(hit) = hits.iter_mut().find(|h| h.session.id == row.session_id) {
                if hit.moments.len() < MOMENTS_PER_SESSION {
                    hit.moments.push(moment);
                }
                continue;
            }
            if hits.len() >= limit.clamp(1, MAX_SESSIONS) as usize {
                continue;
            }
            let Some(session) = self.session_row(&row.session_id).await? else {
                continue;
            };
            let authz = self.authz.read().await;
            if sees(&authz, who, all, &session) {
                hits.push(SearchHit {
                    session,
                    moments: vec![moment],
                });
            }
        }
        Ok(hits)
    }
}
