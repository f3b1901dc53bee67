//! The recording index: listing by who may see what, phrase search with the moment, events
//! for verification failures and retention.

use time::OffsetDateTime;

use otgate_broker::{IndexedText, RecordedSession, SessionFilter, SessionIndex, SessionState};

use crate::harness::{Harness, user};

fn session(id: &str, vendor: &str, asset: &str, zone: &str, minutes_ago: i64) -> RecordedSession {
    RecordedSession {
        id: id.into(),
        grant: Some(1),
        vendor: vendor.into(),
        asset: asset.into(),
        zone: Some(zone.into()),
        protocol: "ssh".into(),
        client: None,
        started_at: OffsetDateTime::now_utc() - time::Duration::minutes(minutes_ago),
        ended_at: None,
        end_reason: None,
        state: SessionState::Ended,
        verification: "ok".into(),
        findings: String::new(),
        duration_ms: 60_000,
        events: 10,
        commands: 2,
        denials: 0,
        alerts: 0,
        output_bytes: 100,
        input_bytes: 10,
        stored_bytes: 500,
    }
}

fn text(offset_ms: i64, kind: &str, body: &str) -> IndexedText {
    IndexedText {
        offset_ms,
        kind: kind.into(),
        body: body.into(),
    }
}

pub(crate) async fn recordings_are_indexed_searched_and_expired(h: &Harness) {
    let a = SessionIndex {
        session: session("s-a", "vendor1", "plc-7", "cell-a", 30),
        fingerprint: "f1".into(),
        text: vec![
            text(1_500, "command", "systemctl restart historian"),
            text(
                2_000,
                "output",
                "$ systemctl restart historian\nJob for historian.service failed",
            ),
            text(9_000, "output", "restart the systemctl later"),
        ],
    };
    let b = SessionIndex {
        session: session("s-b", "vendor2", "rtu-9", "cell-b", 5),
        fingerprint: "f1".into(),
        text: vec![text(4_000, "command", "systemctl restart modbus-gw")],
    };
    h.broker.index_session(a.clone()).await.unwrap();
    h.broker.index_session(b).await.unwrap();
    let prints = h.broker.session_fingerprints().await.unwrap();
    assert_eq!(prints.len(), 2);
    assert_eq!(prints["s-a"], "f1");

    // Who sees what.
    let all = h
        .broker
        .sessions(&user("aud"), &SessionFilter::default())
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s-b", "s-a"]
    );
    let own = h
        .broker
        .sessions(&user("vendor1"), &SessionFilter::default())
        .await
        .unwrap();
    assert_eq!(
        own.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s-a"]
    );
    let zone = h
        .broker
        .sessions(&user("eng3"), &SessionFilter::default())
        .await
        .unwrap();
    assert_eq!(
        zone.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s-b"]
    );
    assert!(h.broker.session(&user("vendor2"), "s-a").await.is_err());
    let filter = SessionFilter {
        since: Some("10m".into()),
        ..SessionFilter::default()
    };
    let recent = h.broker.sessions(&user("aud"), &filter).await.unwrap();
    assert_eq!(
        recent.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s-b"]
    );
    let filter = SessionFilter {
        asset: Some("plc-7".into()),
        ..SessionFilter::default()
    };
    assert_eq!(
        h.broker
            .sessions(&user("aud"), &filter)
            .await
            .unwrap()
            .len(),
        1
    );
    let filter = SessionFilter {
        live: true,
        ..SessionFilter::default()
    };
    assert!(
        h.broker
            .sessions(&user("aud"), &filter)
            .await
            .unwrap()
            .is_empty()
    );
    let bad = SessionFilter {
        since: Some("yesterday-ish".into()),
        ..SessionFilter::default()
    };
    let err = h.broker.sessions(&user("aud"), &bad).await.unwrap_err();
    assert!(
        err.to_string().contains("neither an RFC 3339 time"),
        "{err}"
    );

    // Phrase search finds the sessions and the moments, in order, as the caller may see.
    let hits = h
        .broker
        .search_sessions(&user("aud"), "systemctl restart", 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2, "{hits:?}");
    let a_hit = hits.iter().find(|h| h.session.id == "s-a").unwrap();
    let offsets: Vec<i64> = a_hit.moments.iter().map(|m| m.offset_ms).collect();
    assert_eq!(
        offsets,
        [1_500, 2_000],
        "words out of order do not match a phrase"
    );
    assert!(
        a_hit.moments[0].snippet.contains("[systemctl]")
            || a_hit.moments[0].snippet.contains("[systemctl restart]"),
        "{:?}",
        a_hit.moments
    );
    let vendor_hits = h
        .broker
        .search_sessions(&user("vendor1"), "systemctl restart", 10)
        .await
        .unwrap();
    assert_eq!(vendor_hits.len(), 1);
    assert!(
        h.broker
            .search_sessions(&user("aud"), "reboot", 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Query syntax is not interpreted: quotes and operators are just text.
    assert!(
        h.broker
            .search_sessions(&user("aud"), "\" OR *", 10)
            .await
            .is_ok()
    );
    let err = h
        .broker
        .search_sessions(&user("aud"), " ** ", 10)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at least one word"), "{err}");

    // Re-indexing replaces the text; a new verification failure is an event, once.
    let mut failed = a.clone();
    failed.fingerprint = "f2".into();
    failed.session.verification = "failed".into();
    failed.session.findings = "terminal.000001.cast.zst: SHA-256 differs".into();
    failed.text = vec![text(100, "command", "uptime")];
    h.broker.index_session(failed.clone()).await.unwrap();
    h.broker.index_session(failed).await.unwrap();
    assert_eq!(h.count("recording_verification_failed").await, 1);
    let hits = h
        .broker
        .search_sessions(&user("aud"), "systemctl restart", 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        h.broker
            .search_sessions(&user("aud"), "uptime", 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // Retention removes the entry and says so.
    h.broker
        .unindex_session("s-a", OffsetDateTime::now_utc(), "90days", 4)
        .await
        .unwrap();
    assert_eq!(h.count("recording_deleted").await, 1);
    assert!(h.broker.session(&user("aud"), "s-a").await.is_err());
    assert!(
        h.broker
            .search_sessions(&user("aud"), "uptime", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let prints = h.broker.session_fingerprints().await.unwrap();
    assert_eq!(prints.keys().collect::<Vec<_>>(), ["s-b"]);
}
