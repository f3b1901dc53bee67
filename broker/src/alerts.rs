//! Alerts: the detector's and external sensors' (IDS, EDR), stored with the findings that
//! drove them and the sessions they touched; engineers mark false positives, which the
//! detector learns from. Also the store of the detector's learnt models.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use otgate_policy::{Action, Event, EventKind, Finding, ZoneName};

use crate::error::{BrokerError, Result};
use crate::events::Batch;
use crate::store::rows::{AlertRow, alert_columns};
use crate::store::{from_millis, millis, on_pool, on_tx};
use crate::{Broker, Principal};

/// Longest alert list.
pub const MAX_ALERTS: u32 = 500;

/// An alert to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAlert {
    /// `detector` or `external`.
    pub origin: String,
    /// Who raised it.
    pub source: String,
    /// 0-10.
    pub severity: u8,
    /// 0-100.
    pub score: u8,
    /// The asset.
    pub asset: Option<String>,
    /// The vendor.
    pub vendor: Option<String>,
    /// The zone.
    pub zone: Option<ZoneName>,
    /// In words.
    pub title: String,
    /// What drove it.
    pub findings: Vec<Finding>,
    /// Live sessions it touched.
    pub sessions: Vec<String>,
    /// What the playbook did.
    pub response: Option<String>,
    /// The rule that acted, if one did.
    pub rule: Option<String>,
    /// The record as received (external) or the session context (detector).
    pub details: Value,
    /// What the detector would learn if the alert is marked a false positive.
    pub evidence: Value,
}

/// A stored alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    /// Id.
    pub id: i64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// `detector` or `external`.
    pub origin: String,
    /// Who raised it.
    pub source: String,
    /// 0-10.
    pub severity: u8,
    /// Risk 0-100.
    pub score: u8,
    /// The asset.
    pub asset: Option<String>,
    /// The vendor.
    pub vendor: Option<String>,
    /// The zone.
    pub zone: Option<String>,
    /// In words.
    pub title: String,
    /// What drove it, strongest first.
    pub findings: Vec<Finding>,
    /// Sessions it touched.
    pub sessions: Vec<String>,
    /// What the playbook did.
    pub response: Option<String>,
    /// The rule that acted.
    pub rule: Option<String>,
    /// Details as received.
    #[schema(value_type = Object)]
    pub details: Value,
    /// Marked a false positive by.
    pub false_positive_by: Option<String>,
    /// Marked when.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub false_positive_at: Option<OffsetDateTime>,
    /// Why.
    pub false_positive_note: Option<String>,
}

/// Which alerts to list.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertFilter {
    /// Only those that touched this session.
    pub session: Option<String>,
    /// Only about this asset.
    pub asset: Option<String>,
    /// Only about this vendor.
    pub vendor: Option<String>,
    /// At most this many, newest first (default 100, at most 500).
    pub limit: Option<u32>,
}

fn decode_json(what: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| BrokerError::Invalid(format!("stored alert {what} unreadable: {e}")))
}

impl Alert {
    fn from_row(row: AlertRow, sessions: Vec<String>) -> Result<Self> {
        let findings: Vec<Finding> = serde_json::from_str(&row.findings)
            .map_err(|e| BrokerError::Invalid(format!("stored alert findings unreadable: {e}")))?;
        Ok(Self {
            id: row.id,
            at: from_millis(row.at)?,
            origin: row.origin,
            source: row.source,
            severity: u8::try_from(row.severity.clamp(0, 10)).unwrap_or(10),
            score: u8::try_from(row.score.clamp(0, 100)).unwrap_or(100),
            asset: row.asset,
            vendor: row.vendor,
            zone: row.zone,
            title: row.title,
            findings,
            sessions,
            response: row.response,
            rule: row.rule,
            details: decode_json("details", &row.details)?,
            false_positive_by: row.false_positive_by,
            false_positive_at: row.false_positive_at.map(from_millis).transpose()?,
            false_positive_note: row.false_positive_note,
        })
    }
}

