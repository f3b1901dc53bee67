//! The SSH gateway's host key: an Ed25519 key generated at the first start (mode 0600) and
//! kept, so vendors' `known_hosts` stays valid.

use std::path::Path;

use anyhow::{Context, Result};
use ssh_key::private::Ed25519Keypair;
use ssh_key::{LineEnding, PrivateKey};

/// Loads the key at `path`, creating it first if there is none.
pub fn load_or_create(path: &Path) -> Result<PrivateKey> {
    if !path.exists() {
        let seed = otgate_broker::vault::random_bytes::<32>()?;
        let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
        let text = key
            .to_openssh(LineEnding::LF)
            .context("encoding the gateway host key")?;
        otgate_broker::keys::write_private(path, text.as_bytes())?;
        let public = key
            .public_key()
            .to_openssh()
            .context("encoding the host key")?;
        otgate_broker::keys::write_public(
            &path.with_extension("pub"),
            format!("{public}\n").as_bytes(),
        )?;
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the gateway host key {}", path.display()))?;
    PrivateKey::from_openssh(text)
        .with_context(|| format!("{} is not an OpenSSH private key", path.display()))
}
