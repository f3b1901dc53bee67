//! The request lifecycle: `pending -> approved -> active -> expired | revoked`, or
//! `pending -> denied | withdrawn | expired`. Every transition is stored with its event in one
//! transaction.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use otgate_policy::window::parse_duration;
use otgate_policy::{
    Action, Asset, AssetName, Event, EventKind, GrantId, Preset, Protocol, QuarantineSubject,
    Scope, UserName, Window,
};

use crate::error::{BrokerError, Result};
use crate::events::Batch;
use crate::model::{Approval, Request, RequestStatus};
use crate::store::rows::{RequestRow, request_columns};
use crate::store::{Tx, from_millis, is_unique_violation, millis, on_pool, on_tx};
use crate::{Broker, Principal};

/// The scope asked for: a named preset (made concrete for the asset) or a scope document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeSpec {
    /// A preset such as `read-only`.
    Preset(Preset),
    /// A custom scope.
    Custom(Scope),
}

/// A vendor's request for access.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// The asset.
    pub asset: AssetName,
    /// Protocols needed.
    pub protocols: Vec<Protocol>,
    /// What may be done.
    pub scope: ScopeSpec,
    /// Start of the window (now if absent).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start: Option<OffsetDateTime>,
    /// Length of the window, e.g. `2h` or `90m`.
    pub duration: String,
    /// Why (shown to approvers and auditors).
    pub reason: String,
    /// Change or work-order ticket.
    #[serde(default)]
    pub ticket: Option<String>,
}

/// Which requests to list.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestFilter {
    /// Only this status.
    pub status: Option<RequestStatus>,
    /// Only requests by this vendor.
    pub vendor: Option<UserName>,
    /// Only requests for this asset.
    pub asset: Option<AssetName>,
    /// Only grants (approved, active, expired or revoked after approval).
    #[serde(default)]
    pub grants: bool,
}

fn check_text(what: &str, text: &str, max: usize, required: bool) -> Result<()> {
    if required && text.trim().is_empty() {
        return Err(BrokerError::invalid(format!(
            "{what} is required: say what the work is"
        )));
    }
    if text.chars().count() > max {
        return Err(BrokerError::invalid(format!(
            "{what} is limited to {max} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(BrokerError::invalid(format!(
            "{what} contains control characters"
        )));
    }
    Ok(())
}

/// Refuses a custom scope that reaches past what the asset offers.
fn check_scope_fits(scope: &Scope, asset: &Asset) -> Result<()> {
    if let Some(modbus) = &scope.modbus {
        let units: BTreeSet<u8> = asset
            .endpoints_for(Protocol::Modbus)
            .flat_map(|e| e.units.iter().copied())
            .collect();
        if let Some(unit) = modbus.units.iter().find(|u| !units.contains(u)) {
            return Err(BrokerError::invalid(format!(
                "modbus.units: unit {unit} is not behind any Modbus endpoint of {} (units {units:?})",
                asset.name
            )));
        }
    }
    if let Some(tcp) = &scope.tcp {
        let ports: BTreeSet<u16> = asset.endpoints_for(Protocol::Tcp).map(|e| e.port).collect();
        if let Some(port) = tcp.ports.iter().find(|p| !ports.contains(p)) {
            return Err(BrokerError::invalid(format!(
                "tcp.ports: port {port} is not a TCP endpoint of {} (ports {ports:?})",
                asset.name
            )));
        }
    }
    Ok(())
}

