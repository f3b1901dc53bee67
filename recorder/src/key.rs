//! The Ed25519 key that signs recording manifests (PKCS#8 PEM, mode 0600; the public key
//! beside it as SubjectPublicKeyInfo PEM, for offline verification).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

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

fn public_path(path: &Path) -> PathBuf {
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
        let mut spki = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        spki.extend_from_slice(pair.public_key().as_ref());
        create(
            path,
            pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec())).as_bytes(),
            true,
        )?;
        create(
            &public_path(path),
            pem::encode(&pem::Pem::new("PUBLIC KEY", spki)).as_bytes(),
            false,
        )
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
        assert_eq!(RecordingKey::load(&path).unwrap().public_key().len(), 32);
        assert!(RecordingKey::generate(&path).is_err());
        std::fs::write(&path, "nonsense").unwrap();
        assert!(matches!(
            RecordingKey::load(&path),
            Err(KeyError::Format(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
