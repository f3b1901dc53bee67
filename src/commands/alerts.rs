//! `otgate alerts ...`.

use std::io::Read;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use otgate_broker::Alert;

use crate::cli::{AlertsCommand, Cli};
use crate::client::{Client, encode};
use crate::output;

fn print(alert: &Alert) {
    println!(
        "alert {} at {}: {} from {}, score {}{}",
        alert.id,
        output::time(alert.at),
        alert.origin,
        alert.source,
        alert.score,
        alert
            .response
            .as_deref()
            .map(|r| format!(", response {r}"))
            .unwrap_or_default()
    );
    println!(
        "  asset {}  vendor {}  zone {}",
        alert.asset.as_deref().unwrap_or("-"),
        alert.vendor.as_deref().unwrap_or("-"),
        alert.zone.as_deref().unwrap_or("-")
    );
    println!("  {}", alert.title);
    for finding in &alert.findings {
        println!("  - [{} {}] {}", finding.model, finding.score, finding.text);
    }
    if !alert.sessions.is_empty() {
        println!("  sessions: {}", alert.sessions.join(", "));
    }
    if let (Some(by), Some(note)) = (&alert.false_positive_by, &alert.false_positive_note) {
        println!("  false positive (by {by}): {note}");
    }
}

pub async fn run(cli: &Cli, command: &AlertsCommand) -> Result<()> {
    let client = Client::connect(cli)?;
    match command {
        AlertsCommand::List {
            session,
            asset,
            vendor,
        } => {
            let mut query = Vec::new();
            for (key, value) in [("session", session), ("asset", asset), ("vendor", vendor)] {
                if let Some(value) = value {
                    query.push(format!("{key}={}", encode(value)));
                }
            }
            let path = if query.is_empty() {
                "/alerts".to_owned()
            } else {
                format!("/alerts?{}", query.join("&"))
            };
            let alerts: Vec<Alert> = client.get(&path).await?;
            if cli.json {
                return output::json(&alerts);
            }
            let rows: Vec<Vec<String>> = alerts
                .iter()
                .map(|a| {
                    vec![
                        a.id.to_string(),
                        output::time(a.at),
                        a.source.clone(),
                        a.score.to_string(),
                        a.asset.clone().unwrap_or_default(),
                        a.vendor.clone().unwrap_or_default(),
                        a.response.clone().unwrap_or_default(),
                        if a.false_positive_at.is_some() {
                            "false positive".into()
                        } else {
                            String::new()
                        },
                        a.title.chars().take(80).collect(),
                    ]
                })
                .collect();
            output::table(
                &[
                    "ID", "AT", "SOURCE", "SCORE", "ASSET", "VENDOR", "RESPONSE", "JUDGED", "TITLE",
                ],
                &rows,
            );
        }
        AlertsCommand::Show { id } => {
            let alert: Alert = client.get(&format!("/alerts/{id}")).await?;
            if cli.json {
                return output::json(&alert);
            }
            print(&alert);
        }
        AlertsCommand::Report { file } => {
            let mut text = String::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading {}", file.display()))?;
            }
            let body: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let alert: Alert = client.post("/alerts", &body).await?;
            if cli.json {
                return output::json(&alert);
            }
            print(&alert);
        }
        AlertsCommand::FalsePositive { id, note } => {
            let alert: Alert = client
                .post(
                    &format!("/alerts/{id}/false-positive"),
                    &json!({ "note": note }),
                )
                .await?;
            if cli.json {
                return output::json(&alert);
            }
            println!(
                "alert {} marked a false positive: the detector learns its events as normal",
                alert.id
            );
        }
    }
    Ok(())
}
