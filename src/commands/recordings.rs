//! `otgate sessions`, `otgate replay`, `otgate audit`: finding, playing, verifying and
//! exporting recorded sessions, from the server or from a copied `recordings/` folder.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use time::OffsetDateTime;

use otgate_broker::{RecordedSession, SearchHit, parse_since};
use otgate_policy::window::parse_duration;
use otgate_recorder::replay::{PlayOptions, clock, export_cast, play};
use otgate_recorder::storage::LocalStorage;
use otgate_recorder::{
    Archive, Recording, Status, VerifyingKey, evidence_bundle, incident_report, read,
};

use crate::cli::{AuditCommand, Cli, ReplayArgs, SessionsCommand, SourceArgs};
use crate::client::{Client, encode};
use crate::output;
use crate::remote::ApiStorage;

/// Exit status of `audit verify` when a recording does not verify.
pub const VERIFY_FAILED: u8 = 1;

fn archive(cli: &Cli, source: &SourceArgs) -> Result<Archive> {
    Ok(match &source.dir {
        Some(dir) => {
            if !dir.is_dir() {
                bail!("{}: not a directory of recordings", dir.display());
            }
            Archive::new(Arc::new(LocalStorage::new(dir)), None)
        }
        None => Archive::new(Arc::new(ApiStorage::new(Client::connect(cli)?)), None),
    })
}

fn key(source: &SourceArgs, required: bool) -> Result<Option<VerifyingKey>> {
    match &source.key {
        Some(path) => Ok(Some(VerifyingKey::load(path).with_context(
            || "the recording public key (keys/recording.pub.pem of the recording node)",
        )?)),
        None if required => bail!(
            "name the recording public key with --key FILE (or OTGATE_RECORDING_KEY): \
             verification must not trust the machine that recorded"
        ),
        None => Ok(None),
    }
}

fn status_word(recording: &Recording) -> &'static str {
    match recording.verification.status {
        Status::Ok => "verified",
        Status::Incomplete => "INCOMPLETE",
        Status::Failed => "FAILED VERIFICATION",
    }
}

/// `otgate sessions ...`.
pub async fn sessions(cli: &Cli, command: &SessionsCommand) -> Result<()> {
    let client = Client::connect(cli)?;
    match command {
        SessionsCommand::List {
            vendor,
            asset,
            since,
            live,
            limit,
        } => {
            let mut query = format!("/sessions?limit={limit}&live={live}");
            for (name, value) in [("vendor", vendor), ("asset", asset), ("since", since)] {
                if let Some(value) = value {
                    query.push_str(&format!("&{name}={}", encode(value)));
                }
            }
            let list: Vec<RecordedSession> = client.get(&query).await?;
            if cli.json {
                return output::json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        output::time(s.started_at),
                        clock(s.duration_ms as f64 / 1000.0),
                        s.vendor.clone(),
                        s.asset.clone(),
                        s.protocol.clone(),
                        format!("{:?}", s.state).to_lowercase(),
                        s.verification.clone(),
                        format!("{}/{}/{}", s.commands, s.denials, s.alerts),
                    ]
                })
                .collect();
            output::table(
                &[
                    "SESSION",
                    "STARTED",
                    "LENGTH",
                    "VENDOR",
                    "ASSET",
                    "PROTO",
                    "STATE",
                    "VERIFIED",
                    "CMD/DENY/ALERT",
                ],
                &rows,
            );
        }
        SessionsCommand::Show { id } => {
            let s: RecordedSession = client.get(&format!("/sessions/{}", encode(id))).await?;
            if cli.json {
                return output::json(&s);
            }
            let rows = [
                ("session", s.id.clone()),
                ("vendor", s.vendor.clone()),
                ("asset", s.asset.clone()),
                ("zone", s.zone.clone().unwrap_or_else(|| "-".into())),
                ("grant", s.grant.map_or("-".into(), |g| g.to_string())),
                ("protocol", s.protocol.clone()),
                ("client", s.client.clone().unwrap_or_else(|| "-".into())),
                ("started", output::time(s.started_at)),
                ("ended", s.ended_at.map_or("-".into(), output::time)),
                (
                    "end reason",
                    s.end_reason.clone().unwrap_or_else(|| "-".into()),
                ),
                ("length", clock(s.duration_ms as f64 / 1000.0)),
                ("state", format!("{:?}", s.state).to_lowercase()),
                ("verification", s.verification.clone()),
                (
                    "counts",
                    format!(
                        "{} events, {} commands, {} denials, {} alerts, {} bytes out, {} bytes in, {} bytes stored",
                        s.events,
                        s.commands,
                        s.denials,
                        s.alerts,
                        s.output_bytes,
                        s.input_bytes,
                        s.stored_bytes
                    ),
                ),
            ];
            for (label, value) in rows {
                println!("{label:>13}: {value}");
            }
            if !s.findings.is_empty() {
                println!("{:>13}: {}", "findings", s.findings);
            }
            println!("\nreplay: otgate replay {}", s.id);
        }
        SessionsCommand::Kill { id, reason } => {
            act(
                &client,
                id,
                &serde_json::json!({ "action": "kill", "reason": reason }),
            )
            .await?;
            println!("session {id}: kill sent to the gateway");
        }
        SessionsCommand::Freeze { id, reason } => {
            act(
                &client,
                id,
                &serde_json::json!({ "action": "freeze", "reason": reason }),
            )
            .await?;
            println!(
                "session {id}: frozen (the vendor's input is recorded, not sent to the asset)"
            );
        }
        SessionsCommand::Resume { id } => {
            act(&client, id, &serde_json::json!({ "action": "resume" })).await?;
            println!("session {id}: resumed");
        }
        SessionsCommand::Watch { id } => watch(cli, id).await?,
        SessionsCommand::Search { query, limit } => {
            let hits: Vec<SearchHit> = client
                .get(&format!(
                    "/sessions/search?q={}&limit={limit}",
                    encode(query)
                ))
                .await?;
            if cli.json {
                return output::json(&hits);
            }
            if hits.is_empty() {
                println!("no recorded session contains {query:?}");
            }
            for hit in &hits {
                let s = &hit.session;
                println!(
                    "{}  {}  {} on {}  ({})",
                    s.id,
                    output::time(s.started_at),
                    s.vendor,
                    s.asset,
                    s.verification
                );
                for moment in &hit.moments {
                    println!(
                        "    at {}  {:<7}  {}",
                        clock(moment.offset_ms as f64 / 1000.0),
                        moment.kind,
                        moment.snippet
                    );
                }
                if let Some(first) = hit.moments.first() {
                    println!(
                        "    replay from there: otgate replay {} --from {:.1}",
                        s.id,
                        first.offset_ms as f64 / 1000.0
                    );
                }
            }
        }
    }
    Ok(())
}

