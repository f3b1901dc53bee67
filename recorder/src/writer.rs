//! The recording writer: one async task per session behind a queue bounded in bytes.
//!
//! The gateway calls [`SessionRecorder`] methods, which never wait: they enqueue or fail. If
//! the queue's byte budget is exhausted (the writer fell behind) or a write or upload fails,
//! the recorder says so through [`SessionRecorder::failure`] and every later call returns an
//! error: the session must end (fail closed). The writer flushes on an interval, cuts
//! segments by size and age, seals them (fsync, digest, signature), uploads them when the
//! storage is remote (keeping the local spool until the upload is confirmed), and writes the
//! signed manifest at the end, whatever ended the session.

mod segment;
mod tap;
mod upload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot, watch};
// Tokio's clock: the same as std's at run time, and pausable (the benchmark writes an
// hour-long recording in seconds).
use tokio::time::Instant;

use crate::cast::{Code, Frame, Header, Utf8Stream};
use crate::chain::{Hash, genesis, hex, seal_line, sign_document};
use crate::error::RecorderError;
use crate::key::RecordingKey;
use crate::layout::{MANIFEST, valid_session_id};
use crate::model::{
    Counts, EndReason, FORMAT_VERSION, Manifest, SegmentEntry, SessionEvent, SessionInfo, Verdict,
};
use crate::storage::Storage;
use crate::storage::local::write_atomically;
use segment::Segment;
pub use tap::EventTap;
use upload::Uploader;

/// Tuning of the writer.
#[derive(Clone, Debug, PartialEq)]
pub struct RecorderConfig {
    /// Seal a segment when its two streams hold this many bytes.
    pub segment_bytes: usize,
    /// Seal a segment when it is this old.
    pub segment_duration: Duration,
    /// Append to the open segment's files this often.
    pub flush_interval: Duration,
    /// How many bytes may wait in a session's queue before the session is failed.
    pub queue_bytes: usize,
    /// zstd-compress sealed segments.
    pub compress: bool,
    /// Attempts per upload to remote storage before the session is failed.
    pub upload_attempts: u32,
    /// How long [`SessionRecorder::output_paced`] waits for room before the writer counts as
    /// stuck and the session is failed.
    pub stall: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 4 * 1024 * 1024,
            segment_duration: Duration::from_secs(300),
            flush_interval: Duration::from_secs(1),
            queue_bytes: 8 * 1024 * 1024,
            compress: true,
            upload_attempts: 3,
            stall: Duration::from_secs(5),
        }
    }
}

/// One line of `events.NNNNNN.jsonl` (without its `hash`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventLine {
    /// Position in the session's log, from 0.
    pub seq: u64,
    /// Seconds since the start (the terminal stream's clock).
    pub t: f64,
    /// Wall-clock time.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The event.
    #[serde(flatten)]
    pub event: SessionEvent,
}

/// Records sessions into a spool directory and a storage backend.
#[derive(Debug, Clone)]
pub struct Recorder {
    spool: PathBuf,
    storage: Arc<dyn Storage>,
    key: Arc<RecordingKey>,
    config: RecorderConfig,
    live: Arc<tap::Live>,
}

enum Message {
    Frame {
        t: f64,
        code: Code,
        data: Vec<u8>,
        _permit: OwnedSemaphorePermit,
    },
    Event {
        t: f64,
        at: OffsetDateTime,
        event: SessionEvent,
        _permit: OwnedSemaphorePermit,
    },
    Lost {
        t: f64,
        reason: String,
    },
    Finish(EndReason, oneshot::Sender<Result<Manifest, RecorderError>>),
    /// Flush what is recorded so far to disk, then follow what comes next.
    Watch(oneshot::Sender<broadcast::Receiver<LiveChunk>>),
}

/// How many chunks a watcher may fall behind before it misses some (and is told).
const WATCH_BACKLOG: usize = 4096;

