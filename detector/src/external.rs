//! External alerts (EDR, IDS, SIEM webhooks): a generic JSON alert, or a Suricata EVE
//! `alert` record, read into one shape. Input is untrusted: sizes are bounded and every
//! refusal says what to fix.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{DetectorError, Result};

/// Longest title kept, in characters.
const MAX_TITLE: usize = 200;
/// Longest source name.
const MAX_SOURCE: usize = 64;
/// Largest details document, in bytes of JSON.
const MAX_DETAILS: usize = 16 * 1024;

/// Which asset an alert is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssetRef {
    /// By inventory name.
    Name(String),
    /// By IP address (an endpoint's host).
    Address(String),
}

/// An external alert, read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExternalAlert {
    /// Who sent it (`suricata`, `edr`, ...).
    pub source: String,
    /// 0 (informational) to 10 (critical).
    pub severity: u8,
    /// The assets it may be about, most likely first.
    pub assets: Vec<AssetRef>,
    /// What it says.
    pub title: String,
    /// The rest of the record, as sent (bounded).
    #[schema(value_type = Object)]
    pub details: Value,
}

/// The generic alert format.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenericAlert {
    /// Who sends it.
    pub source: String,
    /// 0-10, or `low`, `medium`, `high`, `critical`.
    #[schema(value_type = Object)]
    pub severity: Value,
    /// The asset's inventory name.
    #[serde(default)]
    pub asset: Option<String>,
    /// The asset's IP address.
    #[serde(default)]
    pub ip: Option<String>,
    /// What happened.
    pub title: String,
    /// Anything else.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub details: Value,
}

fn clean(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect::<String>()
        .trim()
        .to_owned()
}