/// Follows a live session's recording through the API (it is flushed every second) and
/// prints its terminal output as it comes, until the recording has its manifest.
async fn watch(cli: &Cli, id: &str) -> Result<()> {
    let archive = Archive::new(Arc::new(ApiStorage::new(Client::connect(cli)?)), None);
    let mut shown = 0usize;
    let stdout = std::io::stdout();
    loop {
        let recording = read(&archive, id, None).await?;
        let frames: Vec<&otgate_recorder::cast::Frame> = recording
            .frames
            .iter()
            .filter(|f| f.code == otgate_recorder::cast::Code::Output)
            .collect();
        let mut out = stdout.lock();
        for frame in frames.iter().skip(shown) {
            out.write_all(frame.data.as_bytes())?;
        }
        out.flush()?;
        shown = shown.max(frames.len());
        if let Some(manifest) = &recording.manifest {
            writeln!(
                out,
                "\r\n[otgate] session {id} ended: {}\r",
                manifest.end_reason.describe()
            )?;
            return Ok(());
        }
        drop(out);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

async fn act(client: &Client, id: &str, body: &serde_json::Value) -> Result<RecordedSession> {
    client
        .post(&format!("/sessions/{}/action", encode(id)), body)
        .await
}

/// Parses `--from`: seconds (`90`, `12.5`), `mm:ss`, or a duration (`1m30s`).
fn parse_offset(text: &str) -> Result<f64> {
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Ok(seconds);
    }
    if let Some((minutes, seconds)) = text.split_once(':')
        && let (Ok(minutes), Ok(seconds)) = (minutes.parse::<u64>(), seconds.parse::<f64>())
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Ok(minutes as f64 * 60.0 + seconds);
    }
    parse_duration(text).map(|d| d.as_secs_f64()).map_err(|_| {
        anyhow!("--from {text:?}: use seconds (90), mm:ss (01:30) or a duration (1m30s)")
    })
}