/// What a watcher of a live session sees after [`Recorder::watch`]: exactly what is
/// recorded from then on, in order.
#[derive(Clone, Debug)]
pub enum LiveChunk {
    /// Terminal output, as recorded (UTF-8 text).
    Output {
        /// Seconds from the start.
        t: f64,
        /// The text.
        text: Arc<str>,
    },
    /// The terminal was resized.
    Resize {
        /// Seconds from the start.
        t: f64,
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// A typed event.
    Event {
        /// Seconds from the start.
        t: f64,
        /// The event.
        event: Arc<SessionEvent>,
    },
}

/// How long a finishing recording waits for the tap to catch up with the session.
const TAP_GRACE: Duration = Duration::from_secs(1);

/// The gateway's handle on one session's recording.
#[derive(Debug)]
pub struct SessionRecorder {
    live: Arc<tap::Live>,
    told: bool,
    id: String,
    started: Instant,
    tx: mpsc::UnboundedSender<Message>,
    budget: Arc<Semaphore>,
    queue_bytes: usize,
    stall: Duration,
    failure: Arc<watch::Sender<Option<String>>>,
}

fn micros(t: f64) -> f64 {
    (t * 1e6).round() / 1e6
}

impl Recorder {
    /// A recorder writing under `spool` (ignored when `storage` is a local directory: the
    /// directory is then the spool) and keeping sealed files in `storage`.
    pub fn new(
        spool: PathBuf,
        storage: Arc<dyn Storage>,
        key: Arc<RecordingKey>,
        config: RecorderConfig,
    ) -> Self {
        let spool = storage.local_root().map(PathBuf::from).unwrap_or(spool);
        Self {
            spool,
            storage,
            key,
            config,
            live: Arc::default(),
        }
    }

    /// The same recorder with a tap that sees every session's typed events as they are
    /// recorded. Set it before the first session starts.
    pub fn with_tap(mut self, tap: Arc<dyn EventTap>) -> Self {
        self.live = Arc::new(tap::Live::with(tap));
        self
    }

    /// Writes `event` into the log of live session `id` (an alert from the detector);
    /// false when the session is not live here or its recording queue is full.
    pub fn annotate(&self, id: &str, event: SessionEvent) -> bool {
        self.live.annotate(id, event)
    }

    /// Follows live session `id`: flushes what is recorded so far to the spool (so reading
    /// the recording now gives everything up to this point) and returns what is recorded
    /// from then on. `None` when the session is not live here.
    pub async fn watch(&self, id: &str) -> Option<broadcast::Receiver<LiveChunk>> {
        let tx = self.live.sender(id)?;
        let (reply, answer) = oneshot::channel();
        tx.send(Message::Watch(reply)).ok()?;
        answer.await.ok()
    }

    /// The storage backend.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The spool directory.
    pub fn spool(&self) -> &std::path::Path {
        &self.spool
    }

