//! The broker under test, on either backend, with a plant and its people.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use otgate_broker::{
    Broker, BrokerConfig, BrokerError, Database, KeyFiles, LocalBus, LoginLimits, NewRequest,
    NewUser, Principal, ScopeSpec, Secret,
};
use otgate_policy::{
    ApprovalRules, Domain, Inventory, OrgName, Preset, Protocol, Role, RoleAssignment, UserName,
    ZoneName,
};
use time::OffsetDateTime;

pub(crate) const PLANT: &str = r#"
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

pub(crate) const PASSWORD: &str = "correct horse battery staple";
pub(crate) const TOTP_SEED: [u8; 20] = *b"otgate-test-seed-20b";

pub(crate) struct Harness {
    pub(crate) broker: Broker,
    dir: PathBuf,
    postgres: Option<(String, String)>,
}

pub(crate) fn user(name: &str) -> Principal {
    Principal {
        user: UserName::new(name).unwrap(),
        source: Some("192.0.2.10".parse().unwrap()),
    }
}

pub(crate) fn zone(name: &str) -> Domain {
    Domain::Zone(ZoneName::new(name).unwrap())
}

pub(crate) fn assignment(role: Role, domain: Domain) -> RoleAssignment {
    RoleAssignment { role, domain }
}

pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// The server part of a PostgreSQL URL (`postgres://user@host:port`), and its query string.
pub(crate) fn server_of(url: &str) -> (String, String) {
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

pub(crate) async fn harness(backend: Backend) -> Option<Harness> {
    harness_with(backend, Duration::from_secs(3600)).await
}

/// A harness whose API tokens live `token_ttl`.
pub(crate) async fn harness_with(backend: Backend, token_ttl: Duration) -> Option<Harness> {
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
        token_ttl,
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

pub(crate) fn uuid_like() -> String {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!(
        "{:x}{:x}",
        nanos,
        std::process::id() ^ (nanos as u32).rotate_left(7)
    )
}

impl Harness {
    pub(crate) async fn finish(self) {
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

    /// Files a read-only SSH request as `who`.
    pub(crate) async fn request(
        &self,
        who: &str,
        asset: &str,
        duration: &str,
    ) -> Result<otgate_broker::Request, BrokerError> {
        self.file(who, read_only(asset, duration)).await
    }

    /// Files any request as `who`.
    pub(crate) async fn file(
        &self,
        who: &str,
        request: NewRequest,
    ) -> Result<otgate_broker::Request, BrokerError> {
        self.broker.create_request(&user(who), request).await
    }

    pub(crate) async fn event_types(&self) -> Vec<String> {
        let page = self.broker.events(&user("aud"), 0, 1000).await.unwrap();
        page.events
            .iter()
            .map(|e| e.event.kind.name().to_owned())
            .collect()
    }

    pub(crate) async fn count(&self, event_type: &str) -> usize {
        self.event_types()
            .await
            .iter()
            .filter(|t| *t == event_type)
            .count()
    }
}

/// A read-only SSH request for `asset`, starting now; change fields with `..read_only(..)`.
pub(crate) fn read_only(asset: &str, duration: &str) -> NewRequest {
    NewRequest {
        asset: asset.parse().unwrap(),
        protocols: vec![Protocol::Ssh],
        scope: ScopeSpec::Preset(Preset::ReadOnly),
        start: None,
        duration: duration.into(),
        reason: "replace the pump controller firmware".into(),
        ticket: Some("CHG-1042".into()),
    }
}
