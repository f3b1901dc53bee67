//! Keeps the broker's session index in step with the recordings: every interval, each
//! recording whose files changed is read, verified with the node's recording key, rendered
//! to searchable text and indexed; retention deletes expired recordings and records an
//! event for each.

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

/// Where a recording stands, from its files alone.
fn state_of(files: &[SessionFile], now: OffsetDateTime) -> SessionState {
    let last_write = files.iter().map(|f| f.modified).max().unwrap_or(now);
    if files.iter().any(|f| f.name == MANIFEST) {
        SessionState::Ended
    } else if now - last_write < LIVE_WINDOW {
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
/// so a live session is re-read once per sealed segment, not on every flush.
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
        ended_at: manifest.map(|m| m.ended_at),
        end_reason: manifest.map(|m| m.end_reason.describe()),
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
    pub async fn index_once(&self) -> Result<usize> {
        let now = OffsetDateTime::now_utc();
        let mut indexed = 0;
        let known = self.broker.session_fingerprints().await?;
        for (id, files) in self.archive.sessions().await? {
            let state = state_of(&files, now);
            let print = fingerprint(&files, state);
            if known.get(&id) == Some(&print) {
                continue;
            }
            let recording = match read(&self.archive, &id, Some(&self.key)).await {
                Ok(recording) => recording,
                Err(error) => {
                    tracing::warn!(session = %id, %error, "recording could not be read for the index");
                    continue;
                }
            };
            match entry(&recording, &files, state) {
                Some(entry) => {
                    self.broker.index_session(entry).await?;
                    indexed += 1;
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
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                event = events.recv() => {
                    let relevant = match &event {
                        Ok(stored) => matches!(
                            stored.event.kind,
                            EventKind::SessionStarted { .. } | EventKind::SessionEnded { .. }
                        ),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    };
                    if relevant && let Err(error) = self.index_once().await {
                        tracing::error!(%error, "indexing recordings failed");
                    }
                }
                _ = tick.tick() => {
                    if let Err(error) = self.index_once().await {
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
