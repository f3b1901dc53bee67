//! The live detector: the recorder's tap feeds it every session event, it scores them,
//! and turns the playbook's responses into the broker's tokens (the same freeze, kill,
//! revocation and quarantine events engineers use). It also takes external alerts from
//! the API, learns from false positives, stores its models, and when it fails or falls
//! behind, puts live sessions under the playbook's fail mode and says so in an event.

mod tap;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use otgate_broker::{Alert, Broker, BrokerError, NewAlert, NewQuarantine};
use otgate_detector::{
    Assessment, Detector, DetectorConfig, ExternalAlert, FailMode, Finding, Observation, Response,
    SessionContext,
};
use otgate_policy::{
    Asset, AssetName, Event, EventKind, GrantId, QuarantineSubject, UserName, ZoneName,
};
use otgate_recorder::Recorder;
use otgate_recorder::model::SessionEvent;

pub use tap::{Input, Tap};

/// How often changed models are stored.
const SAVE_EVERY: Duration = Duration::from_secs(30);
/// Shortest time between two fault events for drops.
const FAULT_EVERY: Duration = Duration::from_secs(10);
/// Longest reason given to the vendor and stored with actions.
const MAX_REASON: usize = 480;

/// A live session as the service knows it, kept outside the detector so a restarted
/// detector can apply the fail mode and follow the session again.
#[derive(Clone, Debug)]
struct Known {
    context: SessionContext,
}

/// What the service and its supervisor share.
struct Shared {
    broker: Arc<Broker>,
    recorder: Recorder,
    config: DetectorConfig,
    live: std::sync::Mutex<HashMap<String, Known>>,
    dropped: Arc<AtomicU64>,
    inputs: Mutex<mpsc::Receiver<Input>>,
    requests: Mutex<mpsc::Receiver<Request>>,
}

/// A request from the API.
enum Request {
    External(
        ExternalAlert,
        Box<Asset>,
        oneshot::Sender<Result<Alert, BrokerError>>,
    ),
}

/// The API's door to the detector.
pub struct Intake {
    tx: mpsc::Sender<Request>,
}

#[async_trait]
impl otgate_web::AlertIntake for Intake {
    async fn external(&self, alert: ExternalAlert, asset: Asset) -> Result<Alert, BrokerError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send_timeout(
                Request::External(alert, Box::new(asset), reply),
                Duration::from_secs(5),
            )
            .await
            .map_err(|_| {
                BrokerError::Conflict("the detector is not answering: try again".into())
            })?;
        answer.await.map_err(|_| {
            BrokerError::Conflict("the detector stopped while handling the alert".into())
        })?
    }
}

/// The tap's queue, waiting for the service.
pub struct Queue(mpsc::Receiver<Input>, Arc<AtomicU64>);

/// The tap to give the recorder, and the queue it fills.
pub fn tap(config: &DetectorConfig) -> (Arc<Tap>, Queue) {
    let (tx, rx) = mpsc::channel(config.queue.max(16));
    let tap = Arc::new(Tap::new(tx));
    let dropped = tap.dropped.clone();
    (tap, Queue(rx, dropped))
}

/// Starts the detector on the tap's queue; `recorder` (the one with the tap) takes its
/// annotations. Returns the API's door and the supervisor's task.
pub fn start(
    queue: Queue,
    broker: Arc<Broker>,
    recorder: Recorder,
    config: DetectorConfig,
    shutdown: CancellationToken,
) -> (Arc<Intake>, tokio::task::JoinHandle<()>) {
    let (requests_tx, requests) = mpsc::channel(64);
    let shared = Arc::new(Shared {
        broker,
        recorder,
        config,
        live: std::sync::Mutex::default(),
        dropped: queue.1,
        inputs: Mutex::new(queue.0),
        requests: Mutex::new(requests),
    });
    let task = tokio::spawn(supervise(shared, shutdown));
    (Arc::new(Intake { tx: requests_tx }), task)
}