impl Broker {
    /// Whether `who` may report external alerts: sensors, and admins.
    pub async fn check_reporter(&self, who: &Principal) -> Result<()> {
        let authz = self.authz.read().await;
        if authz.is_allowed_everywhere(&who.user, Action::Report)
            || authz.is_allowed_everywhere(&who.user, Action::Administer)
        {
            Ok(())
        } else {
            Err(BrokerError::Forbidden(format!(
                "{} may not report alerts: give the integration a user with the sensor role",
                who.user
            )))
        }
    }

    /// Stores an alert and publishes `alert_raised`.
    pub async fn raise_alert(&self, alert: NewAlert) -> Result<Alert> {
        let now = OffsetDateTime::now_utc();
        let findings = serde_json::to_string(&alert.findings)
            .map_err(|e| BrokerError::invalid(format!("alert findings: {e}")))?;
        let mut batch = Batch::begin(self).await?;
        let id: i64 = on_tx!(&mut batch.tx, conn => sqlx::query_scalar(
            "INSERT INTO alerts (at, origin, source, severity, score, asset, vendor, zone, title, findings, \
             response, rule, details, evidence) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id"
        )
        .bind(millis(now))
        .bind(&alert.origin)
        .bind(&alert.source)
        .bind(i64::from(alert.severity))
        .bind(i64::from(alert.score))
        .bind(&alert.asset)
        .bind(&alert.vendor)
        .bind(alert.zone.as_ref().map(|z| z.as_str().to_owned()))
        .bind(&alert.title)
        .bind(findings)
        .bind(&alert.response)
        .bind(&alert.rule)
        .bind(alert.details.to_string())
        .bind(alert.evidence.to_string())
        .fetch_one(conn)
        .await)?;
        for session in &alert.sessions {
            on_tx!(&mut batch.tx, conn => sqlx::query(
                "INSERT INTO alert_sessions (alert_id, session) VALUES ($1, $2)"
            )
            .bind(id)
            .bind(session)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        }
        batch
            .emit(
                Event::now(EventKind::AlertRaised {
                    alert: id,
                    origin: alert.origin.clone(),
                    sensor: alert.source.clone(),
                    score: alert.score,
                    asset: alert.asset.clone(),
                    vendor: alert.vendor.clone(),
                    sessions: alert.sessions.clone(),
                    title: alert.title.clone(),
                    response: alert.response.clone(),
                })
                .in_zone(alert.zone.clone()),
            )
            .await?;
        batch.commit(self).await?;
        self.load_alert(id).await
    }

    async fn load_alert(&self, id: i64) -> Result<Alert> {
        let row: Option<AlertRow> = on_pool!(&self.store, pool => sqlx::query_as(
            concat!("SELECT ", alert_columns!(), " FROM alerts WHERE id = $1")
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        let row = row.ok_or_else(|| BrokerError::NotFound(format!("no alert {id}")))?;
        let sessions: Vec<String> = on_pool!(&self.store, pool => sqlx::query_scalar(
            "SELECT session FROM alert_sessions WHERE alert_id = $1 ORDER BY session"
        )
        .bind(id)
        .fetch_all(pool)
        .await)?;
        Alert::from_row(row, sessions)
    }

    async fn sees_alert(&self, who: &Principal, alert: &Alert) -> bool {
        let authz = self.authz.read().await;
        if authz.is_allowed_everywhere(&who.user, Action::Audit)
            || authz.is_allowed_everywhere(&who.user, Action::Administer)
        {
            return true;
        }
        alert
            .zone
            .as_deref()
            .and_then(|z| ZoneName::new(z).ok())
            .is_some_and(|zone| {
                [Action::Approve, Action::Observe, Action::Audit]
                    .into_iter()
                    .any(|a| authz.is_allowed(&who.user, &zone, a))
            })
    }

    /// One alert, if `who` may see it (engineers of its zone, auditors, admins).
    pub async fn alert(&self, who: &Principal, id: i64) -> Result<Alert> {
        let alert = self.load_alert(id).await?;
        if self.sees_alert(who, &alert).await {
            Ok(alert)
        } else {
            Err(BrokerError::NotFound(format!(
                "no alert {id} that you may see"
            )))
        }
    }

    /// Alerts `who` may see, newest first.
    pub async fn alerts(&self, who: &Principal, filter: &AlertFilter) -> Result<Vec<Alert>> {
        let limit = filter.limit.unwrap_or(100).clamp(1, MAX_ALERTS);
        let ids: Vec<i64> = on_pool!(&self.store, pool => sqlx::query_scalar(
            "SELECT id FROM alerts WHERE (CAST($1 AS TEXT) IS NULL OR asset = $1) \
             AND (CAST($2 AS TEXT) IS NULL OR vendor = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR id IN (SELECT alert_id FROM alert_sessions WHERE session = $3)) \
             ORDER BY id DESC LIMIT $4"
        )
        .bind(&filter.asset)
        .bind(&filter.vendor)
        .bind(&filter.session)
        .bind(i64::from(limit) * 4)
        .fetch_all(pool)
        .await)?;
        let mut out = Vec::new();
        for id in ids {
            let alert = self.load_alert(id).await?;
            if self.sees_alert(who, &alert).await {
                out.push(alert);
                if out.len() >= limit as usize {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Marks an alert a false positive (engineers who approve or observe in its zone, and
    /// admins); publishes `alert_false_positive` so the detector learns from its evidence.
    pub async fn mark_false_positive(&self, who: &Principal, id: i64, note: &str) -> Result<Alert> {
        let alert = self.alert(who, id).await?;
        let allowed = {
            let authz = self.authz.read().await;
            authz.is_allowed_everywhere(&who.user, Action::Administer)
                || alert
                    .zone
                    .as_deref()
                    .and_then(|z| ZoneName::new(z).ok())
                    .is_some_and(|zone| {
                        [Action::Approve, Action::Observe]
                            .into_iter()
                            .any(|a| authz.is_allowed(&who.user, &zone, a))
                    })
        };
        if !allowed {
            return Err(BrokerError::Forbidden(format!(
                "you may not judge alert {id}: engineers of its zone and admins may"
            )));
        }
        if note.trim().is_empty()
            || note.chars().count() > 1000
            || note.chars().any(char::is_control)
        {
            return Err(BrokerError::invalid(
                "say why it is a false positive (1 to 1000 printable characters)",
            ));
        }
        if alert.false_positive_at.is_some() {
            return Err(BrokerError::Conflict(format!(
                "alert {id} is already marked a false positive"
            )));
        }
        let now = OffsetDateTime::now_utc();
        let mut batch = Batch::begin(self).await?;
        on_tx!(&mut batch.tx, conn => sqlx::query(
            "UPDATE alerts SET false_positive_by = $1, false_positive_at = $2, false_positive_note = $3 WHERE id = $4"
        )
        .bind(who.user.as_str())
        .bind(millis(now))
        .bind(note.trim())
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        batch
            .emit(
                Event::now(EventKind::AlertFalsePositive {
                    alert: id,
                    note: note.trim().to_owned(),
                })
                .by(Some(who.user.clone()))
                .from_addr(who.source)
                .in_zone(alert.zone.as_deref().and_then(|z| ZoneName::new(z).ok())),
            )
            .await?;
        batch.commit(self).await?;
        self.load_alert(id).await
    }

    /// What the detector recorded to learn from, should the alert be a false positive.
    pub async fn alert_evidence(&self, id: i64) -> Result<(Option<String>, Option<String>, Value)> {
        let row: Option<(Option<String>, Option<String>, String)> = on_pool!(&self.store, pool => sqlx::query_as(
            "SELECT vendor, asset, evidence FROM alerts WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        let (vendor, asset, evidence) =
            row.ok_or_else(|| BrokerError::NotFound(format!("no alert {id}")))?;
        Ok((vendor, asset, decode_json("evidence", &evidence)?))
    }

    /// Stores the detector's changed models.
    pub async fn save_models(&self, models: &[(String, String)]) -> Result<()> {
        if models.is_empty() {
            return Ok(());
        }
        let now = millis(OffsetDateTime::now_utc());
        let mut tx = self.store.begin().await?;
        for (key, body) in models {
            on_tx!(&mut tx, conn => sqlx::query(
                "INSERT INTO detector_models (key, body, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at"
            )
            .bind(key)
            .bind(body)
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every stored detector model, as (key, JSON).
    pub async fn load_models(&self) -> Result<Vec<(String, String)>> {
        Ok(on_pool!(&self.store, pool => sqlx::query_as(
            "SELECT key, body FROM detector_models ORDER BY key"
        )
        .fetch_all(pool)
        .await)?)
    }
}
