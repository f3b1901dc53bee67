//! Retention: recordings whose last write is older than the configured period are deleted
//! (the manifest first, so a half-deleted recording never looks complete). The caller
//! records an event per deletion.

use std::time::Duration;

use time::OffsetDateTime;

use crate::archive::Archive;
use crate::error::RecorderError;

/// A recording that retention removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expired {
    /// The session.
    pub session: String,
    /// When it was last written.
    pub last_written: OffsetDateTime,
    /// How many files went.
    pub files: usize,
}

/// Deletes every recording last written more than `keep` before `now`.
pub async fn expire(
    archive: &Archive,
    keep: Duration,
    now: OffsetDateTime,
) -> Result<Vec<Expired>, RecorderError> {
    let cutoff = now - keep;
    let mut expired = Vec::new();
    for (session, files) in archive.sessions().await? {
        let Some(last_written) = files.iter().map(|f| f.modified).max() else {
            continue;
        };
        if last_written < cutoff {
            let files = archive.delete(&session).await?;
            expired.push(Expired {
                session,
                last_written,
                files,
            });
        }
    }
    Ok(expired)
}