fn severity(value: &Value) -> Result<u8> {
    let bad = || {
        DetectorError::Alert("severity must be 0-10 or one of low, medium, high, critical".into())
    };
    match value {
        Value::Number(n) => n
            .as_u64()
            .filter(|n| *n <= 10)
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(bad),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "info" | "informational" => Ok(1),
            "low" => Ok(3),
            "medium" => Ok(5),
            "high" => Ok(8),
            "critical" => Ok(10),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

fn bounded(details: Value) -> Result<Value> {
    let size = serde_json::to_vec(&details).map_or(usize::MAX, |v| v.len());
    if size > MAX_DETAILS {
        return Err(DetectorError::Alert(format!(
            "details are {size} bytes; at most {MAX_DETAILS} are kept"
        )));
    }
    Ok(details)
}

fn address(text: &str) -> Result<String> {
    text.trim()
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| DetectorError::Alert(format!("`{}` is not an IP address", clean(text, 64))))
}

impl ExternalAlert {
    /// Reads a generic alert or a Suricata EVE record (`event_type` = `alert`).
    pub fn parse(body: &Value) -> Result<Self> {
        match body.get("event_type") {
            Some(Value::String(kind)) if kind == "alert" => Self::from_eve(body),
            Some(other) => Err(DetectorError::Alert(format!(
                "Suricata EVE records of event_type {} are not alerts; send `alert` records",
                clean(&other.to_string(), 32)
            ))),
            None => {
                let generic: GenericAlert = serde_json::from_value(body.clone()).map_err(|e| {
                    DetectorError::Alert(format!(
                        "not a generic alert ({{source, severity, asset or ip, title, details}}) nor a Suricata EVE alert: {e}"
                    ))
                })?;
                Self::from_generic(generic)
            }
        }
    }

    fn from_generic(alert: GenericAlert) -> Result<Self> {
        let source = clean(&alert.source, MAX_SOURCE);
        let title = clean(&alert.title, MAX_TITLE);
        if source.is_empty() || title.is_empty() {
            return Err(DetectorError::Alert("give a source and a title".into()));
        }
        let mut assets = Vec::new();
        if let Some(name) = alert.asset {
            assets.push(AssetRef::Name(clean(&name, 64)));
        }
        if let Some(ip) = alert.ip {
            assets.push(AssetRef::Address(address(&ip)?));
        }
        if assets.is_empty() {
            return Err(DetectorError::Alert(
                "name the asset (`asset`) or its IP address (`ip`)".into(),
            ));
        }
        Ok(Self {
            source,
            severity: severity(&alert.severity)?,
            assets,
            title,
            details: bounded(alert.details)?,
        })
    }

    fn from_eve(record: &Value) -> Result<Self> {
        let alert = record
            .get("alert")
            .ok_or_else(|| DetectorError::Alert("the EVE record has no `alert` object".into()))?;
        let signature = alert
            .get("signature")
            .and_then(Value::as_str)
            .ok_or_else(|| DetectorError::Alert("the EVE alert has no `signature`".into()))?;
        // Suricata: 1 is the most severe, 3 (or 4) the least.
        let severity = match alert.get("severity").and_then(Value::as_u64) {
            Some(1) => 9,
            Some(2) => 6,
            Some(3) => 3,
            Some(_) => 2,
            None => {
                return Err(DetectorError::Alert(
                    "the EVE alert has no numeric `severity`".into(),
                ));
            }
        };
        let mut assets = Vec::new();
        for key in ["dest_ip", "src_ip"] {
            if let Some(ip) = record.get(key).and_then(Value::as_str) {
                assets.push(AssetRef::Address(address(ip)?));
            }
        }
        if assets.is_empty() {
            return Err(DetectorError::Alert(
                "the EVE record has neither dest_ip nor src_ip".into(),
            ));
        }
        let category = alert.get("category").and_then(Value::as_str).unwrap_or("");
        let title = if category.is_empty() {
            clean(signature, MAX_TITLE)
        } else {
            clean(&format!("{signature} ({category})"), MAX_TITLE)
        };
        Ok(Self {
            source: "suricata".into(),
            severity,
            assets,
            title,
            details: bounded(record.clone())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generic_alerts_are_read() {
        let alert = ExternalAlert::parse(&json!({
            "source": "edr", "severity": "high", "asset": "plc-7", "title": "Mimikatz on EWS",
            "details": {"host": "ews-2"}
        }))
        .unwrap();
        assert_eq!(alert.severity, 8);
        assert_eq!(alert.assets, vec![AssetRef::Name("plc-7".into())]);
        let alert = ExternalAlert::parse(&json!({
            "source": "siem", "severity": 4, "ip": "10.0.0.7", "title": "x"
        }))
        .unwrap();
        assert_eq!(alert.assets, vec![AssetRef::Address("10.0.0.7".into())]);
    }

    #[test]
    fn suricata_eve_alerts_are_read() {
        let eve = json!({
            "timestamp": "2026-12-04T10:00:00.000000+0000", "event_type": "alert",
            "src_ip": "192.168.1.50", "src_port": 51000, "dest_ip": "10.0.0.7", "dest_port": 502,
            "proto": "TCP",
            "alert": {"action": "allowed", "signature_id": 2000001, "severity": 1,
                      "signature": "ET SCADA Modbus write to PLC from unusual host",
                      "category": "Attempted Administrator Privilege Gain"}
        });
        let alert = ExternalAlert::parse(&eve).unwrap();
        assert_eq!(alert.source, "suricata");
        assert_eq!(alert.severity, 9);
        assert_eq!(alert.assets[0], AssetRef::Address("10.0.0.7".into()));
        assert!(alert.title.starts_with("ET SCADA Modbus write"));
    }

    #[test]
    fn garbage_is_refused_with_reasons() {
        let cases = [
            (json!({"event_type": "flow"}), "not alerts"),
            (
                json!({"event_type": "alert", "src_ip": "1.2.3.4"}),
                "no `alert` object",
            ),
            (
                json!({"source": "x", "severity": 11, "asset": "a", "title": "t"}),
                "severity",
            ),
            (
                json!({"source": "x", "severity": 5, "title": "t"}),
                "name the asset",
            ),
            (
                json!({"source": "x", "severity": 5, "ip": "not-an-ip", "title": "t"}),
                "not an IP",
            ),
            (json!({"source": "x"}), "not a generic alert"),
            (json!([1, 2]), "not a generic alert"),
            (
                json!({"source": "x", "severity": 5, "asset": "a", "title": "t", "details": "y".repeat(20_000)}),
                "at most",
            ),
        ];
        for (body, expect) in cases {
            let err = ExternalAlert::parse(&body).unwrap_err().to_string();
            assert!(err.contains(expect), "{body}: {err}");
        }
    }
}
