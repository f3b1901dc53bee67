//! The API through the router (no network): status codes, JSON error bodies, refusal events,
//! the whole request lifecycle, and the committed OpenAPI document.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use otgate_broker::{
    Broker, BrokerConfig, Database, KeyFiles, LocalBus, LoginLimits, NewUser, Principal, Secret,
};
use otgate_policy::{
    ApprovalRules, Domain, Inventory, OrgName, Role, RoleAssignment, UserName, ZoneName,
};

const PLANT: &str = r#"
[[zones]]
name = "cell-a"
vendor_orgs = ["acme"]

[[assets]]
name = "plc-7"
kind = "plc"
level = "1"
zone = "cell-a"
endpoints = [{ protocol = "ssh", host = "10.0.1.7", port = 22 }]
"#;
const PASSWORD: &str = "correct horse battery staple";
const SEED: [u8; 20] = *b"otgate-web-test-seed";

struct Api {
    app: Router,
    broker: Arc<Broker>,
    dir: std::path::PathBuf,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn api() -> Api {
    api_with(otgate_web::UiOptions::default()).await
}

/// The API with the UI set up by `options` (its SSH address is always 127.0.0.1:2222).
async fn api_with(options: otgate_web::UiOptions) -> Api {
    let dir = std::env::temp_dir().join(format!(
        "otgate-web-test-{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = KeyFiles {
        ssh_ca: dir.join("ca"),
        jwt: dir.join("jwt.pem"),
        vault: dir.join("vault.key"),
    };
    keys.generate().unwrap();
    let config = BrokerConfig {
        database: Database::Sqlite(dir.join("otgate.db")),
        keys,
        approval: ApprovalRules::default(),
        token_ttl: Duration::from_secs(600),
        login: LoginLimits::default(),
    };
    let broker = Arc::new(
        Broker::open(&config, Arc::new(LocalBus::new(256)))
            .await
            .unwrap(),
    );
    broker
        .load_inventory(None, Inventory::from_toml(PLANT, "plant").unwrap())
        .await
        .unwrap();
    let zone = Domain::Zone(ZoneName::new("cell-a").unwrap());
    for (name, roles, org) in [
        (
            "admin",
            vec![RoleAssignment {
                role: Role::Admin,
                domain: Domain::Any,
            }],
            None,
        ),
        (
            "aud",
            vec![RoleAssignment {
                role: Role::Auditor,
                domain: Domain::Any,
            }],
            None,
        ),
        (
            "eng1",
            vec![RoleAssignment {
                role: Role::Engineer,
                domain: zone.clone(),
            }],
            None,
        ),
        (
            "eng2",
            vec![RoleAssignment {
                role: Role::Engineer,
                domain: zone.clone(),
            }],
            None,
        ),
        ("vendor1", vec![], Some(OrgName::new("acme").unwrap())),
        (
            "ids",
            vec![RoleAssignment {
                role: Role::Sensor,
                domain: Domain::Any,
            }],
            None,
        ),
    ] {
        let totp = roles
            .iter()
            .any(|r| r.role.requires_totp())
            .then_some(&SEED[..]);
        let new = NewUser {
            name: UserName::new(name).unwrap(),
            display_name: None,
            org,
            roles,
        };
        broker
            .provision(None, new, Secret::new(PASSWORD.into()), false, totp)
            .await
            .unwrap();
    }
    let recordings = otgate_recorder::Archive::new(
        Arc::new(otgate_recorder::storage::LocalStorage::new(
            dir.join("recordings"),
        )),
        None,
    );
    Api {
        app: otgate_web::router(
            broker.clone(),
            recordings,
            None,
            otgate_web::UiOptions {
                ssh: Some("127.0.0.1:2222".parse().unwrap()),
                idle_timeout: options.idle_timeout,
                ..otgate_web::UiOptions::default()
            },
        )
        .unwrap(),
        broker,
        dir,
    }
}

impl Api {
    async fn raw(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"));
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        };
        self.raw(request.unwrap()).await
    }

    async fn login(&self, user: &str) -> String {
        let code = totp_rs::Builder::new()
            .with_secret(SEED.to_vec())
            .build()
            .unwrap()
            .generate(time::OffsetDateTime::now_utc().unix_timestamp() as u64)
            .to_string();
        let (status, body) = self
            .call(
                "POST",
                "/login",
                None,
                Some(json!({ "user": user, "password": PASSWORD, "totp": code })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["session"]["token"].as_str().unwrap().to_owned()
    }

    /// Every stored event, as the auditor sees them.
    async fn events(&self) -> Vec<otgate_broker::StoredEvent> {
        let auditor = Principal {
            user: UserName::new("aud").unwrap(),
            source: None,
        };
        self.broker.events(&auditor, 0, 1000).await.unwrap().events
    }

    async fn refusals(&self) -> Vec<Value> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e.event.kind.name() == "refused")
            .map(|e| serde_json::to_value(&e).unwrap())
            .collect()
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("(no error body)")
}

#[test]
fn the_openapi_document_is_committed_and_current() {
    let generated = otgate_web::openapi_json();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var("OTGATE_UPDATE_OPENAPI").as_deref() == Ok("1") {
        std::fs::write(&path, format!("{generated}\n")).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        committed.trim_end(),
        generated.trim_end(),
        "web/openapi.json is stale: run `OTGATE_UPDATE_OPENAPI=1 cargo test -p otgate-web` and commit it"
    );
    let doc: Value = serde_json::from_str(&generated).unwrap();
    for path in [
        "/api/v1/login",
        "/api/v1/requests",
        "/api/v1/requests/{id}/approve",
        "/api/v1/grants/{id}/certificate",
        "/api/v1/events",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the document"
        );
    }
}

#[tokio::test]
async fn health_needs_no_login_and_everything_else_does() {
    let api = api().await;
    let (status, body) = api.call("GET", "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["storage"], "sqlite");
    let (status, body) = api.call("GET", "/requests", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "unauthenticated");
    let forged = format!("otg_{}", "x".repeat(43));
    let (status, _) = api.call("GET", "/requests", Some(&forged), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api.call("GET", "/requests", Some("garbage"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let refusals = api.refusals().await;
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|r| r["status"] == 401 && r["path"] == "/api/v1/requests")
    );
}

#[tokio::test]
async fn bad_bodies_get_clear_errors_and_store_nothing() {
    let api = api().await;
    let token = api.login("vendor1").await;
    let request = |content_type: &str, body: String| {
        Request::builder()
            .method("POST")
            .uri("/api/v1/requests")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let (status, body) = api.raw(request("text/plain", "{}".into())).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let (status, body) = api
        .raw(request("application/json", "{\"asset\": ".into()))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    let unknown_field = json!({ "asset": "plc-7", "protocols": ["ssh"], "scope": { "preset": "read-only" }, "duration": "1h", "reason": "x", "colour": "red" });
    let (status, body) = api
        .raw(request("application/json", unknown_field.to_string()))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );
    let bad_preset = json!({ "asset": "plc-7", "protocols": ["ssh"], "scope": { "preset": "everything" }, "duration": "1h", "reason": "x" });
    let (status, _) = api
        .raw(request("application/json", bad_preset.to_string()))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let huge = json!({ "asset": "plc-7", "protocols": ["ssh"], "scope": { "preset": "read-only" }, "duration": "1h", "reason": "x".repeat(otgate_web::MAX_BODY + 1) });
    let (status, body) = api.raw(request("application/json", huge.to_string())).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );
    let (status, body) = api.call("GET", "/requests", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([]), "nothing was stored");
    let refusals = api.refusals().await;
    assert_eq!(refusals.len(), 5);
    assert!(
        refusals.iter().all(|r| r["actor"] == "vendor1"),
        "refusals name the caller: {refusals:?}"
    );
}

#[tokio::test]
async fn unknown_routes_methods_and_ids_are_json_errors() {
    let api = api().await;
    let token = api.login("eng1").await;
    let (status, body) = api.call("GET", "/nope", Some(&token), None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, body) = api.call("DELETE", "/requests", Some(&token), None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let (status, body) = api
        .call("POST", "/requests/abc/approve", Some(&token), None)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    let (status, body) = api
        .call("POST", "/requests/999/approve", Some(&token), None)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert_eq!(api.refusals().await.len(), 4);
}

#[tokio::test]
async fn logins_are_recorded_once_and_throttled() {
    let api = api().await;
    for _ in 0..5 {
        let (status, body) = api
            .call(
                "POST",
                "/login",
                None,
                Some(json!({ "user": "eng1", "password": "wrong password!" })),
            )
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNAUTHORIZED, "invalid_credentials")
        );
    }
    let response = api
        .app
        .clone()
        .oneshot(
            Request::builder()
                .method("POST")
                .uri("/api/v1/login")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({ "user": "eng1", "password": PASSWORD }).to_string(),
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    assert!(
        api.refusals().await.is_empty(),
        "login refusals are recorded as login events, not twice"
    );
    let (status, body) = api
        .call(
            "POST",
            "/login",
            None,
            Some(json!({ "user": "eng2", "password": PASSWORD })),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "totp_required")
    );
}

#[tokio::test]
async fn the_lifecycle_through_the_api() {
    let api = api().await;
    let vendor = api.login("vendor1").await;
    let eng1 = api.login("eng1").await;
    let admin = api.login("admin").await;
    let key = ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[3u8; 32]));
    let public = key.public_key().to_openssh().unwrap();
    let (status, _) = api
        .call(
            "POST",
            "/keys",
            Some(&vendor),
            Some(json!({ "public_key": public })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let new = json!({ "asset": "plc-7", "protocols": ["ssh"], "scope": { "preset": "read-only" }, "duration": "2h", "reason": "firmware", "ticket": "CHG-1" });
    let (status, created) = api
        .call("POST", "/requests", Some(&vendor), Some(new))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["approvals_needed"], 2);

    let (status, body) = api
        .call(
            "POST",
            &format!("/requests/{id}/approve"),
            Some(&vendor),
            None,
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let (status, _) = api
        .call(
            "POST",
            &format!("/requests/{id}/approve"),
            Some(&eng1),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api
        .call(
            "POST",
            &format!("/requests/{id}/approve"),
            Some(&eng1),
            None,
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "conflict")
    );
    let (status, body) = api
        .call(
            "POST",
            &format!("/grants/{id}/certificate"),
            Some(&vendor),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "not approved yet: {body}");
    let (status, body) = api
        .call("GET", &format!("/grants/{id}"), Some(&vendor), None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a pending request is not a grant: {body}"
    );

    let eng2 = api.login("eng2").await;
    let (status, approved) = api
        .call(
            "POST",
            &format!("/requests/{id}/approve"),
            Some(&eng2),
            None,
        )
        .await;
    assert_eq!(
        (status, approved["status"].as_str()),
        (StatusCode::OK, Some("active"))
    );

    let (status, cert) = api
        .call(
            "POST",
            &format!("/grants/{id}/certificate"),
            Some(&vendor),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cert}");
    let parsed = ssh_key::Certificate::from_openssh(cert["certificate"].as_str().unwrap()).unwrap();
    assert_eq!(parsed.key_id(), id.to_string());
    let (status, token) = api
        .call("POST", &format!("/grants/{id}/token"), Some(&vendor), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        api.broker
            .verify_token(token["token"].as_str().unwrap())
            .unwrap()
            .grant,
        id
    );
    let (status, _) = api
        .call("POST", &format!("/grants/{id}/token"), Some(&eng1), None)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only the vendor gets the grant's credentials"
    );

    let (status, list) = api
        .call("GET", "/grants?status=active", Some(&eng1), None)
        .await;
    assert_eq!(
        (status, list.as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    let (status, body) = api
        .call(
            "POST",
            &format!("/grants/{id}/revoke"),
            Some(&eng1),
            Some(json!({ "reason": "done early" })),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("revoked"))
    );
    let (status, body) = api
        .call(
            "POST",
            &format!("/grants/{id}/revoke"),
            Some(&eng1),
            Some(json!({ "reason": "again" })),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "conflict")
    );
    let (status, _) = api
        .call(
            "POST",
            &format!("/grants/{id}/certificate"),
            Some(&vendor),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "no credentials for a revoked grant"
    );

    let (status, _) = api.call("GET", "/users", Some(&vendor), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = api
        .call(
            "POST",
            "/users",
            Some(&admin),
            Some(json!({ "name": "vendor2", "org": "acme", "roles": [] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["one_time_password"].as_str().unwrap().len(), 24);
    // Roles replaced, the account disabled and enabled, by admins only.
    let (status, changed) = api
        .call(
            "PUT",
            "/users/vendor2/roles",
            Some(&admin),
            Some(json!({ "roles": [{ "role": "auditor", "domain": "cell-a" }] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["roles"][0]["role"], "auditor", "{changed}");
    let (status, body) = api
        .call(
            "PUT",
            "/users/vendor2/roles",
            Some(&admin),
            Some(json!({ "roles": [], "org": "other" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = api
        .call(
            "POST",
            "/users/vendor2/disable",
            Some(&vendor),
            Some(json!({ "reason": "x" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, disabled) = api
        .call(
            "POST",
            "/users/vendor2/disable",
            Some(&admin),
            Some(json!({ "reason": "left the company" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert_eq!(disabled["disabled"], true);
    let (status, body) = api
        .call(
            "POST",
            "/users/vendor2/disable",
            Some(&admin),
            Some(json!({ "reason": "again" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = api
        .call("POST", "/users/nobody/enable", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = api
        .call("POST", "/users/Bad%20Name/enable", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, enabled) = api
        .call("POST", "/users/vendor2/enable", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert_eq!(enabled["disabled"], false);

    let (status, page) = api
        .call("GET", "/events?after=0&limit=1000", Some(&eng1), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let types: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    for expected in [
        "request_created",
        "request_approved",
        "grant_issued",
        "certificate_issued",
        "token_issued",
        "grant_revoked",
        "refused",
    ] {
        assert!(types.contains(&expected), "{expected} missing: {types:?}");
    }
    let (status, _) = api.call("POST", "/logout", Some(&vendor), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.call("GET", "/me", Some(&vendor), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn recorded_sessions_are_listed_searched_and_downloaded_by_who_may_see_them() {
    let api = api().await;
    // A recording made by the recorder, indexed as the binary's indexer would.
    let key_path = api.dir.join("recording.pem");
    otgate_recorder::RecordingKey::generate(&key_path).unwrap();
    let key = Arc::new(otgate_recorder::RecordingKey::load(&key_path).unwrap());
    let storage = Arc::new(otgate_recorder::storage::LocalStorage::new(
        api.dir.join("recordings"),
    ));
    let recorder = otgate_recorder::Recorder::new(
        api.dir.join("spool"),
        storage,
        key,
        otgate_recorder::RecorderConfig::default(),
    );
    let id = otgate_recorder::layout::new_session_id();
    let started_at = time::OffsetDateTime::now_utc();
    let session = recorder
        .start(otgate_recorder::SessionInfo {
            id: id.clone(),
            grant: Some(1),
            vendor: "vendor1".into(),
            asset: "plc-7".into(),
            zone: Some("cell-a".into()),
            protocol: "ssh".into(),
            client: None,
            width: 80,
            height: 24,
            env: Default::default(),
            started_at,
        })
        .await
        .unwrap();
    session
        .output(b"$ systemctl restart historian\r\n")
        .unwrap();
    session
        .finish(otgate_recorder::EndReason::Closed)
        .await
        .unwrap();
    api.broker
        .index_session(otgate_broker::SessionIndex {
            session: otgate_broker::RecordedSession {
                id: id.clone(),
                grant: Some(1),
                vendor: "vendor1".into(),
                asset: "plc-7".into(),
                zone: Some("cell-a".into()),
                protocol: "ssh".into(),
                client: None,
                started_at,
                ended_at: None,
                end_reason: None,
                state: otgate_broker::SessionState::Ended,
                verification: "ok".into(),
                findings: String::new(),
                duration_ms: 10,
                events: 2,
                commands: 0,
                denials: 0,
                alerts: 0,
                output_bytes: 31,
                input_bytes: 0,
                stored_bytes: 1,
            },
            fingerprint: "f".into(),
            text: vec![otgate_broker::IndexedText {
                offset_ms: 3,
                kind: "output".into(),
                body: "$ systemctl restart historian".into(),
            }],
        })
        .await
        .unwrap();

    let auditor = api.login("aud").await;
    let (status, body) = api.call("GET", "/sessions", Some(&auditor), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[0]["id"], id.as_str());
    assert_eq!(body[0]["state"], "ended");
    let (status, body) = api
        .call(
            "GET",
            "/sessions/search?q=systemctl%20restart",
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[0]["session"]["id"], id.as_str());
    assert_eq!(body[0]["moments"][0]["offset_ms"], 3);
    let (status, body) = api
        .call(
            "GET",
            &format!("/sessions/{id}/files"),
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "manifest.json")
    );
    let (status, body) = api
        .call(
            "GET",
            &format!("/sessions/{id}/files/manifest.json"),
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["session"]["id"], id.as_str());

    // Bad names and unknown sessions are clear errors.
    let (status, body) = api
        .call(
            "GET",
            &format!("/sessions/{id}/files/..%2Fotgate.db"),
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api
        .call(
            "GET",
            &format!("/sessions/{id}/files/nope.json"),
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = api
        .call("GET", "/sessions/nope", Some(&auditor), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = api
        .call("GET", "/sessions/search?q=%20", Some(&auditor), None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // The vendor sees their own session; nobody unauthenticated sees anything.
    let vendor = api.login("vendor1").await;
    let (status, body) = api
        .call("GET", &format!("/sessions/{id}"), Some(&vendor), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = api.call("GET", "/sessions", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sensors_report_alerts_engineers_judge_them() {
    let api = api().await;
    let ids = api.login("ids").await;
    let vendor = api.login("vendor1").await;
    let eng1 = api.login("eng1").await;
    // A generic alert by asset name, and a Suricata EVE alert by the asset's address.
    let (status, generic) = api
        .call(
            "POST",
            "/alerts",
            Some(&ids),
            Some(
                json!({"source": "edr", "severity": "medium", "asset": "plc-7",
                        "title": "unsigned driver loaded", "details": {"host": "ews-2"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{generic}");
    assert_eq!(generic["asset"], "plc-7");
    assert_eq!(generic["zone"], "cell-a");
    assert_eq!(generic["severity"], 5);
    assert_eq!(generic["sessions"], json!([]));
    let eve = json!({"timestamp": "2026-12-04T10:00:00.000000+0000", "event_type": "alert",
        "src_ip": "192.168.9.9", "src_port": 40000, "dest_ip": "10.0.1.7", "dest_port": 502,
        "proto": "TCP", "alert": {"signature_id": 2100001, "severity": 2,
        "signature": "ET SCADA Modbus function code scan", "category": "Attempted Information Leak"}});
    let (status, suricata) = api.call("POST", "/alerts", Some(&ids), Some(eve)).await;
    assert_eq!(status, StatusCode::CREATED, "{suricata}");
    assert_eq!(
        (&suricata["source"], &suricata["asset"]),
        (&json!("suricata"), &json!("plc-7"))
    );

    // Refused, with what to fix, and nothing stored.
    for (body, status, needle) in [
        (
            json!({"event_type": "flow"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "send `alert` records",
        ),
        (
            json!({"source": "x", "severity": 42, "asset": "plc-7", "title": "t"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "severity",
        ),
        (
            json!({"source": "x", "severity": 5, "asset": "plc-99", "title": "t"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no asset in the inventory has name `plc-99`",
        ),
        (
            json!("just a string"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a generic alert",
        ),
    ] {
        let (got, answer) = api.call("POST", "/alerts", Some(&ids), Some(body)).await;
        assert_eq!(got, status, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{answer}"
        );
    }
    let (status, _) = api
        .call(
            "POST",
            "/alerts",
            Some(&vendor),
            Some(json!({"source": "x", "severity": 5, "asset": "plc-7", "title": "t"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Engineers of the zone see both; vendors none.
    let (_, listed) = api
        .call("GET", "/alerts?asset=plc-7", Some(&eng1), None)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let (_, none) = api.call("GET", "/alerts", Some(&vendor), None).await;
    assert_eq!(none, json!([]));
    let id = generic["id"].as_i64().unwrap();
    let (status, _) = api
        .call("GET", &format!("/alerts/{id}"), Some(&vendor), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A false positive, once, with a reason; the detector hears of it on the bus.
    let mut bus = api.broker.subscribe();
    let path = format!("/alerts/{id}/false-positive");
    let (status, _) = api
        .call("POST", &path, Some(&eng1), Some(json!({"note": ""})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, judged) = api
        .call(
            "POST",
            &path,
            Some(&eng1),
            Some(json!({"note": "driver update announced in ticket 881"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{judged}");
    assert_eq!(judged["false_positive_by"], "eng1");
    let mut names = Vec::new();
    while let Ok(published) = bus.try_recv() {
        names.push(published.event.kind.name());
    }
    // The refusal of the empty note, then the judgement.
    assert_eq!(names, ["refused", "alert_false_positive"]);
    let (status, _) = api
        .call("POST", &path, Some(&eng1), Some(json!({"note": "again"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

mod ui;
mod ui_pages;
