//! Keeps the broker's session index in step with the recordings: every interval, each
//! recording whose files changed is read, verified with the node's recording key, rendered
//! to searchable text and indexed; retention deletes expired recordings and records an
//! event for each.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use otgate_broker::{Broker, IndexedText, RecordedSession, SessionIndex, SessionState};
use otgate_policy::EventKind;
use otgate_policy::window::format_duration;
use otgate_recorder::chain::{hex, sha256};
use otgate_recorder::layout::{MANIFEST, Part, file_name, parse_file_name};
use otgate_recorder::text::fragments;
use otgate_recorder::{Archive, Recording, SessionFile, Status, VerifyingKey, expire, read};

/// Most output text indexed per session.
const TEXT_BUDGET: usize = 4 * 1024 * 1024;
/// A recording without a manifest written to this recently counts as live.
const LIVE_WINDOW: Duration = Duration::from_secs(60);
/// A live session is re-read for the index at most this often (a bulk transfer seals many
/// segments a second; each re-read reads and verifies the whole recording so far).
const LIVE_REINDEX: Duration = Duration::from_secs(30);
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// The indexer's inputs.
pub struct Indexer {
    /// The index.
    pub broker: Arc<Broker>,
    /// The recordings.
    pub archive: Archive,
    /// The node's recording key (public half), to verify what is indexed.
    pub key: VerifyingKey,
    /// How often to look.
    pub interval: Duration,
    /// Delete recordings older than this.
    pub retention: Option<Duration>,
}

/// A session the gateway reported ended (a `session_ended` event): when its recording has no
/// manifest (the recorder failed, or the node is shutting down), it is not live any more.
#[derive(Debug, Clone)]
pub struct Ended {
    /// When the gateway ended it.
    pub at: OffsetDateTime,
    /// Why, in words.
    pub reason: String,
}

/// What the indexer remembers between passes.
#[derive(Debug, Default)]
pub struct Memory {
    /// Sessions the gateway reported ended, by id.
    ended: HashMap<String, Ended>,
    /// When each live session was last indexed.
    live: HashMap<String, OffsetDateTime>,
}

impl Memory {
    /// Forgets what is needed no longer: past the live window a recording without a
    /// manifest is incomplete anyway, and a live session is re-indexed within minutes.
    fn prune(&mut self, now: OffsetDateTime) {
        self.ended.retain(|_, e| now - e.at < LIVE_WINDOW * 2);
        self.live.retain(|_, at| now - *at < LIVE_REINDEX * 10);
    }
}

/// Where a recording stands, from its files and what the gateway reported.
fn state_of(files: &[SessionFile], ended: Option<&Ended>, now: OffsetDateTime) -> SessionState {
    let last_write = files.iter().map(|f| f.modified).max().unwrap_or(now);
    if files.iter().any(|f| f.name == MANIFEST) {
        SessionState::Ended
    } else if ended.is_none() && now - last_write < LIVE_WINDOW {
        SessionState::Live
    } else {
        SessionState::Incomplete
    }
}

/// Whether `name` is a stream file of a segment that has no seal yet (it grows on every flush).
fn is_open_segment(name: &str, files: &[SessionFile]) -> bool {
    let Some(file) = parse_file_name(name) else {
        return false;
    };
    let seal = file_name(Part::Seal, file.segment, false);
    file.part != Part::Seal && !file.compressed && !files.iter().any(|f| f.name == seal)
}

/// Changes when a segment is sealed, the manifest appears, a sealed file changes, or the
/// state changes: then the entry is rebuilt. The open segment's growth alone does not count,
/// so a live session is re-read once per sealed segment, not on every flush (and at most
/// every [`LIVE_REINDEX`]).
fn fingerprint(files: &[SessionFile], state: SessionState) -> String {
    let mut listing = format!("{state:?}\n");
    for file in files {
        if is_open_segment(&file.name, files) {
            listing.push_str(&format!("{}\n", file.name));
        } else {
            listing.push_str(&format!("{}:{}\n", file.name, file.size));
        }
    }
    hex(&sha256(listing.as_bytes()))
}

