//! Evaluation on a Modbus/TCP capture with per-packet labels (`index;0|1`, as in the Lemay
//! & Fernandez SCADA data sets): the live detector learns the leading normal traffic (every
//! packet before the first labelled attack), then scores the rest packet by packet. Each
//! conversation (client, server and port) is a session (the client is the "vendor", the
//! server the asset);
//! Modbus requests and exception responses are Modbus events, payloads on other ports are
//! flows; a packet scores its session's risk after its events, so a handshake or an
//! acknowledgement inherits what its conversation has shown.

use std::collections::{BTreeMap, HashMap};

use time::OffsetDateTime;

use crate::config::DetectorConfig;
use crate::engine::Detector;
use crate::error::{DetectorError, Result};
use crate::eval::capture::{Packet, modbus, packets};
use crate::eval::roc::Report;
use crate::observation::{ModbusRequest, Observation, Observed, SessionContext};

/// Reads `index;label` lines.
pub fn labels(name: &str, text: &str) -> Result<BTreeMap<usize, bool>> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parsed = line.split_once([';', ',']).and_then(|(i, l)| {
            let label = match l.trim() {
                "0" => false,
                "1" => true,
                _ => return None,
            };
            Some((i.trim().parse::<usize>().ok()?, label))
        });
        let (index, label) = parsed.ok_or_else(|| {
            DetectorError::Input(format!(
                "{name}: line {}: expected `index;0` or `index;1`",
                n + 1
            ))
        })?;
        out.insert(index, label);
    }
    Ok(out)
}

/// Who is the server of a packet's conversation: the Modbus side, else the side a SYN was
/// sent to, else the lower port.
fn sides(p: &Packet<'_>) -> (String, String, u16) {
    let to_server = if p.dport == 502 {
        true
    } else if p.sport == 502 {
        false
    } else if p.tcp && p.flags & 0x12 == 0x02 {
        true
    } else if p.tcp && p.flags & 0x12 == 0x12 {
        false
    } else {
        p.dport <= p.sport
    };
    if to_server {
        (p.src.to_string(), p.dst.to_string(), p.dport)
    } else {
        (p.dst.to_string(), p.src.to_string(), p.sport)
    }
}

/// Scores a capture against its labels.
pub fn evaluate(
    name: &str,
    capture: &[u8],
    labels: &BTreeMap<usize, bool>,
    config: DetectorConfig,
) -> Result<Report> {
    let (packets, records) =
        packets(capture).map_err(|e| DetectorError::Input(format!("{name}: {e}")))?;
    let first_attack = labels
        .iter()
        .find(|(_, l)| **l)
        .map(|(i, _)| *i)
        .unwrap_or(usize::MAX);
    let mut detector = Detector::new(config)?;
    let threshold = detector
        .playbook()
        .thresholds(None, None)
        .alert
        .unwrap_or(100);
    let mut pending: HashMap<(String, u16), ModbusRequest> = HashMap::new();
    let mut started: HashMap<String, ()> = HashMap::new();
    let mut scored: Vec<(f64, bool)> = Vec::new();
    let mut flagged = Vec::new();
    for p in &packets {
        let at = OffsetDateTime::from_unix_timestamp(i64::from(p.secs))
            .map(|t| t + time::Duration::microseconds(i64::from(p.micros)))
            .map_err(|e| DetectorError::Input(format!("{name}: packet {}: {e}", p.index)))?;
        let (client, server, port) = sides(p);
        let session = format!("{client}>{server}:{port}");
        if started.insert(session.clone(), ()).is_none() {
            detector.start(SessionContext {
                id: session.clone(),
                grant: None,
                vendor: client.clone(),
                asset: server.clone(),
                zone: None,
                level: None,
                addresses: vec![server.clone()],
                maintenance: Vec::new(),
                started_at: at,
            });
        }
        let mut events = Vec::new();
        if port == 502 && p.tcp {
            let request = p.dport == 502;
            for message in modbus(p.payload, request) {
                let key = (session.clone(), message.transaction);
                if request {
                    pending.insert(key, message.request.clone());
                    events.push(message.request);
                } else if let Some(exception) = message.request.exception {
                    let mut asked = pending.remove(&key).unwrap_or(message.request);
                    asked.exception = Some(exception);
                    events.push(asked);
                } else {
                    pending.remove(&key);
                }
            }
            if pending.len() > 100_000 {
                pending.clear();
            }
        }
        let mut observations: Vec<Observation> = events
            .into_iter()
            .map(|request| Observation {
                session: session.clone(),
                at,
                what: Observed::Modbus {
                    request,
                    allowed: true,
                },
            })
            .collect();
        if port != 502 && !p.payload.is_empty() {
            observations.push(Observation {
                session: session.clone(),
                at,
                what: Observed::Flow {
                    client: client.clone(),
                    server: server.clone(),
                    port,
                },
            });
        }
        if p.index < first_attack {
            detector.learn(&client, &server, &observations);
            continue;
        }
        let mut score = detector.risk_of(&session).unwrap_or(0);
        for observation in &observations {
            if let Some(assessment) = detector.observe(observation) {
                score = score.max(assessment.risk);
            }
        }
        let abnormal = labels.get(&p.index).copied().unwrap_or(false);
        flagged.push(score >= threshold);
        scored.push((f64::from(score), abnormal));
    }
    let data = format!(
        "capture {name} ({records} packets; {} IPv4 TCP/UDP scored after the first attack at packet {first_attack})",
        scored.len()
    );
    Ok(Report::of(data, name, &scored, &flagged))
}