/// Runs the service; if it dies, records the fault, applies the fail mode, and restarts it.
async fn supervise(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let run = tokio::spawn(serve(shared.clone(), shutdown.clone()));
        match run.await {
            Ok(()) => return,
            Err(error) => {
                tracing::error!(%error, "the detector stopped; restarting it");
                fault(
                    &shared,
                    &format!("the detector stopped ({error}) and was restarted"),
                    &mut HashSet::new(),
                )
                .await;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_REASON).collect()
}

/// Puts every live session under its fail mode and records the fault.
async fn fault(shared: &Shared, reason: &str, already: &mut HashSet<String>) {
    let live: Vec<(String, Known)> = shared
        .live
        .lock()
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let playbook = otgate_detector::Playbook::new(&shared.config.playbook).unwrap_or_default();
    let mut frozen = Vec::new();
    for (session, known) in live {
        let (level, zone) = (known.context.level, known.context.zone.as_deref());
        if playbook.fail_mode(level, zone) != FailMode::Freeze || !already.insert(session.clone()) {
            continue;
        }
        let event = Event::now(EventKind::SessionFreezeRequested {
            session: session.clone(),
            reason: truncate(&format!(
                "the detector cannot watch this session ({reason}); the vendor's input is not sent to the asset until an engineer resumes it"
            )),
        })
        .in_zone(known.context.zone.as_deref().and_then(|z| ZoneName::new(z).ok()));
        if let Err(e) = shared.broker.record(event).await {
            tracing::error!(error = %e, %session, "could not freeze a session under the fail mode");
        }
        frozen.push(session);
    }
    let dropped = shared.dropped.load(Ordering::Relaxed);
    if let Err(e) = shared
        .broker
        .record(Event::now(EventKind::DetectorFault {
            reason: reason.to_owned(),
            dropped,
            frozen,
        }))
        .await
    {
        tracing::error!(error = %e, "could not record a detector fault");
    }
}

/// The service loop.
async fn serve(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut detector = match Detector::new(shared.config.clone()) {
        Ok(detector) => detector,
        Err(e) => {
            tracing::error!(error = %e, "the detector configuration is invalid");
            return;
        }
    };
    match shared.broker.load_models().await {
        Ok(models) => {
            for (key, body) in models {
                if let Err(e) = detector.load(&key, &body) {
                    tracing::warn!(error = %e, "a stored detector model was skipped");
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "the detector's models could not be loaded; starting from nothing")
        }
    }
    // Sessions that were live when a previous detector stopped: followed again, their risk
    // starting from nothing (they were frozen under the fail mode meanwhile if it says so).
    let known: Vec<SessionContext> = shared
        .live
        .lock()
        .map(|l| l.values().map(|k| k.context.clone()).collect())
        .unwrap_or_default();
    for context in known {
        detector.start(context);
    }
    let mut inputs = shared.inputs.lock().await;
    let mut requests = shared.requests.lock().await;
    let mut bus = shared.broker.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_save = tokio::time::Instant::now();
    let mut unsaved: Vec<(String, String)> = Vec::new();
    let mut seen_dropped = shared.dropped.load(Ordering::Relaxed);
    let mut last_fault: Option<tokio::time::Instant> = None;
    let mut faulted = HashSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            input = inputs.recv() => match input {
                Some(input) => handle(&shared, &mut detector, input).await,
                None => break,
            },
            request = requests.recv() => match request {
                Some(Request::External(alert, asset, reply)) => {
                    let _ = reply.send(external(&shared, &mut detector, alert, *asset).await);
                }
                None => break,
            },
            event = bus.recv() => match event {
                Ok(stored) => {
                    if let EventKind::AlertFalsePositive { alert, .. } = stored.event.kind {
                        learn_false_positive(&shared, &mut detector, alert).await;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "the detector missed bus events (false positives are learnt at the next one)");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                let dropped = shared.dropped.load(Ordering::Relaxed);
                if dropped > seen_dropped
                    && last_fault.is_none_or(|t| t.elapsed() >= FAULT_EVERY)
                {
                    let reason = format!(
                        "its queue of {} events was full: {} session events were not scored",
                        shared.config.queue,
                        dropped - seen_dropped
                    );
                    fault(&shared, &reason, &mut faulted).await;
                    seen_dropped = dropped;
                    last_fault = Some(tokio::time::Instant::now());
                }
                if last_save.elapsed() >= SAVE_EVERY {
                    save(&shared, &mut detector, &mut unsaved).await;
                    last_save = tokio::time::Instant::now();
                }
            }
        }
    }
    save(&shared, &mut detector, &mut unsaved).await;
}

async fn save(shared: &Shared, detector: &mut Detector, unsaved: &mut Vec<(String, String)>) {
    let fresh = detector.take_dirty();
    unsaved.retain(|(key, _)| !fresh.iter().any(|(k, _)| k == key));
    unsaved.extend(fresh);
    match shared.broker.save_models(unsaved).await {
        Ok(()) => unsaved.clear(),
        Err(e) => {
            tracing::error!(error = %e, models = unsaved.len(), "the detector's models could not be stored; retrying")
        }
    }
}

async fn handle(shared: &Shared, detector: &mut Detector, input: Input) {
    match input {
        Input::Started(info) => {
            let asset = match AssetName::new(info.asset.clone()) {
                Ok(name) => shared.broker.find_asset(&name).await.ok().flatten(),
                Err(_) => None,
            };
            let context = SessionContext {
                id: info.id.clone(),
                grant: info.grant,
                vendor: info.vendor.clone(),
                asset: info.asset.clone(),
                zone: asset
                    .as_ref()
                    .map(|a| a.zone.to_string())
                    .or(info.zone.clone()),
                level: asset.as_ref().map(|a| a.level),
                addresses: asset
                    .as_ref()
                    .map(|a| a.endpoints.iter().map(|e| e.host.clone()).collect())
                    .unwrap_or_default(),
                maintenance: asset.map(|a| a.maintenance).unwrap_or_default(),
                started_at: info.started_at,
            };
            if let Ok(mut live) = shared.live.lock() {
                live.insert(
                    context.id.clone(),
                    Known {
                        context: context.clone(),
                    },
                );
            }
            let assessment = detector.start(context);
            respond(shared, detector, &assessment, None).await;
        }
        Input::Event { session, at, what } => {
            let observation = Observation { session, at, what };
            if let Some(assessment) = detector.observe(&observation) {
                respond(shared, detector, &assessment, Some(&observation)).await;
            }
        }
        Input::Ended(session, done) => {
            detector.end(&session);
            if let Ok(mut live) = shared.live.lock() {
                live.remove(&session);
            }
            if let Some(done) = done {
                let _ = done.send(());
            }
        }
    }
}

fn zone_of(assessment: &Assessment) -> Option<ZoneName> {
    assessment
        .zone
        .as_deref()
        .and_then(|z| ZoneName::new(z).ok())
}

/// Stores an alert when the playbook calls for a response, and acts on it.
async fn respond(
    shared: &Shared,
    detector: &Detector,
    assessment: &Assessment,
    trigger: Option<&Observation>,
) {
    let Some(response) = assessment.response else {
        return;
    };
    let reason = truncate(&format!(
        "risk {}: {}",
        assessment.risk, assessment.explanation
    ));
    let alert = NewAlert {
        origin: "detector".into(),
        source: "otgate".into(),
        severity: assessment.risk / 10,
        score: assessment.risk,
        asset: Some(assessment.asset.clone()),
        vendor: Some(assessment.vendor.clone()),
        zone: zone_of(assessment),
        title: truncate(&assessment.explanation),
        findings: assessment.top.clone(),
        sessions: vec![assessment.session.clone()],
        response: Some(response.as_str().to_owned()),
        rule: assessment.rule.clone(),
        details: json!({
            "grant": assessment.grant,
            "level": assessment.level,
            "event_score": assessment.score,
            "event_findings": assessment.findings,
        }),
        evidence: json!(trigger.into_iter().collect::<Vec<_>>()),
    };
    // Act first: the session is held or ended within milliseconds; the alert follows.
    act(shared, detector, assessment, response, &reason).await;
    if let Err(e) = shared.broker.raise_alert(alert).await {
        tracing::error!(error = %e, session = %assessment.session, "an alert could not be stored");
    }
}

/// Carries out a response through the broker, and notes it in the session's recording.
async fn act(
    shared: &Shared,
    detector: &Detector,
    assessment: &Assessment,
    response: Response,
    reason: &str,
) {
    let session = &assessment.session;
    if !shared.recorder.annotate(
        session,
        SessionEvent::Alert {
            score: assessment.risk,
            summary: format!("{} ({})", reason, response.as_str()),
        },
    ) {
        tracing::warn!(%session, "the alert could not be written into the session's recording");
    }
    let zone = zone_of(assessment);
    let reason = format!("detector: {reason}");
    let result = match response {
        Response::Alert => Ok(()),
        Response::Freeze => {
            shared
                .broker
                .record(
                    Event::now(EventKind::SessionFreezeRequested {
                        session: session.clone(),
                        reason: truncate(&reason),
                    })
                    .in_zone(zone),
                )
                .await
        }
        Response::Terminate | Response::Quarantine => {
            terminate(shared, detector, assessment, response, &reason, zone).await
        }
    };
    if let Err(e) = result {
        tracing::error!(error = %e, %session, response = response.as_str(), "the detector's response failed");
    }
}

async fn terminate(
    shared: &Shared,
    detector: &Detector,
    assessment: &Assessment,
    response: Response,
    reason: &str,
    zone: Option<ZoneName>,
) -> Result<(), BrokerError> {
    // The kill ends this session at once; the revocation then refuses new ones and ends
    // the grant's other sessions.
    shared
        .broker
        .record(
            Event::now(EventKind::SessionKillRequested {
                session: assessment.session.clone(),
                reason: truncate(reason),
            })
            .in_zone(zone),
        )
        .await?;
    if let Some(grant) = assessment.grant.and_then(|g| GrantId::new(g).ok()) {
        match shared
            .broker
            .revoke_grant_as_system(grant, &truncate(reason))
            .await
        {
            Ok(_) | Err(BrokerError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    if response == Response::Quarantine {
        let vendor = UserName::new(assessment.vendor.clone())
            .map_err(|e| BrokerError::Invalid(e.to_string()))?;
        let hours = detector.playbook().quarantine_for;
        shared
            .broker
            .quarantine_as_system(NewQuarantine {
                subject: QuarantineSubject::Vendor(vendor),
                duration: Some(format!("{}s", hours.as_secs())),
                reason: truncate(reason),
            })
            .await?;
    }
    Ok(())
}

/// An external alert: raises the risk of the asset's live sessions, applies the playbook,
/// quarantines the asset when severe, and stores the alert with the sessions it touched.
async fn external(
    shared: &Shared,
    detector: &mut Detector,
    alert: ExternalAlert,
    asset: Asset,
) -> Result<Alert, BrokerError> {
    let name = asset.name.to_string();
    let now = OffsetDateTime::now_utc();
    let assessments = detector.external(&name, alert.severity, &alert.title, now);
    let mut strongest: Option<Response> = None;
    for assessment in &assessments {
        if let Some(response) = assessment.response {
            let reason = truncate(&format!(
                "risk {}: {}",
                assessment.risk, assessment.explanation
            ));
            act(shared, detector, assessment, response, &reason).await;
            strongest = strongest.max(Some(response));
        }
    }
    let severe = alert.severity >= shared.config.quarantine_severity;
    let score = alert.severity.saturating_mul(10);
    let stored = shared
        .broker
        .raise_alert(NewAlert {
            origin: "external".into(),
            source: alert.source.clone(),
            severity: alert.severity,
            score,
            asset: Some(name.clone()),
            vendor: None,
            zone: Some(asset.zone.clone()),
            title: alert.title.clone(),
            findings: vec![Finding::new(
                "external",
                score,
                format!("external alert on {name}: {}", alert.title),
            )],
            sessions: assessments.iter().map(|a| a.session.clone()).collect(),
            response: if severe {
                Some(Response::Quarantine.as_str().to_owned())
            } else {
                strongest.map(|r| r.as_str().to_owned())
            },
            rule: None,
            details: alert.details.clone(),
            evidence: Value::Array(Vec::new()),
        })
        .await?;
    if severe {
        shared
            .broker
            .quarantine_as_system(NewQuarantine {
                subject: QuarantineSubject::Asset(asset.name.clone()),
                duration: Some(format!("{}s", detector.playbook().quarantine_for.as_secs())),
                reason: truncate(&format!(
                    "external alert {} from {} (severity {}): {}",
                    stored.id, alert.source, alert.severity, alert.title
                )),
            })
            .await?;
    }
    Ok(stored)
}

async fn learn_false_positive(shared: &Shared, detector: &mut Detector, alert: i64) {
    let (vendor, asset, evidence) = match shared.broker.alert_evidence(alert).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, alert, "the false positive's evidence could not be read");
            return;
        }
    };
    let observations: Vec<Observation> = serde_json::from_value(evidence).unwrap_or_default();
    if let (Some(vendor), Some(asset)) = (vendor, asset) {
        detector.learn_false_positive(&vendor, &asset, &observations);
    }
}
