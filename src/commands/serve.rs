//! `otgate serve`: runs the configured roles until a signal.

use std::path::Path;

use anyhow::Result;

use crate::config::Config;
use crate::node::Node;

pub async fn run(path: &Path) -> Result<()> {
    let config = Config::load(path)?;
    let node = Node::start(&config, None, None).await?;
    if let Some(api) = node.api {
        let trust = config
            .web
            .ca
            .as_ref()
            .map(|ca| format!("; clients trust {}", ca.display()))
            .unwrap_or_default();
        eprintln!(
            "otgate serving https://{api} ({} storage{trust})",
            node.broker.backend()
        );
    }
    node.run_until_signal().await
}
