//! Reads a recording back and verifies it: every seal and the manifest against the key,
//! every file against its digest, every event line against the chain. Nothing in the files
//! is trusted: sizes are bounded, every problem is named with its file and line, and the
//! intact part (up to the first broken segment) stays available for replay.

use std::collections::BTreeMap;
use std::io::Read as _;

use serde::Serialize;

use crate::archive::{Archive, SessionFile};
use crate::cast::{Frame, Header};
use crate::chain::{Hash, genesis, hex, open_document, open_line, parse_hash, sha256};
use crate::error::RecorderError;
use crate::key::VerifyingKey;
use crate::layout::{MANIFEST, Part, file_name, parse_file_name};
use crate::model::{FileDigest, Manifest, Seal, SessionEvent, SessionInfo};
use crate::writer::EventLine;

/// Largest decompressed segment accepted.
const MAX_SEGMENT: u64 = 256 * 1024 * 1024;
/// Largest line accepted.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// The outcome of verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every file, line and signature checks out and the manifest is there.
    Ok,
    /// Nothing was altered, but the recording did not finish (crash, kill, power loss):
    /// no manifest, and possibly an unsigned tail.
    Incomplete,
    /// Something was altered, removed or cannot be read.
    Failed,
}

/// One thing wrong, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file (or `-` for the recording as a whole).
    pub file: String,
    /// The line, from 1, when it is about one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// What verification found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verification {
    /// The session.
    pub session: String,
    /// Overall.
    pub status: Status,
    /// Whether signatures were checked (a key was given).
    pub signatures_checked: bool,
    /// Segments found.
    pub segments: u32,
    /// Segments whose seal checks out.
    pub sealed: u32,
    /// Event lines that check out.
    pub events: u64,
    /// Recording time (seconds) up to which everything is sealed and intact.
    pub intact_until: f64,
    /// Failures.
    pub problems: Vec<Problem>,
    /// Facts that are not failures (an unsigned tail, a missing manifest after a crash).
    pub notes: Vec<String>,
}

impl Verification {
    /// `ok`, or each problem on its own line.
    pub fn render(&self) -> String {
        let mut out = match self.status {
            Status::Ok => format!(
                "{}: ok ({} segments, {} events, {:.1} s{})",
                self.session,
                self.segments,
                self.events,
                self.intact_until,
                if self.signatures_checked {
                    ""
                } else {
                    ", signatures NOT checked"
                }
            ),
            Status::Incomplete => format!("{}: INCOMPLETE", self.session),
            Status::Failed => format!("{}: FAILED", self.session),
        };
        for problem in &self.problems {
            out.push_str(&format!("\n  - {problem}"));
        }
        for note in &self.notes {
            out.push_str(&format!("\n  - {note}"));
        }
        out
    }
}

/// A recording read back.
#[derive(Clone, Debug)]
pub struct Recording {
    /// The session id.
    pub id: String,
    /// Who, where, when (from the first event line).
    pub info: Option<SessionInfo>,
    /// The asciicast header.
    pub header: Option<Header>,
    /// The manifest, when the session finished.
    pub manifest: Option<Manifest>,
    /// Terminal frames of the intact part.
    pub frames: Vec<Frame>,
    /// Event lines of the intact part.
    pub events: Vec<EventLine>,
    /// What verification found.
    pub verification: Verification,
    /// Files as stored.
    pub files: Vec<SessionFile>,
}

struct Reader<'a> {
    archive: &'a Archive,
    id: &'a str,
    key: Option<&'a VerifyingKey>,
    problems: Vec<Problem>,
    notes: Vec<String>,
    /// False from the first broken segment on: later content is not used.
    intact: bool,
}

fn problem(file: &str, line: Option<u64>, message: impl Into<String>) -> Problem {
    Problem {
        file: file.to_owned(),
        line,
        message: message.into(),
    }
}

