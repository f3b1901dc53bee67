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

pub(crate) async fn admins_change_roles_and_disable_accounts(h: &Harness) {
    use otgate_broker::AccessRefusal;
    use otgate_policy::{Action, Domain};

    // Roles are replaced, and the authorizer follows at once.
    let eng3 = "eng3".parse().unwrap();
    let forbidden = h
        .broker
        .set_roles(&user("eng1"), &eng3, vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(forbidden, BrokerError::Forbidden(_)),
        "{forbidden}"
    );
    let changed = h
        .broker
        .set_roles(
            &user("admin"),
            &eng3,
            vec![
                assignment(Role::Engineer, zone("cell-a")),
                assignment(Role::Auditor, Domain::Any),
            ],
        )
        .await
        .unwrap();
    assert_eq!(changed.roles.len(), 2);
    assert!(
        h.broker
            .is_allowed(&user("eng3"), &"cell-a".parse().unwrap(), Action::Approve)
            .await
    );
    assert!(
        !h.broker
            .is_allowed(&user("eng3"), &"cell-b".parse().unwrap(), Action::Approve)
            .await
    );
    assert_eq!(h.count("user_roles_changed").await, 1);
    let empty = h
        .broker
        .set_roles(&user("admin"), &eng3, vec![])
        .await
        .unwrap_err();
    assert!(matches!(empty, BrokerError::Invalid(_)), "{empty}");
    let unknown = h
        .broker
        .set_roles(&user("admin"), &"nobody".parse().unwrap(), vec![])
        .await
        .unwrap_err();
    assert!(matches!(unknown, BrokerError::NotFound(_)), "{unknown}");
    // A vendor keeps their organisation with no direct role; vendor1 holds none already, so
    // nothing changes and nothing is stored.
    h.broker
        .set_roles(&user("admin"), &"vendor1".parse().unwrap(), vec![])
        .await
        .unwrap();

    // The last enabled admin can neither lose the role nor be disabled.
    let admin = "admin".parse().unwrap();
    let last = h
        .broker
        .set_roles(
            &user("admin"),
            &admin,
            vec![assignment(Role::Auditor, Domain::Any)],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(last, BrokerError::Conflict(ref m) if m.contains("last enabled admin")),
        "{last}"
    );
    let own = h
        .broker
        .disable_user(&user("admin"), &admin, "leaving")
        .await
        .unwrap_err();
    assert!(matches!(own, BrokerError::Conflict(_)), "{own}");
    assert_eq!(
        h.count("user_roles_changed").await,
        1,
        "nothing stored for refusals"
    );
    // Roles that newly need a second factor end the user's sign-ins.
    let LoginOutcome::Session(before) = h
        .broker
        .login(creds("vendor2", PASSWORD, None))
        .await
        .unwrap()
    else {
        panic!("vendors log in with a password");
    };
    h.broker
        .set_roles(
            &user("admin"),
            &"vendor2".parse().unwrap(),
            vec![assignment(Role::Engineer, zone("cell-b"))],
        )
        .await
        .unwrap();
    assert!(
        h.broker
            .authenticate(before.token.expose(), None)
            .await
            .is_err(),
        "a vendor made engineer signs in again, with a second factor"
    );

    // Disabling ends logins, tokens and grants; enabling brings back logins, not tokens.
    let request = h.request("vendor1", "ews-1", "1h").await.unwrap();
    h.broker.approve(&user("eng2"), request.id).await.unwrap();
    let LoginOutcome::Session(session) = h
        .broker
        .login(creds("vendor1", PASSWORD, None))
        .await
        .unwrap()
    else {
        panic!("vendors log in with a password");
    };
    let vendor1 = "vendor1".parse().unwrap();
    let no_reason = h
        .broker
        .disable_user(&user("admin"), &vendor1, " ")
        .await
        .unwrap_err();
    assert!(matches!(no_reason, BrokerError::Invalid(_)), "{no_reason}");
    let mut events = h.broker.subscribe();
    let disabled = h
        .broker
        .disable_user(&user("admin"), &vendor1, "contract ended")
        .await
        .unwrap();
    assert!(disabled.disabled);
    let published = events.recv().await.unwrap();
    assert_eq!(published.event.kind.name(), "user_disabled");
    assert!(
        h.broker
            .authenticate(session.token.expose(), None)
            .await
            .is_err()
    );
    let refused = h
        .broker
        .login(creds("vendor1", PASSWORD, None))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, BrokerError::LoginRefused { .. }),
        "{refused}"
    );
    assert!(matches!(
        h.broker
            .access(request.id, OffsetDateTime::now_utc())
            .await
            .unwrap(),
        Err(AccessRefusal::AccountDisabled { .. })
    ));
    let again = h
        .broker
        .disable_user(&user("admin"), &vendor1, "twice")
        .await
        .unwrap_err();
    assert!(matches!(again, BrokerError::Conflict(_)), "{again}");
    h.broker
        .enable_user(&user("admin"), &vendor1)
        .await
        .unwrap();
    assert!(
        h.broker
            .access(request.id, OffsetDateTime::now_utc())
            .await
            .unwrap()
            .is_ok()
    );
    assert!(
        h.broker
            .authenticate(session.token.expose(), None)
            .await
            .is_err(),
        "old tokens stay deleted"
    );
    assert!(matches!(
        h.broker
            .login(creds("vendor1", PASSWORD, None))
            .await
            .unwrap(),
        LoginOutcome::Session(_)
    ));
    let not_disabled = h
        .broker
        .enable_user(&user("admin"), &vendor1)
        .await
        .unwrap_err();
    assert!(
        matches!(not_disabled, BrokerError::Conflict(_)),
        "{not_disabled}"
    );
    assert_eq!(h.count("user_disabled").await, 1);
    assert_eq!(h.count("user_enabled").await, 1);
}

