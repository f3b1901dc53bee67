//! The browser UI in a real Chromium (Debian's, headless, driven over the DevTools protocol)
//! against `otgate demo`: a vendor asks for access, two engineers approve with their
//! authenticator codes, the vendor connects with OpenSSH, an engineer watches live and
//! terminates while a second one sees the session end, an auditor finds the session by a
//! command, replays it, sees the verification badge and downloads the bundle. Single sign-on
//! runs against a real OpenID provider (`oidc-provider-mock` from PyPI). Every page is
//! checked for console errors and for requests to any host but this one; screenshots of the
//! main pages go to `target/e2e-artifacts/`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::browser::{Browser, Page};
use crate::support::*;

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/e2e-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The authenticator code `steps` 30-second steps from now.
fn code(user: &Value, steps: u64) -> String {
    let seed = totp_rs::Secret::try_from_base32(user["totp_secret"].as_str().unwrap()).unwrap();
    totp_rs::Builder::new()
        .with_secret(seed.as_ref().to_vec())
        .build()
        .unwrap()
        .generate(time::OffsetDateTime::now_utc().unix_timestamp() as u64 + 30 * steps)
        .to_string()
}

const WAIT: Duration = Duration::from_secs(30);

/// One Chromium at a time: the tests share two cores with everything else.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits until `condition` holds on `page`; otherwise fails showing where the page is and
/// what it says.
async fn expect(page: &Page, condition: &str, what: &str) {
    if let Err(e) = page.wait_for(condition, WAIT).await {
        let at = page.eval("location.href").await.unwrap_or_default();
        let body = page
            .eval(
                "document.documentElement ? document.documentElement.outerHTML.slice(0, 3000) : ''",
            )
            .await
            .unwrap_or_default();
        panic!("{what}: {e}\nat {at}\n{body}");
    }
}

