//! The local directory backend: `<root>/<session>/<file>`, written through a temporary file,
//! fsynced and renamed so that a reader never sees half an object.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use time::OffsetDateTime;

use super::{MAX_OBJECT, Storage, StorageError, StoredObject, split_key};

/// Recordings in a local directory.
#[derive(Clone, Debug)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    /// Recordings under `root` (created when missing).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn failed(&self, error: impl std::fmt::Display) -> StorageError {
        StorageError::Backend {
            backend: self.describe(),
            message: error.to_string(),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        let (session, file) = split_key(key)?;
        Ok(self.root.join(session).join(file))
    }
}

/// Writes `data` to `path` through a temporary sibling, fsyncs it and renames it in place.
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("partial");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(data)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Adds the files of one session directory whose key starts with `prefix`.
fn collect(
    files: std::fs::ReadDir,
    session_prefix: &str,
    prefix: &str,
    out: &mut Vec<StoredObject>,
) -> std::io::Result<()> {
    for file in files {
        let file = file?;
        let Some(file_name) = file.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let key = format!("{session_prefix}{file_name}");
        let meta = file.metadata()?;
        if meta.is_file() && key.starts_with(prefix) && !file_name.ends_with(".partial") {
            out.push(StoredObject {
                key,
                size: meta.len(),
                modified: modified(&meta),
            });
        }
    }
    Ok(())
}

fn modified(meta: &std::fs::Metadata) -> OffsetDateTime {
    meta.modified()
        .map(OffsetDateTime::from)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[async_trait::async_trait]
impl Storage for LocalStorage {
    fn describe(&self) -> String {
        format!("local {}", self.root.display())
    }

    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        let path = self.path(key)?;
        let result = tokio::task::spawn_blocking(move || {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            write_atomically(&path, &data)
        })
        .await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(self.failed(format!("{key}: {error}"))),
            Err(error) => Err(self.failed(error)),
        }
    }

    async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let path = self.path(key)?;
        let meta = match tokio::fs::metadata(&path).await {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(key.to_owned()));
            }
            Err(e) => return Err(self.failed(format!("{key}: {e}"))),
        };
        if meta.len() > MAX_OBJECT {
            return Err(StorageError::TooLarge {
                key: key.to_owned(),
                size: meta.len(),
                limit: MAX_OBJECT,
            });
        }
        tokio::fs::read(&path)
            .await
            .map(Bytes::from)
            .map_err(|e| self.failed(format!("{key}: {e}")))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, StorageError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        let listed = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<StoredObject>> {
            let mut out = Vec::new();
            // A prefix naming one session reads only its directory.
            if let Some((session, _)) = prefix.split_once('/')
                && crate::layout::valid_session_id(session)
            {
                let files = match std::fs::read_dir(root.join(session)) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                    Err(e) => return Err(e),
                };
                collect(files, &format!("{session}/"), &prefix, &mut out)?;
                out.sort_by(|a, b| a.key.cmp(&b.key));
                return Ok(out);
            }
            let sessions = match std::fs::read_dir(&root) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(e),
            };
            for session in sessions {
                let session = session?;
                let Some(name) = session.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let session_prefix = format!("{name}/");
                if !crate::layout::valid_session_id(&name)
                    || !session.file_type()?.is_dir()
                    || !(session_prefix.starts_with(&prefix) || prefix.starts_with(&session_prefix))
                {
                    continue;
                }
                collect(
                    std::fs::read_dir(session.path())?,
                    &session_prefix,
                    &prefix,
                    &mut out,
                )?;
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
        .map_err(|e| self.failed(e))?;
        listed.map_err(|e| self.failed(e))
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.failed(format!("{key}: {e}"))),
        }
        if let Some(parent) = path.parent() {
            // An emptied session directory goes too; a non-empty one stays.
            let _ = tokio::fs::remove_dir(parent).await;
        }
        Ok(())
    }
}
