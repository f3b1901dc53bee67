//! Broker lifecycle tests, each run on SQLite and on PostgreSQL.
//!
//! PostgreSQL: `OTGATE_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432/postgres`)
//! names a server; every test creates its own database there and drops it afterwards. Without
//! the variable the PostgreSQL variants fail when `OTGATE_REQUIRE_PEERS=1` (CI) and are skipped
//! with a message otherwise.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use otgate_broker::{
    AccessRefusal, Broker, BrokerConfig, BrokerError, CredentialKind, Credentials, Database,
    KeyFiles, LocalBus, LoginLimits, LoginOutcome, NewCredential, NewQuarantine, NewRequest,
    NewUser, Principal, RequestFilter, RequestStatus, ScopeSpec, Secret,
};
use otgate_policy::{
    ApprovalRules, Domain, GrantId, Inventory, OrgName, Preset, Protocol, QuarantineSubject, Role,
    RoleAssignment, UserName, ZoneName,
};
use time::OffsetDateTime;

const PLANT: &str = r#"
[[zones]]
name = "cell-a"
vendor_orgs = ["acme"]

[[zones]]
name = "cell-b"

[[assets]]
name = "plc-7"
kind = "plc"
level = "1"
zone = "cell-a"
endpoints = [
  { protocol = "modbus", host = "10.0.1.7", port = 502, units = [1] },
  { protocol = "ssh", host = "10.0.1.7", port = 22 },
]

[[assets]]
name = "ews-1"
kind = "ews"
level = "3"
zone = "cell-a"
endpoints = [{ protocol = "ssh", host = "10.0.3.5", port = 22 }]

[[assets]]
name = "hmi-2"
kind = "hmi"
level = "2"
zone = "cell-b"
endpoints = [{ protocol = "ssh", host = "10.0.2.2", port = 22 }]
"#;

const PASSWORD: &str = "correct horse battery staple";
const TOTP_SEED: [u8; 20] = *b"otgate-test-seed-20b";

struct Harness {
    broker: Broker,
    dir: PathBuf,
    postgres: Option<(String, String)>,
}

fn user(name: &str) -> Principal {
    Principal {
        user: UserName::new(name).unwrap(),
        source: Some("192.0.2.10".parse().unwrap()),
    }
}

fn zone(name: &str) -> Domain {
    Domain::Zone(ZoneName::new(name).unwrap())
}

fn assignment(role: Role, domain: Domain) -> RoleAssignment {
    RoleAssignment { role, domain }
}

enum Backend {
    Sqlite,
    Postgres,
}

/// The server part of a PostgreSQL URL (`postgres://user@host:port`), and its query string.
fn server_of(url: &str) -> (String, String) {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    (
        server.to_owned(),
        if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        },
    )
}