fn decompress(data: &[u8]) -> Result<Vec<u8>, String> {
    let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    decoder
        .take(MAX_SEGMENT + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not valid zstd: {e}"))?;
    if out.len() as u64 > MAX_SEGMENT {
        return Err(format!("decompresses to more than {MAX_SEGMENT} bytes"));
    }
    Ok(out)
}

/// Splits into lines; the flag says whether the last line lacks its newline (cut off).
fn lines(data: &[u8]) -> (Vec<&[u8]>, bool) {
    let mut parts: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    let cut = match parts.last() {
        Some([]) => {
            parts.pop();
            false
        }
        Some(_) => true,
        None => false,
    };
    (parts, cut)
}

impl Reader<'_> {
    /// The complete lines of `data`. A last line without its newline was cut off: in a sealed
    /// file that is a failure (`None`), in the open segment the expected mark of a crash.
    fn complete_lines<'d>(
        &mut self,
        file: &str,
        data: &'d [u8],
        sealed: bool,
    ) -> Option<Vec<&'d [u8]>> {
        let (mut parts, cut) = lines(data);
        if cut && let Some(last) = parts.pop() {
            let number = parts.len() as u64 + 1;
            if sealed {
                self.fail(file, Some(number), "line has no end (file truncated)");
                return None;
            }
            self.notes.push(format!(
                "{file} line {number}: cut off mid-write ({} bytes lost with the crash)",
                last.len()
            ));
        }
        Some(parts)
    }

    fn fail(&mut self, file: &str, line: Option<u64>, message: impl Into<String>) {
        self.problems.push(problem(file, line, message));
    }

    async fn fetch(&mut self, file: &str) -> Option<Vec<u8>> {
        match self.archive.get(self.id, file).await {
            Ok(bytes) => Some(bytes.to_vec()),
            Err(error) => {
                self.fail(file, None, format!("cannot be read: {error}"));
                None
            }
        }
    }

    /// Checks a signed document; returns its content when it parses.
    fn document<T: serde::de::DeserializeOwned>(&mut self, file: &str, bytes: &[u8]) -> Option<T> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            self.fail(file, None, "not UTF-8");
            return None;
        };
        let Some((content, signature)) = open_document(text) else {
            self.fail(file, None, "no signature at the end of the document");
            return None;
        };
        if let Some(key) = self.key
            && !key.verify(content.as_bytes(), &signature)
        {
            self.fail(
                file,
                None,
                "signature does not verify with the given public key",
            );
            return None;
        }
        match serde_json::from_str(&content) {
            Ok(value) => Some(value),
            Err(error) => {
                self.fail(file, None, format!("not a valid document: {error}"));
                None
            }
        }
    }

    fn check_key(&mut self, file: &str, stated: &str) {
        if let Some(key) = self.key
            && key.fingerprint() != stated
        {
            self.fail(
                file,
                None,
                format!(
                    "signed by key {stated}, not by the given key {}",
                    key.fingerprint()
                ),
            );
        }
    }

    async fn digested(&mut self, digest: &FileDigest) -> Option<Vec<u8>> {
        let bytes = self.fetch(&digest.file).await?;
        if bytes.len() as u64 != digest.bytes {
            self.fail(
                &digest.file,
                None,
                format!("{} bytes, but the seal says {}", bytes.len(), digest.bytes),
            );
            return None;
        }
        if hex(&sha256(&bytes)) != digest.sha256 {
            self.fail(
                &digest.file,
                None,
                "SHA-256 differs from the seal: the file was changed",
            );
            return None;
        }
        if digest.file.ends_with(".zst") {
            match decompress(&bytes) {
                Ok(plain) => Some(plain),
                Err(error) => {
                    self.fail(&digest.file, None, error);
                    None
                }
            }
        } else {
            Some(bytes)
        }
    }

    /// Walks event lines from `chain`; returns the lines, the chain after the last good line,
    /// and whether every line checked out.
    fn event_lines(
        &mut self,
        file: &str,
        data: &[u8],
        mut chain: Hash,
        mut seq: u64,
        sealed: bool,
    ) -> (Vec<EventLine>, Hash, bool) {
        let mut out = Vec::new();
        let Some(parts) = self.complete_lines(file, data, sealed) else {
            return (out, chain, false);
        };
        for (index, raw) in parts.into_iter().enumerate() {
            let number = index as u64 + 1;
            if raw.len() > MAX_LINE {
                self.fail(
                    file,
                    Some(number),
                    format!(
                        "line of {} bytes is over the {MAX_LINE}-byte limit",
                        raw.len()
                    ),
                );
                return (out, chain, false);
            }
            let Ok(text) = std::str::from_utf8(raw) else {
                self.fail(file, Some(number), "not UTF-8");
                return (out, chain, false);
            };
            let content = match open_line(&chain, text) {
                Ok((content, hash)) => {
                    chain = hash;
                    content
                }
                Err(error) => {
                    self.fail(file, Some(number), error.to_string());
                    return (out, chain, false);
                }
            };
            match serde_json::from_str::<EventLine>(&content) {
                Ok(line) if line.seq == seq => {
                    seq += 1;
                    out.push(line);
                }
                Ok(line) => {
                    self.fail(
                        file,
                        Some(number),
                        format!("seq {} where {seq} was expected", line.seq),
                    );
                    return (out, chain, false);
                }
                Err(error) => {
                    self.fail(file, Some(number), format!("not an event line: {error}"));
                    return (out, chain, false);
                }
            }
        }
        (out, chain, true)
    }

    fn frames(
        &mut self,
        file: &str,
        data: &[u8],
        first: bool,
        sealed: bool,
        header: &mut Option<Header>,
    ) -> (Vec<Frame>, bool) {
        let mut out = Vec::new();
        let Some(parts) = self.complete_lines(file, data, sealed) else {
            return (out, false);
        };
        for (index, raw) in parts.into_iter().enumerate() {
            let number = index as u64 + 1;
            let Ok(text) = std::str::from_utf8(raw) else {
                self.fail(file, Some(number), "not UTF-8");
                return (out, false);
            };
            if first && index == 0 {
                match serde_json::from_str::<Header>(text) {
                    Ok(parsed) if parsed.version == 2 => *header = Some(parsed),
                    Ok(parsed) => {
                        self.fail(
                            file,
                            Some(1),
                            format!("asciicast version {} (expected 2)", parsed.version),
                        );
                        return (out, false);
                    }
                    Err(error) => {
                        self.fail(
                            file,
                            Some(1),
                            format!("not an asciicast v2 header: {error}"),
                        );
                        return (out, false);
                    }
                }
                continue;
            }
            match Frame::parse(text) {
                Ok(frame) => out.push(frame),
                Err(error) => {
                    self.fail(file, Some(number), error);
                    return (out, false);
                }
            }
        }
        (out, true)
    }
}

