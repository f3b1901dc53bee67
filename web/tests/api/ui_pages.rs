//! The browser UI's pages through the router: a vendor's request form with mistakes shown
//! next to their fields, grants with the commands to connect, each page's role, posts that
//! are not forms, the idle timeout, enrolling an authenticator with a QR code, and admins
//! adding users, changing their roles and disabling accounts.

use super::ui::{csrf_field, form, page, set_cookie, ui_login};
use super::*;

async fn request_count(api: &Api, vendor: &str) -> usize {
    let (_, list) = api.call("GET", "/requests", Some(vendor), None).await;
    list.as_array().unwrap().len()
}

#[tokio::test]
async fn vendors_request_in_the_browser_with_mistakes_next_to_the_fields() {
    let api = api().await;
    let vendor_api = api.login("vendor1").await;
    let vendor = ui_login(&api, "vendor1").await;
    let (status, _, html) = page(&api, "GET", "/ui/requests/new", Some(&vendor), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("optgroup label=\"plant / cell-a / level 1\"") && html.contains("plc-7"),
        "{html}"
    );
    let csrf = csrf_field(&html);
    let refusals_before = api.refusals().await.len();

    // A scope that is not TOML, no protocol and a duration nobody can read: every mistake is
    // named next to its field, what was typed stays, nothing is stored.
    let (status, _, html) = page(
        &api,
        "POST",
        "/ui/requests",
        Some(&vendor),
        Some(form(&[
            ("csrf", &csrf),
            ("asset", "plc-7"),
            ("preset", "custom"),
            ("scope", "[ssh\nallow = ["),
            ("duration", "forever"),
            ("reason", "swap the pump drive"),
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert_eq!(html.matches("class=\"field-problem\"").count(), 3, "{html}");
    assert!(html.contains("tick at least one protocol"), "{html}");
    assert!(html.contains("write it as 2h, 90m or 1h30m"), "{html}");
    assert!(html.contains("id=\"scope-problem\""), "{html}");
    assert!(
        html.contains("swap the pump drive") && html.contains("[ssh\nallow = ["),
        "{html}"
    );
    assert_eq!(request_count(&api, &vendor_api).await, 0);
    assert_eq!(api.refusals().await.len(), refusals_before + 1);

    // A scope the policy refuses (a Modbus range past the end of the table) is named too.
    let (status, _, html) = page(
        &api,
        "POST",
        "/ui/requests",
        Some(&vendor),
        Some(form(&[
            ("csrf", &csrf),
            ("asset", "plc-7"),
            ("protocol", "ssh"),
            ("preset", "custom"),
            (
                "scope",
                "[ssh]\nshell = false\nallow = [\"uptime\"]\nunknown_key = 1\n",
            ),
            ("duration", "1h"),
            ("reason", "swap the pump drive"),
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("id=\"scope-problem\""), "{html}");
    assert_eq!(request_count(&api, &vendor_api).await, 0);

    // What the broker refuses comes back on the form as well (the window is too long for
    // level 1).
    let (status, _, html) = page(
        &api,
        "POST",
        "/ui/requests",
        Some(&vendor),
        Some(form(&[
            ("csrf", &csrf),
            ("asset", "plc-7"),
            ("protocol", "ssh"),
            ("preset", "read-only"),
            ("duration", "9h"),
            ("reason", "swap the pump drive"),
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("role=\"alert\""), "{html}");
    assert_eq!(request_count(&api, &vendor_api).await, 0);

    // A good one is filed.
    let (status, headers, _) = page(
        &api,
        "POST",
        "/ui/requests",
        Some(&vendor),
        Some(form(&[
            ("csrf", &csrf),
            ("asset", "plc-7"),
            ("protocol", "ssh"),
            ("preset", "read-only"),
            ("start", "now"),
            ("duration", "1h"),
            ("reason", "swap the pump drive"),
            ("ticket", "CHG-42"),
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers[header::LOCATION].to_str().unwrap().to_owned();
    let id: i64 = location
        .strip_prefix("/ui/requests?filed=")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(request_count(&api, &vendor_api).await, 1);

    // The engineer's page has what the decision needs: organisation, scope against the
    // preset, history.
    let eng1 = ui_login(&api, "eng1").await;
    let (status, _, html) = page(
        &api,
        "GET",
        &format!("/ui/requests/{id}"),
        Some(&eng1),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("acme") && html.contains("CHG-42"), "{html}");
    assert!(
        html.contains("Nothing beyond the read-only preset"),
        "{html}"
    );
    assert!(html.contains("id=\"approve\""), "{html}");

    // Approved by two engineers, the grant shows the exact command to connect.
    let eng1_token = eng1.split_once('=').unwrap().1.to_owned();
    for token in [eng1_token, api.login("eng2").await] {
        let (status, body) = api
            .call(
                "POST",
                &format!("/requests/{id}/approve"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _, html) = page(&api, "GET", "/ui/grants", Some(&vendor), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("ssh -p 2222 vendor1+plc-7@127.0.0.1"),
        "{html}"
    );
    // No key registered yet: the page says how, and the certificate is refused clearly.
    assert!(html.contains("otgate keys add"), "{html}");
    let (status, _, html) = page(
        &api,
        "POST",
        &format!("/ui/grants/{id}/certificate"),
        Some(&vendor),
        Some(form(&[("csrf", &csrf_field(&html))])),
    )
    .await;
    assert!(status.is_client_error(), "{status} {html}");
    assert!(html.contains("<!doctype html>"), "{html}");
}

#[tokio::test]
async fn every_page_enforces_its_role() {
    let api = api().await;
    // Not signed in: the sign-in page.
    for path in ["/ui/plant", "/ui/sessions", "/ui/grants", "/ui/users"] {
        let (status, headers, _) = page(&api, "GET", path, None, None).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(headers[header::LOCATION], "/ui/login", "{path}");
    }
    let vendor = ui_login(&api, "vendor1").await;
    let eng1 = ui_login(&api, "eng1").await;
    let admin = ui_login(&api, "admin").await;
    let before = api.refusals().await.len();
    for (who, path) in [
        (&vendor, "/ui/users"),
        (&vendor, "/ui/rules"),
        (&eng1, "/ui/users"),
        (&eng1, "/ui/rules"),
        (&vendor, "/ui/users/vendor1"),
        (&eng1, "/ui/users/eng1"),
    ] {
        let (status, headers, html) = page(&api, "GET", path, Some(who), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {html}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
    }
    assert_eq!(api.refusals().await.len(), before + 6);
    let (status, _, html) = page(&api, "GET", "/ui/users", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("vendor1") && html.contains("engineer@cell-a"),
        "{html}"
    );
    let (status, _, html) = page(&api, "GET", "/ui/rules", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<td>L1</td><td>2</td><td>4h</td>"), "{html}");
    // The Purdue picture: levels as rows, zones as columns, assets as tiles.
    let (status, _, html) = page(&api, "GET", "/ui/plant", Some(&eng1), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<th>cell-a</th>")
            && html.contains("band-control")
            && html.contains("<b>plc-7</b>"),
        "{html}"
    );
    // Another role's actions: a vendor cannot quarantine, nobody sees a session that is not
    // there, and an unknown session's frames are a JSON 404 for the player.
    let (_, _, html) = page(&api, "GET", "/ui/plant", Some(&vendor), None).await;
    let (status, _, html) = page(
        &api,
        "POST",
        "/ui/quarantines",
        Some(&vendor),
        Some(form(&[
            ("csrf", &csrf_field(&html)),
            ("kind", "asset"),
            ("name", "plc-7"),
            ("reason", "because"),
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    let (status, _, _) = page(
        &api,
        "GET",
        "/ui/sessions/20261205T000000Z-deadbeef",
        Some(&eng1),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = page(
        &api,
        "GET",
        "/ui/sessions/20261205T000000Z-deadbeef/frames?from=0",
        Some(&eng1),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.starts_with("{\"error\""), "{body}");
}

#[tokio::test]
async fn posts_that_are_not_forms_or_too_large_get_pages() {
    let api = api().await;
    let eng1 = ui_login(&api, "eng1").await;
    let request = Request::builder()
        .method("POST")
        .uri("/ui/requests")
        .header(header::COOKIE, &eng1)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let response = api.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let huge = form(&[("csrf", "x"), ("reason", &"a".repeat(300 * 1024))]);
    let (status, headers, html) = page(&api, "POST", "/ui/requests", Some(&eng1), Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{html}");
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(html.contains("shorten the text"), "{html}");
    // A form without its token changes nothing.
    let (status, _, _) = page(
        &api,
        "POST",
        "/ui/requests",
        Some(&eng1),
        Some(form(&[
            ("asset", "plc-7"),
            ("protocol", "ssh"),
            ("duration", "1h"),
            ("reason", "x"),
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn idle_sessions_are_signed_out_and_their_token_revoked() {
    let api = api_with(otgate_web::UiOptions {
        idle_timeout: Duration::from_secs(1),
        ..otgate_web::UiOptions::default()
    })
    .await;
    let eng1 = ui_login(&api, "eng1").await;
    let (status, _, _) = page(&api, "GET", "/ui/", Some(&eng1), None).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, headers, _) = page(&api, "GET", "/ui/", Some(&eng1), None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/ui/login?idle=1");
    let token = eng1.split_once('=').unwrap().1;
    let (status, _) = api.call("GET", "/me", Some(token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, _, html) = page(&api, "GET", "/ui/login?idle=1", None, None).await;
    assert!(
        html.contains("signed out after 1 min without activity"),
        "{html}"
    );
}

#[tokio::test]
async fn authenticators_are_enrolled_with_a_qr_code() {
    let api = api().await;
    api.broker
        .provision(
            None,
            NewUser {
                name: UserName::new("eng3").unwrap(),
                display_name: None,
                org: None,
                roles: vec![RoleAssignment {
                    role: Role::Engineer,
                    domain: Domain::Zone(ZoneName::new("cell-a").unwrap()),
                }],
            },
            Secret::new(PASSWORD.into()),
            false,
            None,
        )
        .await
        .unwrap();
    let (_, headers, html) = page(&api, "GET", "/ui/login", None, None).await;
    let (login_cookie, _) = set_cookie(&headers, "__Host-otgate-login");
    let (status, _, html) = page(
        &api,
        "POST",
        "/ui/login",
        Some(&login_cookie),
        Some(form(&[
            ("csrf", &csrf_field(&html)),
            ("user", "eng3"),
            ("password", PASSWORD),
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<svg") && !html.contains("<?xml"), "{html}");
    let secret = html
        .split("<code class=\"secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let seed = totp_rs::Secret::try_from_base32(&secret)
        .unwrap()
        .as_ref()
        .to_vec();
    let code = totp_rs::Builder::new()
        .with_secret(seed)
        .build()
        .unwrap()
        .generate(time::OffsetDateTime::now_utc().unix_timestamp() as u64)
        .to_string();
    let (status, headers, html) = page(
        &api,
        "POST",
        "/ui/login",
        Some(&login_cookie),
        Some(form(&[
            ("csrf", &csrf_field(&html)),
            ("user", "eng3"),
            ("password", PASSWORD),
            ("totp", &code),
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    set_cookie(&headers, "__Host-otgate");
}

#[tokio::test]
async fn admins_add_users_and_see_the_one_time_password_once() {
    let api = api().await;
    let admin = ui_login(&api, "admin").await;
    let eng1 = ui_login(&api, "eng1").await;
    let (_, _, html) = page(&api, "GET", "/ui/users", Some(&admin), None).await;
    let csrf = csrf_field(&html);
    let add = |cookie: String, fields: Vec<(&'static str, String)>| {
        let api = &api;
        async move {
            let body: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            page(api, "POST", "/ui/users", Some(&cookie), Some(form(&body))).await
        }
    };
    // A role that is not role@zone is named, and nobody is added.
    let (status, _, html) = add(
        admin.clone(),
        vec![
            ("csrf", csrf.clone()),
            ("name", "eng7".into()),
            ("roles", "engineer at cell-a".into()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("write role@zone or role@*"), "{html}");
    assert!(!html.contains(">eng7</a></td>"), "{html}");
    // An engineer cannot add anyone.
    let (_, _, eng_html) = page(&api, "GET", "/ui/grants", Some(&eng1), None).await;
    let (status, _, _) = add(
        eng1.clone(),
        vec![
            ("csrf", csrf_field(&eng_html)),
            ("name", "eng7".into()),
            ("roles", "engineer@cell-a".into()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The admin adds an engineer and sees the one-time password, which signs in once.
    let (status, _, html) = add(
        admin.clone(),
        vec![
            ("csrf", csrf),
            ("name", "eng7".into()),
            ("display_name", "Edda Engineer".into()),
            ("roles", "engineer@cell-a, auditor@*".into()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains(">eng7</a></td>") && html.contains("engineer@cell-a"),
        "{html}"
    );
    let password = html
        .split("id=\"created\"")
        .nth(1)
        .unwrap()
        .split("<code class=\"secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let (status, body) = api
        .call(
            "POST",
            "/login",
            None,
            Some(json!({"user": "eng7", "password": password})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "password_change_required", "{body}");
}

#[tokio::test]
async fn admins_change_roles_and_disable_accounts_in_the_browser() {
    let api = api().await;
    let admin = ui_login(&api, "admin").await;
    let eng1 = ui_login(&api, "eng1").await;
    let vendor = ui_login(&api, "vendor1").await;
    let (status, _, html) = page(&api, "GET", "/ui/users/eng1", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("<dd id=\"roles-now\">engineer@cell-a</dd>"),
        "{html}"
    );
    let csrf = csrf_field(&html);
    let post = |cookie: &str, path: &str, fields: &[(&str, &str)]| {
        let (api, cookie, path, body) = (&api, cookie.to_owned(), path.to_owned(), form(fields));
        async move { page(api, "POST", &path, Some(&cookie), Some(body)).await }
    };
    // A role that is not role@zone comes back on the page, as typed; nothing changes.
    let (status, _, html) = post(
        &admin,
        "/ui/users/eng1/roles",
        &[("csrf", &csrf), ("roles", "engineer at cell-b")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("write role@zone or role@*"), "{html}");
    assert!(html.contains("value=\"engineer at cell-b\""), "{html}");
    assert!(
        html.contains("<dd id=\"roles-now\">engineer@cell-a</dd>"),
        "{html}"
    );
    // A form from no session is refused; so is an engineer.
    let (status, _, _) = post(&admin, "/ui/users/eng1/roles", &[("roles", "auditor@*")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, _, eng_html) = page(&api, "GET", "/ui/grants", Some(&eng1), None).await;
    let (status, _, html) = post(
        &eng1,
        "/ui/users/vendor1/disable",
        &[("csrf", &csrf_field(&eng_html)), ("reason", "mine")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    // The roles are replaced.
    let (status, headers, _) = post(
        &admin,
        "/ui/users/eng1/roles",
        &[("csrf", &csrf), ("roles", "engineer@cell-a, auditor@*")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/ui/users/eng1");
    let (_, _, html) = page(&api, "GET", "/ui/users/eng1", Some(&admin), None).await;
    assert!(
        html.contains("<dd id=\"roles-now\">engineer@cell-a, auditor@*</dd>"),
        "{html}"
    );
    // The last admin keeps the role, with the reason on the page.
    let (status, _, html) = post(
        &admin,
        "/ui/users/admin/roles",
        &[("csrf", &csrf), ("roles", "auditor@*")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("last enabled admin"), "{html}");
    // Disabling needs a reason, then signs the vendor out; enabling lets them sign in again.
    let (status, _, html) = post(
        &admin,
        "/ui/users/vendor1/disable",
        &[("csrf", &csrf), ("reason", "")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("give a reason"), "{html}");
    let (status, _, _) = post(
        &admin,
        "/ui/users/vendor1/disable",
        &[("csrf", &csrf), ("reason", "contract ended")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, html) = page(&api, "GET", "/ui/users/vendor1", Some(&admin), None).await;
    assert!(
        html.contains("<dd id=\"state\"><span class=\"status-revoked\">disabled"),
        "{html}"
    );
    assert!(html.contains("id=\"enable\""), "{html}");
    let (status, headers, _) = page(&api, "GET", "/ui/grants", Some(&vendor), None).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the vendor is signed out");
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/ui/login")
    );
    let (status, _) = api
        .call(
            "POST",
            "/login",
            None,
            Some(json!({"user": "vendor1", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = post(&admin, "/ui/users/vendor1/enable", &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, html) = page(&api, "GET", "/ui/users/vendor1", Some(&admin), None).await;
    assert!(html.contains("<dd id=\"state\">active</dd>"), "{html}");
    ui_login(&api, "vendor1").await;
    let kinds: Vec<String> = api
        .events()
        .await
        .into_iter()
        .map(|e| e.event.kind.name().to_owned())
        .collect();
    for kind in ["user_roles_changed", "user_disabled", "user_enabled"] {
        assert_eq!(
            kinds.iter().filter(|k| *k == kind).count(),
            1,
            "{kind}: {kinds:?}"
        );
    }
}