impl Broker {
    /// Files a request (vendors admitted to the asset's zone).
    pub async fn create_request(&self, who: &Principal, new: NewRequest) -> Result<Request> {
        let now = OffsetDateTime::now_utc();
        let asset = self.find_asset(&new.asset).await?.ok_or_else(|| {
            BrokerError::invalid(format!(
                "unknown asset `{}`: see `otgate assets list`",
                new.asset
            ))
        })?;
        self.require(
            who,
            Action::Request,
            &asset.zone,
            "request access to assets",
        )
        .await?;
        for subject in [
            QuarantineSubject::Vendor(who.user.clone()),
            QuarantineSubject::Asset(asset.name.clone()),
        ] {
            if let Some(q) = self.active_quarantine(&subject, now).await? {
                return Err(BrokerError::Forbidden(format!(
                    "{subject} is quarantined until {}: {}",
                    q.until, q.reason
                )));
            }
        }
        let protocols: Vec<Protocol> = new
            .protocols
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if protocols.is_empty() {
            return Err(BrokerError::invalid(
                "name at least one protocol: ssh, modbus or tcp",
            ));
        }
        if let Some(missing) = protocols.iter().find(|p| !asset.offers(**p)) {
            return Err(BrokerError::invalid(format!(
                "{} has no {missing} endpoint",
                asset.name
            )));
        }
        let (scope, scope_name) = match &new.scope {
            ScopeSpec::Preset(preset) => (
                preset.materialize(&asset, &protocols)?,
                preset.as_str().to_owned(),
            ),
            ScopeSpec::Custom(scope) => {
                scope.validate()?;
                if scope.protocols() != protocols {
                    return Err(BrokerError::invalid(format!(
                        "the scope has sections for {:?} but the request names {:?}: make them the same",
                        scope.protocols(),
                        protocols
                    )));
                }
                check_scope_fits(scope, &asset)?;
                (scope.clone(), "custom".to_owned())
            }
        };
        check_text("reason", &new.reason, 2000, true)?;
        if let Some(ticket) = &new.ticket {
            check_text("ticket", ticket, 128, false)?;
        }
        let duration = parse_duration(&new.duration)?;
        // Whole seconds, so that certificates (which carry seconds) match the window exactly.
        let start = new.start.unwrap_or(now);
        let start = start.replace_nanosecond(0).unwrap_or(start);
        let duration = std::time::Duration::from_secs(duration.as_secs());
        let window = Window::starting(start, duration)
            .ok_or_else(|| BrokerError::invalid("the window is out of range"))?;
        self.rules
            .check_window(asset.level, &window, now)
            .map_err(|e| BrokerError::invalid(e.to_string()))?;
        let needed = self.rules.for_level(asset.level).approvals;

        let mut batch = Batch::begin(self).await?;
        let id: i64 = on_tx!(&mut batch.tx, conn => sqlx::query_scalar(
            "INSERT INTO requests (requester, asset, zone, level, protocols, scope, scope_name, start_at, end_at, \
             reason, ticket, status, approvals_needed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $13, $13) RETURNING id"
        )
        .bind(who.user.as_str())
        .bind(asset.name.as_str())
        .bind(asset.zone.as_str())
        .bind(asset.level.as_str())
        .bind(to_json(&protocols)?)
        .bind(to_json(&scope)?)
        .bind(&scope_name)
        .bind(millis(window.start))
        .bind(millis(window.end))
        .bind(new.reason.trim())
        .bind(new.ticket.as_deref())
        .bind(i64::from(needed))
        .bind(millis(now))
        .fetch_one(conn)
        .await)?;
        let id = GrantId::new(id)?;
        batch
            .emit(
                Event::now(EventKind::RequestCreated {
                    request: id,
                    requester: who.user.clone(),
                    asset: asset.name.clone(),
                    protocols,
                    scope: scope_name,
                    start: window.start,
                    end: window.end,
                    reason: new.reason.trim().to_owned(),
                    ticket: new.ticket.clone(),
                })
                .by(Some(who.user.clone()))
                .from_addr(who.source)
                .in_zone(Some(asset.zone.clone())),
            )
            .await?;
        batch.commit(self).await?;
        self.load_request(id).await
    }

