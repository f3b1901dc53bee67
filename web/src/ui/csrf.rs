//! CSRF tokens: HMAC-SHA256 under a key made at start, over the session's token (or the
//! pre-login cookie's nonce), compared in constant time. A form posted from another site
//! cannot carry the right value; a token from before a restart or another session fails.

use aws_lc_rs::{hmac, rand};

use otgate_broker::BrokerError;

/// The key CSRF tokens are made with.
#[derive(Clone)]
pub(crate) struct UiKey(hmac::Key);

impl UiKey {
    /// A fresh random key.
    pub(crate) fn generate() -> Result<Self, BrokerError> {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes)
            .map_err(|_| BrokerError::Invalid("no randomness for the UI key".into()))?;
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// The token for forms of the holder of `secret` (a session token or a login nonce).
    pub(crate) fn token(&self, secret: &str) -> String {
        hex(hmac::sign(&self.0, secret.as_bytes()).as_ref())
    }

    /// Whether `token` was made for `secret`.
    pub(crate) fn check(&self, secret: &str, token: &str) -> bool {
        let Some(bytes) = unhex(token) else {
            return false;
        };
        hmac::verify(&self.0, secret.as_bytes(), &bytes).is_ok()
    }
}

/// A random nonce for the pre-login cookie.
pub(crate) fn nonce() -> Option<String> {
    let mut bytes = [0u8; 24];
    rand::fill(&mut bytes).ok()?;
    Some(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_to_their_secret_and_key() {
        let key = UiKey::generate().unwrap();
        let token = key.token("session-a");
        assert!(key.check("session-a", &token));
        assert!(!key.check("session-b", &token));
        assert!(!UiKey::generate().unwrap().check("session-a", &token));
        assert!(!key.check("session-a", "zz"));
        assert!(!key.check("session-a", &"é".repeat(32)));
    }
}
