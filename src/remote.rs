//! Recordings read through the API, so `replay` and `audit` work from an auditor's laptop:
//! the recorder's read-only storage view over `GET /sessions/{id}/files[/{name}]`.

use bytes::Bytes;
use time::OffsetDateTime;

use otgate_broker::RecordedSession;
use otgate_recorder::storage::{Storage, StorageError, StoredObject, split_key};

use crate::client::{ApiFailure, Client};

/// The server's recordings, read-only.
pub struct ApiStorage {
    client: Client,
}

impl std::fmt::Debug for ApiStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiStorage({})", self.client.server)
    }
}

#[derive(serde::Deserialize)]
struct FileEntry {
    name: String,
    size: u64,
}

impl ApiStorage {
    /// Reads through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    fn failed(&self, error: anyhow::Error) -> StorageError {
        match error.downcast_ref::<ApiFailure>() {
            Some(failure) if failure.status == 404 => {
                StorageError::NotFound(failure.message.clone())
            }
            _ => StorageError::Backend {
                backend: self.describe(),
                message: format!("{error:#}"),
            },
        }
    }

    async fn session_files(&self, session: &str) -> Result<Vec<StoredObject>, StorageError> {
        let files: Vec<FileEntry> = self
            .client
            .get(&format!("/sessions/{session}/files"))
            .await
            .map_err(|e| self.failed(e))?;
        Ok(files
            .into_iter()
            .map(|f| StoredObject {
                key: format!("{session}/{}", f.name),
                size: f.size,
                modified: OffsetDateTime::UNIX_EPOCH,
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl Storage for ApiStorage {
    fn describe(&self) -> String {
        format!("the otgate API at {}", self.client.server)
    }

    async fn put(&self, key: &str, _: Bytes) -> Result<(), StorageError> {
        Err(StorageError::Backend {
            backend: self.describe(),
            message: format!("{key}: recordings are read-only through the API"),
        })
    }

    async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let (session, file) = split_key(key)?;
        self.client
            .get_bytes(&format!("/sessions/{session}/files/{file}"))
            .await
            .map(Bytes::from)
            .map_err(|e| self.failed(e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, StorageError> {
        if let Some(session) = prefix.strip_suffix('/').filter(|s| !s.contains('/')) {
            return match self.session_files(session).await {
                Err(StorageError::NotFound(_)) => Ok(Vec::new()),
                other => other,
            };
        }
        let sessions: Vec<RecordedSession> = self
            .client
            .get("/sessions?limit=1000")
            .await
            .map_err(|e| self.failed(e))?;
        let mut out = Vec::new();
        for session in sessions {
            out.extend(
                self.session_files(&session.id)
                    .await?
                    .into_iter()
                    .filter(|o| o.key.starts_with(prefix)),
            );
        }
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        Err(StorageError::Backend {
            backend: self.describe(),
            message: format!("{key}: recordings are read-only through the API"),
        })
    }
}
