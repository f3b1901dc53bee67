//! The recorder's view of its live sessions from outside the gateway: a tap that sees every
//! typed event as it is recorded (the detector's input), and annotations written into a live
//! session's log by someone other than its gateway (the detector's alerts).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::Message;
use crate::model::{SessionEvent, SessionInfo};

/// Sees sessions start and end and every typed event recorded in between. Called on the
/// recording path: implementations must not block.
pub trait EventTap: Send + Sync + std::fmt::Debug {
    /// A session's recording started.
    fn started(&self, info: &SessionInfo);
    /// A typed event was recorded.
    fn event(&self, session: &str, at: OffsetDateTime, event: &SessionEvent);
    /// The session's recording is ending (finished or dropped). When `done` is given, the
    /// recording waits a moment for it, so what the tap still has to say about the session
    /// (an alert) gets into its log before the last line.
    fn ended(&self, session: &str, done: Option<oneshot::Sender<()>>);
}

/// What it takes to write into a live session's log without keeping it open.
#[derive(Debug)]
struct Annotator {
    tx: mpsc::WeakUnboundedSender<Message>,
    budget: Arc<Semaphore>,
    started: Instant,
}

/// The recorder's live sessions.
#[derive(Debug, Default)]
pub(crate) struct Live {
    tap: Option<Arc<dyn EventTap>>,
    open: Mutex<HashMap<String, Annotator>>,
}

impl Live {
    pub(crate) fn with(tap: Arc<dyn EventTap>) -> Self {
        Self {
            tap: Some(tap),
            open: Mutex::default(),
        }
    }

    pub(crate) fn opened(
        &self,
        info: &SessionInfo,
        tx: &mpsc::UnboundedSender<Message>,
        budget: &Arc<Semaphore>,
        started: Instant,
    ) {
        if let Ok(mut open) = self.open.lock() {
            open.insert(
                info.id.clone(),
                Annotator {
                    tx: tx.downgrade(),
                    budget: budget.clone(),
                    started,
                },
            );
        }
        if let Some(tap) = &self.tap {
            tap.started(info);
        }
    }

    /// Tells the tap the session is ending; resolves when it has caught up with it.
    pub(crate) fn closing(&self, id: &str) -> Option<oneshot::Receiver<()>> {
        let tap = self.tap.as_ref()?;
        let (done, caught_up) = oneshot::channel();
        tap.ended(id, Some(done));
        Some(caught_up)
    }

    /// Forgets the session; tells the tap unless [`Self::closing`] did.
    pub(crate) fn closed(&self, id: &str, told: bool) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(id);
        }
        if let (Some(tap), false) = (&self.tap, told) {
            tap.ended(id, None);
        }
    }

    /// The live session `id`'s writer queue, when it is live here.
    pub(crate) fn sender(&self, id: &str) -> Option<mpsc::UnboundedSender<Message>> {
        self.open.lock().ok()?.get(id)?.tx.upgrade()
    }

    pub(crate) fn tapped(&self, id: &str, at: OffsetDateTime, event: &SessionEvent) {
        if let Some(tap) = &self.tap {
            tap.event(id, at, event);
        }
    }

    /// Writes `event` into the live session `id`'s log; false when the session is not
    /// live here or its queue is full.
    pub(crate) fn annotate(&self, id: &str, event: SessionEvent) -> bool {
        let Ok(open) = self.open.lock() else {
            return false;
        };
        let Some(annotator) = open.get(id) else {
            return false;
        };
        let (Some(tx), Ok(permit)) = (
            annotator.tx.upgrade(),
            annotator.budget.clone().try_acquire_many_owned(256),
        ) else {
            return false;
        };
        tx.send(Message::Event {
            t: annotator.started.elapsed().as_secs_f64(),
            at: OffsetDateTime::now_utc(),
            event,
            _permit: permit,
        })
        .is_ok()
    }
}
