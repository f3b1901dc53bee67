//! The response playbook: per Purdue level and per zone, the session risk at which to alert,
//! freeze, terminate (end the session and revoke the grant) and quarantine (block the vendor
//! for a while); rules that act at once whatever the score; and what to do when the detector
//! itself fails.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use otgate_policy::PurdueLevel;

use crate::error::{DetectorError, Result};
use crate::observation::{ModbusRequest, Table};

/// What the detector does about a session, mildest first.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Record an alert for engineers.
    Alert,
    /// Hold the vendor's input until an engineer resumes or terminates.
    Freeze,
    /// End the session and revoke its grant.
    Terminate,
    /// Terminate, and block the vendor for a period.
    Quarantine,
}

impl Response {
    /// The word, as in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::Freeze => "freeze",
            Self::Terminate => "terminate",
            Self::Quarantine => "quarantine",
        }
    }
}

/// Risk thresholds; an absent one never fires.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Risk at which to alert.
    #[serde(default)]
    pub alert: Option<u8>,
    /// Risk at which to freeze.
    #[serde(default)]
    pub freeze: Option<u8>,
    /// Risk at which to terminate and revoke.
    #[serde(default)]
    pub terminate: Option<u8>,
    /// Risk at which to quarantine the vendor.
    #[serde(default)]
    pub quarantine: Option<u8>,
    /// What to do with live sessions when the detector fails or lags.
    #[serde(default)]
    pub fail_mode: Option<FailMode>,
}

/// What happens to sessions while the detector cannot watch them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Freeze them until an engineer resumes them.
    Freeze,
    /// Let them go on and alert.
    Alert,
}

/// The built-in thresholds of a level: strict where the process is.
fn builtin(level: PurdueLevel) -> Thresholds {
    match level {
        PurdueLevel::L0 | PurdueLevel::L1 => Thresholds {
            alert: Some(40),
            freeze: Some(60),
            terminate: Some(80),
            quarantine: Some(95),
            fail_mode: Some(FailMode::Freeze),
        },
        PurdueLevel::L2 => Thresholds {
            alert: Some(50),
            freeze: Some(70),
            terminate: Some(90),
            quarantine: None,
            fail_mode: Some(FailMode::Alert),
        },
        _ => Thresholds {
            alert: Some(60),
            freeze: Some(80),
            terminate: Some(95),
            quarantine: None,
            fail_mode: Some(FailMode::Alert),
        },
    }
}

/// A rule that acts at once, whatever the score.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Its name, shown in alerts.
    pub name: String,
    /// Modbus writes into this range: `holding:4000-4099`, `coils:0-15`.
    #[serde(default)]
    pub modbus_write: Option<String>,
    /// Programs whose use (allowed or denied) fires the rule.
    #[serde(default)]
    pub commands: Vec<String>,
    /// Only on these assets (all when empty).
    #[serde(default)]
    pub assets: Vec<String>,
    /// What to do.
    pub action: Response,
}

/// A parsed register range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    table: Table,
    first: u16,
    last: u16,
}

fn parse_range(text: &str) -> Result<Range> {
    let bad = || {
        DetectorError::Config(format!(
            "`{text}` is not a register range: write e.g. holding:4000-4099 or coils:7"
        ))
    };
    let (table, span) = text.split_once(':').ok_or_else(bad)?;
    let table = Table::parse(table).ok_or_else(bad)?;
    let (first, last) = span.split_once('-').unwrap_or((span, span));
    let first: u16 = first.trim().parse().map_err(|_| bad())?;
    let last: u16 = last.trim().parse().map_err(|_| bad())?;
    if last < first {
        return Err(bad());
    }
    Ok(Range { table, first, last })
}

/// A checked rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The rule as configured.
    pub config: RuleConfig,
    range: Option<Range>,
}

impl Rule {
    /// Whether a Modbus request on `asset` fires the rule.
    pub fn fires_on_modbus(&self, asset: &str, request: &ModbusRequest) -> bool {
        let (Some(range), Some(table), Some(start)) = (self.range, request.table, request.start)
        else {
            return false;
        };
        if !self.applies_to(asset) || !request.is_write() || table != range.table {
            return false;
        }
        let count = u16::try_from(request.values.len().max(1)).unwrap_or(u16::MAX);
        let last = start.saturating_add(count - 1);
        start <= range.last && range.first <= last
    }

    /// Whether running `program` on `asset` fires the rule.
    pub fn fires_on_program(&self, asset: &str, program: &str) -> bool {
        self.applies_to(asset) && self.config.commands.iter().any(|c| c == program)
    }

    fn applies_to(&self, asset: &str) -> bool {
        self.config.assets.is_empty() || self.config.assets.iter().any(|a| a == asset)
    }
}

/// The playbook as configured (`[detector.playbook]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookConfig {
    /// Thresholds per level (`"0"`, `"1"`, `"2"`, `"3"`, `"3.5"`, ...), over the built-in ones.
    #[serde(default)]
    pub levels: BTreeMap<String, Thresholds>,
    /// Thresholds per zone, over the level's.
    #[serde(default)]
    pub zones: BTreeMap<String, Thresholds>,
    /// Rules that act at once.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// How long a quarantine lasts (default `2h`).
    #[serde(default)]
    pub quarantine_for: Option<String>,
}

