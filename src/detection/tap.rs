//! The recorder's tap into the detector: every typed event the gateway records becomes an
//! observation on a bounded queue. The recording path never waits for the detector: a full
//! queue drops the event and counts it, and the service treats any drop as a fault.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use otgate_detector::{ModbusRequest, Observed, Table};
use otgate_recorder::EventTap;
use otgate_recorder::model::{Direction, SessionEvent, SessionInfo, Verdict};

/// What the tap hands the detector.
#[derive(Debug)]
pub enum Input {
    /// A session's recording started.
    Started(Box<SessionInfo>),
    /// Something happened in it.
    Event {
        /// The session.
        session: String,
        /// When.
        at: OffsetDateTime,
        /// What.
        what: Observed,
    },
    /// It ended; `done` is told once the detector has handled everything before.
    Ended(String, Option<oneshot::Sender<()>>),
}

/// The tap.
#[derive(Debug)]
pub struct Tap {
    tx: mpsc::Sender<Input>,
    /// Inputs dropped because the queue was full.
    pub dropped: Arc<AtomicU64>,
}

impl Tap {
    /// A tap feeding `tx`.
    pub fn new(tx: mpsc::Sender<Input>) -> Self {
        Self {
            tx,
            dropped: Arc::default(),
        }
    }

    fn push(&self, input: Input) {
        if self.tx.try_send(input).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The detector's reading of a recorded event; `None` for what it does not score.
pub fn observed(event: &SessionEvent) -> Option<Observed> {
    let allowed = |v: &Verdict| *v == Verdict::Allowed;
    Some(match event {
        SessionEvent::Command {
            command, verdict, ..
        } => Observed::Command {
            line: command.clone(),
            allowed: allowed(verdict),
        },
        SessionEvent::Modbus {
            unit,
            function,
            table,
            start,
            count,
            values,
            verdict,
            exception,
            ..
        } => Observed::Modbus {
            request: ModbusRequest {
                unit: *unit,
                function: *function,
                table: table.as_deref().and_then(Table::parse),
                start: *start,
                count: *count,
                values: values.clone(),
                exception: *exception,
            },
            allowed: allowed(verdict),
        },
        SessionEvent::Forward {
            host,
            port,
            verdict,
        } => Observed::Forward {
            host: host.clone(),
            port: *port,
            allowed: allowed(verdict),
        },
        SessionEvent::FileTransfer {
            path,
            direction,
            verdict,
            ..
        } => Observed::FileTransfer {
            path: path.clone(),
            upload: *direction == Direction::Upload,
            allowed: allowed(verdict),
        },
        _ => return None,
    })
}

impl EventTap for Tap {
    fn started(&self, info: &SessionInfo) {
        self.push(Input::Started(Box::new(info.clone())));
    }

    fn event(&self, session: &str, at: OffsetDateTime, event: &SessionEvent) {
        if let Some(what) = observed(event) {
            self.push(Input::Event {
                session: session.to_owned(),
                at,
                what,
            });
        }
    }

    fn ended(&self, session: &str, done: Option<oneshot::Sender<()>>) {
        self.push(Input::Ended(session.to_owned(), done));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (tx, mut rx) = mpsc::channel(1);
        let tap = Tap::new(tx);
        let command = SessionEvent::Command {
            command: "ls".into(),
            verdict: Verdict::Allowed,
            rule: None,
            reason: None,
        };
        let now = OffsetDateTime::now_utc();
        tap.event("s", now, &command);
        tap.event("s", now, &command);
        tap.event("s", now, &SessionEvent::Resize { cols: 80, rows: 24 });
        tap.ended("s", None);
        assert_eq!(tap.dropped.load(Ordering::Relaxed), 2);
        assert!(matches!(
            rx.try_recv(),
            Ok(Input::Event {
                what: Observed::Command { .. },
                ..
            })
        ));
    }
}
