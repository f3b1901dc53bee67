//! The broker's key material: the SSH user-certificate CA, the JWT signing key, the vault
//! master key. Generated once by `otgate init`, loaded at start; private files are mode 0600
//! and never overwritten.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use jsonwebtoken::{DecodingKey, EncodingKey};
use ssh_key::private::Ed25519Keypair;
use ssh_key::{HashAlg, LineEnding, PrivateKey};

use crate::error::{BrokerError, Result};
use crate::vault::{KEY_LEN, Vault, random_bytes};

/// Where the key files are.
#[derive(Clone, Debug)]
pub struct KeyFiles {
    /// OpenSSH private key of the user-certificate CA (`.pub` beside it).
    pub ssh_ca: PathBuf,
    /// PKCS#8 PEM of the JWT signing key (`.pub.pem` beside it).
    pub jwt: PathBuf,
    /// 32 raw bytes.
    pub vault: PathBuf,
}

/// Loaded key material.
pub struct Keys {
    pub(crate) ssh_ca: PrivateKey,
    pub(crate) jwt_encoding: EncodingKey,
    pub(crate) jwt_decoding: DecodingKey,
    pub(crate) vault: Vault,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

/// Writes a new file that nobody else can read; refuses to overwrite.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| BrokerError::io(path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| BrokerError::io(path, e))
}

/// Replaces a file that nobody else can read: written beside it, then renamed over it, so a
/// crash leaves the old contents or the new, never a mix.
pub fn replace_private(path: &Path, contents: &[u8]) -> Result<()> {
    let temporary = sibling(path, ".new");
    let _ = std::fs::remove_file(&temporary);
    write_private(&temporary, contents)?;
    std::fs::rename(&temporary, path).map_err(|e| BrokerError::io(path, e))
}

/// Writes a new public file; refuses to overwrite.
pub fn write_public(path: &Path, contents: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| BrokerError::io(path, e))?;
    file.write_all(contents)
        .map_err(|e| BrokerError::io(path, e))
}

/// `path` with `suffix` appended to its file name.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| BrokerError::io(path, e))
}

/// SubjectPublicKeyInfo DER of an Ed25519 public key (RFC 8410).
fn ed25519_spki(public: &[u8]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(public);
    der
}

impl KeyFiles {
    /// Generates every key; fails without touching anything if any file exists.
    pub fn generate(&self) -> Result<()> {
        for path in [&self.ssh_ca, &self.jwt, &self.vault] {
            if path.exists() {
                return Err(BrokerError::Keys(format!(
                    "{} already exists: refusing to overwrite key material",
                    path.display()
                )));
            }
        }
        let seed = random_bytes::<32>()?;
        let mut ca = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
        ca.set_comment("otgate user CA");
        let ca_pem = ca
            .to_openssh(LineEnding::LF)
            .map_err(|e| BrokerError::Keys(format!("encoding the SSH CA: {e}")))?;
        let ca_pub = ca
            .public_key()
            .to_openssh()
            .map_err(|e| BrokerError::Keys(format!("encoding the SSH CA: {e}")))?;
        write_private(&self.ssh_ca, ca_pem.as_bytes())?;
        write_public(
            &sibling(&self.ssh_ca, ".pub"),
            format!("{ca_pub}\n").as_bytes(),
        )?;

        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| BrokerError::Crypto("generating the JWT key failed".into()))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| BrokerError::Crypto("generating the JWT key failed".into()))?;
        let private_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec()));
        let public_pem = pem::encode(&pem::Pem::new(
            "PUBLIC KEY",
            ed25519_spki(pair.public_key().as_ref()),
        ));
        write_private(&self.jwt, private_pem.as_bytes())?;
        write_public(&sibling(&self.jwt, ".pub.pem"), public_pem.as_bytes())?;

        write_private(&self.vault, &random_bytes::<KEY_LEN>()?)?;
        Ok(())
    }

    /// Loads every key, saying which file is wrong.
    pub fn load(&self) -> Result<Keys> {
        let ca_text = read(&self.ssh_ca)?;
        let ssh_ca = PrivateKey::from_openssh(&ca_text).map_err(|e| {
            BrokerError::Keys(format!(
                "{}: not an OpenSSH private key ({e})",
                self.ssh_ca.display()
            ))
        })?;
        if ssh_ca.is_encrypted() {
            return Err(BrokerError::Keys(format!(
                "{}: the CA key is encrypted; otgate needs it unencrypted (protect the file instead)",
                self.ssh_ca.display()
            )));
        }
        let jwt_pem = read(&self.jwt)?;
        let parsed = pem::parse(&jwt_pem)
            .map_err(|e| BrokerError::Keys(format!("{}: not PEM ({e})", self.jwt.display())))?;
        let pair = Ed25519KeyPair::from_pkcs8(parsed.contents()).map_err(|_| {
            BrokerError::Keys(format!("{}: not an Ed25519 PKCS#8 key", self.jwt.display()))
        })?;
        let jwt_encoding = EncodingKey::from_ed_der(parsed.contents());
        let jwt_decoding = DecodingKey::from_ed_der(pair.public_key().as_ref());
        let vault = Vault::new(&read(&self.vault)?)
            .map_err(|e| BrokerError::Keys(format!("{}: {e}", self.vault.display())))?;
        Ok(Keys {
            ssh_ca,
            jwt_encoding,
            jwt_decoding,
            vault,
        })
    }
}

impl Keys {
    /// The CA's public key in OpenSSH format (for `TrustedUserCAKeys`).
    pub fn ssh_ca_public(&self) -> String {
        self.ssh_ca.public_key().to_openssh().unwrap_or_default()
    }

    /// The CA key's SHA-256 fingerprint.
    pub fn ssh_ca_fingerprint(&self) -> String {
        self.ssh_ca
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }

    /// The vault.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_loads_and_refuses_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("otgate-keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = KeyFiles {
            ssh_ca: dir.join("ssh-ca"),
            jwt: dir.join("jwt.pem"),
            vault: dir.join("vault.key"),
        };
        files.generate().unwrap();
        let keys = files.load().unwrap();
        assert!(keys.ssh_ca_public().starts_with("ssh-ed25519 "));
        assert!(keys.ssh_ca_fingerprint().starts_with("SHA256:"));
        assert!(files.generate().is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.vault)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "private files are not readable by others");
        }
        std::fs::write(&files.jwt, "garbage").unwrap();
        assert!(files.load().unwrap_err().to_string().contains("jwt.pem"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
