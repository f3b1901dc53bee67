//! Reading side of storage: the store plus, when the store is remote, the local spool that
//! still holds open and not-yet-uploaded segments. Listing merges both; reading prefers
//! the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::error::RecorderError;
use crate::layout::valid_session_id;
use crate::storage::{LocalStorage, Storage, StorageError, StoredObject, key, split_key};

/// Recordings as readers see them.
#[derive(Clone, Debug)]
pub struct Archive {
    store: Arc<dyn Storage>,
    spool: Option<LocalStorage>,
}

/// A file of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionFile {
    /// File name.
    pub name: String,
    /// Size.
    pub size: u64,
    /// Last change.
    pub modified: OffsetDateTime,
}

impl Archive {
    /// Reads `store`, and `spool` when the store is remote.
    pub fn new(store: Arc<dyn Storage>, spool: Option<LocalStorage>) -> Self {
        let spool = if store.local_root().is_some() {
            None
        } else {
            spool
        };
        Self { store, spool }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Storage> {
        &self.store
    }

    async fn listing(&self, prefix: &str) -> Result<Vec<StoredObject>, StorageError> {
        let mut objects = self.store.list(prefix).await?;
        if let Some(spool) = &self.spool {
            objects.extend(spool.list(prefix).await?);
        }
        Ok(objects)
    }

    /// Every session and its files.
    pub async fn sessions(&self) -> Result<BTreeMap<String, Vec<SessionFile>>, RecorderError> {
        let mut sessions: BTreeMap<String, Vec<SessionFile>> = BTreeMap::new();
        for object in self.listing("").await? {
            if let Ok((session, file)) = split_key(&object.key) {
                let files = sessions.entry(session.to_owned()).or_default();
                if !files.iter().any(|f| f.name == file) {
                    files.push(SessionFile {
                        name: file.to_owned(),
                        size: object.size,
                        modified: object.modified,
                    });
                }
            }
        }
        Ok(sessions)
    }

    /// The files of one session (empty when there is no such session).
    pub async fn files(&self, session: &str) -> Result<Vec<SessionFile>, RecorderError> {
        if !valid_session_id(session) {
            return Err(RecorderError::BadSessionId(session.to_owned()));
        }
        let mut files: Vec<SessionFile> = Vec::new();
        for object in self.listing(&format!("{session}/")).await? {
            if let Ok((_, file)) = split_key(&object.key)
                && !files.iter().any(|f| f.name == file)
            {
                files.push(SessionFile {
                    name: file.to_owned(),
                    size: object.size,
                    modified: object.modified,
                });
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }

    /// One file.
    pub async fn get(&self, session: &str, file: &str) -> Result<Bytes, RecorderError> {
        let key = key(session, file);
        match self.store.get(&key).await {
            Err(StorageError::NotFound(_)) if self.spool.is_some() => match &self.spool {
                Some(spool) => Ok(spool.get(&key).await?),
                None => Err(StorageError::NotFound(key).into()),
            },
            other => Ok(other?),
        }
    }

    /// Deletes every file of a session, in the store and the spool; returns how many.
    pub async fn delete(&self, session: &str) -> Result<usize, RecorderError> {
        let files = self.files(session).await?;
        // The manifest goes first, so a half-deleted recording never looks complete.
        let mut names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        names.sort_by_key(|name| *name != crate::layout::MANIFEST);
        for name in &names {
            let key = key(session, name);
            self.store.delete(&key).await?;
            if let Some(spool) = &self.spool {
                spool.delete(&key).await?;
            }
        }
        Ok(names.len())
    }
}
