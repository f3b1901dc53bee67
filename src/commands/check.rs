//! `otgate check`: validates a configuration and its inventory without binding ports.

use std::path::Path;

use anyhow::Result;

use crate::config::{Config, ConfigError};

pub fn run(path: &Path) -> Result<()> {
    let config = Config::load(path)?;
    let mut notes = Vec::new();
    let mut summary = String::new();
    if let Some(inventory) = config.inventory()? {
        summary = format!(
            ", inventory: {} zones, {} assets",
            inventory.zones.len(),
            inventory.assets.len()
        );
    }
    let keys = &config.broker.keys;
    let key_files = [&keys.ssh_ca, &keys.jwt, &keys.vault];
    if key_files.iter().all(|p| p.exists()) {
        keys.load()
            .map_err(|e| ConfigError::new(path, "keys", e.to_string()))?;
    } else {
        for missing in key_files.iter().filter(|p| !p.exists()) {
            notes.push(format!(
                "{} does not exist yet (otgate init creates it)",
                missing.display()
            ));
        }
    }
    if config.recording_key.exists() {
        otgate_recorder::RecordingKey::load(&config.recording_key)
            .map_err(|e| ConfigError::new(path, "keys.recording", e.to_string()))?;
    } else {
        notes.push(format!(
            "{} does not exist yet (otgate init creates it)",
            config.recording_key.display()
        ));
    }
    let storage = config
        .recordings
        .storage()
        .map_err(|e| ConfigError::new(path, "recordings", e.to_string()))?;
    summary.push_str(&format!(", recordings: {}", storage.describe()));
    if config.web.cert.exists() && config.web.key.exists() {
        otgate_web::tls::server_config(&config.web.cert, &config.web.key)
            .map_err(|e| ConfigError::new(path, "web.tls_cert", e.to_string()))?;
    } else {
        notes.push(format!(
            "{} or its key does not exist yet",
            config.web.cert.display()
        ));
    }
    let roles: Vec<&str> = [("broker", config.roles.broker), ("web", config.roles.web)]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
    let storage = match &config.broker.database {
        otgate_broker::Database::Sqlite(file) => format!("sqlite {}", file.display()),
        otgate_broker::Database::Postgres(_) => "postgres".to_owned(),
    };
    println!(
        "ok: {} (roles: {}; storage: {storage}{summary})",
        path.display(),
        roles.join(", ")
    );
    for note in notes {
        println!("  note: {note}");
    }
    Ok(())
}
