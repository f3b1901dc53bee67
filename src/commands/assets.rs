//! `otgate assets ...`.

use anyhow::{Context, Result};
use serde_json::json;

use otgate_policy::{Asset, Inventory};

use crate::cli::{AssetsCommand, Cli};
use crate::client::Client;
use crate::output;

fn endpoints(asset: &Asset) -> String {
    asset
        .endpoints
        .iter()
        .map(|e| format!("{}:{}:{}", e.protocol, e.host, e.port))
        .collect::<Vec<_>>()
        .join(" ")
}

pub async fn run(cli: &Cli, command: &AssetsCommand) -> Result<()> {
    let client = Client::connect(cli)?;
    match command {
        AssetsCommand::List => {
            let assets: Vec<Asset> = client.get("/assets").await?;
            if cli.json {
                return output::json(&assets);
            }
            let rows = assets
                .iter()
                .map(|a| {
                    vec![
                        a.name.to_string(),
                        serde_json::to_value(a.kind)?
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        a.level.to_string(),
                        a.zone.to_string(),
                        a.site.clone().unwrap_or_default(),
                        endpoints(a),
                    ]
                    .into_iter()
                    .map(Ok)
                    .collect::<Result<Vec<_>>>()
                })
                .collect::<Result<Vec<_>>>()?;
            output::table(
                &["NAME", "KIND", "LEVEL", "ZONE", "SITE", "ENDPOINTS"],
                &rows,
            );
        }
        AssetsCommand::Show { name } => {
            let asset: Asset = client.get(&format!("/assets/{name}")).await?;
            if cli.json {
                return output::json(&asset);
            }
            println!("{}", toml::to_string_pretty(&asset)?);
        }
        AssetsCommand::Add { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let asset: Asset = toml::from_str(&text)
                .with_context(|| format!("{} is not an asset", file.display()))?;
            asset.validate(&file.display().to_string())?;
            #[derive(serde::Deserialize)]
            struct Saved {
                created: bool,
            }
            let saved: Saved = client.post("/assets", &asset).await?;
            let verb = if saved.created { "added" } else { "updated" };
            println!(
                "{verb} {} (level {}, zone {})",
                asset.name, asset.level, asset.zone
            );
        }
        AssetsCommand::Import { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let inventory = Inventory::from_toml(&text, &file.display().to_string())?;
            client
                .post_no_content("/inventory", &json!(inventory))
                .await?;
            println!(
                "imported {} zones and {} assets",
                inventory.zones.len(),
                inventory.assets.len()
            );
        }
    }
    Ok(())
}
