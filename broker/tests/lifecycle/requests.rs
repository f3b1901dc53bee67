//! Requests, approvals, the clock, and who may ask.

use otgate_broker::{
    AccessRefusal, BrokerError, NewRequest, RequestFilter, RequestStatus, ScopeSpec,
};
use otgate_policy::{GrantId, Inventory, Preset, Protocol};

use time::OffsetDateTime;

use crate::harness::*;

pub(crate) async fn two_engineers_turn_a_level_one_request_into_a_grant(h: &Harness) {
    let request = h.request("vendor1", "plc-7", "2h").await.unwrap();
    assert_eq!(request.status, RequestStatus::Pending);
    assert_eq!(request.approvals_needed, 2, "level 1 needs two engineers");
    assert_eq!(request.scope_name, "read-only");
    let after_one = h.broker.approve(&user("eng1"), request.id).await.unwrap();
    assert_eq!(after_one.status, RequestStatus::Pending);
    let after_two = h.broker.approve(&user("eng2"), request.id).await.unwrap();
    assert_eq!(after_two.status, RequestStatus::Active);
    assert_eq!(after_two.approvals.len(), 2);
    let grant = h
        .broker
        .access(request.id, OffsetDateTime::now_utc())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.vendor.as_str(), "vendor1");
    assert!(grant.scope.ssh.is_some());
    let types = h.event_types().await;
    for expected in [
        "request_created",
        "request_approved",
        "grant_issued",
        "grant_activated",
    ] {
        assert!(
            types.iter().any(|t| t == expected),
            "{expected} missing from {types:?}"
        );
    }
    // Level 3 needs one approval.
    let ews = h.request("vendor1", "ews-1", "8h").await.unwrap();
    assert_eq!(ews.approvals_needed, 1);
    assert_eq!(
        h.broker
            .approve(&user("eng2"), ews.id)
            .await
            .unwrap()
            .status,
        RequestStatus::Active
    );
}

pub(crate) async fn self_approval_and_double_approval_are_refused(h: &Harness) {
    let own = h.request("eng1", "plc-7", "1h").await.unwrap();
    let err = h.broker.approve(&user("eng1"), own.id).await.unwrap_err();
    assert!(
        matches!(err, BrokerError::Forbidden(ref m) if m.contains("own request")),
        "{err}"
    );
    let request = h.request("vendor1", "plc-7", "1h").await.unwrap();
    h.broker.approve(&user("eng1"), request.id).await.unwrap();
    let twice = h
        .broker
        .approve(&user("eng1"), request.id)
        .await
        .unwrap_err();
    assert!(
        matches!(twice, BrokerError::Conflict(ref m) if m.contains("already approved")),
        "{twice}"
    );
    let outsider = h
        .broker
        .approve(&user("eng3"), request.id)
        .await
        .unwrap_err();
    assert!(matches!(outsider, BrokerError::Forbidden(_)), "{outsider}");
    let vendor = h
        .broker
        .approve(&user("vendor1"), request.id)
        .await
        .unwrap_err();
    assert!(matches!(vendor, BrokerError::Forbidden(_)), "{vendor}");
    let still = h.broker.request(&user("eng2"), request.id).await.unwrap();
    assert_eq!(still.approvals.len(), 1, "refusals stored nothing");
}

