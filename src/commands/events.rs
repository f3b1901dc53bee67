//! `otgate events`: the event log as text, JSON lines or CEF; `--follow` long-polls.

use anyhow::Result;

use otgate_broker::{EventPage, StoredEvent};

use crate::cli::{Cli, EventFormat, EventsArgs};
use crate::client::Client;
use crate::output;

fn line(event: &StoredEvent, format: EventFormat) -> Result<String> {
    Ok(match format {
        EventFormat::Json => serde_json::to_string(event)?,
        EventFormat::Cef => event.event.to_cef(env!("CARGO_PKG_VERSION")),
        EventFormat::Text => {
            let mut details = serde_json::to_value(&event.event.kind)?;
            if let Some(map) = details.as_object_mut() {
                map.remove("type");
            }
            format!(
                "{:>6} {} {:<20} actor={} zone={} {}",
                event.seq,
                output::time(event.event.at),
                event.event.kind.name(),
                event
                    .event
                    .actor
                    .as_ref()
                    .map_or("-".to_owned(), ToString::to_string),
                event
                    .event
                    .zone
                    .as_ref()
                    .map_or("-".to_owned(), ToString::to_string),
                details
            )
        }
    })
}

pub async fn run(cli: &Cli, args: &EventsArgs) -> Result<()> {
    let client = Client::connect(cli)?;
    let format = if cli.json {
        EventFormat::Json
    } else {
        args.format
    };
    let mut after = args.after;
    let mut printed = 0u32;
    loop {
        let wait = if args.follow { 30 } else { 0 };
        let limit = if args.follow {
            500
        } else {
            args.limit.saturating_sub(printed).clamp(1, 1000)
        };
        let page: EventPage = client
            .get(&format!("/events?after={after}&limit={limit}&wait={wait}"))
            .await?;
        for event in &page.events {
            println!("{}", line(event, format)?);
        }
        printed = printed.saturating_add(u32::try_from(page.events.len()).unwrap_or(u32::MAX));
        let moved = page.next > after;
        after = page.next;
        if !args.follow && (!moved || printed >= args.limit) {
            return Ok(());
        }
    }
}