async fn harness(backend: Backend) -> Option<Harness> {
    let dir = std::env::temp_dir().join(format!("otgate-broker-test-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = KeyFiles {
        ssh_ca: dir.join("ssh-ca"),
        jwt: dir.join("jwt.pem"),
        vault: dir.join("vault.key"),
    };
    keys.generate().unwrap();
    let (database, postgres) = match backend {
        Backend::Sqlite => (Database::Sqlite(dir.join("otgate.db")), None),
        Backend::Postgres => {
            let Ok(url) = std::env::var("OTGATE_TEST_POSTGRES_URL") else {
                assert!(
                    std::env::var("OTGATE_REQUIRE_PEERS").as_deref() != Ok("1"),
                    "OTGATE_TEST_POSTGRES_URL is not set but OTGATE_REQUIRE_PEERS=1"
                );
                eprintln!("skipping the PostgreSQL variant: OTGATE_TEST_POSTGRES_URL is not set");
                return None;
            };
            let name = format!("otgate_test_{}", uuid_like());
            let admin = sqlx::PgPool::connect(&url)
                .await
                .expect("PostgreSQL at OTGATE_TEST_POSTGRES_URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let (server, query) = server_of(&url);
            (
                Database::Postgres(Secret::new(format!("{server}/{name}{query}"))),
                Some((url, name)),
            )
        }
    };
    let config = BrokerConfig {
        database,
        keys,
        approval: ApprovalRules::default(),
        token_ttl: Duration::from_secs(3600),
        login: LoginLimits {
            max_failures: 3,
            window: Duration::from_secs(60),
        },
    };
    let broker = Broker::open(&config, Arc::new(LocalBus::new(1024)))
        .await
        .unwrap();
    broker
        .load_inventory(None, Inventory::from_toml(PLANT, "plant").unwrap())
        .await
        .unwrap();
    let acme = OrgName::new("acme").unwrap();
    let people: Vec<(&str, Vec<RoleAssignment>, Option<OrgName>, bool)> = vec![
        (
            "admin",
            vec![assignment(Role::Admin, Domain::Any)],
            None,
            true,
        ),
        (
            "eng1",
            vec![
                assignment(Role::Engineer, zone("cell-a")),
                assignment(Role::Vendor, zone("cell-a")),
            ],
            None,
            true,
        ),
        (
            "eng2",
            vec![assignment(Role::Engineer, zone("cell-a"))],
            None,
            true,
        ),
        (
            "eng3",
            vec![assignment(Role::Engineer, zone("cell-b"))],
            None,
            true,
        ),
        (
            "aud",
            vec![assignment(Role::Auditor, Domain::Any)],
            None,
            false,
        ),
        ("vendor1", vec![], Some(acme.clone()), false),
        (
            "vendor2",
            vec![],
            Some(OrgName::new("other").unwrap()),
            false,
        ),
    ];
    for (name, roles, org, totp) in people {
        let new = NewUser {
            name: UserName::new(name).unwrap(),
            display_name: None,
            org,
            roles,
        };
        let seed = totp.then_some(&TOTP_SEED[..]);
        broker
            .provision(None, new, Secret::new(PASSWORD.into()), false, seed)
            .await
            .unwrap();
    }
    Some(Harness {
        broker,
        dir,
        postgres,
    })
}

fn uuid_like() -> String {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!(
        "{:x}{:x}",
        nanos,
        std::process::id() ^ (nanos as u32).rotate_left(7)
    )
}

impl Harness {
    async fn finish(self) {
        self.broker.close().await;
        if let Some((url, name)) = self.postgres {
            let admin = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&admin)
            .await
            .unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    async fn request(
        &self,
        who: &str,
        asset: &str,
        duration: &str,
    ) -> Result<otgate_broker::Request, BrokerError> {
        self.broker
            .create_request(
                &user(who),
                NewRequest {
                    asset: asset.parse().unwrap(),
                    protocols: vec![Protocol::Ssh],
                    scope: ScopeSpec::Preset(Preset::ReadOnly),
                    start: None,
                    duration: duration.into(),
                    reason: "replace the pump controller firmware".into(),
                    ticket: Some("CHG-1042".into()),
                },
            )
            .await
    }

    async fn event_types(&self) -> Vec<String> {
        let page = self.broker.events(&user("aud"), 0, 1000).await.unwrap();
        page.events
            .iter()
            .map(|e| e.event.kind.name().to_owned())
            .collect()
    }

    async fn count(&self, event_type: &str) -> usize {
        self.event_types()
            .await
            .iter()
            .filter(|t| *t == event_type)
            .count()
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let h = super::harness(super::Backend::Sqlite).await.unwrap();
                super::$name(&h).await;
                h.finish().await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(h) = super::harness(super::Backend::Postgres).await else { return };
                super::$name(&h).await;
                h.finish().await;
            })*
        }
    };
}

on_both!(
    two_engineers_turn_a_level_one_request_into_a_grant,
    self_approval_and_double_approval_are_refused,
    bad_requests_are_refused_and_store_nothing,
    organisations_decide_who_may_ask,
    deny_and_withdraw_end_pending_requests,
    the_clock_activates_and_expires_grants,
    revocation_is_stored_and_seen_by_the_gateway,
    quarantine_blocks_vendors_and_assets,
    credentials_are_bound_to_the_grant,
    vault_keeps_secrets_sealed,
    login_needs_password_totp_and_survives_replay,
    concurrent_approvals_issue_one_grant,
    events_are_visible_by_zone,
    changing_the_inventory_changes_who_may_ask,
);