/// The playbook, checked.
#[derive(Clone, Debug)]
pub struct Playbook {
    levels: BTreeMap<PurdueLevel, Thresholds>,
    zones: BTreeMap<String, Thresholds>,
    /// Rules that act at once.
    pub rules: Vec<Rule>,
    /// How long a quarantine lasts.
    pub quarantine_for: Duration,
}

impl Default for Playbook {
    fn default() -> Self {
        // The empty configuration is valid by construction.
        Self {
            levels: BTreeMap::new(),
            zones: BTreeMap::new(),
            rules: Vec::new(),
            quarantine_for: Duration::from_secs(2 * 3600),
        }
    }
}

fn overlay(base: &mut Thresholds, over: &Thresholds) {
    base.alert = over.alert.or(base.alert);
    base.freeze = over.freeze.or(base.freeze);
    base.terminate = over.terminate.or(base.terminate);
    base.quarantine = over.quarantine.or(base.quarantine);
    base.fail_mode = over.fail_mode.or(base.fail_mode);
}

impl Playbook {
    /// Checks a configured playbook: levels, thresholds within 0-100 and rising, ranges.
    pub fn new(config: &PlaybookConfig) -> Result<Self> {
        let mut levels = BTreeMap::new();
        for (name, thresholds) in &config.levels {
            let level = PurdueLevel::try_from(name.clone()).map_err(|e| {
                DetectorError::Config(format!("detector.playbook.levels.{name}: {e}"))
            })?;
            check(&format!("detector.playbook.levels.{name}"), thresholds)?;
            levels.insert(level, thresholds.clone());
        }
        for (zone, thresholds) in &config.zones {
            check(&format!("detector.playbook.zones.{zone}"), thresholds)?;
        }
        let mut rules = Vec::new();
        for (i, rule) in config.rules.iter().enumerate() {
            let range = rule
                .modbus_write
                .as_deref()
                .map(parse_range)
                .transpose()
                .map_err(|e| DetectorError::Config(format!("detector.playbook.rules[{i}]: {e}")))?;
            if range.is_none() && rule.commands.is_empty() {
                return Err(DetectorError::Config(format!(
                    "detector.playbook.rules[{i}] ({}): give modbus_write or commands",
                    rule.name
                )));
            }
            rules.push(Rule {
                config: rule.clone(),
                range,
            });
        }
        let quarantine_for = match &config.quarantine_for {
            Some(text) => otgate_policy::window::parse_duration(text).map_err(|e| {
                DetectorError::Config(format!("detector.playbook.quarantine_for: {e}"))
            })?,
            None => Duration::from_secs(2 * 3600),
        };
        Ok(Self {
            levels,
            zones: config.zones.clone(),
            rules,
            quarantine_for,
        })
    }

    /// The playbook in words, one line per level, zone and rule (for the admin page).
    pub fn describe(&self) -> Vec<String> {
        let words = |t: &Thresholds| {
            let mut parts: Vec<String> = [
                ("alert", t.alert),
                ("freeze", t.freeze),
                ("terminate", t.terminate),
                ("quarantine", t.quarantine),
            ]
            .into_iter()
            .filter_map(|(name, at)| at.map(|at| format!("{name} at {at}")))
            .collect();
            if let Some(mode) = t.fail_mode {
                parts.push(format!("if the detector fails: {mode:?}").to_lowercase());
            }
            parts.join(", ")
        };
        let mut out: Vec<String> = PurdueLevel::ALL
            .iter()
            .map(|level| {
                format!(
                    "level {}: {}",
                    level.as_str(),
                    words(&self.thresholds(Some(*level), None))
                )
            })
            .collect();
        for (zone, over) in &self.zones {
            out.push(format!("zone {zone}: {}", words(over)));
        }
        for rule in &self.rules {
            let what = rule
                .config
                .modbus_write
                .iter()
                .map(|range| format!("Modbus writes to {range}"))
                .chain(
                    rule.config
                        .commands
                        .iter()
                        .map(|c| format!("command `{c}`")),
                )
                .collect::<Vec<_>>()
                .join(", ");
            out.push(format!(
                "rule {}: {what} -> {}",
                rule.config.name,
                rule.config.action.as_str()
            ));
        }
        out.push(format!(
            "a quarantine lasts {}",
            otgate_policy::window::format_duration(self.quarantine_for)
        ));
        out
    }

    /// The thresholds for an asset on `level` in `zone` (unknown level: level 1's).
    pub fn thresholds(&self, level: Option<PurdueLevel>, zone: Option<&str>) -> Thresholds {
        let level = level.unwrap_or(PurdueLevel::L1);
        let mut t = builtin(level);
        if let Some(over) = self.levels.get(&level) {
            overlay(&mut t, over);
        }
        if let Some(over) = zone.and_then(|z| self.zones.get(z)) {
            overlay(&mut t, over);
        }
        t
    }