    /// Approves (engineers of the zone, never the requester, each engineer once). The request
    /// becomes a grant when it has the approvals its level needs.
    pub async fn approve(&self, who: &Principal, id: GrantId) -> Result<Request> {
        let now = OffsetDateTime::now_utc();
        let mut batch = Batch::begin(self).await?;
        let request = lock_request(&mut batch.tx, id, now).await?;
        self.require(who, Action::Approve, &request.zone, "approve requests")
            .await?;
        if request.requester == who.user {
            return Err(BrokerError::Forbidden(
                "nobody approves their own request".into(),
            ));
        }
        match request.status {
            RequestStatus::Pending => {}
            RequestStatus::Approved | RequestStatus::Active => {
                return Err(BrokerError::Conflict(format!(
                    "request {id} is already approved"
                )));
            }
            RequestStatus::Expired => {
                return Err(BrokerError::Conflict(format!(
                    "request {id} has expired: its window has passed"
                )));
            }
            other => {
                return Err(BrokerError::Conflict(format!(
                    "request {id} is {other}: there is nothing to approve"
                )));
            }
        }
        let inserted = on_tx!(&mut batch.tx, conn => sqlx::query(
            "INSERT INTO approvals (request_id, approver, at) VALUES ($1, $2, $3)"
        )
        .bind(id.get())
        .bind(who.user.as_str())
        .bind(millis(now))
        .execute(conn)
        .await.map(|r| r.rows_affected()));
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(BrokerError::Conflict(format!(
                    "you already approved request {id}; it needs {} approval(s) from other engineers",
                    usize::from(request.approvals_needed).saturating_sub(request.approvals.len())
                )));
            }
            other => other?,
        };
        let approvals = request.approvals.len() + 1;
        let zone = Some(request.zone.clone());
        batch
            .emit(
                Event::now(EventKind::RequestApproved {
                    request: id,
                    approver: who.user.clone(),
                    approvals: u8::try_from(approvals).unwrap_or(u8::MAX),
                    needed: request.approvals_needed,
                })
                .by(Some(who.user.clone()))
                .from_addr(who.source)
                .in_zone(zone.clone()),
            )
            .await?;
        if approvals >= usize::from(request.approvals_needed) {
            let status = if request.window.contains(now) {
                RequestStatus::Active
            } else {
                RequestStatus::Approved
            };
            set_status(&mut batch.tx, id, status, now, None).await?;
            let mut approvers: Vec<UserName> = request
                .approvals
                .iter()
                .map(|a| a.approver.clone())
                .collect();
            approvers.push(who.user.clone());
            batch
                .emit(
                    Event::now(EventKind::GrantIssued {
                        grant: id,
                        vendor: request.requester.clone(),
                        asset: request.asset.clone(),
                        approvers,
                    })
                    .by(Some(who.user.clone()))
                    .from_addr(who.source)
                    .in_zone(zone.clone()),
                )
                .await?;
            if status == RequestStatus::Active {
                batch
                    .emit(Event::now(EventKind::GrantActivated { grant: id }).in_zone(zone))
                    .await?;
            }
        }
        batch.commit(self).await?;
        self.load_request(id).await
    }

    /// Denies a pending request (engineers of the zone).
    pub async fn deny(&self, who: &Principal, id: GrantId, reason: &str) -> Result<Request> {
        check_text("reason", reason, 2000, true)?;
        let now = OffsetDateTime::now_utc();
        let mut batch = Batch::begin(self).await?;
        let request = lock_request(&mut batch.tx, id, now).await?;
        self.require(who, Action::Approve, &request.zone, "deny requests")
            .await?;
        if request.requester == who.user {
            return Err(BrokerError::Forbidden(
                "withdraw your own request instead of denying it".into(),
            ));
        }
        if request.status != RequestStatus::Pending {
            return Err(BrokerError::Conflict(format!(
                "request {id} is {}: only pending requests can be denied",
                request.status
            )));
        }
        set_status(
            &mut batch.tx,
            id,
            RequestStatus::Denied,
            now,
            Some((&who.user, reason.trim())),
        )
        .await?;
        batch
            .emit(
                Event::now(EventKind::RequestDenied {
                    request: id,
                    reason: reason.trim().to_owned(),
                })
                .by(Some(who.user.clone()))
                .from_addr(who.source)
                .in_zone(Some(request.zone.clone())),
            )
            .await?;
        batch.commit(self).await?;
        self.load_request(id).await
    }

    /// Withdraws the caller's own pending request.
    pub async fn withdraw(&self, who: &Principal, id: GrantId) -> Result<Request> {
        let now = OffsetDateTime::now_utc();
        let mut batch = Batch::begin(self).await?;
        let request = lock_request(&mut batch.tx, id, now).await?;
        if request.requester != who.user {
            return Err(BrokerError::Forbidden(format!(
                "request {id} is not yours to withdraw"
            )));
        }
        if request.status != RequestStatus::Pending {
            return Err(BrokerError::Conflict(format!(
                "request {id} is {}: only pending requests can be withdrawn",
                request.status
            )));
        }
        set_status(
            &mut batch.tx,
            id,
            RequestStatus::Withdrawn,
            now,
            Some((&who.user, "withdrawn by the requester")),
        )
        .await?;
        batch
            .emit(
                Event::now(EventKind::RequestWithdrawn { request: id })
                    .by(Some(who.user.clone()))
                    .from_addr(who.source)
                    .in_zone(Some(request.zone.clone())),
            )
            .await?;
        batch.commit(self).await?;
        self.load_request(id).await
    }

    /// One request, if the caller may see it (its requester, or anyone who approves, observes
    /// or audits in its zone).
    pub async fn request(&self, who: &Principal, id: GrantId) -> Result<Request> {
        let request = self.load_request(id).await?;
        if self.may_see(who, &request).await {
            Ok(request)
        } else {
            Err(BrokerError::NotFound(format!("no request {id}")))
        }
    }

    /// Requests the caller may see, newest first (at most 1000).
    pub async fn requests(&self, who: &Principal, filter: &RequestFilter) -> Result<Vec<Request>> {
        let rows = on_pool!(&self.store, pool => sqlx::query_as::<_, RequestRow>(concat!("SELECT ", request_columns!(), " FROM requests WHERE ($1 IS NULL OR requester = $1) AND ($2 IS NULL OR asset = $2) \
             ORDER BY id DESC LIMIT 1000"))
        .bind(filter.vendor.as_ref().map(|v| v.as_str().to_owned()))
        .bind(filter.asset.as_ref().map(|a| a.as_str().to_owned()))
        .fetch_all(pool)
        .await)?;
        let mut out = Vec::with_capacity(rows.len());
        for request in self.hydrate(rows).await? {
            let wanted = filter.status.is_none_or(|s| s == request.status)
                && (!filter.grants || request.grant().is_some());
            if wanted && self.may_see(who, &request).await {
                out.push(request);
            }
        }
        Ok(out)
    }

    /// Every grant of `vendor` that is approved or active, whoever may see it.
    pub(crate) async fn live_grants_of(&self, vendor: &UserName) -> Result<Vec<Request>> {
        let rows = on_pool!(&self.store, pool => sqlx::query_as::<_, RequestRow>(concat!(
            "SELECT ", request_columns!(),
            " FROM requests WHERE requester = $1 AND status IN ('approved', 'active') AND end_at > $2 ORDER BY id"
        ))
        .bind(vendor.as_str())
        .bind(millis(OffsetDateTime::now_utc()))
        .fetch_all(pool)
        .await)?;
        let live = self.hydrate(rows).await?;
        Ok(live
            .into_iter()
            .filter(|r| r.status.is_live_grant())
            .collect())
    }

    /// Rows with their approvals, as requests with their status at this moment.
    async fn hydrate(&self, rows: Vec<RequestRow>) -> Result<Vec<Request>> {
        let (Some(low), Some(high)) = (
            rows.iter().map(|r| r.id).min(),
            rows.iter().map(|r| r.id).max(),
        ) else {
            return Ok(Vec::new());
        };
        let now = OffsetDateTime::now_utc();
        let mut approvals = self.approvals_between(low, high).await?;
        rows.into_iter()
            .map(|row| {
                let id = row.id;
                Request::from_row(row, approvals.remove(&id).unwrap_or_default(), now)
            })
            .collect()
    }

    async fn may_see(&self, who: &Principal, request: &Request) -> bool {
        if request.requester == who.user {
            return true;
        }
        let authz = self.authz.read().await;
        [
            Action::Approve,
            Action::Observe,
            Action::Audit,
            Action::Administer,
        ]
        .into_iter()
        .any(|a| authz.is_allowed(&who.user, &request.zone, a))
    }

    pub(crate) async fn load_request(&self, id: GrantId) -> Result<Request> {
        let row = on_pool!(&self.store, pool => sqlx::query_as::<_, RequestRow>(concat!("SELECT ", request_columns!(), " FROM requests WHERE id = $1"))
        .bind(id.get())
        .fetch_optional(pool)
        .await)?
        .ok_or_else(|| BrokerError::NotFound(format!("no request {id}")))?;
        let approvals = self
            .approvals_between(id.get(), id.get())
            .await?
            .remove(&id.get())
            .unwrap_or_default();
        Request::from_row(row, approvals, OffsetDateTime::now_utc())
    }

    async fn approvals_between(
        &self,
        low: i64,
        high: i64,
    ) -> Result<std::collections::HashMap<i64, Vec<Approval>>> {
        let rows: Vec<(i64, String, i64)> = on_pool!(&self.store, pool => sqlx::query_as(
            "SELECT request_id, approver, at FROM approvals WHERE request_id >= $1 AND request_id <= $2 ORDER BY at"
        )
        .bind(low)
        .bind(high)
        .fetch_all(pool)
        .await)?;
        let mut map: std::collections::HashMap<i64, Vec<Approval>> =
            std::collections::HashMap::new();
        for (id, approver, at) in rows {
            map.entry(id).or_default().push(Approval {
                approver: UserName::new(approver)?,
                at: from_millis(at)?,
            });
        }
        Ok(map)
    }

    /// Applies what the clock decides: approved grants become active at their start, grants
    /// and pending requests expire at their end, quarantines run out. Returns how many changed.
    /// Runs on a short interval; reads compute the same status, so a late tick changes no
    /// decision.
    pub async fn advance(&self, now: OffsetDateTime) -> Result<usize> {
        let at = millis(now);
        let mut batch = Batch::begin(self).await?;
        let mut changed = 0;
        for (sql, kind) in TRANSITIONS {
            let rows: Vec<(i64, String)> = on_tx!(&mut batch.tx, conn => sqlx::query_as(sql)
                .bind(at)
                .fetch_all(conn)
                .await)?;
            changed += rows.len();
            for (id, zone) in rows {
                batch
                    .emit(Event::now(kind(GrantId::new(id)?)).in_zone(zone.parse().ok()))
                    .await?;
            }
        }
        changed += self.expire_quarantines(&mut batch, now).await?;
        batch.commit(self).await?;
        Ok(changed)
    }
}

