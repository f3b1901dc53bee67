//! `otgate quarantine ...`.

use anyhow::Result;
use serde_json::json;
use time::OffsetDateTime;

use otgate_broker::Quarantine;

use crate::cli::{Cli, QuarantineCommand};
use crate::client::Client;
use crate::output;

pub async fn run(cli: &Cli, command: &QuarantineCommand) -> Result<()> {
    let client = Client::connect(cli)?;
    let start = |kind: &str, name: &str, reason: &str, duration: &Option<String>| json!({ "subject": { "kind": kind, "name": name }, "reason": reason, "duration": duration });
    let body = match command {
        QuarantineCommand::Vendor {
            name,
            reason,
            duration,
        } => start("vendor", name, reason, duration),
        QuarantineCommand::Asset {
            name,
            reason,
            duration,
        } => start("asset", name, reason, duration),
        QuarantineCommand::List => {
            let list: Vec<Quarantine> = client.get("/quarantines").await?;
            if cli.json {
                return output::json(&list);
            }
            let now = OffsetDateTime::now_utc();
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|q| {
                    vec![
                        q.id.to_string(),
                        q.subject.to_string(),
                        if q.is_active(now) {
                            "active".into()
                        } else {
                            "ended".into()
                        },
                        output::time(q.until),
                        q.created_by
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_else(|| "otgate".into()),
                        q.reason.clone(),
                    ]
                })
                .collect();
            output::table(&["ID", "SUBJECT", "STATE", "UNTIL", "BY", "REASON"], &rows);
            return Ok(());
        }
        QuarantineCommand::Lift { id } => {
            let q: Quarantine = client
                .post(&format!("/quarantines/{id}/lift"), &json!({}))
                .await?;
            println!("quarantine {} of {} lifted", q.id, q.subject);
            return Ok(());
        }
    };
    let q: Quarantine = client.post("/quarantines", &body).await?;
    if cli.json {
        return output::json(&q);
    }
    println!(
        "quarantine {}: {} blocked until {}",
        q.id,
        q.subject,
        output::time(q.until)
    );
    Ok(())
}
