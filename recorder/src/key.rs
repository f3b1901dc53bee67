//! The Ed25519 key that signs recording manifests (PKCS#8 PEM, mode 0600; the public key
//! beside it as SubjectPublicKeyInfo PEM, for offline verification).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::chain::{hex, sha256};

/// Why the key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not an Ed25519 PKCS#8 key.
    #[error("{0}: not an Ed25519 PKCS#8 PEM private key")]
    Format(PathBuf),
    /// Key generation failed.
    #[error("generating the recording key failed")]
    Generate,
}

/// The recording signing key.
pub struct RecordingKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for RecordingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordingKey([redacted])")
    }
}

/// Where the public half of the key at `path` lives (`.pub.pem` beside it).
pub fn public_path(path: &Path) -> PathBuf {
    path.with_extension("pub.pem")
}

fn create(path: &Path, contents: &[u8], private: bool) -> Result<(), KeyError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(io)
}

impl RecordingKey {
    /// Generates a key at `path` (and `.pub.pem` beside it); never overwrites.
    pub fn generate(path: &Path) -> Result<(), KeyError> {
        let pkcs8 =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Generate)?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyError::Generate)?;
        let public = VerifyingKey {
            raw: pair.public_key().as_ref().to_vec(),
        };
        create(
            path,
            pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec())).as_bytes(),
            true,
        )?;
        create(&public_path(path), public.to_pem().as_bytes(), false)
    }

    /// Loads the key at `path`.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read(path).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        let parsed = pem::parse(&text).map_err(|_| KeyError::Format(path.to_owned()))?;
        let pair = Ed25519KeyPair::from_pkcs8(parsed.contents())
            .map_err(|_| KeyError::Format(path.to_owned()))?;
        Ok(Self { pair })
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The public half, for verification.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            raw: self.public_key().to_vec(),
        }
    }

    /// Signs `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// The public key that checks recording signatures; all an auditor needs besides the files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyingKey {
    raw: Vec<u8>,
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl VerifyingKey {
    /// Reads a `PUBLIC KEY` PEM (the `.pub.pem` beside the recording key).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read(path).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(&text).ok_or_else(|| KeyError::Format(path.to_owned()))
    }

    /// Parses a `PUBLIC KEY` PEM.
    pub fn from_pem(text: &[u8]) -> Option<Self> {
        let parsed = pem::parse(text).ok()?;
        let raw = parsed.contents().strip_prefix(&SPKI_PREFIX[..])?;
        (parsed.tag() == "PUBLIC KEY" && raw.len() == 32).then(|| Self { raw: raw.to_vec() })
    }

    /// The key as `PUBLIC KEY` PEM.
    pub fn to_pem(&self) -> String {
        let mut spki = SPKI_PREFIX.to_vec();
        spki.extend_from_slice(&self.raw);
        pem::encode(&pem::Pem::new("PUBLIC KEY", spki))
    }

    /// SHA-256 of the raw key, lowercase hex: the `key` field of seals and manifests.
    pub fn fingerprint(&self) -> String {
        hex(&sha256(&self.raw))
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_loads_and_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("otgate-recording-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("recording.pem");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(public_path(&path));
        RecordingKey::generate(&path).unwrap();
        let key = RecordingKey::load(&path).unwrap();
        assert_eq!(key.public_key().len(), 32);
        let public = VerifyingKey::load(&public_path(&path)).unwrap();
        assert_eq!(public, key.verifying_key());
        let signature = key.sign(b"message");
        assert!(public.verify(b"message", &signature));
        assert!(!public.verify(b"messagE", &signature));
        assert!(RecordingKey::generate(&path).is_err());
        std::fs::write(&path, "nonsense").unwrap();
        assert!(matches!(
            RecordingKey::load(&path),
            Err(KeyError::Format(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