    /// Starts recording a session: creates its directory and writes the header and the
    /// first event line to disk before returning, so a session that cannot be recorded
    /// never starts.
    pub async fn start(&self, info: SessionInfo) -> Result<SessionRecorder, RecorderError> {
        if !valid_session_id(&info.id) {
            return Err(RecorderError::BadSessionId(info.id));
        }
        let prefix = format!("{}/", info.id);
        if !self.storage.list(&prefix).await?.is_empty() {
            return Err(RecorderError::Exists(info.id));
        }
        let dir = self.spool.join(&info.id);
        let header = Header {
            version: 2,
            width: info.width,
            height: info.height,
            timestamp: Some(info.started_at.unix_timestamp()),
            title: Some(info.title()),
            env: info.env.clone(),
        };
        let mut state = Writer {
            id: info.id.clone(),
            dir: dir.clone(),
            info: info.clone(),
            key: self.key.clone(),
            config: self.config.clone(),
            segment: Segment::new(&dir, 1, 0),
            opened: Instant::now(),
            sealed: Vec::new(),
            chain: genesis(&info.id),
            seq: 0,
            last_t: 0.0,
            counts: Counts::default(),
            output: Utf8Stream::default(),
            input: Utf8Stream::default(),
            uploader: None,
            watchers: broadcast::channel(WATCH_BACKLOG).0,
        };
        let mut head = serde_json::to_vec(&header)
            .map_err(|e| RecorderError::Invalid(format!("asciicast header: {e}")))?;
        head.push(b'\n');
        state.segment.terminal = head;
        state.line(
            0.0,
            info.started_at,
            SessionEvent::RecordingStarted {
                session: info.clone(),
            },
        )?;
        let mut state = tokio::task::spawn_blocking(move || {
            if let Some(root) = state.dir.parent() {
                std::fs::create_dir_all(root).map_err(|e| RecorderError::io(root, e))?;
            }
            match std::fs::create_dir(&state.dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(RecorderError::Exists(state.id.clone()));
                }
                Err(e) => return Err(RecorderError::io(&state.dir, e)),
            }
            state
                .segment
                .flush()
                .map_err(|e| RecorderError::io(&state.dir, e))?;
            Ok(state)
        })
        .await
        .map_err(|e| RecorderError::Failed(e.to_string()))??;
        let (failure, _) = watch::channel(None);
        let failure = Arc::new(failure);
        if self.storage.local_root().is_none() {
            state.uploader = Some(Uploader::start(
                self.storage.clone(),
                dir,
                info.id.clone(),
                self.config.upload_attempts,
                failure.clone(),
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(state.run(rx, failure.clone()));
        let budget = Arc::new(Semaphore::new(self.config.queue_bytes));
        let started = Instant::now();
        self.live.opened(&info, &tx, &budget, started);
        Ok(SessionRecorder {
            live: self.live.clone(),
            told: false,
            id: info.id,
            started,
            tx,
            budget,
            queue_bytes: self.config.queue_bytes,
            stall: self.config.stall,
            failure,
        })
    }
}

impl Drop for SessionRecorder {
    fn drop(&mut self) {
        self.live.closed(&self.id, self.told);
    }
}

impl SessionRecorder {
    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seconds since the recording started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Resolves to `Some(reason)` once recording has failed; the session must then end.
    pub fn failure(&self) -> watch::Receiver<Option<String>> {
        self.failure.subscribe()
    }

    fn check(&self) -> Result<(), RecorderError> {
        match self.failure.borrow().as_ref() {
            Some(reason) => Err(RecorderError::Failed(reason.clone())),
            None => Ok(()),
        }
    }

    fn cost(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.clamp(64, self.queue_bytes)).unwrap_or(u32::MAX)
    }

    /// The writer fell behind: the session fails, and the log says data was lost.
    fn lagging(&self) -> RecorderError {
        let reason = format!(
            "the writer fell behind by more than {} bytes; data after this point was not recorded",
            self.queue_bytes
        );
        self.failure.send_replace(Some(reason.clone()));
        let _ = self.tx.send(Message::Lost {
            t: self.elapsed(),
            reason,
        });
        RecorderError::Lagging(self.queue_bytes)
    }

    fn permit(&self, bytes: usize) -> Result<OwnedSemaphorePermit, RecorderError> {
        self.check()?;
        self.budget
            .clone()
            .try_acquire_many_owned(self.cost(bytes))
            .map_err(|_| self.lagging())
    }

    fn send(&self, message: Message) -> Result<(), RecorderError> {
        self.tx
            .send(message)
            .map_err(|_| RecorderError::Failed("the recording writer has stopped".into()))
    }

    fn frame(&self, code: Code, data: &[u8]) -> Result<(), RecorderError> {
        let permit = self.permit(data.len())?;
        self.send(Message::Frame {
            t: self.elapsed(),
            code,
            data: data.to_vec(),
            _permit: permit,
        })
    }

    /// Records terminal output (asset to vendor).
    pub fn output(&self, data: &[u8]) -> Result<(), RecorderError> {
        self.frame(Code::Output, data)
    }

    /// Records terminal output, waiting for room in the queue: a fast stream is paced by the
    /// recorder (the caller stops reading, so SSH flow control slows the sender), and only a
    /// writer that makes no room for [`RecorderConfig::stall`] fails the session.
    pub async fn output_paced(&self, data: &[u8]) -> Result<(), RecorderError> {
        self.check()?;
        let waited = tokio::time::timeout(
            self.stall,
            self.budget
                .clone()
                .acquire_many_owned(self.cost(data.len())),
        )
        .await;
        let permit = match waited {
            Ok(Ok(permit)) => permit,
            _ => return Err(self.lagging()),
        };
        self.send(Message::Frame {
            t: self.elapsed(),
            code: Code::Output,
            data: data.to_vec(),
            _permit: permit,
        })
    }

    /// Records an event carrying `bytes` of data (a capture), waiting for room in the queue
    /// like [`Self::output_paced`].
    pub async fn event_paced(
        &self,
        event: SessionEvent,
        bytes: usize,
    ) -> Result<(), RecorderError> {
        self.check()?;
        let waited = tokio::time::timeout(
            self.stall,
            self.budget
                .clone()
                .acquire_many_owned(self.cost(bytes.max(256))),
        )
        .await;
        let permit = match waited {
            Ok(Ok(permit)) => permit,
            _ => return Err(self.lagging()),
        };
        self.send(Message::Event {
            t: self.elapsed(),
            at: OffsetDateTime::now_utc(),
            event,
            _permit: permit,
        })
    }

    /// Records terminal input (vendor to asset).
    pub fn input(&self, data: &[u8]) -> Result<(), RecorderError> {
        self.frame(Code::Input, data)
    }

    /// Records a terminal resize (in the terminal stream and the event log).
    pub fn resize(&self, cols: u16, rows: u16) -> Result<(), RecorderError> {
        self.frame(Code::Resize, format!("{cols}x{rows}").as_bytes())?;
        self.event(SessionEvent::Resize { cols, rows })
    }

    /// Records a typed event (and shows it to the tap, if any).
    pub fn event(&self, event: SessionEvent) -> Result<(), RecorderError> {
        let permit = self.permit(256)?;
        let at = OffsetDateTime::now_utc();
        self.live.tapped(&self.id, at, &event);
        self.send(Message::Event {
            t: self.elapsed(),
            at,
            event,
            _permit: permit,
        })
    }

    /// Ends the recording: writes the last line, seals the last segment, writes and uploads
    /// the signed manifest. Works after a failure too, as far as storage allows.
    pub async fn finish(mut self, reason: EndReason) -> Result<Manifest, RecorderError> {
        if let Some(caught_up) = self.live.closing(&self.id) {
            self.told = true;
            // The tap's last word on the session (an alert) belongs before the last line.
            let _ = tokio::time::timeout(TAP_GRACE, caught_up).await;
        }
        let (tx, rx) = oneshot::channel();
        self.send(Message::Finish(reason, tx))?;
        rx.await
            .map_err(|_| RecorderError::Failed("the recording writer has stopped".into()))?
    }
}

/// The writer task's state.
struct Writer {
    id: String,
    dir: PathBuf,
    info: SessionInfo,
    key: Arc<RecordingKey>,
    config: RecorderConfig,
    segment: Segment,
    opened: Instant,
    sealed: Vec<SegmentEntry>,
    chain: Hash,
    seq: u64,
    last_t: f64,
    counts: Counts,
    output: Utf8Stream,
    input: Utf8Stream,
    uploader: Option<Uploader>,
    watchers: broadcast::Sender<LiveChunk>,
}

impl Writer {
    fn clock(&mut self, t: f64) -> f64 {
        // Calls from several tasks may race; the log never goes back in time.
        self.last_t = micros(t.max(self.last_t));
        self.last_t
    }