/// A clock-driven change: the statement, and the event for each row it changed.
type Transition = (&'static str, fn(GrantId) -> EventKind);

/// What the clock changes.
const TRANSITIONS: [Transition; 3] = [
    (
        "UPDATE requests SET status = 'active', updated_at = $1 \
         WHERE status = 'approved' AND start_at <= $1 AND end_at > $1 RETURNING id, zone",
        |grant| EventKind::GrantActivated { grant },
    ),
    (
        "UPDATE requests SET status = 'expired', updated_at = $1 \
         WHERE status IN ('approved', 'active') AND end_at <= $1 RETURNING id, zone",
        |grant| EventKind::GrantExpired { grant },
    ),
    (
        "UPDATE requests SET status = 'expired', updated_at = $1 \
         WHERE status = 'pending' AND end_at <= $1 RETURNING id, zone",
        |request| EventKind::RequestLapsed { request },
    ),
];

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| BrokerError::invalid(e.to_string()))
}

/// Locks a request row for the rest of the transaction and reads it with its approvals.
async fn lock_request(tx: &mut Tx, id: GrantId, now: OffsetDateTime) -> Result<Request> {
    let touched = on_tx!(tx, conn => sqlx::query("UPDATE requests SET version = version + 1 WHERE id = $1")
        .bind(id.get())
        .execute(conn)
        .await.map(|r| r.rows_affected()))?;
    if touched == 0 {
        return Err(BrokerError::NotFound(format!("no request {id}")));
    }
    let row = on_tx!(tx, conn => sqlx::query_as::<_, RequestRow>(concat!("SELECT ", request_columns!(), " FROM requests WHERE id = $1"))
    .bind(id.get())
    .fetch_one(conn)
    .await)?;
    let approvals: Vec<(String, i64)> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT approver, at FROM approvals WHERE request_id = $1 ORDER BY at"
    )
    .bind(id.get())
    .fetch_all(conn)
    .await)?;
    let approvals = approvals
        .into_iter()
        .map(|(approver, at)| {
            Ok(Approval {
                approver: UserName::new(approver)?,
                at: from_millis(at)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Request::from_row(row, approvals, now)
}

pub(crate) async fn set_status(
    tx: &mut Tx,
    id: GrantId,
    status: RequestStatus,
    now: OffsetDateTime,
    decision: Option<(&UserName, &str)>,
) -> Result<()> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE requests SET status = $1, updated_at = $2, decided_by = COALESCE($3, decided_by), \
         decision_reason = COALESCE($4, decision_reason) WHERE id = $5"
    )
    .bind(status.as_str())
    .bind(millis(now))
    .bind(decision.map(|(by, _)| by.as_str().to_owned()))
    .bind(decision.map(|(_, reason)| reason.to_owned()))
    .bind(id.get())
    .execute(conn)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}
