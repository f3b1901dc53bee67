//! Logins (password, TOTP, replay, throttling, one-time passwords) and event visibility.

use std::time::Duration;

use otgate_broker::{BrokerError, Credentials, LoginOutcome, NewUser, Secret};
use otgate_policy::Role;
use time::OffsetDateTime;

use crate::harness::*;

pub(crate) fn code(at: OffsetDateTime) -> String {
    let totp = totp_rs::Builder::new()
        .with_secret(TOTP_SEED.to_vec())
        .build()
        .unwrap();
    totp.generate(at.unix_timestamp() as u64).to_string()
}

pub(crate) fn creds(name: &str, password: &str, totp: Option<String>) -> Credentials {
    Credentials {
        user: name.into(),
        password: Secret::new(password.into()),
        totp,
        new_password: None,
        source: Some("192.0.2.20".parse().unwrap()),
    }
}

pub(crate) async fn login_needs_password_totp_and_survives_replay(h: &Harness) {
    let LoginOutcome::Session(vendor) = h
        .broker
        .login(creds("vendor1", PASSWORD, None))
        .await
        .unwrap()
    else {
        panic!("vendors log in with a password");
    };
    let who = h
        .broker
        .authenticate(vendor.token.expose(), None)
        .await
        .unwrap();
    assert_eq!(who.user.as_str(), "vendor1");
    let missing = h
        .broker
        .login(creds("eng2", PASSWORD, None))
        .await
        .unwrap_err();
    assert!(
        matches!(
            missing,
            BrokerError::LoginRefused {
                code: "totp_required",
                ..
            }
        ),
        "{missing}"
    );
    let now = OffsetDateTime::now_utc();
    let LoginOutcome::Session(eng) = h
        .broker
        .login(creds("eng2", PASSWORD, Some(code(now))))
        .await
        .unwrap()
    else {
        panic!("seeded TOTP is enrolled");
    };
    let replay = h
        .broker
        .login(creds("eng2", PASSWORD, Some(code(now))))
        .await
        .unwrap_err();
    assert!(
        matches!(
            replay,
            BrokerError::LoginRefused {
                code: "invalid_credentials",
                ..
            }
        ),
        "{replay}"
    );
    h.broker
        .logout(&user("eng2"), eng.token.expose())
        .await
        .unwrap();
    assert!(
        h.broker
            .authenticate(eng.token.expose(), None)
            .await
            .is_err()
    );
    assert!(h.broker.authenticate("otg_short", None).await.is_err());
    assert!(
        h.broker
            .authenticate(&format!("otg_{}", "A".repeat(43)), None)
            .await
            .is_err()
    );
    // Throttling after three failures (this harness's limit).
    for _ in 0..3 {
        let wrong = h
            .broker
            .login(creds("aud", "wrong password!", None))
            .await
            .unwrap_err();
        assert!(matches!(
            wrong,
            BrokerError::LoginRefused {
                code: "invalid_credentials",
                ..
            }
        ));
    }
    let throttled = h
        .broker
        .login(creds("aud", PASSWORD, None))
        .await
        .unwrap_err();
    assert!(
        matches!(
            throttled,
            BrokerError::LoginRefused {
                code: "throttled",
                retry_after: Some(_),
                ..
            }
        ),
        "{throttled}"
    );
    assert!(h.count("login_throttled").await >= 1);
    assert!(h.count("login_failed").await >= 4);
    // A one-time password must be changed, then a second factor enrolled for engineers.
    let (_, one_time) = h
        .broker
        .add_user(
            &user("admin"),
            NewUser {
                name: "eng9".parse().unwrap(),
                display_name: Some("New Engineer".into()),
                org: None,
                roles: vec![assignment(Role::Engineer, zone("cell-b"))],
            },
        )
        .await
        .unwrap();
    let must_change = h
        .broker
        .login(creds("eng9", one_time.expose(), None))
        .await
        .unwrap_err();
    assert!(matches!(
        must_change,
        BrokerError::LoginRefused {
            code: "password_change_required",
            ..
        }
    ));
    let mut change = creds("eng9", one_time.expose(), None);
    change.new_password = Some(Secret::new("a much longer passphrase".into()));
    let LoginOutcome::Enrol(enrolment) = h.broker.login(change).await.unwrap() else {
        panic!("engineers enrol a second factor");
    };
    let seed = totp_rs::Secret::try_from_base32(enrolment.secret.expose())
        .unwrap()
        .as_ref()
        .to_vec();
    let totp = totp_rs::Builder::new().with_secret(seed).build().unwrap();
    let code = totp
        .generate(OffsetDateTime::now_utc().unix_timestamp() as u64)
        .to_string();
    let outcome = h
        .broker
        .login(creds("eng9", "a much longer passphrase", Some(code)))
        .await
        .unwrap();
    assert!(matches!(outcome, LoginOutcome::Session(_)));
    assert_eq!(h.count("totp_enrolled").await, 1);
    let non_admin = h
        .broker
        .add_user(
            &user("eng1"),
            NewUser {
                name: "x".parse().unwrap(),
                display_name: None,
                org: None,
                roles: vec![],
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(non_admin, BrokerError::Forbidden(_)));
}

pub(crate) async fn events_are_visible_by_zone(h: &Harness) {
    let request = h.request("vendor1", "plc-7", "1h").await.unwrap();
    let mine = h.broker.events(&user("vendor1"), 0, 100).await.unwrap();
    assert!(
        mine.events
            .iter()
            .any(|e| e.event.kind.name() == "request_created")
    );
    let other_zone = h.broker.events(&user("eng3"), 0, 100).await.unwrap();
    assert!(
        !other_zone
            .events
            .iter()
            .any(|e| e.event.zone.as_ref().map(|z| z.as_str()) == Some("cell-a"))
    );
    let zone_engineer = h.broker.events(&user("eng2"), 0, 100).await.unwrap();
    assert!(
        zone_engineer
            .events
            .iter()
            .any(|e| e.event.kind.name() == "request_created")
    );
    let all = h.broker.events(&user("aud"), 0, 1000).await.unwrap();
    let page = h.broker.events(&user("aud"), 0, 2).await.unwrap();
    assert_eq!(page.events.len(), 2);
    let rest = h
        .broker
        .events(&user("aud"), page.next, 1000)
        .await
        .unwrap();
    assert_eq!(
        page.events.len() + rest.events.len(),
        all.events.len(),
        "pages neither skip nor repeat"
    );
    // Waiting wakes up on a new event.
    let last = all.next;
    let auditor = user("aud");
    let waiter = h
        .broker
        .wait_events(&auditor, last, 10, Duration::from_secs(10));
    let approve = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.broker.approve(&user("eng1"), request.id).await.unwrap();
    };
    let (page, ()) = tokio::join!(waiter, approve);
    assert_eq!(
        page.unwrap().events[0].event.kind.name(),
        "request_approved"
    );
}

/// API tokens and tunnel tokens stop working when they expire (`h` issues 2-second tokens).
pub(crate) async fn expired_credentials_are_refused(h: &Harness) {
    let LoginOutcome::Session(session) = h
        .broker
        .login(creds("vendor1", PASSWORD, None))
        .await
        .unwrap()
    else {
        panic!("vendors log in with a password");
    };
    assert!(
        h.broker
            .authenticate(session.token.expose(), None)
            .await
            .is_ok()
    );
    let request = h.request("vendor1", "ews-1", "2s").await.unwrap();
    h.broker.approve(&user("eng2"), request.id).await.unwrap();
    let token = h
        .broker
        .issue_token(&user("vendor1"), request.id)
        .await
        .unwrap();
    assert!(h.broker.verify_token(&token.token).is_ok());
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let api = h
        .broker
        .authenticate(session.token.expose(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(api, BrokerError::Unauthenticated(ref m) if m.contains("expired")),
        "{api}"
    );
    let jwt = h.broker.verify_token(&token.token).unwrap_err();
    assert!(
        matches!(jwt, BrokerError::Unauthenticated(ref m) if m.contains("xpired")),
        "{jwt}"
    );
}
