//! Grants after approval: revocation (one grant, or every grant of a vendor), quarantine of a
//! vendor or an asset, and the access check the gateway makes before and during a session.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use otgate_policy::{
    Action, Event, EventKind, Grant, GrantId, QuarantineSubject, UserName, ZoneName,
};

use crate::error::{BrokerError, Result};
use crate::events::Batch;
use crate::model::{AccessRefusal, Quarantine, Request, RequestStatus};
use crate::store::rows::{QuarantineRow, quarantine_columns};
use crate::store::{millis, on_pool, on_tx};
use crate::{Broker, Principal};

/// Quarantine length when none is given.
pub const DEFAULT_QUARANTINE: Duration = Duration::from_secs(2 * 3600);
/// Longest quarantine.
pub const MAX_QUARANTINE: Duration = Duration::from_secs(30 * 86400);

/// A quarantine to start.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuarantine {
    /// Who or what.
    pub subject: QuarantineSubject,
    /// How long, e.g. `2h` (default 2 h, at most 30 days).
    #[serde(default)]
    pub duration: Option<String>,
    /// Why.
    pub reason: String,
}

fn subject_columns(subject: &QuarantineSubject) -> (&'static str, &str) {
    match subject {
        QuarantineSubject::Vendor(name) => ("vendor", name.as_str()),
        QuarantineSubject::Asset(name) => ("asset", name.as_str()),
    }
}

pub(crate) fn check_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty()
        || reason.chars().count() > 2000
        || reason.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(BrokerError::invalid(
            "give a reason (1 to 2000 printable characters)",
        ));
    }
    Ok(())
}

impl Broker {
    /// Revokes a grant (engineers or admins of its zone): stored, published, and every gateway
    /// ends its sessions.
    pub async fn revoke_grant(
        &self,
        who: &Principal,
        id: GrantId,
        reason: &str,
    ) -> Result<Request> {
        check_reason(reason)?;
        let request = self.load_request(id).await?;
        self.require_revoker(who, &request.zone).await?;
        let mut batch = Batch::begin(self).await?;
        self.revoke_in(&mut batch, Some(who), &request, reason)
            .await?;
        batch.commit(self).await?;
        self.load_request(id).await
    }

    /// Revokes every live grant of a vendor; all or nothing, and only if the caller may revoke
    /// in every zone concerned.
    pub async fn revoke_vendor(
        &self,
        who: &Principal,
        vendor: &UserName,
        reason: &str,
    ) -> Result<Vec<GrantId>> {
        check_reason(reason)?;
        // All of them, not only those the caller can see: a partial revocation would leave the
        // vendor connected elsewhere while looking done.
        let live = self.live_grants_of(vendor).await?;
        for request in &live {
            self.require_revoker(who, &request.zone).await?;
        }
        let mut batch = Batch::begin(self).await?;
        for request in &live {
            self.revoke_in(&mut batch, Some(who), request, reason)
                .await?;
        }
        batch.commit(self).await?;
        Ok(live.iter().map(|r| r.id).collect())
    }

    /// Revokes a grant on the system's behalf (the detector's playbook): no caller to
    /// authorize, and the event has no actor.
    pub async fn revoke_grant_as_system(&self, id: GrantId, reason: &str) -> Result<Request> {
        check_reason(reason)?;
        let request = self.load_request(id).await?;
        let mut batch = Batch::begin(self).await?;
        self.revoke_in(&mut batch, None, &request, reason).await?;
        batch.commit(self).await?;
        self.load_request(id).await
    }