    fn line(
        &mut self,
        t: f64,
        at: OffsetDateTime,
        event: SessionEvent,
    ) -> Result<(), RecorderError> {
        let t = self.clock(t);
        match &event {
            SessionEvent::Command { verdict, .. } => {
                self.counts.commands += 1;
                if *verdict == Verdict::Denied {
                    self.counts.denials += 1;
                }
            }
            SessionEvent::Modbus {
                verdict: Verdict::Denied,
                ..
            }
            | SessionEvent::Forward {
                verdict: Verdict::Denied,
                ..
            }
            | SessionEvent::FileTransfer {
                verdict: Verdict::Denied,
                ..
            } => self.counts.denials += 1,
            SessionEvent::Alert { .. } => self.counts.alerts += 1,
            _ => {}
        }
        if self.watchers.receiver_count() > 0 {
            let _ = self.watchers.send(LiveChunk::Event {
                t,
                event: Arc::new(event.clone()),
            });
        }
        let content = serde_json::to_string(&EventLine {
            seq: self.seq,
            t,
            at,
            event,
        })
        .map_err(|e| RecorderError::Invalid(format!("event: {e}")))?;
        let (line, hash) = seal_line(&self.chain, &content);
        self.segment.events.extend_from_slice(line.as_bytes());
        self.segment.events.push(b'\n');
        self.segment.lines += 1;
        self.chain = hash;
        self.seq += 1;
        self.counts.events += 1;
        Ok(())
    }