fn segment_numbers(files: &[SessionFile]) -> (u32, Vec<String>) {
    let mut max = 0;
    let mut unexpected = Vec::new();
    for file in files {
        match parse_file_name(&file.name) {
            Some(parsed) => max = max.max(parsed.segment),
            None if file.name == MANIFEST => {}
            None => unexpected.push(file.name.clone()),
        }
    }
    (max, unexpected)
}

/// Reads and verifies session `id`. Signatures are checked when `key` is given.
pub async fn read(
    archive: &Archive,
    id: &str,
    key: Option<&VerifyingKey>,
) -> Result<Recording, RecorderError> {
    let files = archive.files(id).await?;
    if files.is_empty() {
        return Err(RecorderError::NotFound(id.to_owned()));
    }
    let names: BTreeMap<&str, &SessionFile> = files.iter().map(|f| (f.name.as_str(), f)).collect();
    let mut reader = Reader {
        archive,
        id,
        key,
        problems: Vec::new(),
        notes: Vec::new(),
        intact: true,
    };
    let (max, unexpected) = segment_numbers(&files);
    for name in unexpected {
        reader.fail(&name, None, "not a file of a recording");
    }

    let mut manifest: Option<Manifest> = None;
    if names.contains_key(MANIFEST)
        && let Some(bytes) = reader.fetch(MANIFEST).await
    {
        manifest = reader.document::<Manifest>(MANIFEST, &bytes);
        if let Some(m) = &manifest {
            reader.check_key(MANIFEST, &m.key.clone());
            if m.session.id != id {
                reader.fail(
                    MANIFEST,
                    None,
                    format!("belongs to session {}", m.session.id),
                );
            }
        }
    }

    let mut chain = genesis(id);
    let mut seq = 0u64;
    let mut header = None;
    let mut frames = Vec::new();
    let mut events = Vec::new();
    let mut sealed_count = 0u32;
    let mut intact_until = 0.0f64;
    for segment in 1..=max {
        let seal_name = file_name(Part::Seal, segment, false);
        if names.contains_key(seal_name.as_str()) {
            let Some(seal_bytes) = reader.fetch(&seal_name).await else {
                reader.intact = false;
                continue;
            };
            if let Some(entry) = manifest
                .as_ref()
                .and_then(|m| m.segments.get(segment as usize - 1))
                && (entry.seal.sha256 != hex(&sha256(&seal_bytes)) || entry.segment != segment)
            {
                reader.fail(&seal_name, None, "differs from the seal the manifest lists");
                reader.intact = false;
            }
            let Some(seal) = reader.document::<Seal>(&seal_name, &seal_bytes) else {
                reader.intact = false;
                continue;
            };
            reader.check_key(&seal_name, &seal.key);
            if seal.session != id || seal.segment != segment {
                reader.fail(
                    &seal_name,
                    None,
                    format!("seals segment {} of session {}", seal.segment, seal.session),
                );
                reader.intact = false;
                continue;
            }
            let good_before = reader.problems.len();
            let terminal = reader.digested(&seal.terminal).await;
            let log = reader.digested(&seal.events).await;
            let (Some(terminal), Some(log)) = (terminal, log) else {
                reader.intact = false;
                continue;
            };
            if seal.first_seq != seq && reader.intact {
                reader.fail(
                    &seal_name,
                    None,
                    format!(
                        "starts at seq {} but {seq} was expected: lines are missing",
                        seal.first_seq
                    ),
                );
                reader.intact = false;
            }
            let (lines, end, lines_ok) =
                reader.event_lines(&seal.events.file, &log, chain, seal.first_seq, true);
            let (segment_frames, _) = reader.frames(
                &seal.terminal.file,
                &terminal,
                segment == 1,
                true,
                &mut header,
            );
            let stated = parse_hash(&seal.chain);
            if lines_ok && (Some(end) != stated || lines.len() as u64 != seal.lines) {
                reader.fail(&seal.events.file, None, "the chain does not end where the seal says: lines were removed, added or reordered");
            }
            if reader.problems.len() == good_before && reader.intact {
                sealed_count += 1;
                intact_until = seal.until;
                frames.extend(segment_frames);
                events.extend(lines);
            } else {
                reader.intact = false;
            }
            // The next segment chains from what this seal vouches for.
            chain = stated.unwrap_or(end);
            seq = seal.first_seq + seal.lines;
        } else if names.contains_key(file_name(Part::Terminal, segment, true).as_str())
            || names.contains_key(file_name(Part::Events, segment, true).as_str())
        {
            // Only sealing compresses: the seal of this segment existed and was removed.
            reader.fail(&seal_name, None, format!("segment {segment} was sealed (its files are compressed) but its seal is missing"));
            reader.intact = false;
        } else if segment == max && manifest.is_none() {
            // The open segment of a recording that never finished: chained but unsigned.
            let terminal_name = file_name(Part::Terminal, segment, false);
            let events_name = file_name(Part::Events, segment, false);
            let terminal = if names.contains_key(terminal_name.as_str()) {
                reader.fetch(&terminal_name).await.unwrap_or_default()
            } else {
                Vec::new()
            };
            let log = if names.contains_key(events_name.as_str()) {
                reader.fetch(&events_name).await.unwrap_or_default()
            } else {
                Vec::new()
            };
            let (lines, _, _) = reader.event_lines(&events_name, &log, chain, seq, false);
            let (segment_frames, _) =
                reader.frames(&terminal_name, &terminal, segment == 1, false, &mut header);
            let tail_until = segment_frames
                .last()
                .map(|f| f.t)
                .into_iter()
                .chain(lines.last().map(|l| l.t))
                .fold(intact_until, f64::max);
            reader.notes.push(format!(
                "segment {segment} was never sealed: {} event lines (hash-chained but not signed) and {} terminal frames up to {tail_until:.1} s; anything after that was lost",
                lines.len(),
                segment_frames.len()
            ));
            if reader.intact {
                frames.extend(segment_frames);
                events.extend(lines);
            }
        } else {
            reader.fail(
                &seal_name,
                None,
                format!("segment {segment} has no seal: it was removed or never finished"),
            );
            reader.intact = false;
        }
    }

    match &manifest {
        Some(m) => {
            if m.segments.len() as u32 != max {
                reader.fail(MANIFEST, None, format!("lists {} segments but {max} are stored", m.segments.len()));
            }
            if parse_hash(&m.chain) != Some(chain) || m.last_seq + 1 != seq {
                reader.fail(MANIFEST, None, "final chain hash or last seq differs from the event log");
            }
        }
        None => reader.notes.insert(
            0,
            format!(
                "no manifest: the recording did not finish (crash, kill or power loss); signed and intact through segment {sealed_count}, {intact_until:.1} s"
            ),
        ),
    }
    let info = events.iter().find_map(|line| match &line.event {
        SessionEvent::RecordingStarted { session } => Some(session.clone()),
        _ => None,
    });
    if info.is_none() {
        reader.fail(
            "-",
            None,
            "the first event line (recording_started) is missing",
        );
    }
    let status = if !reader.problems.is_empty() {
        Status::Failed
    } else if manifest.is_none() {
        Status::Incomplete
    } else {
        Status::Ok
    };
    let verification = Verification {
        session: id.to_owned(),
        status,
        signatures_checked: key.is_some(),
        segments: max,
        sealed: sealed_count,
        events: events.len() as u64,
        intact_until,
        problems: reader.problems,
        notes: reader.notes,
    };
    frames.sort_by(|a, b| a.t.total_cmp(&b.t));
    Ok(Recording {
        id: id.to_owned(),
        info: info.or_else(|| manifest.as_ref().map(|m| m.session.clone())),
        header,
        manifest,
        frames,
        events,
        verification,
        files,
    })
}
