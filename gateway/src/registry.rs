//! Live sessions and their kill switches. Every session holds a token; revoking its grant,
//! quarantining its vendor or asset, an engineer's kill and gateway shutdown all cancel that
//! token with a reason the vendor sees. A frozen session holds the vendor's input until it
//! is resumed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use otgate_policy::{Event, EventKind, GrantId, QuarantineSubject};

/// What the registry knows of a live session.
#[derive(Clone, Debug)]
struct Live {
    grant: GrantId,
    vendor: String,
    asset: String,
    token: CancellationToken,
    ended: Arc<Mutex<Option<String>>>,
    frozen: watch::Sender<Option<String>>,
}

/// The live sessions of this gateway.
#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<HashMap<String, Live>>,
}

/// A session's handles, given back at registration.
pub(crate) struct Registered {
    /// Cancelled when the session must end.
    pub token: CancellationToken,
    /// Why it was cancelled.
    pub ended: Arc<Mutex<Option<String>>>,
    /// `Some(reason)` while frozen.
    pub frozen: watch::Receiver<Option<String>>,
}

/// Who froze a session, from the reason the registry gives (`frozen by eng1: ...`); the
/// detector acts as `otgate`.
pub(crate) fn frozen_by(why: &str) -> &str {
    why.strip_prefix("frozen by ")
        .and_then(|rest| rest.split_once(':'))
        .map_or("engineer", |(by, _)| by)
}

fn end(live: &Live, reason: &str) {
    if let Ok(mut slot) = live.ended.lock()
        && slot.is_none()
    {
        *slot = Some(reason.to_owned());
    }
    live.token.cancel();
}

impl Registry {
    /// Registers a session whose token is a child of `parent` (the connection's).
    pub(crate) fn register(
        &self,
        id: &str,
        grant: GrantId,
        vendor: &str,
        asset: &str,
        parent: &CancellationToken,
    ) -> Registered {
        let token = parent.child_token();
        let ended = Arc::new(Mutex::new(None));
        let (frozen, watcher) = watch::channel(None);
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.insert(
                id.to_owned(),
                Live {
                    grant,
                    vendor: vendor.to_owned(),
                    asset: asset.to_owned(),
                    token: token.clone(),
                    ended: ended.clone(),
                    frozen,
                },
            );
        }
        Registered {
            token,
            ended,
            frozen: watcher,
        }
    }

    /// Forgets a session that ended.
    pub(crate) fn remove(&self, id: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(id);
        }
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.sessions.lock().map_or(0, |s| s.len())
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn each(&self, matches: impl Fn(&str, &Live) -> bool, act: impl Fn(&Live)) -> usize {
        let Ok(sessions) = self.sessions.lock() else {
            return 0;
        };
        let mut count = 0;
        for (id, live) in sessions.iter() {
            if matches(id, live) {
                act(live);
                count += 1;
            }
        }
        count
    }

    /// Acts on a control-plane event: revocations, quarantines, disabled accounts, kills, freezes. Returns how
    /// many sessions it touched.
    pub fn apply(&self, event: &Event) -> usize {
        let by = event
            .actor
            .as_ref()
            .map_or_else(|| "otgate".to_owned(), ToString::to_string);
        match &event.kind {
            EventKind::GrantRevoked { grant, reason, .. } => {
                let why = format!("grant {grant} was revoked by {by}: {reason}");
                self.each(|_, l| l.grant == *grant, |l| end(l, &why))
            }
            EventKind::QuarantineStarted {
                subject,
                reason,
                until,
                ..
            } => {
                let why = format!("{subject} was quarantined by {by} until {until}: {reason}");
                self.each(
                    |_, l| match subject {
                        QuarantineSubject::Vendor(v) => l.vendor == v.as_str(),
                        QuarantineSubject::Asset(a) => l.asset == a.as_str(),
                    },
                    |l| end(l, &why),
                )
            }
            EventKind::UserDisabled { user, reason } => {
                let why = format!("{user}'s account was disabled by {by}: {reason}");
                self.each(|_, l| l.vendor == user.as_str(), |l| end(l, &why))
            }
            EventKind::SessionKillRequested { session, reason } => {
                let why = format!("ended by {by}: {reason}");
                self.each(|id, _| id == session, |l| end(l, &why))
            }
            EventKind::SessionFreezeRequested { session, reason } => {
                let why = format!("frozen by {by}: {reason}");
                self.each(
                    |id, _| id == session,
                    |l| {
                        l.frozen.send_replace(Some(why.clone()));
                    },
                )
            }
            EventKind::SessionResumeRequested { session } => self.each(
                |id, _| id == session,
                |l| {
                    l.frozen.send_replace(None);
                },
            ),
            _ => 0,
        }
    }
}
