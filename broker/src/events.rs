//! Storing, publishing, listing and following events.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::ToSchema;

use otgate_policy::{Action, Event};

use crate::bus::StoredEvent;
use crate::error::{BrokerError, Result};
use crate::store::rows::EventRow;
use crate::store::{Tx, millis, on_pool, on_tx};
use crate::{Broker, Principal};

/// A page of events and where to continue.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    /// Events the caller may see, oldest first.
    pub events: Vec<StoredEvent>,
    /// Pass as `after` to continue (the last sequence number examined).
    pub next: i64,
}

/// Longest page.
pub const MAX_PAGE: u32 = 1000;

/// Events written in a transaction, published after it commits.
pub(crate) struct Batch {
    pub(crate) tx: Tx,
    events: Vec<StoredEvent>,
}

impl Batch {
    pub(crate) async fn begin(broker: &Broker) -> Result<Self> {
        Ok(Self {
            tx: broker.store.begin().await?,
            events: Vec::new(),
        })
    }

    /// Stores an event in the transaction.
    pub(crate) async fn emit(&mut self, event: Event) -> Result<()> {
        let body = serde_json::to_string(&event)
            .map_err(|e| BrokerError::invalid(format!("event: {e}")))?;
        let seq: i64 = on_tx!(&mut self.tx, conn => sqlx::query_scalar(
            "INSERT INTO events (at, actor, zone, kind, body) VALUES ($1, $2, $3, $4, $5) RETURNING seq"
        )
        .bind(millis(event.at))
        .bind(event.actor.as_ref().map(|a| a.as_str().to_owned()))
        .bind(event.zone.as_ref().map(|z| z.as_str().to_owned()))
        .bind(event.kind.name())
        .bind(body)
        .fetch_one(conn)
        .await)?;
        self.events.push(StoredEvent { seq, event });
        Ok(())
    }

    /// Commits, then publishes.
    pub(crate) async fn commit(self, broker: &Broker) -> Result<()> {
        self.tx.commit().await?;
        for event in self.events {
            broker.bus.publish(event);
        }
        Ok(())
    }
}

impl Broker {
    /// Stores one event and publishes it.
    pub async fn record(&self, event: Event) -> Result<()> {
        let mut batch = Batch::begin(self).await?;
        batch.emit(event).await?;
        batch.commit(self).await
    }

    /// A live subscription to events as they are stored.
    pub fn subscribe(&self) -> broadcast::Receiver<StoredEvent> {
        self.bus.subscribe()
    }

    /// Events after `after` that `who` may see: auditors and admins see everything, others
    /// their own actions and the zones where they approve, observe or audit.
    pub async fn events(&self, who: &Principal, after: i64, limit: u32) -> Result<EventPage> {
        let limit = limit.clamp(1, MAX_PAGE);
        let authz = self.authz.read().await;
        let sees_all = authz.is_allowed_everywhere(&who.user, Action::Audit)
            || authz.is_allowed_everywhere(&who.user, Action::Administer);
        let mut page = EventPage {
            events: Vec::new(),
            next: after,
        };
        // Scan at most this many rows per call, so a caller who sees little cannot make the
        // server read the whole log.
        let mut budget = 10_000u32;
        while page.events.len() < limit as usize && budget > 0 {
            let chunk = limit.min(budget);
            let rows = on_pool!(&self.store, pool => sqlx::query_as::<_, EventRow>(
                "SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2"
            )
            .bind(page.next)
            .bind(i64::from(chunk))
            .fetch_all(pool)
            .await)?;
            let done = rows.len() < chunk as usize;
            budget = budget.saturating_sub(chunk);
            for row in rows {
                if page.events.len() >= limit as usize {
                    break;
                }
                page.next = row.seq;
                let event: Event = serde_json::from_str(&row.body).map_err(|e| {
                    BrokerError::invalid(format!("stored event {} is unreadable: {e}", row.seq))
                })?;
                let visible = sees_all
                    || event.actor.as_ref() == Some(&who.user)
                    || event.zone.as_ref().is_some_and(|zone| {
                        [Action::Approve, Action::Observe, Action::Audit]
                            .into_iter()
                            .any(|a| authz.is_allowed(&who.user, zone, a))
                    });
                if visible {
                    page.events.push(StoredEvent {
                        seq: row.seq,
                        event,
                    });
                }
            }
            if done {
                break;
            }
        }
        Ok(page)
    }

    /// Like [`Broker::events`], but waits up to `wait` for the first event to arrive.
    pub async fn wait_events(
        &self,
        who: &Principal,
        after: i64,
        limit: u32,
        wait: Duration,
    ) -> Result<EventPage> {
        // Subscribe before reading, so nothing stored in between is missed.
        let mut live = self.subscribe();
        let page = self.events(who, after, limit).await?;
        if !page.events.is_empty() || wait.is_zero() {
            return Ok(page);
        }
        let deadline = tokio::time::Instant::now() + wait.min(Duration::from_secs(60));
        let mut next = page.next;
        loop {
            match tokio::time::timeout_at(deadline, live.recv()).await {
                Err(_) => {
                    return Ok(EventPage {
                        events: Vec::new(),
                        next,
                    });
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    return Ok(EventPage {
                        events: Vec::new(),
                        next,
                    });
                }
                Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => {
                    let page = self.events(who, next, limit).await?;
                    if !page.events.is_empty() {
                        return Ok(page);
                    }
                    next = page.next;
                }
            }
        }
    }
}
