//! The S3-compatible backend through `object_store` (AWS S3, MinIO, Ceph, moto...).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _};
use time::OffsetDateTime;

use super::{MAX_OBJECT, Storage, StorageError, StoredObject, split_key};

/// Where and how to reach the bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket (`otgate/recordings`), may be empty.
    pub prefix: String,
    /// Endpoint URL for S3-compatible servers; AWS when empty.
    pub endpoint: Option<String>,
    /// Region.
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Allow `http://` endpoints (test servers only).
    pub allow_http: bool,
}

/// Recordings in an S3 bucket.
#[derive(Debug)]
pub struct S3Storage {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
}

impl S3Storage {
    /// Connects (lazily: the first request reaches the server).
    pub fn new(config: &S3Config) -> Result<Self, StorageError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let store = builder.build().map_err(|e| StorageError::Backend {
            backend: format!("s3://{}", config.bucket),
            message: e.to_string(),
        })?;
        Ok(Self {
            store: Arc::new(store),
            bucket: config.bucket.clone(),
            prefix: config.prefix.trim_matches('/').to_owned(),
        })
    }

    fn failed(&self, error: impl std::fmt::Display) -> StorageError {
        StorageError::Backend {
            backend: self.describe(),
            message: error.to_string(),
        }
    }

    fn location(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn strip<'a>(&self, location: &'a str) -> &'a str {
        if self.prefix.is_empty() {
            location
        } else {
            location
                .strip_prefix(self.prefix.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .unwrap_or(location)
        }
    }
}

#[async_trait::async_trait]
impl Storage for S3Storage {
    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        split_key(key)?;
        self.store
            .put(&self.location(key), data.into())
            .await
            .map(|_| ())
            .map_err(|e| self.failed(format!("{key}: {e}")))
    }

    async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        split_key(key)?;
        let result = match self.store.get(&self.location(key)).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StorageError::NotFound(key.to_owned()));
            }
            Err(e) => return Err(self.failed(format!("{key}: {e}"))),
        };
        if result.meta.size > MAX_OBJECT {
            return Err(StorageError::TooLarge {
                key: key.to_owned(),
                size: result.meta.size,
                limit: MAX_OBJECT,
            });
        }
        result
            .bytes()
            .await
            .map_err(|e| self.failed(format!("{key}: {e}")))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, StorageError> {
        // List under the session's folder when the prefix names one, else under ours.
        let folder = prefix.strip_suffix('/').filter(|f| !f.contains('/'));
        let base = match (self.prefix.is_empty(), folder) {
            (true, None) => None,
            (true, Some(folder)) => Some(ObjectPath::from(folder)),
            (false, None) => Some(ObjectPath::from(self.prefix.as_str())),
            (false, Some(folder)) => Some(ObjectPath::from(format!("{}/{folder}", self.prefix))),
        };
        let metas: Vec<_> = self
            .store
            .list(base.as_ref())
            .try_collect()
            .await
            .map_err(|e| self.failed(e))?;
        let mut out: Vec<StoredObject> = metas
            .into_iter()
            .filter_map(|meta| {
                let key = self.strip(meta.location.as_ref()).to_owned();
                let modified =
                    OffsetDateTime::from_unix_timestamp(meta.last_modified.timestamp()).ok()?;
                (key.starts_with(prefix) && split_key(&key).is_ok()).then_some(StoredObject {
                    key,
                    size: meta.size,
                    modified,
                })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        split_key(key)?;
        match self.store.delete(&self.location(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed(format!("{key}: {e}"))),
        }
    }
}
