//! `otgate request ...` and `otgate grant ...`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use otgate_broker::{IssuedCertificate, IssuedToken, Request, ScopeSpec};
use otgate_policy::window::{format_duration, parse_duration};
use otgate_policy::{Preset, Protocol, Scope};

use crate::cli::{Cli, GrantCommand, ListFilter, ProtocolArg, RequestCommand};
use crate::client::Client;
use crate::output;

fn protocol(arg: ProtocolArg) -> Protocol {
    match arg {
        ProtocolArg::Ssh => Protocol::Ssh,
        ProtocolArg::Modbus => Protocol::Modbus,
        ProtocolArg::Tcp => Protocol::Tcp,
    }
}

/// `--scope FILE|PRESET`.
fn scope(text: &str) -> Result<ScopeSpec> {
    let path = Path::new(text);
    if path.is_file() {
        let body =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return Ok(ScopeSpec::Custom(Scope::from_toml(&body, text)?));
    }
    Ok(ScopeSpec::Preset(text.parse::<Preset>()?))
}

/// `--start now|+30m|RFC3339`.
fn start(text: &str) -> Result<Option<OffsetDateTime>> {
    match text.trim() {
        "now" | "" => Ok(None),
        relative if relative.starts_with('+') => {
            let offset = parse_duration(relative.trim_start_matches('+'))?;
            Ok(Some(OffsetDateTime::now_utc() + offset))
        }
        absolute => OffsetDateTime::parse(absolute, &Rfc3339)
            .map(Some)
            .map_err(|_| anyhow!("--start `{absolute}`: use now, +30m, or an RFC 3339 time such as 2026-12-05T08:00:00Z")),
    }
}