fn millis(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

/// The index entry of a recording.
fn entry(
    recording: &Recording,
    files: &[SessionFile],
    state: SessionState,
    ended: Option<&Ended>,
) -> Option<SessionIndex> {
    let info = recording.info.as_ref()?;
    let v = &recording.verification;
    let manifest = recording.manifest.as_ref();
    let count = |kind: &str| {
        recording
            .events
            .iter()
            .filter(|l| l.event.kind() == kind)
            .count() as i64
    };
    let counts = manifest.map(|m| m.counts.clone()).unwrap_or_default();
    let session = RecordedSession {
        id: recording.id.clone(),
        grant: info.grant,
        vendor: info.vendor.clone(),
        asset: info.asset.clone(),
        zone: info.zone.clone(),
        protocol: info.protocol.clone(),
        client: info.client.clone(),
        started_at: info.started_at,
        ended_at: manifest.map(|m| m.ended_at).or(ended.map(|e| e.at)),
        end_reason: manifest
            .map(|m| m.end_reason.describe())
            .or(ended.map(|e| e.reason.clone())),
        state,
        verification: match v.status {
            Status::Ok => "ok",
            Status::Incomplete => "incomplete",
            Status::Failed => "failed",
        }
        .into(),
        findings: if v.status == Status::Ok {
            String::new()
        } else {
            v.problems
                .iter()
                .map(ToString::to_string)
                .chain(v.notes.iter().cloned())
                .collect::<Vec<_>>()
                .join("; ")
        },
        duration_ms: millis(manifest.map_or(v.intact_until, |m| m.duration)),
        events: recording.events.len() as i64,
        commands: count("command"),
        denials: i64::try_from(counts.denials).unwrap_or(i64::MAX),
        alerts: count("alert"),
        output_bytes: i64::try_from(counts.output_bytes).unwrap_or(i64::MAX),
        input_bytes: i64::try_from(counts.input_bytes).unwrap_or(i64::MAX),
        stored_bytes: files.iter().map(|f| f.size as i64).sum(),
    };
    let text = fragments(recording, TEXT_BUDGET)
        .into_iter()
        .map(|f| IndexedText {
            offset_ms: millis(f.offset),
            kind: f.kind.as_str().into(),
            body: f.text,
        })
        .collect();
    Some(SessionIndex {
        session,
        fingerprint: fingerprint(files, state),
        text,
    })
}

impl Indexer {
    /// One pass: indexes every recording that changed; returns how many were indexed.
    /// `memory` holds what the gateway reported and when live sessions were last indexed.
    pub async fn index_once(&self, memory: &mut Memory) -> Result<usize> {
        let now = OffsetDateTime::now_utc();
        let mut indexed = 0;
        let known = self.broker.session_fingerprints().await?;
        for (id, files) in self.archive.sessions().await? {
            let gone = memory.ended.get(&id);
            let state = state_of(&files, gone, now);
            let print = fingerprint(&files, state);
            if known.get(&id) == Some(&print) {
                continue;
            }
            let recent = memory
                .live
                .get(&id)
                .is_some_and(|at| now - *at < LIVE_REINDEX);
            if state == SessionState::Live && recent {
                continue;
            }
            let recording = match read(&self.archive, &id, Some(&self.key)).await {
                Ok(recording) => recording,
                Err(error) => {
                    tracing::warn!(session = %id, %error, "recording could not be read for the index");
                    continue;
                }
            };
            match entry(&recording, &files, state, gone) {
                Some(entry) => {
                    self.broker.index_session(entry).await?;
                    indexed += 1;
                    if state == SessionState::Live {
                        memory.live.insert(id, now);
                    } else {
                        memory.live.remove(&id);
                    }
                }
                None => {
                    tracing::warn!(session = %id, findings = %recording.verification.render(), "recording has no readable first line; not indexed");
                }
            }
        }
        Ok(indexed)
    }

    /// Applies retention once; returns how many recordings were deleted.
    pub async fn expire_once(&self) -> Result<usize> {
        let Some(keep) = self.retention else {
            return Ok(0);
        };
        let expired = expire(&self.archive, keep, OffsetDateTime::now_utc()).await?;
        for gone in &expired {
            self.broker
                .unindex_session(
                    &gone.session,
                    gone.last_written,
                    &format_duration(keep),
                    gone.files as u64,
                )
                .await?;
            tracing::info!(session = %gone.session, "recording deleted by retention");
        }
        Ok(expired.len())
    }

    /// Runs until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retention = tokio::time::interval(RETENTION_EVERY);
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A session that starts or ends is indexed at once, so engineers can act on it.
        let mut events = self.broker.subscribe();
        let mut memory = Memory::default();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                event = events.recv() => {
                    let relevant = match &event {
                        Ok(stored) => match &stored.event.kind {
                            EventKind::SessionStarted { .. } => true,
                            EventKind::SessionEnded { session, reason, .. } => {
                                memory.ended.insert(session.clone(), Ended { at: stored.event.at, reason: reason.clone() });
                                true
                            }
                            _ => false,
                        },
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    };
                    if relevant && let Err(error) = self.index_once(&mut memory).await {
                        tracing::error!(%error, "indexing recordings failed");
                    }
                }
                _ = tick.tick() => {
                    memory.prune(OffsetDateTime::now_utc());
                    if let Err(error) = self.index_once(&mut memory).await {
                        tracing::error!(%error, "indexing recordings failed");
                    }
                }
                _ = retention.tick() => {
                    if let Err(error) = self.expire_once().await {
                        tracing::error!(%error, "applying recording retention failed");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64) -> SessionFile {
        SessionFile {
            name: name.into(),
            size,
            modified: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_recording_without_manifest_is_live_until_the_gateway_reports_its_end() {
        let now = OffsetDateTime::UNIX_EPOCH + LIVE_WINDOW / 2;
        let files = vec![file("terminal.000001.cast", 10)];
        assert_eq!(state_of(&files, None, now), SessionState::Live);
        let ended = Ended {
            at: now,
            reason: "recording failed: disk full".into(),
        };
        assert_eq!(
            state_of(&files, Some(&ended), now),
            SessionState::Incomplete
        );
        assert_eq!(
            state_of(&files, None, now + LIVE_WINDOW),
            SessionState::Incomplete
        );
        let mut sealed = files.clone();
        sealed.push(file(MANIFEST, 100));
        assert_eq!(state_of(&sealed, Some(&ended), now), SessionState::Ended);
    }

    #[test]
    fn a_live_recording_is_reindexed_per_sealed_segment_not_per_flush() {
        let live = SessionState::Live;
        let open = |size| {
            vec![
                file("terminal.000001.cast", size),
                file("events.000001.jsonl", size),
            ]
        };
        assert_eq!(fingerprint(&open(10), live), fingerprint(&open(900), live));
        assert_ne!(
            fingerprint(&open(10), live),
            fingerprint(&open(10), SessionState::Incomplete)
        );
        let mut sealed = open(10);
        sealed.push(file("seal.000001.json", 300));
        assert_ne!(fingerprint(&open(10), live), fingerprint(&sealed, live));
        // Sealed plain files (compression off) count with their size: a change is seen.
        let mut changed = sealed.clone();
        changed[0].size = 11;
        assert_ne!(fingerprint(&sealed, live), fingerprint(&changed, live));
    }
}