async fn path(page: &Page) -> String {
    page.eval("location.pathname + location.search")
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// Signs `user` in through the sign-in form (with the current authenticator code, if any).
async fn sign_in(page: &Page, base: &str, demo: &Demo, name: &str) {
    page.goto(&format!("{base}/ui/login")).await.unwrap();
    let user = demo.user(name);
    page.fill("input[name=user]", name).await.unwrap();
    page.fill("input[name=password]", user["password"].as_str().unwrap())
        .await
        .unwrap();
    if user["totp_secret"].is_string() {
        page.fill("input[name=totp]", &code(user, 0)).await.unwrap();
    }
    page.click("form[action='/ui/login'] button[type=submit]")
        .await
        .unwrap();
    page.wait_for_navigation().await.unwrap();
    expect(
        page,
        "location.pathname === '/ui/'",
        &format!("{name} signs in"),
    )
    .await;
}

/// Submits the form holding `button` and waits for the page it leads to.
async fn submit(page: &Page, button: &str) {
    page.click(button).await.unwrap();
    page.wait_for_navigation().await.unwrap();
}

/// The page made no request to another host and logged no error beyond `expected` ones.
fn clean(page: &Page, who: &str, expected: &[&str]) {
    let foreign = page.foreign_requests();
    assert!(
        foreign.is_empty(),
        "{who}: requests to other hosts: {foreign:?}"
    );
    let errors: Vec<String> = page
        .console_errors()
        .into_iter()
        .filter(|e| !expected.iter().any(|x| e.contains(x)))
        .collect();
    assert!(errors.is_empty(), "{who}: console errors: {errors:?}");
}

async fn browser() -> Option<Browser> {
    if !peer_available("chromium") {
        return None;
    }
    Some(
        Browser::launch()
            .await
            .unwrap()
            .expect("chromium is on PATH"),
    )
}

async fn open(browser: &Browser) -> Page {
    let page = browser.page().await.unwrap();
    page.block_foreign().await.unwrap();
    page
}

/// The vendor's interactive shell through the gateway (OpenSSH with a terminal).
fn vendor_shell(demo: &Demo, asset: &str, certificate: &std::path::Path) -> Child {
    let key = PathBuf::from(demo.user("vendor1")["ssh_key"].as_str().unwrap());
    let mut command = ssh_via_gateway(
        demo.file["ssh"].as_str().unwrap(),
        &format!("vendor1+{asset}"),
        &key,
        certificate,
    );
    command
        .arg("-tt")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.spawn().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_approve_connect_watch_terminate_replay_in_chromium() {
    if !peer_available(SSHD) {
        return;
    }
    let Some(browser) = browser().await else {
        return;
    };
    let _one = ONE_BROWSER.lock().await;
    let (demo, asset_sshd) = tokio::task::block_in_place(|| {
        let demo = Demo::start();
        let admin = demo.cli("admin");
        admin.login();
        let sshd = AssetSshd::start();
        sshd.register_at(&demo, &admin, "filler-rtu", "1", "line-1", &[]);
        (demo, sshd)
    });
    let base = demo.file["api"].as_str().unwrap().to_owned();
    let shots = artifacts();

    // The vendor asks for access; a scope that is not TOML comes back next to its field.
    let vendor = open(&browser).await;
    sign_in(&vendor, &base, &demo, "vendor1").await;
    vendor
        .goto(&format!("{base}/ui/requests/new"))
        .await
        .unwrap();
    vendor
        .fill("select[name=asset]", "filler-rtu")
        .await
        .unwrap();
    vendor
        .click("input[name=preset][value=custom]")
        .await
        .unwrap();
    vendor
        .fill("textarea[name=scope]", "[ssh\nshell = true")
        .await
        .unwrap();
    vendor.fill("input[name=duration]", "1h").await.unwrap();
    vendor
        .fill("input[name=reason]", "replace the filler firmware")
        .await
        .unwrap();
    vendor.fill("input[name=ticket]", "CHG-2041").await.unwrap();
    submit(&vendor, "#request-form button[type=submit]").await;
    expect(
        &vendor,
        "document.querySelector('#scope-problem') !== null",
        "the scope's mistake next to the field",
    )
    .await;
    assert_eq!(
        vendor
            .eval("document.querySelector('input[name=reason]').value")
            .await
            .unwrap(),
        "replace the filler firmware"
    );
    vendor
        .screenshot(shots.join("request-form-mistake.png"))
        .await
        .unwrap();
    vendor
        .click("input[name=preset][value=maintenance]")
        .await
        .unwrap();
    submit(&vendor, "#request-form button[type=submit]").await;
    expect(
        &vendor,
        "location.search.startsWith('?filed=')",
        "the request is filed",
    )
    .await;
    let filed = path(&vendor).await;
    let id: i64 = filed
        .strip_prefix("/ui/requests?filed=")
        .unwrap_or_else(|| panic!("not filed: {filed}"))
        .parse()
        .unwrap();
    clean(&vendor, "vendor", &["status of 422"]);

    // Two engineers approve; level 1 asks each for the authenticator code again.
    let mut engineers = Vec::new();
    for (name, shot) in [("eng1", true), ("eng2", false)] {
        let engineer = open(&browser).await;
        sign_in(&engineer, &base, &demo, name).await;
        engineer.goto(&format!("{base}/ui/requests")).await.unwrap();
        if shot {
            engineer
                .screenshot(shots.join("approval-queue.png"))
                .await
                .unwrap();
        }
        engineer
            .goto(&format!("{base}/ui/requests/{id}"))
            .await
            .unwrap();
        expect(
            &engineer,
            "document.querySelector('main') !== null \
             && document.querySelector('main').textContent.includes('Acme Automation') \
             && document.querySelector('main').textContent.includes('Beyond read-only')",
            "the request page shows the organisation and the scope beyond the preset",
        )
        .await;
        if shot {
            engineer
                .screenshot(shots.join("approval.png"))
                .await
                .unwrap();
        }
        engineer
            .fill("#approve input[name=totp]", &code(demo.user(name), 1))
            .await
            .unwrap();
        submit(&engineer, "#approve button").await;
        expect(
            &engineer,
            &format!("location.pathname === '/ui/requests/{id}' && document.querySelector('main') !== null"),
            "back on the request after approving",
        )
        .await;
        clean(&engineer, name, &[]);
        engineers.push(engineer);
    }
    let (eng1, eng2) = (engineers.remove(0), engineers.remove(0));

    // The vendor's grant shows the command to connect; the certificate comes from the page.
    vendor.goto(&format!("{base}/ui/grants")).await.unwrap();
    expect(
        &vendor,
        &format!("document.querySelector('#grant-{id} pre.commands') !== null"),
        "the grant with its commands",
    )
    .await;
    let commands = vendor
        .text(&format!("#grant-{id} pre.commands"))
        .await
        .unwrap();
    let gateway = demo.file["ssh"].as_str().unwrap();
    let port = gateway.rsplit_once(':').unwrap().1;
    assert!(
        commands.contains(&format!("ssh -p {port} vendor1+filler-rtu@127.0.0.1")),
        "{commands}"
    );
    let certificate = vendor
        .eval(&format!(
            "(async () => {{ const f = document.querySelector('#grant-{id} form.download'); \
             const r = await fetch(f.action, {{method: 'POST', body: new URLSearchParams(new FormData(f))}}); \
             return [r.status, r.headers.get('content-disposition'), await r.text()]; }})()"
        ))
        .await
        .unwrap();
    assert_eq!(certificate[0], 200, "{certificate}");
    assert!(
        certificate[1]
            .as_str()
            .unwrap()
            .contains(&format!("otgate-{id}-cert.pub"))
    );
    let cert_file = demo.dir.path().join(format!("otgate-{id}-cert.pub"));
    std::fs::write(&cert_file, certificate[2].as_str().unwrap()).unwrap();
    clean(&vendor, "vendor's grants", &["status of 422"]);

    // The vendor connects with OpenSSH and types.
    let mut shell = vendor_shell(&demo, "filler-rtu", &cert_file);
    let mut stdin = shell.stdin.take().unwrap();
    let session = tokio::task::block_in_place(|| live_session(&demo.cli("admin"), "filler-rtu"));
    writeln!(stdin, "echo hello-from-the-vendor").unwrap();

    // eng1 sees it in the list (live, with level and risk) and watches the terminal live.
    eng1.goto(&format!("{base}/ui/sessions")).await.unwrap();
    expect(
        &eng1,
        &format!("document.querySelector(\"#sessions a[href='/ui/sessions/{session}']\") !== null"),
        "the live session in the list",
    )
    .await;
    let row = eng1
        .text(&format!("#sessions a[href='/ui/sessions/{session}']"))
        .await
        .unwrap();
    assert_eq!(row, session);
    eng1.screenshot(shots.join("sessions.png")).await.unwrap();
    eng1.goto(&format!("{base}/ui/sessions/{session}"))
        .await
        .unwrap();
    eng1.wait_for(
        "document.getElementById('live-status').textContent === 'Live'",
        WAIT,
    )
    .await
    .unwrap();
    eng1.wait_for(
        "document.getElementById('screen').textContent.includes('hello-from-the-vendor')",
        WAIT,
    )
    .await
    .unwrap();
    writeln!(stdin, "echo typed-while-watched").unwrap();
    eng1.wait_for(
        "document.getElementById('screen').textContent.includes('typed-while-watched')",
        WAIT,
    )
    .await
    .unwrap();
    eng1.screenshot(shots.join("live-view.png")).await.unwrap();

    // A second engineer watches too, and sees the session end when eng1 terminates it.
    eng2.goto(&format!("{base}/ui/sessions/{session}"))
        .await
        .unwrap();
    eng2.wait_for(
        "document.getElementById('live-status').textContent === 'Live'",
        WAIT,
    )
    .await
    .unwrap();
    eng1.fill("#terminate input[name=reason]", "end of the test window")
        .await
        .unwrap();
    submit(&eng1, "#terminate button").await;
    eng2.wait_for(
        "document.getElementById('live-status').textContent.startsWith('Ended')",
        WAIT,
    )
    .await
    .unwrap();
    drop(stdin);
    let deadline = std::time::Instant::now() + WAIT;
    while shell.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the vendor's ssh did not end with the session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    clean(&eng1, "eng1", &[]);
    clean(&eng2, "eng2", &[]);

    // The auditor finds the session by a command, replays it and takes the evidence.
    let auditor = open(&browser).await;
    sign_in(&auditor, &base, &demo, "auditor").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        auditor
            .goto(&format!("{base}/ui/sessions?q=typed-while-watched"))
            .await
            .unwrap();
        let found = auditor
            .exists(&format!("#sessions a[href='/ui/sessions/{session}']"))
            .await
            .unwrap();
        let ended = auditor
            .text("#sessions")
            .await
            .map(|t| t.contains("ended"))
            .unwrap_or(false);
        if found && ended {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session was not indexed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    auditor
        .click(&format!("a[href^='/ui/sessions/{session}?t=']"))
        .await
        .unwrap();
    auditor.wait_for_navigation().await.unwrap();
    expect(
        &auditor,
        "document.querySelector('#verification') !== null",
        "the session page",
    )
    .await;
    let badge = auditor.text("#verification").await.unwrap();
    assert!(badge.starts_with("Verified"), "{badge}");
    assert!(auditor.exists(".marker-end").await.unwrap());
    auditor.click("#play").await.unwrap();
    auditor
        .wait_for(
            "document.getElementById('screen').textContent.includes('typed-while-watched')",
            WAIT,
        )
        .await
        .unwrap();
    // The end marker jumps to the termination.
    auditor.click("#play").await.unwrap();
    auditor.click(".marker-end").await.unwrap();
    auditor
        .wait_for(
            "Math.abs(Number(document.getElementById('seek').value) - \
             Number(document.querySelector('.marker-end').dataset.t)) < 0.2",
            WAIT,
        )
        .await
        .unwrap();
    let events = auditor.text("#events").await.unwrap();
    assert!(events.contains("end of the test window"), "{events}");
    auditor.screenshot(shots.join("replay.png")).await.unwrap();
    let bundle = auditor
        .eval(&format!(
            "fetch('/ui/sessions/{session}/bundle').then(r => r.arrayBuffer()).then(b => {{ \
             const u = new Uint8Array(b); return [u.length, u[0], u[1]]; }})"
        ))
        .await
        .unwrap();
    assert_eq!(
        (&bundle[1], &bundle[2]),
        (&Value::from(b'P'), &Value::from(b'K')),
        "{bundle}"
    );
    assert!(bundle[0].as_u64().unwrap() > 1000, "{bundle}");
    clean(&auditor, "auditor", &[]);
    drop(asset_sshd);
}

/// `oidc-provider-mock` on a free port with one user, killed on drop.
struct Provider {
    child: Child,
    port: u16,
}

impl Provider {
    fn start(claims: &Value) -> Self {
        let port = free_port();
        let child = Command::new("oidc-provider-mock")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--user-claims")
            .arg(claims.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, "oidc-provider-mock");
        Self { child, port }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_with_a_real_openid_provider() {
    if !peer_available("oidc-provider-mock") {
        return;
    }
    let Some(browser) = browser().await else {
        return;
    };
    let _one = ONE_BROWSER.lock().await;
    let provider = Provider::start(&serde_json::json!({
        "sub": "eng9", "preferred_username": "eng9", "email": "eng9@plant.example",
        "name": "Eve Engineer", "groups": ["plant-engineers"]
    }));
    let issuer = format!("http://127.0.0.1:{}", provider.port);
    let mut demo = tokio::task::block_in_place(Demo::start);
    let base = demo.file["api"].as_str().unwrap().to_owned();
    tokio::task::block_in_place(|| {
        demo.restart_with(&format!(
            "\n[web.oidc]\nissuer = \"{issuer}\"\nclient_id = \"otgate\"\nclient_secret = \"s3cret-for-tests\"\n\
             redirect_uri = \"{base}/ui/login/sso/callback\"\n\
             [web.oidc.roles]\n\"plant-engineers\" = [\"engineer@line-1\"]\n"
        ));
    });
    let page = open(&browser).await;
    page.goto(&format!("{base}/ui/login")).await.unwrap();
    page.click("a[href='/ui/login/sso']").await.unwrap();
    expect(
        &page,
        "document.querySelector('button[name=sub][value=eng9]') !== null",
        "the provider's sign-in page",
    )
    .await;
    let at = page.eval("location.href").await.unwrap();
    assert!(
        at.as_str().unwrap().starts_with(&issuer),
        "not at the provider: {at}"
    );
    page.click("button[name=sub][value=eng9]").await.unwrap();
    // An engineer enrols an otgate authenticator at the first single sign-on.
    expect(
        &page,
        "document.querySelector('#qr svg') !== null && document.querySelector('code.secret') !== null",
        "the enrolment page with its QR code",
    )
    .await;
    let secret = page.text("code.secret").await.unwrap();
    let enrolled = serde_json::json!({ "totp_secret": secret.trim() });
    page.fill("#enrol input[name=totp]", "000000")
        .await
        .unwrap();
    submit(&page, "#enrol button").await;
    expect(
        &page,
        "document.querySelector('#mistake') !== null && document.querySelector('#enrol') !== null",
        "a wrong code is named on the enrolment page",
    )
    .await;
    page.fill("#enrol input[name=totp]", &code(&enrolled, 0))
        .await
        .unwrap();
    submit(&page, "#enrol button").await;
    page.wait_for("location.pathname === '/ui/'", WAIT)
        .await
        .unwrap();
    expect(
        &page,
        "document.querySelector('main') !== null",
        "the home page",
    )
    .await;
    let home = page.text("main").await.unwrap();
    assert!(
        home.contains("eng9") && home.contains("engineer@line-1"),
        "{home}"
    );
    // The new engineer's pages work with the session cookie the callback set.
    page.goto(&format!("{base}/ui/requests")).await.unwrap();
    expect(
        &page,
        "location.pathname === '/ui/requests' && document.querySelector('main') !== null",
        "the requests page with the SSO session",
    )
    .await;
    // With it, the engineer approves access to a level-1 PLC, which asks for a fresh code.
    let id = tokio::task::block_in_place(|| {
        let vendor = demo.cli("vendor1");
        vendor.login();
        vendor.json(&[
            "request",
            "create",
            "--asset",
            "plc-7",
            "--protocol",
            "modbus",
            "--scope",
            "read-only",
            "--duration",
            "1h",
            "--reason",
            "read the alarm registers",
        ])["id"]
            .as_i64()
            .unwrap()
    });
    page.goto(&format!("{base}/ui/requests/{id}"))
        .await
        .unwrap();
    expect(
        &page,
        "document.querySelector('#approve input[name=totp]') !== null",
        "the approval form with its code",
    )
    .await;
    page.fill("#approve input[name=totp]", &code(&enrolled, 1))
        .await
        .unwrap();
    submit(&page, "#approve button").await;
    expect(
        &page,
        &format!(
            "location.pathname === '/ui/requests/{id}' && document.querySelector('main') !== null \
             && document.querySelector('#approvals').textContent === '1/2 by eng9'"
        ),
        "the request with eng9's approval",
    )
    .await;
    // Only the provider's own page asked for anything elsewhere (its stylesheet on a CDN).
    for request in page.foreign_requests() {
        assert!(request.document_url.starts_with(&issuer), "{request:?}");
    }
    let errors: Vec<String> = page
        .console_errors()
        .into_iter()
        .filter(|e| {
            !e.contains("ERR_BLOCKED_BY_CLIENT")
                && !e.contains(&issuer)
                && !e.contains("status of 401")
        })
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}
