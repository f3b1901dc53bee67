//! Alerts with the sessions they touched, false positives, system actions (the detector's
//! revocation and quarantine), and the detector's model store.

use serde_json::json;

use otgate_broker::{AlertFilter, BrokerError, NewAlert, NewQuarantine, RequestStatus};
use otgate_policy::{EventKind, Finding, QuarantineSubject, ZoneName};

use crate::harness::*;

fn alert(asset: &str, zone: &str, sessions: &[&str]) -> NewAlert {
    NewAlert {
        origin: "detector".into(),
        source: "otgate".into(),
        severity: 8,
        score: 85,
        asset: Some(asset.into()),
        vendor: Some("vendor1".into()),
        zone: Some(ZoneName::new(zone).unwrap()),
        title: "download then execute".into(),
        findings: vec![Finding::new("attack", 85, "download then execute")],
        sessions: sessions.iter().map(|s| (*s).to_owned()).collect(),
        response: Some("terminate".into()),
        rule: None,
        details: json!({"grant": 1}),
        evidence: json!([{"session": "s1", "kind": "command"}]),
    }
}

pub(crate) async fn alerts_are_stored_listed_and_judged(h: &Harness) {
    let mut bus = h.broker.subscribe();
    let stored = h
        .broker
        .raise_alert(alert("plc-7", "cell-a", &["s1", "s2"]))
        .await
        .unwrap();
    assert_eq!(stored.sessions, ["s1", "s2"]);
    assert_eq!(stored.findings[0].text, "download then execute");
    let published = bus.recv().await.unwrap();
    assert!(
        matches!(published.event.kind, EventKind::AlertRaised { ref sessions, .. } if sessions.len() == 2)
    );
    h.broker
        .raise_alert(alert("hmi-2", "cell-b", &["s3"]))
        .await
        .unwrap();

    // Engineers of cell-a see theirs, by session too; the auditor everything.
    let by_session = AlertFilter {
        session: Some("s2".into()),
        ..AlertFilter::default()
    };
    let found = h.broker.alerts(&user("eng1"), &by_session).await.unwrap();
    assert_eq!(found.len(), 1);
    let all = h
        .broker
        .alerts(&user("aud"), &AlertFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let mine = h
        .broker
        .alerts(&user("eng1"), &AlertFilter::default())
        .await
        .unwrap();
    assert!(
        mine.iter().all(|a| a.zone.as_deref() == Some("cell-a")),
        "{mine:?}"
    );
    assert!(
        h.broker
            .alerts(&user("vendor1"), &AlertFilter::default())
            .await
            .unwrap()
            .is_empty()
    );

    // False positives: engineers of the zone, once.
    let refused = h
        .broker
        .mark_false_positive(&user("vendor1"), stored.id, "fine")
        .await
        .unwrap_err();
    assert!(matches!(refused, BrokerError::NotFound(_)), "{refused}");
    let judged = h
        .broker
        .mark_false_positive(&user("eng1"), stored.id, "planned test of the backup job")
        .await
        .unwrap();
    assert_eq!(judged.false_positive_by.as_deref(), Some("eng1"));
    let again = h
        .broker
        .mark_false_positive(&user("eng1"), stored.id, "x")
        .await
        .unwrap_err();
    assert!(matches!(again, BrokerError::Conflict(_)), "{again}");
    let (vendor, asset, evidence) = h.broker.alert_evidence(stored.id).await.unwrap();
    assert_eq!(
        (vendor.as_deref(), asset.as_deref()),
        (Some("vendor1"), Some("plc-7"))
    );
    assert_eq!(evidence[0]["session"], "s1");
}

pub(crate) async fn the_detector_revokes_and_quarantines_as_the_system(h: &Harness) {
    let request = h.request("vendor1", "ews-1", "1h").await.unwrap();
    h.broker.approve(&user("eng2"), request.id).await.unwrap();
    let revoked = h
        .broker
        .revoke_grant_as_system(request.id, "detector: risk 97: download then execute")
        .await
        .unwrap();
    assert_eq!(revoked.status, RequestStatus::Revoked);
    let quarantine = h
        .broker
        .quarantine_as_system(NewQuarantine {
            subject: QuarantineSubject::Asset("plc-7".parse().unwrap()),
            duration: None,
            reason: "external alert 4 from suricata".into(),
        })
        .await
        .unwrap();
    assert!(quarantine.created_by.is_none());
    let page = h.broker.events(&user("aud"), 0, 1000).await.unwrap();
    let system: Vec<_> = page
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.event.kind,
                EventKind::GrantRevoked { .. } | EventKind::QuarantineStarted { .. }
            )
        })
        .collect();
    assert_eq!(system.len(), 2);
    assert!(system.iter().all(|e| e.event.actor.is_none()));
    assert!(system.iter().all(|e| {
        e.event
            .zone
            .as_ref()
            .is_some_and(|z| z.as_str() == "cell-a")
    }));
}

pub(crate) async fn detector_models_are_stored(h: &Harness) {
    assert!(h.broker.load_models().await.unwrap().is_empty());
    h.broker
        .save_models(&[
            ("vendor:v".into(), "{\"a\":1}".into()),
            ("asset:plc-7".into(), "{}".into()),
        ])
        .await
        .unwrap();
    h.broker
        .save_models(&[("vendor:v".into(), "{\"a\":2}".into())])
        .await
        .unwrap();
    let models = h.broker.load_models().await.unwrap();
    assert_eq!(
        models,
        [
            ("asset:plc-7".to_owned(), "{}".to_owned()),
            ("vendor:v".to_owned(), "{\"a\":2}".to_owned())
        ]
    );
}