pub(crate) async fn single_sign_on_enrols_a_second_factor(h: &Harness) {
    use otgate_broker::SsoIdentity;
    use otgate_policy::Domain;

    let who = |name: &str, roles| SsoIdentity {
        name: name.parse().unwrap(),
        display_name: None,
        roles,
        issuer: "https://idp.example".into(),
        source: Some("192.0.2.30".parse().unwrap()),
    };
    let source = Some("192.0.2.30".parse().unwrap());
    // An engineer new to otgate enrols an authenticator before any session exists.
    let LoginOutcome::Enrol(enrolment) = h
        .broker
        .sso_login(who(
            "eng8",
            vec![assignment(Role::Engineer, zone("cell-a"))],
        ))
        .await
        .unwrap()
    else {
        panic!("an engineer enrols a second factor at the first single sign-on");
    };
    let seed = totp_rs::Secret::try_from_base32(enrolment.secret.expose())
        .unwrap()
        .as_ref()
        .to_vec();
    let app = totp_rs::Builder::new().with_secret(seed).build().unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp() as u64;
    let eng8 = "eng8".parse().unwrap();
    let wrong = h
        .broker
        .sso_enrol(&eng8, "000000", source)
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, BrokerError::LoginRefused { ref message, .. } if message.contains("wrong authenticator code")),
        "{wrong}"
    );
    let session = h
        .broker
        .sso_enrol(&eng8, &app.generate(now).to_string(), source)
        .await
        .unwrap();
    assert!(
        h.broker
            .authenticate(session.token.expose(), None)
            .await
            .is_ok()
    );
    assert_eq!(h.count("totp_enrolled").await, 1);
    let twice = h
        .broker
        .sso_enrol(&eng8, &app.generate(now + 30).to_string(), source)
        .await
        .unwrap_err();
    assert!(matches!(twice, BrokerError::LoginRefused { .. }), "{twice}");
    // From now on the provider's word signs in, and levels 0-1 ask for a fresh code.
    assert!(matches!(
        h.broker
            .sso_login(who(
                "eng8",
                vec![assignment(Role::Engineer, zone("cell-a"))]
            ))
            .await
            .unwrap(),
        LoginOutcome::Session(_)
    ));
    let principal = user("eng8");
    assert!(
        h.broker
            .confirm_totp(&principal, &app.generate(now).to_string())
            .await
            .is_err(),
        "the enrolment's code is used"
    );
    h.broker
        .confirm_totp(&principal, &app.generate(now + 30).to_string())
        .await
        .unwrap();
    // Roles that need no second factor sign in at once; a user never enrolling gets nothing.
    assert!(matches!(
        h.broker
            .sso_login(who("ops1", vec![assignment(Role::Sensor, Domain::Any)]))
            .await
            .unwrap(),
        LoginOutcome::Session(_)
    ));
    let none = h
        .broker
        .sso_enrol(&"ops1".parse().unwrap(), "123456", source)
        .await
        .unwrap_err();
    assert!(matches!(none, BrokerError::LoginRefused { .. }), "{none}");
}