    fn frame(&mut self, t: f64, code: Code, data: &[u8]) {
        let text = match code {
            Code::Output => {
                self.counts.output_frames += 1;
                self.counts.output_bytes += data.len() as u64;
                self.output.push(data)
            }
            Code::Input => {
                self.counts.input_frames += 1;
                self.counts.input_bytes += data.len() as u64;
                self.input.push(data)
            }
            Code::Resize | Code::Marker => String::from_utf8_lossy(data).into_owned(),
        };
        self.text(t, code, text);
    }

    fn text(&mut self, t: f64, code: Code, text: String) {
        if text.is_empty() {
            return;
        }
        let t = self.clock(t);
        if self.watchers.receiver_count() > 0 {
            let chunk = match code {
                Code::Output => Some(LiveChunk::Output {
                    t,
                    text: Arc::from(text.as_str()),
                }),
                Code::Resize => crate::cast::parse_size(&text)
                    .map(|(cols, rows)| LiveChunk::Resize { t, cols, rows }),
                Code::Input | Code::Marker => None,
            };
            if let Some(chunk) = chunk {
                let _ = self.watchers.send(chunk);
            }
        }
        let line = Frame {
            t,
            code,
            data: text,
        }
        .to_line();
        self.segment.terminal.extend_from_slice(line.as_bytes());
        self.segment.terminal.push(b'\n');
    }

    async fn blocking<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut Segment) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, RecorderError> {
        let mut segment = std::mem::replace(&mut self.segment, Segment::new(&self.dir, 0, 0));
        let (segment, result) = tokio::task::spawn_blocking(move || {
            let result = work(&mut segment);
            (segment, result)
        })
        .await
        .map_err(|e| RecorderError::Failed(e.to_string()))?;
        self.segment = segment;
        result.map_err(|e| RecorderError::io(&self.dir, e))
    }

    async fn flush(&mut self) -> Result<(), RecorderError> {
        self.blocking(Segment::flush).await
    }

    async fn seal(&mut self) -> Result<(), RecorderError> {
        let next = Segment::new(&self.dir, self.segment.number + 1, self.seq);
        let segment = std::mem::replace(&mut self.segment, next);
        let (id, compress, key, chain, until) = (
            self.id.clone(),
            self.config.compress,
            self.key.clone(),
            self.chain,
            self.last_t,
        );
        let sealed =
            tokio::task::spawn_blocking(move || segment.seal(&id, compress, &key, &chain, until))
                .await
                .map_err(|e| RecorderError::Failed(e.to_string()))?
                .map_err(|e| RecorderError::io(&self.dir, e))?;
        self.opened = Instant::now();
        if let Some(uploader) = &self.uploader {
            uploader.send(sealed.files);
        }
        self.sealed.push(sealed.entry);
        Ok(())
    }

