//! Recording files are untrusted when an auditor verifies a copied folder: any content of any
//! file must give a verification verdict (never a panic, never an unbounded allocation), and
//! never `ok` unless the content is what was signed.
#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use otgate_recorder::storage::{Storage, StorageError, StoredObject};
use otgate_recorder::{Archive, Status, read};

/// Files held in memory.
#[derive(Debug)]
struct Memory(BTreeMap<String, Bytes>);

#[async_trait::async_trait]
impl Storage for Memory {
    fn describe(&self) -> String {
        "memory".into()
    }
    async fn put(&self, _: &str, _: Bytes) -> Result<(), StorageError> {
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        self.0
            .get(key)
            .cloned()
            .ok_or_else(|| StorageError::NotFound(key.into()))
    }
    async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, StorageError> {
        Ok(self
            .0
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| StoredObject {
                key: k.clone(),
                size: v.len() as u64,
                modified: time::OffsetDateTime::UNIX_EPOCH,
            })
            .collect())
    }
    async fn delete(&self, _: &str) -> Result<(), StorageError> {
        Ok(())
    }
}

const NAMES: [&str; 7] = [
    "s/events.000001.jsonl",
    "s/terminal.000001.cast",
    "s/seal.000001.json",
    "s/manifest.json",
    "s/events.000002.jsonl.zst",
    "s/terminal.000002.cast.zst",
    "s/seal.000002.json",
];

fuzz_target!(|data: &[u8]| {
    // The input is split on 0xFF 0x00 into the contents of the files above, in order.
    let mut files = BTreeMap::new();
    let mut rest = data;
    for name in NAMES {
        let (part, next) = match rest.windows(2).position(|w| w == [0xff, 0x00]) {
            Some(at) => (&rest[..at], &rest[at + 2..]),
            None => (rest, &[][..]),
        };
        if !part.is_empty() {
            files.insert(name.to_owned(), Bytes::copy_from_slice(part));
        }
        rest = next;
    }
    if files.is_empty() {
        return;
    }
    let archive = Archive::new(Arc::new(Memory(files)), None);
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    // A key nobody has the private half of: nothing fuzzed can be signed by it.
    let key = otgate_recorder::VerifyingKey::from_pem(
        b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    if let Ok(recording) = runtime.block_on(read(&archive, "s", Some(&key))) {
        assert_ne!(recording.verification.status, Status::Ok);
        let _ = recording.verification.render();
        let _ = otgate_recorder::replay::export_cast(&recording);
        let _ = otgate_recorder::text::fragments(&recording, 1 << 16);
        let _ = otgate_recorder::timeline::html(&recording);
    }
});