    async fn revoke_in(
        &self,
        batch: &mut Batch,
        who: Option<&Principal>,
        request: &Request,
        reason: &str,
    ) -> Result<()> {
        let id = request.id;
        match request.status {
            RequestStatus::Approved | RequestStatus::Active => {}
            RequestStatus::Pending => {
                return Err(BrokerError::Conflict(format!(
                    "request {id} is not a grant yet: deny it instead"
                )));
            }
            RequestStatus::Expired => {
                return Err(BrokerError::Conflict(format!(
                    "grant {id} has already expired: nothing to revoke"
                )));
            }
            RequestStatus::Revoked => {
                return Err(BrokerError::Conflict(format!(
                    "grant {id} is already revoked"
                )));
            }
            other => {
                return Err(BrokerError::Conflict(format!(
                    "request {id} is {other}: nothing to revoke"
                )));
            }
        }
        // Only a live grant is revoked, even if another node changed it meanwhile.
        let now = OffsetDateTime::now_utc();
        let updated = on_tx!(&mut batch.tx, conn => sqlx::query(
            "UPDATE requests SET status = 'revoked', updated_at = $1, decided_by = $2, decision_reason = $3 \
             WHERE id = $4 AND status IN ('approved', 'active') AND end_at > $1"
        )
        .bind(millis(now))
        .bind(who.map(|w| w.user.as_str().to_owned()))
        .bind(reason.trim())
        .bind(id.get())
        .execute(conn)
        .await.map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(BrokerError::Conflict(format!(
                "grant {id} changed meanwhile: look at it again"
            )));
        }
        batch
            .emit(
                Event::now(EventKind::GrantRevoked {
                    grant: id,
                    vendor: request.requester.clone(),
                    asset: request.asset.clone(),
                    reason: reason.trim().to_owned(),
                })
                .by(who.map(|w| w.user.clone()))
                .from_addr(who.and_then(|w| w.source))
                .in_zone(Some(request.zone.clone())),
            )
            .await
    }

    async fn require_revoker(&self, who: &Principal, zone: &ZoneName) -> Result<()> {
        let authz = self.authz.read().await;
        if authz.is_allowed(&who.user, zone, Action::Approve)
            || authz.is_allowed(&who.user, zone, Action::Administer)
        {
            Ok(())
        } else {
            Err(BrokerError::Forbidden(format!(
                "{} may not revoke grants in zone {zone}: it needs `approve` or `administer` there",
                who.user
            )))
        }
    }

    /// Quarantines a vendor (any engineer, or an admin) or an asset (engineers or admins of its
    /// zone): no new requests, grants or sessions until it ends.
    pub async fn quarantine(&self, who: &Principal, new: NewQuarantine) -> Result<Quarantine> {
        check_reason(&new.reason)?;
        let zone = self.check_quarantine_authority(who, &new.subject).await?;
        self.quarantine_as(Some(who), zone, new).await
    }

    /// Quarantines on the system's behalf (the detector's playbook, an external alert): no
    /// caller to authorize, and the event has no actor.
    pub async fn quarantine_as_system(&self, new: NewQuarantine) -> Result<Quarantine> {
        check_reason(&new.reason)?;
        let zone = match &new.subject {
            QuarantineSubject::Asset(asset) => self.find_asset(asset).await?.map(|a| a.zone),
            QuarantineSubject::Vendor(_) => None,
        };
        self.quarantine_as(None, zone, new).await
    }

    async fn quarantine_as(
        &self,
        who: Option<&Principal>,
        zone: Option<ZoneName>,
        new: NewQuarantine,
    ) -> Result<Quarantine> {
        let duration = match &new.duration {
            Some(text) => otgate_policy::window::parse_duration(text)?,
            None => DEFAULT_QUARANTINE,
        };
        if duration.is_zero() || duration > MAX_QUARANTINE {
            return Err(BrokerError::invalid(
                "a quarantine lasts from 1 second to 30 days",
            ));
        }
        let now = OffsetDateTime::now_utc();
        let until = now + duration;
        let (kind, name) = subject_columns(&new.subject);
        let mut batch = Batch::begin(self).await?;
        let id: i64 = on_tx!(&mut batch.tx, conn => sqlx::query_scalar(
            "INSERT INTO quarantines (subject_kind, subject, until_at, reason, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
        )
        .bind(kind)
        .bind(name)
        .bind(millis(until))
        .bind(new.reason.trim())
        .bind(who.map(|w| w.user.as_str().to_owned()))
        .bind(millis(now))
        .fetch_one(conn)
        .await)?;
        batch
            .emit(
                Event::now(EventKind::QuarantineStarted {
                    id,
                    subject: new.subject.clone(),
                    until,
                    reason: new.reason.trim().to_owned(),
                })
                .by(who.map(|w| w.user.clone()))
                .from_addr(who.and_then(|w| w.source))
                .in_zone(zone),
            )
            .await?;
        batch.commit(self).await?;
        self.quarantine_by_id(id).await
    }

