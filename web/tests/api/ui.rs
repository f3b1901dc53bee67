//! The browser UI through the router: sign-in with form tokens and a strict cookie, the
//! requests page with approvals (and the authenticator code on levels 0-1), alerts with
//! false positives.

use super::*;

/// A form body, URL-encoded.
pub(super) fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let value: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={value}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A UI request: status, headers, body text.
pub(super) async fn page(
    api: &Api,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: Option<String>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    let request = match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body)),
        None => builder.body(Body::empty()),
    };
    let response = api.app.clone().oneshot(request.unwrap()).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// The `name=value` part of the Set-Cookie for `name`, and the whole header.
pub(super) fn set_cookie(headers: &axum::http::HeaderMap, name: &str) -> (String, String) {
    let whole = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie for {name}: {headers:?}"));
    (whole.split(';').next().unwrap().to_owned(), whole)
}

pub(super) fn csrf_field(html: &str) -> String {
    let at =
        html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_ui_signs_in_with_form_tokens_and_a_strict_cookie() {
    let api = api().await;
    // The sign-in page: our own files only, no inline script, a form token and its cookie.
    let (status, headers, html) = page(&api, "GET", "/ui/login", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "{html}"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let (login_cookie, whole) = set_cookie(&headers, "__Host-otgate-login");
    assert!(
        whole.contains("HttpOnly") && whole.contains("Secure") && whole.contains("SameSite=Strict"),
        "{whole}"
    );
    let csrf = csrf_field(&html);

    // Without the cookie (a post from another site), the form is refused, and that is an event.
    let body = form(&[("csrf", &csrf), ("user", "vendor1"), ("password", PASSWORD)]);
    let (status, _, html) = page(&api, "POST", "/ui/login", None, Some(body.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("did not come from this site"), "{html}");
    assert!(api.refusals().await.iter().any(|e| e["code"] == "csrf"));
    // A token from another form does not fit this cookie.
    let forged = form(&[
        ("csrf", &"0".repeat(64)),
        ("user", "vendor1"),
        ("password", PASSWORD),
    ]);
    let (status, _, _) = page(&api, "POST", "/ui/login", Some(&login_cookie), Some(forged)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A wrong password: the form again, with what went wrong.
    let wrong = form(&[("csrf", &csrf), ("user", "vendor1"), ("password", "nope")]);
    let (status, _, html) = page(&api, "POST", "/ui/login", Some(&login_cookie), Some(wrong)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        html.contains("role=\"alert\"") && html.contains("value=\"vendor1\""),
        "{html}"
    );

    // Signed in: a strict, HttpOnly session cookie, and the home page.
    let (status, headers, _) =
        page(&api, "POST", "/ui/login", Some(&login_cookie), Some(body)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/ui/");
    let (session, whole) = set_cookie(&headers, "__Host-otgate");
    assert!(
        whole.contains("HttpOnly")
            && whole.contains("Secure")
            && whole.contains("SameSite=Strict")
            && whole.contains("Path=/"),
        "{whole}"
    );
    let (status, _, home) = page(&api, "GET", "/ui/", Some(&session), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("vendor1"), "{home}");
    let (status, headers, _) = page(&api, "GET", "/ui/", None, None).await;
    assert_eq!(
        (status, &headers[header::LOCATION]),
        (
            StatusCode::SEE_OTHER,
            &"/ui/login".parse::<axum::http::HeaderValue>().unwrap()
        )
    );

    // Signing out needs the session's own form token; then the cookie's token is dead.
    let other = form(&[("csrf", &csrf)]);
    let (status, _, _) = page(&api, "POST", "/ui/logout", Some(&session), Some(other)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let signed = form(&[("csrf", &csrf_field(&home))]);
    let (status, headers, _) = page(&api, "POST", "/ui/logout", Some(&session), Some(signed)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        set_cookie(&headers, "__Host-otgate")
            .1
            .contains("Max-Age=0")
    );
    let (status, _, _) = page(&api, "GET", "/ui/", Some(&session), None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Our files, served from the binary.
    let (status, headers, css) = page(&api, "GET", "/ui/assets/app.css", None, None).await;
    assert_eq!(
        (status, headers[header::CONTENT_TYPE].to_str().unwrap()),
        (StatusCode::OK, "text/css; charset=utf-8")
    );
    assert!(css.contains("--accent"));
    let (status, _, _) = page(&api, "GET", "/ui/assets/../lib.rs", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, headers, _) = page(&api, "GET", "/favicon.ico", None, None).await;
    assert_eq!(
        (status, headers[header::CONTENT_TYPE].to_str().unwrap()),
        (StatusCode::OK, "image/svg+xml")
    );
}

/// The authenticator code of the test users for the step after the current one (a code is
/// accepted once; the next step's is accepted within the allowed skew).
fn next_code() -> String {
    totp_rs::Builder::new()
        .with_secret(SEED.to_vec())
        .build()
        .unwrap()
        .generate(time::OffsetDateTime::now_utc().unix_timestamp() as u64 + 30)
        .to_string()
}

/// Signs `user` in through the UI's form; returns the session cookie.
pub(super) async fn ui_login(api: &Api, user: &str) -> String {
    let (_, headers, html) = page(api, "GET", "/ui/login", None, None).await;
    let (login_cookie, _) = set_cookie(&headers, "__Host-otgate-login");
    let code = totp_rs::Builder::new()
        .with_secret(SEED.to_vec())
        .build()
        .unwrap()
        .generate(time::OffsetDateTime::now_utc().unix_timestamp() as u64)
        .to_string();
    let body = form(&[
        ("csrf", &csrf_field(&html)),
        ("user", user),
        ("password", PASSWORD),
        ("totp", &code),
    ]);
    let (status, headers, html) =
        page(api, "POST", "/ui/login", Some(&login_cookie), Some(body)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    set_cookie(&headers, "__Host-otgate").0
}

#[tokio::test]
async fn engineers_approve_and_deny_in_the_browser() {
    let api = api().await;
    let vendor = api.login("vendor1").await;
    let ask = json!({"asset": "plc-7", "protocols": ["ssh"], "scope": {"preset": "read-only"},
                     "duration": "1h", "reason": "replace the pump firmware", "ticket": "CHG-881"});
    let (status, first) = api
        .call("POST", "/requests", Some(&vendor), Some(ask.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (_, second) = api
        .call("POST", "/requests", Some(&vendor), Some(ask))
        .await;
    let (first, second) = (
        first["id"].as_i64().unwrap(),
        second["id"].as_i64().unwrap(),
    );

    // The vendor sees their requests, without approve buttons.
    let vendor_ui = ui_login(&api, "vendor1").await;
    let (status, _, html) = page(&api, "GET", "/ui/requests", Some(&vendor_ui), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("replace the pump firmware") && html.contains("CHG-881"),
        "{html}"
    );
    assert!(!html.contains("/approve"), "{html}");

    // An engineer of the zone sees level 1 in colour, and approves with the form's token.
    let eng1 = ui_login(&api, "eng1").await;
    let (_, _, html) = page(&api, "GET", "/ui/requests", Some(&eng1), None).await;
    assert!(
        html.contains(&format!("/ui/requests/{first}/approve")),
        "{html}"
    );
    assert!(html.contains("level-control"), "{html}");
    let csrf = csrf_field(&html);
    let approve = format!("/ui/requests/{first}/approve");
    let (status, _, _) = page(
        &api,
        "POST",
        &approve,
        Some(&eng1),
        Some(form(&[("csrf", &"1".repeat(64))])),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Level 1: the authenticator code again, or no approval; a wrong code is refused.
    assert!(html.contains("authenticator code"), "{html}");
    let post = |cookie: String, fields: Vec<(&'static str, String)>| {
        let approve = approve.clone();
        let api = &api;
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            page(api, "POST", &approve, Some(&cookie), Some(form(&fields))).await
        }
    };
    let (status, _, html) = post(eng1.clone(), vec![("csrf", csrf.clone())]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        html.contains("confirm the approval with your authenticator code"),
        "{html}"
    );
    let (status, _, _) = post(
        eng1.clone(),
        vec![("csrf", csrf.clone()), ("totp", "000000".into())],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, _) = post(
        eng1.clone(),
        vec![("csrf", csrf.clone()), ("totp", next_code())],
    )
    .await;
    assert_eq!(
        (status, headers[header::LOCATION].to_str().unwrap()),
        (
            StatusCode::SEE_OTHER,
            format!("/ui/requests/{first}").as_str()
        )
    );
    // Level 1 needs a second engineer: eng1's button is gone, and eng1 cannot approve twice.
    let (_, _, html) = page(&api, "GET", "/ui/requests", Some(&eng1), None).await;
    assert!(!html.contains(&approve), "{html}");
    assert!(html.contains("1/2"), "{html}");
    let (_, _, html) = page(
        &api,
        "GET",
        &format!("/ui/requests/{first}"),
        Some(&eng1),
        None,
    )
    .await;
    assert!(
        html.contains("<dd id=\"approvals\">1/2 by eng1</dd>"),
        "{html}"
    );
    let (status, _, html) = post(
        eng1.clone(),
        vec![("csrf", csrf.clone()), ("totp", next_code())],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("reused"), "{html}");
    let eng2 = ui_login(&api, "eng2").await;
    let (_, _, html) = page(&api, "GET", "/ui/requests", Some(&eng2), None).await;
    let (status, _, _) = post(
        eng2.clone(),
        vec![("csrf", csrf_field(&html)), ("totp", next_code())],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, request) = api
        .call("GET", &format!("/requests/{first}"), Some(&vendor), None)
        .await;
    assert!(
        matches!(request["status"].as_str(), Some("approved" | "active")),
        "{request}"
    );

    // Deny needs a reason; the page says so; then it is denied.
    let deny = format!("/ui/requests/{second}/deny");
    let (_, _, html) = page(&api, "GET", "/ui/requests", Some(&eng1), None).await;
    let csrf = csrf_field(&html);
    let (status, _, html) = page(
        &api,
        "POST",
        &deny,
        Some(&eng1),
        Some(form(&[("csrf", &csrf), ("reason", " ")])),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("reason"), "{html}");
    let (status, _, _) = page(
        &api,
        "POST",
        &deny,
        Some(&eng1),
        Some(form(&[("csrf", &csrf), ("reason", "no work order yet")])),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, request) = api
        .call("GET", &format!("/requests/{second}"), Some(&vendor), None)
        .await;
    assert_eq!(request["status"], "denied");
    // Without a session, the page sends you to sign in.
    let (status, headers, _) = page(&api, "GET", "/ui/requests", None, None).await;
    assert_eq!(
        (status, headers[header::LOCATION].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/ui/login")
    );
}

#[tokio::test]
async fn alerts_are_explained_and_judged_in_the_browser() {
    let api = api().await;
    let alert = api
        .broker
        .raise_alert(otgate_broker::NewAlert {
            origin: "detector".into(),
            source: "otgate".into(),
            severity: 9,
            score: 92,
            asset: Some("plc-7".into()),
            vendor: Some("vendor1".into()),
            zone: Some(ZoneName::new("cell-a").unwrap()),
            title: "download then execute".into(),
            findings: vec![otgate_policy::Finding::new(
                "attack",
                85,
                "download then execute (`chmod` after a download), as in attacker sessions (Execution)",
            )],
            sessions: vec!["01a2-session".into()],
            response: Some("terminate".into()),
            rule: None,
            details: json!({}),
            evidence: json!([]),
        })
        .await
        .unwrap();
    let eng1 = ui_login(&api, "eng1").await;
    let (status, _, html) = page(&api, "GET", "/ui/alerts", Some(&eng1), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("download then execute (`chmod` after a download)"),
        "{html}"
    );
    assert!(
        html.contains("92 high") && html.contains("terminate") && html.contains("01a2-session"),
        "{html}"
    );
    let vendor = ui_login(&api, "vendor1").await;
    let (_, _, html) = page(&api, "GET", "/ui/alerts", Some(&vendor), None).await;
    assert!(html.contains("No alerts you may see"), "{html}");

    let path = format!("/ui/alerts/{}/false-positive", alert.id);
    let (_, _, html) = page(&api, "GET", "/ui/alerts", Some(&eng1), None).await;
    let csrf = csrf_field(&html);
    let (status, _, _) = page(
        &api,
        "POST",
        &path,
        Some(&eng1),
        Some(form(&[("note", "x"), ("csrf", &"2".repeat(64))])),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, html) = page(
        &api,
        "POST",
        &path,
        Some(&eng1),
        Some(form(&[("csrf", &csrf), ("note", " ")])),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("say why it is a false positive"), "{html}");
    let (status, _, _) = page(
        &api,
        "POST",
        &path,
        Some(&eng1),
        Some(form(&[
            ("csrf", &csrf),
            ("note", "planned firmware download"),
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, html) = page(&api, "GET", "/ui/alerts", Some(&eng1), None).await;
    assert!(
        html.contains("false positive (eng1): planned firmware download"),
        "{html}"
    );
    let (status, _, _) = page(
        &api,
        "POST",
        &path,
        Some(&vendor),
        Some(form(&[("csrf", &csrf), ("note", "mine")])),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
