//! One open segment: both streams held in memory (at most the segment size), appended to
//! plain files on every flush so a crash loses only the unflushed tail, and sealed at the
//! end (compressed, fsynced, digested, signed).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::chain::{Hash, hex, sha256, sign_document};
use crate::key::RecordingKey;
use crate::layout::{Part, file_name};
use crate::model::{FileDigest, Seal, SegmentEntry};
use crate::storage::local::write_atomically;

/// zstd level: fast, and still 5-10x on terminal output.
const ZSTD_LEVEL: i32 = 3;

/// The segment being written.
#[derive(Debug)]
pub(crate) struct Segment {
    pub number: u32,
    dir: PathBuf,
    pub terminal: Vec<u8>,
    pub events: Vec<u8>,
    flushed_terminal: usize,
    flushed_events: usize,
    files: Option<(File, File)>,
    pub first_seq: u64,
    pub lines: u64,
}

/// A sealed segment: its manifest entry and the files to upload.
#[derive(Debug)]
pub(crate) struct Sealed {
    pub entry: SegmentEntry,
    pub files: Vec<String>,
}

fn append(file: &mut File, data: &[u8]) -> std::io::Result<()> {
    file.write_all(data)?;
    file.flush()
}

fn digest(file: String, data: &[u8]) -> FileDigest {
    FileDigest {
        file,
        bytes: data.len() as u64,
        sha256: hex(&sha256(data)),
    }
}

impl Segment {
    pub fn new(dir: &Path, number: u32, first_seq: u64) -> Self {
        Self {
            number,
            dir: dir.to_owned(),
            terminal: Vec::new(),
            events: Vec::new(),
            flushed_terminal: 0,
            flushed_events: 0,
            files: None,
            first_seq,
            lines: 0,
        }
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.terminal.len() + self.events.len()
    }

    fn path(&self, part: Part, compressed: bool) -> PathBuf {
        self.dir.join(file_name(part, self.number, compressed))
    }

    /// Appends what is new since the last flush to the plain files.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.files.is_none() {
            let open = |path: PathBuf| OpenOptions::new().create(true).append(true).open(path);
            self.files = Some((
                open(self.path(Part::Terminal, false))?,
                open(self.path(Part::Events, false))?,
            ));
        }
        if let Some((terminal, events)) = self.files.as_mut() {
            if let Some(new) = self.terminal.get(self.flushed_terminal..) {
                append(terminal, new)?;
            }
            if let Some(new) = self.events.get(self.flushed_events..) {
                append(events, new)?;
            }
        }
        self.flushed_terminal = self.terminal.len();
        self.flushed_events = self.events.len();
        Ok(())
    }

    /// Closes the segment: writes its final files and its signed seal.
    pub fn seal(
        mut self,
        session: &str,
        compress: bool,
        key: &RecordingKey,
        chain: &Hash,
        until: f64,
    ) -> std::io::Result<Sealed> {
        self.flush()?;
        let (terminal_file, events_file) = match self.files.take() {
            Some(files) => files,
            None => return Err(std::io::Error::other("segment files were never opened")),
        };
        let names = |part| file_name(part, self.number, compress);
        let (terminal, events) = if compress {
            let terminal = zstd::bulk::compress(&self.terminal, ZSTD_LEVEL)?;
            let events = zstd::bulk::compress(&self.events, ZSTD_LEVEL)?;
            write_atomically(&self.path(Part::Terminal, true), &terminal)?;
            write_atomically(&self.path(Part::Events, true), &events)?;
            drop((terminal_file, events_file));
            std::fs::remove_file(self.path(Part::Terminal, false))?;
            std::fs::remove_file(self.path(Part::Events, false))?;
            (terminal, events)
        } else {
            terminal_file.sync_all()?;
            events_file.sync_all()?;
            (
                std::mem::take(&mut self.terminal),
                std::mem::take(&mut self.events),
            )
        };
        let seal = Seal {
            session: session.to_owned(),
            segment: self.number,
            terminal: digest(names(Part::Terminal), &terminal),
            events: digest(names(Part::Events), &events),
            first_seq: self.first_seq,
            lines: self.lines,
            chain: hex(chain),
            until,
            sealed_at: OffsetDateTime::now_utc(),
            key: key.verifying_key().fingerprint(),
        };
        let content = serde_json::to_string(&seal).map_err(std::io::Error::other)?;
        let document = sign_document(&content, |bytes| key.sign(bytes));
        let seal_name = file_name(Part::Seal, self.number, false);
        write_atomically(&self.dir.join(&seal_name), document.as_bytes())?;
        Ok(Sealed {
            files: vec![
                seal.terminal.file.clone(),
                seal.events.file.clone(),
                seal_name.clone(),
            ],
            entry: SegmentEntry {
                segment: self.number,
                seal: digest(seal_name, document.as_bytes()),
                terminal: seal.terminal,
                events: seal.events,
            },
        })
    }
}