pub(crate) async fn bad_requests_are_refused_and_store_nothing(h: &Harness) {
    let before = h.count("request_created").await;
    let too_long = h.request("vendor1", "plc-7", "5h").await.unwrap_err();
    assert!(too_long.to_string().contains("4h"), "{too_long}");
    let unknown = h.request("vendor1", "plc-99", "1h").await.unwrap_err();
    assert!(unknown.to_string().contains("unknown asset"), "{unknown}");
    let bad_duration = h.request("vendor1", "plc-7", "soon").await.unwrap_err();
    assert!(
        bad_duration.to_string().contains("duration"),
        "{bad_duration}"
    );
    let past = h
        .file(
            "vendor1",
            NewRequest {
                start: Some(OffsetDateTime::now_utc() - time::Duration::hours(1)),
                ..read_only("plc-7", "30m")
            },
        )
        .await
        .unwrap_err();
    assert!(past.to_string().contains("past"), "{past}");
    let no_tcp = h
        .file(
            "vendor1",
            NewRequest {
                protocols: vec![Protocol::Modbus],
                ..read_only("ews-1", "30m")
            },
        )
        .await
        .unwrap_err();
    assert!(
        no_tcp.to_string().contains("no modbus endpoint"),
        "{no_tcp}"
    );
    let mut custom = Preset::ReadOnly
        .materialize(
            &h.broker
                .asset(&user("admin"), &"plc-7".parse().unwrap())
                .await
                .unwrap(),
            &[Protocol::Modbus],
        )
        .unwrap();
    custom.modbus.as_mut().unwrap().units = vec![9];
    let wrong_unit = h
        .file(
            "vendor1",
            NewRequest {
                protocols: vec![Protocol::Modbus],
                scope: ScopeSpec::Custom(custom),
                ..read_only("plc-7", "30m")
            },
        )
        .await
        .unwrap_err();
    assert!(wrong_unit.to_string().contains("unit 9"), "{wrong_unit}");
    let blank = h
        .file(
            "vendor1",
            NewRequest {
                reason: "   ".into(),
                ..read_only("plc-7", "30m")
            },
        )
        .await
        .unwrap_err();
    assert!(blank.to_string().contains("reason"), "{blank}");
    assert_eq!(
        h.count("request_created").await,
        before,
        "nothing partial was stored"
    );
    assert!(
        h.broker
            .requests(&user("vendor1"), &RequestFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn organisations_decide_who_may_ask(h: &Harness) {
    let err = h.request("vendor2", "plc-7", "1h").await.unwrap_err();
    assert!(matches!(err, BrokerError::Forbidden(_)), "{err}");
    let err = h.request("vendor1", "hmi-2", "1h").await.unwrap_err();
    assert!(matches!(err, BrokerError::Forbidden(_)), "{err}");
}

pub(crate) async fn deny_and_withdraw_end_pending_requests(h: &Harness) {
    let request = h.request("vendor1", "ews-1", "1h").await.unwrap();
    let no_reason = h
        .broker
        .deny(&user("eng2"), request.id, "")
        .await
        .unwrap_err();
    assert!(matches!(no_reason, BrokerError::Invalid(_)));
    let denied = h
        .broker
        .deny(&user("eng2"), request.id, "no change ticket")
        .await
        .unwrap();
    assert_eq!(denied.status, RequestStatus::Denied);
    assert_eq!(denied.decision_reason.as_deref(), Some("no change ticket"));
    let late = h
        .broker
        .approve(&user("eng1"), request.id)
        .await
        .unwrap_err();
    assert!(
        matches!(late, BrokerError::Conflict(ref m) if m.contains("denied")),
        "{late}"
    );

    let second = h.request("vendor1", "ews-1", "1h").await.unwrap();
    let stranger = h
        .broker
        .withdraw(&user("eng2"), second.id)
        .await
        .unwrap_err();
    assert!(matches!(stranger, BrokerError::Forbidden(_)));
    assert_eq!(
        h.broker
            .withdraw(&user("vendor1"), second.id)
            .await
            .unwrap()
            .status,
        RequestStatus::Withdrawn
    );
    let withdrawn = h
        .broker
        .approve(&user("eng2"), second.id)
        .await
        .unwrap_err();
    assert!(
        matches!(withdrawn, BrokerError::Conflict(ref m) if m.contains("withdrawn")),
        "{withdrawn}"
    );
    let missing = h
        .broker
        .approve(&user("eng2"), GrantId::new(9999).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(missing, BrokerError::NotFound(_)));
}

pub(crate) async fn the_clock_activates_and_expires_grants(h: &Harness) {
    let start = OffsetDateTime::now_utc() + time::Duration::minutes(10);
    let request = h
        .file(
            "vendor1",
            NewRequest {
                start: Some(start),
                reason: "scheduled backup check".into(),
                ..read_only("ews-1", "1h")
            },
        )
        .await
        .unwrap();
    assert_eq!(
        h.broker
            .approve(&user("eng2"), request.id)
            .await
            .unwrap()
            .status,
        RequestStatus::Approved
    );
    let now = OffsetDateTime::now_utc();
    assert!(matches!(
        h.broker.access(request.id, now).await.unwrap(),
        Err(AccessRefusal::NotYetValid { .. })
    ));
    assert_eq!(
        h.broker
            .advance(start + time::Duration::minutes(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(h.count("grant_activated").await, 1);
    let end = start + time::Duration::hours(1);
    assert!(h.broker.advance(end).await.unwrap() >= 1);
    assert_eq!(h.count("grant_expired").await, 1);
    assert!(matches!(
        h.broker.access(request.id, end).await.unwrap(),
        Err(AccessRefusal::Expired { .. })
    ));
    let lapsing = h.request("vendor1", "plc-7", "1h").await.unwrap();
    h.broker
        .advance(OffsetDateTime::now_utc() + time::Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(h.count("request_lapsed").await, 1);
    let err = h
        .broker
        .approve(&user("eng1"), lapsing.id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BrokerError::Conflict(ref m) if m.contains("expired")),
        "{err}"
    );
}

pub(crate) async fn concurrent_approvals_issue_one_grant(h: &Harness) {
    for _ in 0..5 {
        let request = h.request("vendor1", "plc-7", "1h").await.unwrap();
        let b = &h.broker;
        let (eng1, eng2) = (user("eng1"), user("eng2"));
        let (one, two) = tokio::join!(b.approve(&eng1, request.id), b.approve(&eng2, request.id));
        one.unwrap();
        two.unwrap();
        let done = b.request(&user("eng1"), request.id).await.unwrap();
        assert_eq!(done.status, RequestStatus::Active, "both approvals counted");
    }
    assert_eq!(h.count("grant_issued").await, 5, "one grant per request");
}

pub(crate) async fn changing_the_inventory_changes_who_may_ask(h: &Harness) {
    assert!(h.request("vendor1", "ews-1", "1h").await.is_ok());
    let without_acme = PLANT.replace("vendor_orgs = [\"acme\"]", "vendor_orgs = []");
    h.broker
        .import_inventory(
            &user("admin"),
            Inventory::from_toml(&without_acme, "plant").unwrap(),
        )
        .await
        .unwrap();
    assert!(matches!(
        h.request("vendor1", "ews-1", "1h").await,
        Err(BrokerError::Forbidden(_))
    ));
    let denied = h
        .broker
        .import_inventory(&user("eng1"), Inventory::default())
        .await
        .unwrap_err();
    assert!(matches!(denied, BrokerError::Forbidden(_)));
    let assets = h.broker.assets(&user("eng3")).await.unwrap();
    assert_eq!(
        assets.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["hmi-2"]
    );
}