async fn two_engineers_turn_a_level_one_request_into_a_grant(h: &Harness) {
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

async fn self_approval_and_double_approval_are_refused(h: &Harness) {
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

async fn bad_requests_are_refused_and_store_nothing(h: &Harness) {
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
        .broker
        .create_request(
            &user("vendor1"),
            NewRequest {
                asset: "plc-7".parse().unwrap(),
                protocols: vec![Protocol::Ssh],
                scope: ScopeSpec::Preset(Preset::ReadOnly),
                start: Some(OffsetDateTime::now_utc() - time::Duration::hours(1)),
                duration: "30m".into(),
                reason: "x".into(),
                ticket: None,
            },
        )
        .await
        .unwrap_err();
    assert!(past.to_string().contains("past"), "{past}");
    let no_tcp = h
        .broker
        .create_request(
            &user("vendor1"),
            NewRequest {
                asset: "ews-1".parse().unwrap(),
                protocols: vec![Protocol::Modbus],
                scope: ScopeSpec::Preset(Preset::ReadOnly),
                start: None,
                duration: "30m".into(),
                reason: "x".into(),
                ticket: None,
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
        .broker
        .create_request(
            &user("vendor1"),
            NewRequest {
                asset: "plc-7".parse().unwrap(),
                protocols: vec![Protocol::Modbus],
                scope: ScopeSpec::Custom(custom),
                start: None,
                duration: "30m".into(),
                reason: "x".into(),
                ticket: None,
            },
        )
        .await
        .unwrap_err();
    assert!(wrong_unit.to_string().contains("unit 9"), "{wrong_unit}");
    let blank = h
        .broker
        .create_request(
            &user("vendor1"),
            NewRequest {
                asset: "plc-7".parse().unwrap(),
                protocols: vec![Protocol::Ssh],
                scope: ScopeSpec::Preset(Preset::ReadOnly),
                start: None,
                duration: "30m".into(),
                reason: "   ".into(),
                ticket: None,
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

async fn organisations_decide_who_may_ask(h: &Harness) {
    let err = h.request("vendor2", "plc-7", "1h").await.unwrap_err();
    assert!(matches!(err, BrokerError::Forbidden(_)), "{err}");
    let err = h.request("vendor1", "hmi-2", "1h").await.unwrap_err();
    assert!(matches!(err, BrokerError::Forbidden(_)), "{err}");
}

async fn deny_and_withdraw_end_pending_requests(h: &Harness) {
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

async fn the_clock_activates_and_expires_grants(h: &Harness) {
    let start = OffsetDateTime::now_utc() + time::Duration::minutes(10);
    let request = h
        .broker
        .create_request(
            &user("vendor1"),
            NewRequest {
                asset: "ews-1".parse().unwrap(),
                protocols: vec![Protocol::Ssh],
                scope: ScopeSpec::Preset(Preset::ReadOnly),
                start: Some(start),
                duration: "1h".into(),
                reason: "scheduled backup check".into(),
                ticket: None,
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

async fn revocation_is_stored_and_seen_by_the_gateway(h: &Harness) {
    let request = h.request("vendor1", "ews-1", "1h").await.unwrap();
    let mut live = h.broker.subscribe();
    h.broker.approve(&user("eng2"), request.id).await.unwrap();
    let pending = h.request("vendor1", "ews-1", "1h").await.unwrap();
    let not_yet = h
        .broker
        .revoke_grant(&user("eng2"), pending.id, "x")
        .await
        .unwrap_err();
    assert!(
        matches!(not_yet, BrokerError::Conflict(ref m) if m.contains("deny it")),
        "{not_yet}"
    );
    let vendor_try = h
        .broker
        .revoke_grant(&user("vendor1"), request.id, "x")
        .await
        .unwrap_err();
    assert!(matches!(vendor_try, BrokerError::Forbidden(_)));
    let revoked = h
        .broker
        .revoke_grant(&user("eng2"), request.id, "suspicious login")
        .await
        .unwrap();
    assert_eq!(revoked.status, RequestStatus::Revoked);
    match h
        .broker
        .access(request.id, OffsetDateTime::now_utc())
        .await
        .unwrap()
    {
        Err(AccessRefusal::Revoked { by, reason, .. }) => {
            assert_eq!(by, "eng2");
            assert_eq!(reason, "suspicious login");
        }
        other => panic!("{other:?}"),
    }
    let again = h
        .broker
        .revoke_grant(&user("eng2"), request.id, "x")
        .await
        .unwrap_err();
    assert!(
        matches!(again, BrokerError::Conflict(ref m) if m.contains("already revoked")),
        "{again}"
    );
    // The bus carried the revocation, after the events before it.
    let mut seen = Vec::new();
    while let Ok(Ok(event)) = tokio::time::timeout(Duration::from_millis(200), live.recv()).await {
        seen.push(event.event.kind.name());
    }
    assert!(seen.contains(&"grant_revoked"), "{seen:?}");
    // Every live grant of a vendor at once.
    let a = h.request("vendor1", "ews-1", "1h").await.unwrap();
    h.broker.approve(&user("eng2"), a.id).await.unwrap();
    let b = h.request("vendor1", "plc-7", "1h").await.unwrap();
    h.broker.approve(&user("eng1"), b.id).await.unwrap();
    h.broker.approve(&user("eng2"), b.id).await.unwrap();
    let outsider = h
        .broker
        .revoke_vendor(&user("eng3"), &"vendor1".parse().unwrap(), "x")
        .await;
    assert!(
        outsider.map(|v| v.is_empty()).unwrap_or(true),
        "eng3 sees no cell-a grants"
    );
    let ids = h
        .broker
        .revoke_vendor(
            &user("eng2"),
            &"vendor1".parse().unwrap(),
            "vendor laptop stolen",
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    let expired_revoke = h
        .broker
        .revoke_grant(&user("eng2"), a.id, "x")
        .await
        .unwrap_err();
    assert!(matches!(expired_revoke, BrokerError::Conflict(_)));
}

async fn quarantine_blocks_vendors_and_assets(h: &Harness) {
    let request = h.request("vendor1", "ews-1", "1h").await.unwrap();
    h.broker.approve(&user("eng2"), request.id).await.unwrap();
    let vendor_q = h
        .broker
        .quarantine(
            &user("eng2"),
            NewQuarantine {
                subject: QuarantineSubject::Vendor("vendor1".parse().unwrap()),
                duration: None,
                reason: "EDR alert on the vendor laptop".into(),
            },
        )
        .await
        .unwrap();
    let length = vendor_q.until - vendor_q.created_at;
    assert!(
        (length - time::Duration::hours(2)).abs() < time::Duration::seconds(5),
        "default 2 h"
    );
    assert!(matches!(
        h.broker
            .access(request.id, OffsetDateTime::now_utc())
            .await
            .unwrap(),
        Err(AccessRefusal::Quarantined { .. })
    ));
    let blocked = h.request("vendor1", "ews-1", "1h").await.unwrap_err();
    assert!(
        matches!(blocked, BrokerError::Forbidden(ref m) if m.contains("quarantined")),
        "{blocked}"
    );
    let cert = h
        .broker
        .issue_token(&user("vendor1"), request.id)
        .await
        .unwrap_err();
    assert!(matches!(cert, BrokerError::Forbidden(_)), "{cert}");
    let vendor_self = h
        .broker
        .lift_quarantine(&user("vendor1"), vendor_q.id)
        .await
        .unwrap_err();
    assert!(matches!(vendor_self, BrokerError::Forbidden(_)));
    h.broker
        .lift_quarantine(&user("eng2"), vendor_q.id)
        .await
        .unwrap();
    assert!(
        h.broker
            .access(request.id, OffsetDateTime::now_utc())
            .await
            .unwrap()
            .is_ok()
    );
    let asset_q = h
        .broker
        .quarantine(
            &user("eng1"),
            NewQuarantine {
                subject: QuarantineSubject::Asset("ews-1".parse().unwrap()),
                duration: Some("10m".into()),
                reason: "IDS alert".into(),
            },
        )
        .await
        .unwrap();
    assert!(
        h.broker
            .access(request.id, OffsetDateTime::now_utc())
            .await
            .unwrap()
            .is_err()
    );
    let outsider = h
        .broker
        .quarantine(
            &user("eng3"),
            NewQuarantine {
                subject: QuarantineSubject::Asset("ews-1".parse().unwrap()),
                duration: None,
                reason: "x".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(outsider, BrokerError::Forbidden(_)));
    h.broker
        .advance(asset_q.until + time::Duration::seconds(1))
        .await
        .unwrap();
    assert!(
        h.broker
            .access(request.id, OffsetDateTime::now_utc())
            .await
            .unwrap()
            .is_ok()
    );
    let types = h.event_types().await;
    assert_eq!(types.iter().filter(|t| *t == "quarantine_ended").count(), 2);
}

async fn credentials_are_bound_to_the_grant(h: &Harness) {
    let vendor_key =
        ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[9u8; 32]));
    let public = vendor_key.public_key().to_openssh().unwrap();
    let request = h.request("vendor1", "ews-1", "1h").await.unwrap();
    let early = h
        .broker
        .issue_certificate(&user("vendor1"), request.id, None)
        .await
        .unwrap_err();
    assert!(
        matches!(early, BrokerError::Conflict(ref m) if m.contains("pending")),
        "{early}"
    );
    h.broker.approve(&user("eng2"), request.id).await.unwrap();
    let no_key = h
        .broker
        .issue_certificate(&user("vendor1"), request.id, None)
        .await
        .unwrap_err();
    assert!(no_key.to_string().contains("keys add"), "{no_key}");
    assert!(
        h.broker
            .register_key(&user("vendor1"), "ssh-rsa garbage")
            .await
            .is_err()
    );
    let key = h
        .broker
        .register_key(&user("vendor1"), &public)
        .await
        .unwrap();
    let dup = h
        .broker
        .register_key(&user("vendor1"), &public)
        .await
        .unwrap_err();
    assert!(matches!(dup, BrokerError::Conflict(_)));
    let issued = h
        .broker
        .issue_certificate(&user("vendor1"), request.id, None)
        .await
        .unwrap();
    let cert = ssh_key::Certificate::from_openssh(&issued.certificate).unwrap();
    assert_eq!(cert.key_id(), request.id.to_string());
    assert_eq!(cert.valid_principals(), ["vendor1"]);
    assert_eq!(cert.cert_type(), ssh_key::certificate::CertType::User);
    assert_eq!(
        cert.valid_after(),
        request.window.start.unix_timestamp() as u64
    );
    assert_eq!(
        cert.valid_before(),
        request.window.end.unix_timestamp() as u64
    );
    assert!(cert.extensions().contains_key("permit-pty"));
    assert!(!cert.extensions().contains_key("permit-agent-forwarding"));
    assert!(!cert.extensions().contains_key("permit-X11-forwarding"));
    let ca = h
        .broker
        .keys()
        .ssh_ca_fingerprint()
        .parse::<ssh_key::Fingerprint>()
        .unwrap();
    cert.validate_at(OffsetDateTime::now_utc().unix_timestamp() as u64, [&ca])
        .unwrap();
    assert!(
        cert.validate_at(request.window.end.unix_timestamp() as u64 + 1, [&ca])
            .is_err()
    );
    assert_eq!(issued.key_fingerprint, key.fingerprint);
    // Someone else's grant gives nothing.
    let theft = h
        .broker
        .issue_certificate(&user("eng2"), request.id, None)
        .await
        .unwrap_err();
    assert!(matches!(theft, BrokerError::Forbidden(_)), "{theft}");
    let token = h
        .broker
        .issue_token(&user("vendor1"), request.id)
        .await
        .unwrap();
    let claims = h.broker.verify_token(&token.token).unwrap();
    assert_eq!(claims.grant, request.id.get());
    assert_eq!(claims.sub, "vendor1");
    assert_eq!(claims.exp, request.window.end.unix_timestamp());
    let mut forged = token.token.clone();
    forged.pop();
    forged.push(if token.token.ends_with('A') { 'B' } else { 'A' });
    assert!(h.broker.verify_token(&forged).is_err());
    assert!(h.broker.verify_token("not.a.jwt").is_err());
    assert_eq!(h.count("certificate_issued").await, 1);
    assert_eq!(h.count("token_issued").await, 1);
}

async fn vault_keeps_secrets_sealed(h: &Harness) {
    let new = NewCredential {
        name: "ews-1-maint".parse().unwrap(),
        kind: CredentialKind::Password,
        secret: Secret::new("Pl@nt-P4ssw0rd".into()),
    };
    let denied = h
        .broker
        .store_credential(&user("eng1"), new.clone())
        .await
        .unwrap_err();
    assert!(matches!(denied, BrokerError::Forbidden(_)));
    h.broker
        .store_credential(&user("admin"), new)
        .await
        .unwrap();
    let listed = h.broker.credentials(&user("admin")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!serde_json::to_string(&listed).unwrap().contains("P4ssw0rd"));
    let (kind, secret) = h
        .broker
        .credential_secret(&"ews-1-maint".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(kind, CredentialKind::Password);
    assert_eq!(secret.expose(), b"Pl@nt-P4ssw0rd");
    let bad_key = NewCredential {
        name: "k".parse().unwrap(),
        kind: CredentialKind::PrivateKey,
        secret: Secret::new("-----BEGIN nonsense".into()),
    };
    assert!(matches!(
        h.broker.store_credential(&user("admin"), bad_key).await,
        Err(BrokerError::Invalid(_))
    ));
}

fn code(at: OffsetDateTime) -> String {
    let totp = totp_rs::Builder::new()
        .with_secret(TOTP_SEED.to_vec())
        .build()
        .unwrap();
    totp.generate(at.unix_timestamp() as u64).to_string()
}

fn creds(name: &str, password: &str, totp: Option<String>) -> Credentials {
    Credentials {
        user: name.into(),
        password: Secret::new(password.into()),
        totp,
        new_password: None,
        source: Some("192.0.2.20".parse().unwrap()),
    }
}

async fn login_needs_password_totp_and_survives_replay(h: &Harness) {
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

async fn concurrent_approvals_issue_one_grant(h: &Harness) {
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

async fn events_are_visible_by_zone(h: &Harness) {
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

async fn changing_the_inventory_changes_who_may_ask(h: &Harness) {
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