    /// The strongest response a risk calls for.
    pub fn response(
        &self,
        level: Option<PurdueLevel>,
        zone: Option<&str>,
        risk: u8,
    ) -> Option<Response> {
        let t = self.thresholds(level, zone);
        [
            (t.quarantine, Response::Quarantine),
            (t.terminate, Response::Terminate),
            (t.freeze, Response::Freeze),
            (t.alert, Response::Alert),
        ]
        .into_iter()
        .find(|(at, _)| at.is_some_and(|at| risk >= at))
        .map(|(_, r)| r)
    }

    /// What to do with a session on `level` in `zone` while the detector cannot watch.
    pub fn fail_mode(&self, level: Option<PurdueLevel>, zone: Option<&str>) -> FailMode {
        self.thresholds(level, zone)
            .fail_mode
            .unwrap_or(FailMode::Freeze)
    }
}

fn check(key: &str, t: &Thresholds) -> Result<()> {
    let steps = [t.alert, t.freeze, t.terminate, t.quarantine];
    if steps.iter().flatten().any(|v| *v > 100) {
        return Err(DetectorError::Config(format!(
            "{key}: thresholds are 0-100"
        )));
    }
    let set: Vec<u8> = steps.iter().flatten().copied().collect();
    if set.windows(2).any(|w| matches!(w, [a, b] if a > b)) {
        return Err(DetectorError::Config(format!(
            "{key}: thresholds must rise from alert to freeze, terminate and quarantine"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_playbook_in_words() {
        let lines = Playbook::default().describe();
        assert!(lines.iter().any(|l| l == "level 0: alert at 40, freeze at 60, terminate at 80, quarantine at 95, if the detector fails: freeze"), "{lines:?}");
        assert!(
            lines.iter().any(|l| l == "a quarantine lasts 2h"),
            "{lines:?}"
        );
    }

    use super::*;

    #[test]
    fn levels_and_zones_choose_thresholds() {
        let config: PlaybookConfig = toml_like();
        let playbook = Playbook::new(&config).unwrap();
        assert_eq!(playbook.response(Some(PurdueLevel::L1), None, 39), None);
        assert_eq!(
            playbook.response(Some(PurdueLevel::L1), None, 40),
            Some(Response::Alert)
        );
        assert_eq!(
            playbook.response(Some(PurdueLevel::L1), None, 85),
            Some(Response::Terminate)
        );
        assert_eq!(
            playbook.response(Some(PurdueLevel::L3), None, 85),
            Some(Response::Freeze)
        );
        assert_eq!(
            playbook.response(Some(PurdueLevel::L3), Some("lab"), 85),
            Some(Response::Alert)
        );
        assert_eq!(
            playbook.response(None, None, 96),
            Some(Response::Quarantine)
        );
        assert_eq!(
            playbook.fail_mode(Some(PurdueLevel::L0), None),
            FailMode::Freeze
        );
        assert_eq!(
            playbook.fail_mode(Some(PurdueLevel::L2), None),
            FailMode::Alert
        );
    }

    fn toml_like() -> PlaybookConfig {
        PlaybookConfig {
            zones: [(
                "lab".to_owned(),
                Thresholds {
                    freeze: Some(90),
                    terminate: Some(99),
                    ..Thresholds::default()
                },
            )]
            .into(),
            rules: vec![RuleConfig {
                name: "safety".into(),
                modbus_write: Some("holding:4000-4099".into()),
                commands: vec![],
                assets: vec![],
                action: Response::Terminate,
            }],
            ..PlaybookConfig::default()
        }
    }

    #[test]
    fn rules_fire_on_ranges_and_programs() {
        let playbook = Playbook::new(&toml_like()).unwrap();
        let rule = &playbook.rules[0];
        let write = |start, values: Vec<u16>| ModbusRequest {
            unit: 1,
            function: 16,
            table: Some(Table::Holding),
            start: Some(start),
            count: Some(values.len() as u16),
            values,
            exception: None,
        };
        assert!(rule.fires_on_modbus("plc", &write(4000, vec![1])));
        assert!(rule.fires_on_modbus("plc", &write(3999, vec![1, 2])));
        assert!(!rule.fires_on_modbus("plc", &write(3990, vec![1, 2])));
        assert!(!rule.fires_on_program("plc", "nc"));
    }

    #[test]
    fn bad_playbooks_are_refused() {
        let mut config = PlaybookConfig::default();
        config.levels.insert("7".into(), Thresholds::default());
        assert!(Playbook::new(&config).is_err());
        let mut config = PlaybookConfig::default();
        config.zones.insert(
            "z".into(),
            Thresholds {
                alert: Some(80),
                freeze: Some(50),
                ..Thresholds::default()
            },
        );
        let err = Playbook::new(&config).unwrap_err().to_string();
        assert!(err.contains("must rise"), "{err}");
        let mut config = PlaybookConfig::default();
        config.rules.push(RuleConfig {
            name: "x".into(),
            modbus_write: Some("holding:9-1".into()),
            commands: vec![],
            assets: vec![],
            action: Response::Alert,
        });
        assert!(
            Playbook::new(&config)
                .unwrap_err()
                .to_string()
                .contains("holding:4000-4099")
        );
    }
}
