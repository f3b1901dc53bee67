//! A human-readable timeline of one session (Markdown and HTML): who, what, when, which
//! commands, which denials, which alerts, how it ended, and whether the recording verifies.

use std::fmt::Write as _;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::SessionEvent;
use crate::read::{Recording, Status};
use crate::replay::clock;

fn at(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_else(|_| time.to_string())
}

/// Escapes text for HTML.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for a Markdown table cell.
pub fn escape_markdown(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '|' => vec!['\\', '|'],
            '`' => vec!['\''],
            c if c.is_control() => vec![' '],
            c => vec![c],
        })
        .collect()
}

/// The facts at the top of a timeline, as (label, value) pairs.
pub fn facts(recording: &Recording) -> Vec<(&'static str, String)> {
    let mut facts = vec![("Session", recording.id.clone())];
    if let Some(info) = &recording.info {
        facts.push(("Vendor", info.vendor.clone()));
        facts.push(("Asset", info.asset.clone()));
        if let Some(zone) = &info.zone {
            facts.push(("Zone", zone.clone()));
        }
        if let Some(grant) = info.grant {
            facts.push(("Grant", grant.to_string()));
        }
        facts.push(("Protocol", info.protocol.clone()));
        if let Some(client) = &info.client {
            facts.push(("Client", client.clone()));
        }
        facts.push(("Started", at(info.started_at)));
    }
    match &recording.manifest {
        Some(manifest) => {
            facts.push(("Ended", at(manifest.ended_at)));
            facts.push(("Duration", clock(manifest.duration)));
            facts.push(("End reason", manifest.end_reason.describe()));
            let c = &manifest.counts;
            facts.push((
                "Counts",
                format!(
                    "{} events, {} commands, {} denials, {} alerts, {} bytes out, {} bytes in",
                    c.events, c.commands, c.denials, c.alerts, c.output_bytes, c.input_bytes
                ),
            ));
        }
        None => facts.push(("Ended", "not recorded: the recording did not finish".into())),
    }
    let v = &recording.verification;
    facts.push((
        "Verification",
        match v.status {
            Status::Ok if v.signatures_checked => {
                "ok: hash chain, file digests and signatures".into()
            }
            Status::Ok => "ok: hash chain and digests (signatures not checked)".into(),
            Status::Incomplete => "INCOMPLETE (see the verification report)".into(),
            Status::Failed => format!("FAILED: {} problem(s)", v.problems.len()),
        },
    ));
    facts
}

/// The rows of a timeline: (wall clock, offset, event, notable).
fn rows(recording: &Recording) -> Vec<(String, String, String, bool)> {
    recording
        .events
        .iter()
        .filter(|line| !matches!(line.event, SessionEvent::Resize { .. }))
        .map(|line| {
            (
                at(line.at),
                clock(line.t),
                line.event.describe(),
                line.event.is_notable(),
            )
        })
        .collect()
}

/// The timeline as Markdown.
pub fn markdown(recording: &Recording) -> String {
    let mut out = format!("# Session {}\n\n", recording.id);
    out.push_str("| | |\n|---|---|\n");
    for (label, value) in facts(recording) {
        let _ = writeln!(out, "| {label} | {} |", escape_markdown(&value));
    }
    out.push_str("\n## Timeline\n\n| Time (UTC) | Offset | Event |\n|---|---|---|\n");
    for (wall, offset, text, notable) in rows(recording) {
        let text = escape_markdown(&text);
        let text = if notable { format!("**{text}**") } else { text };
        let _ = writeln!(out, "| {wall} | {offset} | {text} |");
    }
    let v = &recording.verification;
    if !v.problems.is_empty() || !v.notes.is_empty() {
        out.push_str("\n## Verification findings\n\n");
        for problem in &v.problems {
            let _ = writeln!(out, "- {}", escape_markdown(&problem.to_string()));
        }
        for note in &v.notes {
            let _ = writeln!(out, "- {}", escape_markdown(note));
        }
    }
    out
}

/// The timeline as a self-contained HTML page.
pub fn html(recording: &Recording) -> String {
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Session {id}</title>\n<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}tr.notable td{{background:#fde8e8;font-weight:600}}th{{background:#f3f3f3}}code{{font-family:ui-monospace,monospace}}</style></head><body>\n<h1>Session <code>{id}</code></h1>\n<table>\n",
        id = escape_html(&recording.id)
    );
    for (label, value) in facts(recording) {
        let _ = writeln!(
            out,
            "<tr><th>{label}</th><td>{}</td></tr>",
            escape_html(&value)
        );
    }
    out.push_str("</table>\n<h2>Timeline</h2>\n<table>\n<tr><th>Time (UTC)</th><th>Offset</th><th>Event</th></tr>\n");
    for (wall, offset, text, notable) in rows(recording) {
        let class = if notable { " class=\"notable\"" } else { "" };
        let _ = writeln!(
            out,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape_html(&wall),
            escape_html(&offset),
            escape_html(&text)
        );
    }
    out.push_str("</table>\n");
    let v = &recording.verification;
    if !v.problems.is_empty() || !v.notes.is_empty() {
        out.push_str("<h2>Verification findings</h2>\n<ul>\n");
        for item in v
            .problems
            .iter()
            .map(ToString::to_string)
            .chain(v.notes.iter().cloned())
        {
            let _ = writeln!(out, "<li>{}</li>", escape_html(&item));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body></html>\n");
    out
}