    /// Ends a quarantine early.
    pub async fn lift_quarantine(&self, who: &Principal, id: i64) -> Result<Quarantine> {
        let quarantine = self.quarantine_by_id(id).await?;
        let zone = self
            .check_quarantine_authority(who, &quarantine.subject)
            .await?;
        let now = OffsetDateTime::now_utc();
        if !quarantine.is_active(now) {
            return Err(BrokerError::Conflict(format!(
                "quarantine {id} has already ended"
            )));
        }
        let mut batch = Batch::begin(self).await?;
        on_tx!(&mut batch.tx, conn => sqlx::query("UPDATE quarantines SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
            .bind(millis(now))
            .bind(id)
            .execute(conn)
            .await.map(|r| r.rows_affected()))?;
        batch
            .emit(
                Event::now(EventKind::QuarantineEnded {
                    id,
                    subject: quarantine.subject.clone(),
                    lifted: true,
                })
                .by(Some(who.user.clone()))
                .from_addr(who.source)
                .in_zone(zone),
            )
            .await?;
        batch.commit(self).await?;
        self.quarantine_by_id(id).await
    }

    /// Checks the caller may quarantine `subject`; returns the zone concerned, if any.
    async fn check_quarantine_authority(
        &self,
        who: &Principal,
        subject: &QuarantineSubject,
    ) -> Result<Option<ZoneName>> {
        match subject {
            QuarantineSubject::Asset(name) => {
                let asset = self
                    .find_asset(name)
                    .await?
                    .ok_or_else(|| BrokerError::NotFound(format!("no asset `{name}`")))?;
                self.require_revoker(who, &asset.zone).await?;
                Ok(Some(asset.zone))
            }
            QuarantineSubject::Vendor(name) => {
                if self.user_row(name).await?.is_none() {
                    return Err(BrokerError::NotFound(format!("no user `{name}`")));
                }
                let zones = self.zones().await?;
                let authz = self.authz.read().await;
                let allowed = authz.is_allowed_everywhere(&who.user, Action::Administer)
                    || zones
                        .iter()
                        .any(|z| authz.is_allowed(&who.user, &z.name, Action::Approve));
                if allowed {
                    Ok(None)
                } else {
                    Err(BrokerError::Forbidden(format!(
                        "{} may not quarantine vendors: engineers and admins may",
                        who.user
                    )))
                }
            }
        }
    }

    async fn quarantine_by_id(&self, id: i64) -> Result<Quarantine> {
        let row = on_pool!(&self.store, pool => sqlx::query_as::<_, QuarantineRow>(concat!("SELECT ", quarantine_columns!(), " FROM quarantines WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await)?
        .ok_or_else(|| BrokerError::NotFound(format!("no quarantine {id}")))?;
        Quarantine::from_row(row)
    }

    /// Quarantines that are active or ended in the last 7 days (engineers, auditors, admins).
    pub async fn quarantines(&self, who: &Principal) -> Result<Vec<Quarantine>> {
        let authz = self.authz.read().await;
        let zones = self.zones().await?;
        let allowed = [Action::Audit, Action::Administer]
            .into_iter()
            .any(|a| authz.is_allowed_everywhere(&who.user, a))
            || zones
                .iter()
                .any(|z| authz.is_allowed(&who.user, &z.name, Action::Approve));
        drop(authz);
        if !allowed {
            return Err(BrokerError::Forbidden(format!(
                "{} may not list quarantines",
                who.user
            )));
        }
        let since = millis(OffsetDateTime::now_utc() - time::Duration::days(7));
        let rows = on_pool!(&self.store, pool => sqlx::query_as::<_, QuarantineRow>(concat!("SELECT ", quarantine_columns!(), " FROM quarantines WHERE ended_at IS NULL OR ended_at > $1 ORDER BY id DESC"))
        .bind(since)
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(Quarantine::from_row).collect()
    }

    /// The quarantine holding `subject` at `now`, if any.
    pub(crate) async fn active_quarantine(
        &self,
        subject: &QuarantineSubject,
        now: OffsetDateTime,
    ) -> Result<Option<Quarantine>> {
        let (kind, name) = subject_columns(subject);
        let row = on_pool!(&self.store, pool => sqlx::query_as::<_, QuarantineRow>(concat!("SELECT ", quarantine_columns!(), " FROM quarantines \
             WHERE subject_kind = $1 AND subject = $2 AND ended_at IS NULL AND until_at > $3 ORDER BY until_at DESC LIMIT 1"))
        .bind(kind)
        .bind(name)
        .bind(millis(now))
        .fetch_optional(pool)
        .await)?;
        row.map(Quarantine::from_row).transpose()
    }

    pub(crate) async fn expire_quarantines(
        &self,
        batch: &mut Batch,
        now: OffsetDateTime,
    ) -> Result<usize> {
        let ended = on_tx!(&mut batch.tx, conn => sqlx::query_as::<_, QuarantineRow>(concat!("UPDATE quarantines SET ended_at = until_at WHERE ended_at IS NULL AND until_at <= $1 \
             RETURNING ", quarantine_columns!()))
        .bind(millis(now))
        .fetch_all(conn)
        .await)?;
        let count = ended.len();
        for row in ended {
            let quarantine = Quarantine::from_row(row)?;
            batch
                .emit(Event::now(EventKind::QuarantineEnded {
                    id: quarantine.id,
                    subject: quarantine.subject,
                    lifted: false,
                }))
                .await?;
        }
        Ok(count)
    }

    /// The grants `vendor` may use at `now` (for the gateway's login and its messages), or
    /// why they may use none: a disabled account.
    pub async fn usable_grants(
        &self,
        vendor: &UserName,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<Vec<Grant>, AccessRefusal>> {
        if self.is_disabled(vendor).await? {
            return Ok(Err(AccessRefusal::AccountDisabled {
                user: vendor.clone(),
            }));
        }
        let mut usable = Vec::new();
        for request in self.live_grants_of(vendor).await? {
            if let Ok(grant) = self.access(request.id, now).await? {
                usable.push(grant);
            }
        }
        Ok(Ok(usable))
    }

    /// Whether grant `id` may be used at `now`: approved, inside its window, not revoked, its
    /// vendor's account enabled, and neither its vendor nor its asset quarantined. What the gateway asks before a session
    /// and on its re-check interval.
    pub async fn access(
        &self,
        id: GrantId,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<Grant, AccessRefusal>> {
        let request = match self.load_request(id).await {
            Ok(request) => request,
            Err(BrokerError::NotFound(_)) => {
                return Ok(Err(AccessRefusal::Unknown { grant: id.get() }));
            }
            Err(other) => return Err(other),
        };
        let status = crate::model::effective_status(request.status, &request.window, now);
        let refusal = match status {
            RequestStatus::Active => None,
            RequestStatus::Approved => Some(AccessRefusal::NotYetValid {
                grant: id,
                start: request.window.start,
            }),
            RequestStatus::Expired if request.grant().is_some() => Some(AccessRefusal::Expired {
                grant: id,
                end: request.window.end,
            }),
            RequestStatus::Revoked => Some(AccessRefusal::Revoked {
                grant: id,
                by: request
                    .decided_by
                    .as_ref()
                    .map_or_else(|| "otgate".to_owned(), ToString::to_string),
                reason: request.decision_reason.clone().unwrap_or_default(),
            }),
            other => Some(AccessRefusal::NotApproved {
                grant: id,
                status: other,
            }),
        };
        if let Some(refusal) = refusal {
            return Ok(Err(refusal));
        }
        if self.is_disabled(&request.requester).await? {
            return Ok(Err(AccessRefusal::AccountDisabled {
                user: request.requester.clone(),
            }));
        }
        for subject in [
            QuarantineSubject::Vendor(request.requester.clone()),
            QuarantineSubject::Asset(request.asset.clone()),
        ] {
            if let Some(q) = self.active_quarantine(&subject, now).await? {
                return Ok(Err(AccessRefusal::Quarantined {
                    subject,
                    until: q.until,
                    reason: q.reason,
                }));
            }
        }
        request
            .grant()
            .map(Ok)
            .ok_or_else(|| BrokerError::Conflict(format!("grant {id} lacks its approvals")))
    }
}