/// `otgate replay`.
pub async fn replay(cli: &Cli, args: &ReplayArgs) -> Result<()> {
    let archive = archive(cli, &args.source)?;
    let key = key(&args.source, false)?;
    let recording = read(&archive, &args.id, key.as_ref()).await?;
    if let Some(path) = &args.pcap {
        let Some(pcap) = otgate_recorder::export_pcap(&recording) else {
            bail!(
                "session {} captured no TCP bytes (only plain TCP forwards are captured)",
                args.id
            );
        };
        std::fs::write(path, &pcap).with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "wrote {} ({} bytes, {})",
            path.display(),
            pcap.len(),
            status_word(&recording)
        );
        return Ok(());
    }
    if let Some(path) = &args.export {
        std::fs::write(path, export_cast(&recording))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "wrote {} ({} frames, {}); play it with `asciinema play {}`",
            path.display(),
            recording.frames.len(),
            status_word(&recording),
            path.display()
        );
        if recording.verification.status != Status::Ok {
            eprintln!("{}", recording.verification.render());
        }
        return Ok(());
    }
    if !(args.speed.is_finite() && args.speed > 0.0) {
        bail!("--speed must be a positive number");
    }
    let options = PlayOptions {
        speed: args.speed,
        from: args
            .from
            .as_deref()
            .map(parse_offset)
            .transpose()?
            .unwrap_or(0.0),
        idle_cap: args.idle_cap.max(0.0),
        events: !args.no_events,
    };
    if let Some(info) = &recording.info {
        eprintln!(
            "session {}: {} on {} at {} ({}{})",
            recording.id,
            info.vendor,
            info.asset,
            output::time(info.started_at),
            status_word(&recording),
            if key.is_none() {
                ", signatures not checked: pass --key"
            } else {
                ""
            }
        );
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // A Modbus session has no terminal: its transactions are the session.
    if recording.frames.is_empty()
        && let Some(table) = otgate_recorder::modbus_table(&recording)
    {
        out.write_all(table.as_bytes())?;
        if recording.verification.status != Status::Ok {
            writeln!(out, "{}", recording.verification.render())?;
        }
        return Ok(());
    }
    play(&recording, &mut out, &options, &mut std::thread::sleep)?;
    out.flush()?;
    Ok(())
}

async fn all_ids(archive: &Archive) -> Result<Vec<String>> {
    Ok(archive.sessions().await?.into_keys().collect())
}

/// `otgate audit ...`; returns the exit status.
pub async fn audit(cli: &Cli, command: &AuditCommand) -> Result<u8> {
    match command {
        AuditCommand::Verify { id, all, source } => {
            let archive = archive(cli, source)?;
            let key = key(source, true)?;
            let ids = match (id, all) {
                (Some(id), _) => vec![id.clone()],
                (None, true) => all_ids(&archive).await?,
                (None, false) => bail!("name a session id or pass --all"),
            };
            if ids.is_empty() {
                bail!("no recordings in {}", archive.store().describe());
            }
            let mut failed = 0;
            let mut reports = Vec::new();
            for id in &ids {
                let verification = match read(&archive, id, key.as_ref()).await {
                    Ok(recording) => recording.verification,
                    Err(error) => {
                        failed += 1;
                        println!("{id}: FAILED\n  - {error}");
                        continue;
                    }
                };
                if verification.status != Status::Ok {
                    failed += 1;
                }
                if cli.json {
                    reports.push(verification);
                } else {
                    println!("{}", verification.render());
                }
            }
            if cli.json {
                output::json(&reports)?;
            }
            if failed > 0 {
                eprintln!("{failed} of {} recording(s) did not verify", ids.len());
                return Ok(VERIFY_FAILED);
            }
            Ok(0)
        }
        AuditCommand::Export { id, out, source } => {
            let archive = archive(cli, source)?;
            let key = key(source, false)?;
            let recording = read(&archive, id, key.as_ref()).await?;
            let bundle = evidence_bundle(&archive, &recording, key.as_ref()).await?;
            write_new(out, &bundle)?;
            eprintln!(
                "wrote {} ({} bytes): recording {}, timeline, verification report",
                out.display(),
                bundle.len(),
                status_word(&recording)
            );
            Ok(0)
        }
        AuditCommand::Report {
            since,
            until,
            out,
            source,
        } => {
            let now = OffsetDateTime::now_utc();
            let since = parse_since(since, now)?;
            let until = until
                .as_deref()
                .map(|u| parse_since(u, now))
                .transpose()?
                .unwrap_or(now);
            let archive = archive(cli, source)?;
            let key = key(source, false)?;
            let mut recordings = Vec::new();
            for id in all_ids(&archive).await? {
                match read(&archive, &id, key.as_ref()).await {
                    Ok(r)
                        if r.info
                            .as_ref()
                            .is_some_and(|i| i.started_at >= since && i.started_at <= until) =>
                    {
                        recordings.push(r);
                    }
                    Ok(_) => {}
                    Err(error) => eprintln!("{id}: skipped: {error}"),
                }
            }
            recordings.sort_by_key(|r| r.info.as_ref().map(|i| i.started_at));
            let report = incident_report(&recordings, since, until);
            match out {
                Some(path) => {
                    write_new(path, report.as_bytes())?;
                    eprintln!("wrote {} ({} sessions)", path.display(), recordings.len());
                }
                None => print!("{report}"),
            }
            Ok(0)
        }
    }
}

/// Writes a file that must not exist yet (evidence is never overwritten by accident).
fn write_new(path: &Path, data: &[u8]) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(data)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::parse_offset;

    #[test]
    fn offsets_read_three_ways() {
        assert_eq!(parse_offset("90").unwrap(), 90.0);
        assert_eq!(parse_offset("01:30").unwrap(), 90.0);
        assert_eq!(parse_offset("1m 30s").unwrap(), 90.0);
        assert!(parse_offset("-3").is_err());
        assert!(parse_offset("soon").is_err());
    }
}
