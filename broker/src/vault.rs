//! Secrets at rest: AES-256-GCM under the vault master key, bound to their purpose.
//!
//! A sealed value is `nonce (12 bytes) || ciphertext || tag`. The additional data names what
//! the secret is (`vault:plc-7-admin`, `totp:eng1`), so a sealed value moved to another row
//! does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::error::{BrokerError, Result};
use crate::secret::Secret;

/// Length of the master key file.
pub const KEY_LEN: usize = 32;

/// The vault: seals and opens secrets with the master key.
pub struct Vault {
    key: LessSafeKey,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault([redacted])")
    }
}

/// Fresh random bytes from the system generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| BrokerError::Crypto("the system random generator failed".into()))?;
    Ok(bytes)
}

impl Vault {
    /// A vault over a 32-byte master key.
    pub fn new(master_key: &[u8]) -> Result<Self> {
        let unbound = UnboundKey::new(&AES_256_GCM, master_key).map_err(|_| {
            BrokerError::Keys(format!("the vault master key must be {KEY_LEN} bytes"))
        })?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Encrypts `plaintext` for `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        sealed.extend_from_slice(&nonce_bytes);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(purpose.as_bytes()),
                &mut body,
            )
            .map_err(|_| BrokerError::Crypto("sealing failed".into()))?;
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// Decrypts a value sealed for `purpose`.
    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Secret<Vec<u8>>> {
        let (nonce, body) = sealed.split_at_checked(NONCE_LEN).ok_or_else(|| {
            BrokerError::Crypto(format!("sealed value for {purpose} is truncated"))
        })?;
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| BrokerError::Crypto("bad nonce".into()))?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut body)
            .map_err(|_| {
                BrokerError::Crypto(format!(
                    "sealed value for {purpose} does not open: wrong master key or altered data"
                ))
            })?;
        Ok(Secret::new(plain.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_binds_to_purpose() {
        let vault = Vault::new(&[7u8; KEY_LEN]).unwrap();
        let sealed = vault.seal("vault:a", b"s3cret").unwrap();
        assert_eq!(vault.open("vault:a", &sealed).unwrap().expose(), b"s3cret");
        assert!(vault.open("vault:b", &sealed).is_err());
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert!(vault.open("vault:a", &tampered).is_err());
        assert!(vault.open("vault:a", &sealed[..5]).is_err());
        assert!(Vault::new(&[0u8; 16]).is_err());
        let other = Vault::new(&[8u8; KEY_LEN]).unwrap();
        assert!(other.open("vault:a", &sealed).is_err());
    }
}