fn query(filter: &ListFilter, grants: bool) -> String {
    let mut parts = Vec::new();
    for (key, value) in [
        ("status", &filter.status),
        ("vendor", &filter.vendor),
        ("asset", &filter.asset),
    ] {
        if let Some(value) = value {
            parts.push(format!("{key}={value}"));
        }
    }
    if grants {
        parts.push("grants=true".into());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn protocols(request: &Request) -> String {
    request
        .protocols
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn print_list(cli: &Cli, requests: &[Request]) -> Result<()> {
    if cli.json {
        return output::json(requests);
    }
    let rows: Vec<Vec<String>> = requests
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.status.to_string(),
                r.requester.to_string(),
                format!("{} (L{}, {})", r.asset, r.level, r.zone),
                protocols(r),
                r.scope_name.clone(),
                output::time(r.window.start),
                format_duration(r.window.duration()),
                format!(
                    "{}/{}",
                    r.approvals.len().min(usize::from(r.approvals_needed)),
                    r.approvals_needed
                ),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "STATUS",
            "VENDOR",
            "ASSET",
            "PROTOCOLS",
            "SCOPE",
            "START",
            "LENGTH",
            "APPROVALS",
        ],
        &rows,
    );
    Ok(())
}

fn print_one(cli: &Cli, request: &Request) -> Result<()> {
    if cli.json {
        return output::json(request);
    }
    println!(
        "request {}  {}  ({} of {} approvals)",
        request.id,
        request.status,
        request.approvals.len(),
        request.approvals_needed
    );
    println!("  vendor     {}", request.requester);
    println!(
        "  asset      {} (Purdue level {}, zone {})",
        request.asset, request.level, request.zone
    );
    println!("  protocols  {}", protocols(request));
    println!("  scope      {}", request.scope_name);
    println!(
        "  window     {} to {} ({})",
        output::time(request.window.start),
        output::time(request.window.end),
        format_duration(request.window.duration())
    );
    println!("  reason     {}", request.reason);
    if let Some(ticket) = &request.ticket {
        println!("  ticket     {ticket}");
    }
    for approval in &request.approvals {
        println!(
            "  approved   by {} at {}",
            approval.approver,
            output::time(approval.at)
        );
    }
    if let (Some(by), Some(reason)) = (&request.decided_by, &request.decision_reason) {
        println!("  {:<10} by {by}: {reason}", request.status.to_string());
    }
    println!("  scope detail:");
    for line in toml::to_string_pretty(&request.scope)?.lines() {
        println!("    {line}");
    }
    Ok(())
}

pub async fn request(cli: &Cli, command: &RequestCommand) -> Result<()> {
    let client = Client::connect(cli)?;
    match command {
        RequestCommand::Create {
            asset,
            protocols,
            scope: scope_text,
            start: start_text,
            duration,
            reason,
            ticket,
        } => {
            let body = json!({
                "asset": asset,
                "protocols": protocols.iter().map(|p| protocol(*p)).collect::<Vec<_>>(),
                "scope": scope(scope_text)?,
                "start": start(start_text)?.map(|t| t.format(&Rfc3339)).transpose()?,
                "duration": duration,
                "reason": reason,
                "ticket": ticket,
            });
            let created: Request = client.post("/requests", &body).await?;
            if cli.json {
                return output::json(&created);
            }
            println!(
                "request {} filed: {} on {} for {}, needs {} approval(s)",
                created.id,
                protocols_text(&created),
                created.asset,
                format_duration(created.window.duration()),
                created.approvals_needed
            );
        }
        RequestCommand::List(filter) => {
            let list: Vec<Request> = client
                .get(&format!("/requests{}", query(filter, false)))
                .await?;
            print_list(cli, &list)?;
        }
        RequestCommand::Show { id } => {
            print_one(cli, &client.get(&format!("/requests/{id}")).await?)?
        }
        RequestCommand::Approve { id } => {
            let request: Request = client
                .post(&format!("/requests/{id}/approve"), &json!({}))
                .await?;
            if cli.json {
                return output::json(&request);
            }
            println!(
                "request {} is {} ({} of {} approvals)",
                request.id,
                request.status,
                request.approvals.len(),
                request.approvals_needed
            );
        }
        RequestCommand::Deny { id, reason } => {
            let request: Request = client
                .post(
                    &format!("/requests/{id}/deny"),
                    &json!({ "reason": reason }),
                )
                .await?;
            println!("request {} denied", request.id);
        }
        RequestCommand::Withdraw { id } => {
            let request: Request = client
                .post(&format!("/requests/{id}/withdraw"), &json!({}))
                .await?;
            println!("request {} withdrawn", request.id);
        }
    }
    Ok(())
}

fn protocols_text(request: &Request) -> String {
    format!("{} ({})", protocols(request), request.scope_name)
}

pub async fn grant(cli: &Cli, command: &GrantCommand) -> Result<()> {
    let client = Client::connect(cli)?;
    match command {
        GrantCommand::List(filter) => {
            let list: Vec<Request> = client
                .get(&format!("/grants{}", query(filter, true)))
                .await?;
            print_list(cli, &list)?;
        }
        GrantCommand::Show { id } => print_one(cli, &client.get(&format!("/grants/{id}")).await?)?,
        GrantCommand::Revoke { id, vendor, reason } => match (id, vendor) {
            (Some(id), _) => {
                let request: Request = client
                    .post(
                        &format!("/grants/{id}/revoke"),
                        &json!({ "reason": reason }),
                    )
                    .await?;
                println!("grant {} revoked: its sessions end now", request.id);
            }
            (None, Some(vendor)) => {
                #[derive(serde::Deserialize)]
                struct Revoked {
                    grants: Vec<i64>,
                }
                let answer: Revoked = client
                    .post(
                        &format!("/vendors/{vendor}/revoke"),
                        &json!({ "reason": reason }),
                    )
                    .await?;
                println!(
                    "revoked {} grant(s) of {vendor}: {:?}",
                    answer.grants.len(),
                    answer.grants
                );
            }
            (None, None) => return Err(anyhow!("name a grant id or --vendor")),
        },
        GrantCommand::Cert { id, key, out } => {
            let (key_text, default_out) = match key {
                Some(k) if Path::new(k).is_file() => {
                    let text =
                        std::fs::read_to_string(k).with_context(|| format!("reading {k}"))?;
                    let base = k.strip_suffix(".pub").unwrap_or(k);
                    (
                        Some(text.trim().to_owned()),
                        PathBuf::from(format!("{base}-cert.pub")),
                    )
                }
                Some(fingerprint) => (
                    Some(fingerprint.clone()),
                    PathBuf::from(format!("grant-{id}-cert.pub")),
                ),
                None => (None, PathBuf::from(format!("grant-{id}-cert.pub"))),
            };
            let issued: IssuedCertificate = client
                .post(
                    &format!("/grants/{id}/certificate"),
                    &json!({ "key": key_text }),
                )
                .await?;
            let path = out.clone().unwrap_or(default_out);
            std::fs::write(&path, format!("{}\n", issued.certificate))
                .with_context(|| format!("writing {}", path.display()))?;
            if cli.json {
                return output::json(&issued);
            }
            println!("wrote {}", path.display());
            println!(
                "  key id {}, principal {}, serial {}, valid {} to {}",
                issued.key_id,
                issued.principal,
                issued.serial,
                output::time(issued.valid_after),
                output::time(issued.valid_before)
            );
        }
        GrantCommand::Token { id } => {
            let issued: IssuedToken = client
                .post(&format!("/grants/{id}/token"), &json!({}))
                .await?;
            if cli.json {
                return output::json(&issued);
            }
            println!("{}", issued.token);
            eprintln!(
                "tunnel token for grant {} (id {}), expires {}",
                issued.grant,
                issued.jti,
                output::time(issued.expires)
            );
        }
    }
    Ok(())
}