    async fn handle(&mut self, message: Message) -> Result<(), RecorderError> {
        match message {
            Message::Frame { t, code, data, .. } => self.frame(t, code, &data),
            Message::Event { t, at, event, .. } => self.line(t, at, event)?,
            Message::Lost { t, reason } => {
                self.line(
                    t,
                    OffsetDateTime::now_utc(),
                    SessionEvent::RecordingFailed { reason },
                )?;
                self.flush().await?;
            }
            Message::Watch(reply) => {
                self.flush().await?;
                let _ = reply.send(self.watchers.subscribe());
            }
            Message::Finish(..) => {}
        }
        if self.segment.size() >= self.config.segment_bytes {
            self.seal().await?;
        }
        Ok(())
    }

    async fn finish(&mut self, reason: EndReason) -> Result<Manifest, RecorderError> {
        let (output, input) = (self.output.finish(), self.input.finish());
        self.text(self.last_t, Code::Output, output);
        self.text(self.last_t, Code::Input, input);
        self.line(
            self.last_t,
            OffsetDateTime::now_utc(),
            SessionEvent::RecordingEnded {
                reason: reason.clone(),
                output_bytes: self.counts.output_bytes,
                input_bytes: self.counts.input_bytes,
            },
        )?;
        self.seal().await?;
        let manifest = Manifest {
            format: FORMAT_VERSION,
            session: self.info.clone(),
            ended_at: OffsetDateTime::now_utc(),
            end_reason: reason,
            counts: self.counts.clone(),
            stored_bytes: self
                .sealed
                .iter()
                .map(|s| s.seal.bytes + s.terminal.bytes + s.events.bytes)
                .sum(),
            segments: self.sealed.clone(),
            chain: hex(&self.chain),
            last_seq: self.seq.saturating_sub(1),
            duration: self.last_t,
            key: self.key.verifying_key().fingerprint(),
        };
        let content = serde_json::to_string(&manifest)
            .map_err(|e| RecorderError::Invalid(format!("manifest: {e}")))?;
        let document = sign_document(&content, |bytes| self.key.sign(bytes));
        let path = self.dir.join(MANIFEST);
        let write_path = path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&write_path, document.as_bytes()))
            .await
            .map_err(|e| RecorderError::Failed(e.to_string()))?
            .map_err(|e| RecorderError::io(&path, e))?;
        if let Some(uploader) = self.uploader.take() {
            uploader.send(vec![MANIFEST.to_owned()]);
            uploader.finish().await?;
        }
        Ok(manifest)
    }

    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Message>,
        failure: Arc<watch::Sender<Option<String>>>,
    ) {
        let mut tick = tokio::time::interval(self.config.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut broken: Option<String> = None;
        loop {
            let step = tokio::select! {
                message = rx.recv() => match message {
                    Some(Message::Finish(reason, reply)) => {
                        let result = match &broken {
                            Some(reason) => Err(RecorderError::Failed(reason.clone())),
                            None => self.finish(reason).await,
                        };
                        if let Err(error) = &result {
                            failure.send_replace(Some(error.to_string()));
                        }
                        let _ = reply.send(result);
                        return;
                    }
                    Some(message) if broken.is_none() => self.handle(message).await,
                    Some(_) => Ok(()),
                    None => {
                        if broken.is_none()
                            && let Err(error) = self.finish(EndReason::Abandoned).await
                        {
                            tracing::error!(session = %self.id, %error, "recording could not be finished");
                        }
                        return;
                    }
                },
                _ = tick.tick(), if broken.is_none() => {
                    let result = self.flush().await;
                    if result.is_ok()
                        && self.segment.size() > 0
                        && self.opened.elapsed() >= self.config.segment_duration
                    {
                        self.seal().await
                    } else {
                        result
                    }
                }
            };
            if let Err(error) = step {
                tracing::error!(session = %self.id, %error, "recording failed");
                failure.send_replace(Some(error.to_string()));
                broken = Some(error.to_string());
            }
        }
    }
}
