//! Uploads sealed files to remote storage in order, retrying a few times; a file leaves the
//! local spool only once its upload is confirmed. A failed upload fails the session.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::error::RecorderError;
use crate::storage::{Storage, key};

/// The upload task of one session.
#[derive(Debug)]
pub(crate) struct Uploader {
    tx: mpsc::UnboundedSender<Vec<String>>,
    task: JoinHandle<Result<(), RecorderError>>,
}

async fn upload(
    storage: &dyn Storage,
    dir: &std::path::Path,
    session: &str,
    file: &str,
    attempts: u32,
) -> Result<(), RecorderError> {
    let path = dir.join(file);
    let data = Bytes::from(
        tokio::fs::read(&path)
            .await
            .map_err(|e| RecorderError::io(&path, e))?,
    );
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match storage.put(&key(session, file), data.clone()).await {
            Ok(()) => break,
            Err(error) if attempt >= attempts.max(1) => return Err(error.into()),
            Err(error) => {
                tracing::warn!(%session, %file, %error, attempt, "upload failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 4;
                attempt += 1;
            }
        }
    }
    tokio::fs::remove_file(&path)
        .await
        .map_err(|e| RecorderError::io(&path, e))
}

impl Uploader {
    pub fn start(
        storage: Arc<dyn Storage>,
        dir: PathBuf,
        session: String,
        attempts: u32,
        failure: Arc<watch::Sender<Option<String>>>,
    ) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<String>>();
        let task = tokio::spawn(async move {
            while let Some(files) = rx.recv().await {
                for file in files {
                    if let Err(error) =
                        upload(storage.as_ref(), &dir, &session, &file, attempts).await
                    {
                        let reason = format!(
                            "upload of {file} to {} failed: {error}; the spool keeps it",
                            storage.describe()
                        );
                        failure.send_replace(Some(reason.clone()));
                        return Err(RecorderError::Failed(reason));
                    }
                }
            }
            // Everything is remote now; an empty spool directory goes.
            let _ = tokio::fs::remove_dir(&dir).await;
            Ok(())
        });
        Self { tx, task }
    }

    pub fn send(&self, files: Vec<String>) {
        let _ = self.tx.send(files);
    }

    /// Waits until everything sent is uploaded.
    pub async fn finish(self) -> Result<(), RecorderError> {
        drop(self.tx);
        self.task
            .await
            .map_err(|e| RecorderError::Failed(e.to_string()))?
    }
}
