//! An incident timeline over several sessions, in the shape a regulator's 24-hour early
//! warning and 72-hour incident notification ask for (NIS2 art. 23 and similar): what
//! happened, when, which assets, what was done, and how trustworthy the evidence is.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::{EndReason, SessionEvent};
use crate::read::{Recording, Status};
use crate::timeline::escape_markdown;

fn at(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_else(|_| time.to_string())
}

fn end_of(recording: &Recording) -> Option<&EndReason> {
    recording.manifest.as_ref().map(|m| &m.end_reason)
}

/// The report in Markdown, over `recordings` (already chosen by the caller for the period
/// `since`..`until`).
pub fn incident_report(
    recordings: &[Recording],
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> String {
    let mut out = String::from("# Incident report: remote access sessions\n\n");
    let _ = writeln!(
        out,
        "Period: {} to {}  \nGenerated: {}\n",
        at(since),
        at(until),
        at(OffsetDateTime::now_utc())
    );

    let mut assets: BTreeMap<String, Vec<&Recording>> = BTreeMap::new();
    let mut vendors: BTreeMap<String, usize> = BTreeMap::new();
    for recording in recordings {
        if let Some(info) = &recording.info {
            let asset = match &info.zone {
                Some(zone) => format!("{} (zone {zone})", info.asset),
                None => info.asset.clone(),
            };
            assets.entry(asset).or_default().push(recording);
            *vendors.entry(info.vendor.clone()).or_default() += 1;
        }
    }
    let count = |f: &dyn Fn(&SessionEvent) -> bool| -> usize {
        recordings
            .iter()
            .flat_map(|r| r.events.iter())
            .filter(|line| f(&line.event))
            .count()
    };
    let denials = count(&|e| {
        e.is_notable()
            && !matches!(
                e,
                SessionEvent::Alert { .. }
                    | SessionEvent::Frozen { .. }
                    | SessionEvent::RecordingFailed { .. }
            )
    });
    let alerts = count(&|e| matches!(e, SessionEvent::Alert { .. }));
    let freezes = count(&|e| matches!(e, SessionEvent::Frozen { .. }));
    let abnormal: Vec<&Recording> = recordings
        .iter()
        .filter(|r| end_of(r).is_none_or(EndReason::is_abnormal))
        .collect();
    let unverified: Vec<&Recording> = recordings
        .iter()
        .filter(|r| r.verification.status != Status::Ok)
        .collect();

    out.push_str("## 1. Early warning (within 24 hours)\n\n");
    let _ = writeln!(out, "- Sessions in the period: {}", recordings.len());
    let _ = writeln!(
        out,
        "- Assets accessed: {}",
        if assets.is_empty() {
            "none".into()
        } else {
            assets.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    );
    let _ = writeln!(
        out,
        "- Vendors: {}",
        if vendors.is_empty() {
            "none".into()
        } else {
            vendors
                .iter()
                .map(|(v, n)| format!("{v} ({n})"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let _ = writeln!(
        out,
        "- Refused actions (commands, Modbus requests, forwards, transfers): {denials}"
    );
    let _ = writeln!(
        out,
        "- Detector alerts: {alerts}; sessions frozen: {freezes}"
    );
    let _ = writeln!(
        out,
        "- Sessions ended by revocation, termination, quarantine or failure: {}",
        abnormal.len()
    );
    let _ = writeln!(
        out,
        "- Recordings that do not verify as complete: {}",
        unverified.len()
    );
    out.push_str("- Suspected unlawful or malicious act, cross-border impact: to be assessed by the reporting entity from the indicators above and below.\n\n");

    out.push_str(
        "## 2. Incident notification (within 72 hours)\n\n### Affected assets and sessions\n\n",
    );
    out.push_str("| Asset | Session | Vendor | Start (UTC) | How it ended | Commands | Denials | Alerts | Evidence |\n|---|---|---|---|---|---|---|---|---|\n");
    for (asset, sessions) in &assets {
        for r in sessions {
            let (commands, denials, alerts) = r.manifest.as_ref().map_or_else(
                || {
                    let c = r
                        .events
                        .iter()
                        .filter(|l| matches!(l.event, SessionEvent::Command { .. }))
                        .count() as u64;
                    (c, 0, 0)
                },
                |m| (m.counts.commands, m.counts.denials, m.counts.alerts),
            );
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {commands} | {denials} | {alerts} | {} |",
                escape_markdown(asset),
                r.id,
                escape_markdown(r.info.as_ref().map_or("?", |i| i.vendor.as_str())),
                r.info
                    .as_ref()
                    .map_or_else(|| "?".into(), |i| at(i.started_at)),
                escape_markdown(&end_of(r).map_or_else(
                    || "did not finish (no manifest)".into(),
                    EndReason::describe
                )),
                match r.verification.status {
                    Status::Ok => "verified",
                    Status::Incomplete => "incomplete",
                    Status::Failed => "FAILED",
                }
            );
        }
    }

    out.push_str("\n### Measures taken\n\n");
    let mut measures = 0;
    for r in recordings {
        if let Some(reason) = end_of(r).filter(|e| e.is_abnormal()) {
            measures += 1;
            let _ = writeln!(
                out,
                "- {}: session {} {}",
                r.manifest
                    .as_ref()
                    .map_or_else(String::new, |m| at(m.ended_at)),
                r.id,
                escape_markdown(&reason.describe())
            );
        }
        for line in &r.events {
            if let SessionEvent::Frozen { by, reason } = &line.event {
                measures += 1;
                let _ = writeln!(
                    out,
                    "- {}: session {} frozen by {}: {}",
                    at(line.at),
                    r.id,
                    escape_markdown(by),
                    escape_markdown(reason)
                );
            }
        }
    }
    if measures == 0 {
        out.push_str("- none recorded\n");
    }

    out.push_str("\n### Timeline of notable events\n\n| Time (UTC) | Session | Asset | Event |\n|---|---|---|---|\n");
    let mut notable: Vec<(OffsetDateTime, &Recording, String)> = recordings
        .iter()
        .flat_map(|r| {
            r.events
                .iter()
                .filter(|l| {
                    l.event.is_notable()
                        || matches!(
                            l.event,
                            SessionEvent::RecordingStarted { .. }
                                | SessionEvent::RecordingEnded { .. }
                        )
                })
                .map(move |l| (l.at, r, l.event.describe()))
        })
        .collect();
    notable.sort_by_key(|(time, _, _)| *time);
    for (time, r, text) in notable {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            at(time),
            r.id,
            escape_markdown(r.info.as_ref().map_or("?", |i| i.asset.as_str())),
            escape_markdown(&text)
        );
    }

    out.push_str("\n### Integrity of the evidence\n\n");
    for r in recordings {
        let _ = writeln!(
            out,
            "- {}",
            escape_markdown(&r.verification.render().replace('\n', "; "))
        );
    }
    out
}
