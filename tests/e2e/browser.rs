//! A minimal Chrome DevTools Protocol client for end-to-end tests: launches headless
//! Chromium, drives tabs over one websocket and records diagnostics (console errors,
//! requests, page weight) from CDP events for the whole life of each tab.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Time limit for one CDP command and for one navigation.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Chromium flags; the background-networking ones keep it off the (closed) network.
const FLAGS: &str = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-default-apps --no-default-browser-check --hide-scrollbars --mute-audio \
    --remote-debugging-port=0";

/// One request a tab made, from `Network.requestWillBeSent` or `Fetch.requestPaused`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestSeen {
    /// Requested URL.
    pub url: String,
    /// URL of the document that made the request.
    pub document_url: String,
    /// Initiator type (`parser`, `script`, `other`, ...), empty when unknown.
    pub initiator: String,
    /// The request was failed by [`Page::block_foreign`].
    pub blocked: bool,
    /// Why loading failed (`net::ERR_...`, or a blocked reason such as `csp`), if it did.
    pub failed: Option<String>,
    id: String,
}

/// Navigation timing of the current document, in ms since navigation start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NavTiming {
    /// `responseEnd`.
    pub response_end: f64,
    /// `domContentLoadedEventEnd`.
    pub dom_content_loaded: f64,
    /// `loadEventEnd` (0 until the load event has finished).
    pub load_event_end: f64,
}

/// Everything recorded from one tab's events.
#[derive(Debug, Default)]
struct PageLog {
    main_frame: String,
    loads: u64,
    errors: Vec<String>,
    requests: Vec<RequestSeen>,
    bytes: u64,
}

impl PageLog {
    /// Updates the request `(id, url)` with `f`, adding it first if it is new.
    fn request(&mut self, id: String, url: String, f: impl FnOnce(&mut RequestSeen)) {
        match self
            .requests
            .iter_mut()
            .find(|r| r.id == id && r.url == url)
        {
            Some(r) => f(r),
            None => {
                let mut r = RequestSeen {
                    id,
                    url,
                    ..RequestSeen::default()
                };
                f(&mut r);
                self.requests.push(r);
            }
        }
    }

    /// Records one event; returns whether anything changed.
    fn record(&mut self, method: &str, p: &Value) -> bool {
        let s = |ptr: &str| str_at(p, ptr).unwrap_or_default().to_owned();
        match method {
            "Page.loadEventFired" => self.loads += 1,
            // The main frame's id is the target id; subframes finishing do not count.
            "Page.frameStoppedLoading" if s("/frameId") == self.main_frame => self.loads += 1,
            "Runtime.consoleAPICalled" if matches!(&*s("/type"), "error" | "assert") => {
                let args = p
                    .get("args")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten();
                let text: Vec<String> = args
                    .map(|a| match a.get("value").or_else(|| a.get("description")) {
                        Some(Value::String(v)) => v.clone(),
                        v => v.map_or_else(|| s("/type"), Value::to_string),
                    })
                    .collect();
                let (kind, url) = (s("/type"), s("/stackTrace/callFrames/0/url"));
                self.errors
                    .push(format!("console.{kind}: {} ({url})", text.join(" ")));
            }
            "Runtime.exceptionThrown" => {
                let d = str_at(p, "/exceptionDetails/exception/description")
                    .map_or_else(|| s("/exceptionDetails/text"), str::to_owned);
                let url = s("/exceptionDetails/url");
                self.errors.push(format!("exception: {d} ({url})"));
            }
            "Log.entryAdded" if s("/entry/level") == "error" => {
                let (src, text, url) = (s("/entry/source"), s("/entry/text"), s("/entry/url"));
                self.errors.push(format!("log[{src}]: {text} ({url})"));
            }
            "Inspector.targetCrashed" => self.errors.push("renderer crashed".into()),
            "Network.requestWillBeSent" => {
                let (doc, initiator) = (s("/documentURL"), s("/initiator/type"));
                self.request(s("/requestId"), s("/request/url"), |r| {
                    (r.document_url, r.initiator) = (doc, initiator);
                });
            }
            "Fetch.requestPaused" if !is_local(&s("/request/url")) => {
                self.request(s("/networkId"), s("/request/url"), |r| r.blocked = true);
            }
            "Network.loadingFailed" => {
                let (id, reason) = (s("/requestId"), s("/blockedReason"));
                let why = if reason.is_empty() {
                    s("/errorText")
                } else {
                    reason
                };
                let r = self.requests.iter_mut().rev().find(|r| r.id == id);
                r.into_iter().for_each(|r| r.failed = Some(why.clone()));
            }
            "Network.loadingFinished" => {
                let len = p.get("encodedDataLength").and_then(Value::as_f64);
                self.bytes += len.unwrap_or(0.0) as u64;
            }
            _ => return false,
        }
        true
    }
}

type Reply = oneshot::Sender<Result<Value, String>>;

/// State shared by the reader task and every command issuer.
struct Conn {
    out: mpsc::UnboundedSender<String>,
    next_id: AtomicU64,
    closed: AtomicBool,
    pending: Mutex<HashMap<u64, Reply>>,
    logs: Mutex<HashMap<String, watch::Sender<PageLog>>>,
}

impl Conn {
    /// Queues a command; its answer goes to whoever registered `id` in `pending`.
    fn send(&self, id: u64, session: Option<&str>, method: &str, params: Value) {
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let (Some(s), Some(obj)) = (session, msg.as_object_mut()) {
            obj.insert("sessionId".into(), s.into());
        }
        let _ = self.out.send(msg.to_string());
    }

    /// Sends a command and waits up to [`TIMEOUT`] for its result.
    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        if self.closed.load(Ordering::Acquire) {
            bail!("CDP {method}: browser connection closed");
        }
        let (tx, rx) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.pending).insert(id, tx);
        self.send(id, session, method, params);
        match tokio::time::timeout(TIMEOUT, rx).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(anyhow!("CDP {method} failed: {e}")),
            Ok(Err(_)) => Err(anyhow!("CDP {method}: browser connection closed")),
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(anyhow!("CDP {method} timed out after {TIMEOUT:?}"))
            }
        }
    }

    /// Fails every waiter at once instead of letting it time out.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        lock(&self.pending).clear();
        lock(&self.logs).clear();
    }

    fn log(&self, session: &str) -> watch::Sender<PageLog> {
        let mut logs = lock(&self.logs);
        let entry = logs.entry(session.to_owned());
        entry
            .or_insert_with(|| watch::channel(PageLog::default()).0)
            .clone()
    }

    /// Handles one incoming message; ignores anything unexpected.
    fn dispatch(&self, text: &str) {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            return;
        };
        if let Some(id) = msg.get("id").and_then(Value::as_u64) {
            let Some(tx) = lock(&self.pending).remove(&id) else {
                return;
            };
            let _ = tx.send(match msg.get("error") {
                Some(e) => Err(str_at(e, "/message").map_or_else(|| e.to_string(), Into::into)),
                None => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
            });
            return;
        }
        let (Some(method), Some(session)) = (str_at(&msg, "/method"), str_at(&msg, "/sessionId"))
        else {
            return;
        };
        let p = msg.get("params").unwrap_or(&Value::Null);
        if let ("Fetch.requestPaused", Some(id)) = (method, str_at(p, "/requestId")) {
            let id_now = self.next_id.fetch_add(1, Ordering::Relaxed);
            if is_local(str_at(p, "/request/url").unwrap_or_default()) {
                let params = json!({"requestId": id});
                self.send(id_now, Some(session), "Fetch.continueRequest", params);
            } else {
                let params = json!({"requestId": id, "errorReason": "BlockedByClient"});
                self.send(id_now, Some(session), "Fetch.failRequest", params);
            }
        }
        self.log(session)
            .send_if_modified(|log| log.record(method, p));
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// True for URLs that stay on this machine: hosts `127.0.0.1`, `localhost`, `[::1]`, and
/// the schemes `data:`, `blob:`, `about:`, `chrome-error:`.
pub fn is_local(url: &str) -> bool {
    let url = url.to_ascii_lowercase();
    let schemes = ["data:", "blob:", "about:", "chrome-error:"];
    if schemes.iter().any(|s| url.starts_with(s)) {
        return true;
    }
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.find(']') {
        Some(end) if host_port.starts_with('[') => host_port.get(..=end).unwrap_or_default(),
        _ => host_port.split(':').next().unwrap_or_default(),
    };
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// Kills the Chromium child (only that pid) and removes its temporary directory.
struct ChildGuard {
    child: Option<Child>,
    dir: PathBuf,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Helper processes may still be writing into the profile for a moment.
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A headless Chromium process and the websocket connection to it.
pub struct Browser {
    conn: Arc<Conn>,
    tasks: Vec<JoinHandle<()>>,
    _guard: ChildGuard,
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
        self.conn.close();
    }
}

impl Browser {
    /// Starts headless Chromium with a fresh profile; `Ok(None)` when no `chromium`,
    /// `chromium-browser` or `google-chrome` is on `PATH`.
    pub async fn launch() -> Result<Option<Browser>> {
        let Some(exe) = find_browser() else {
            return Ok(None);
        };
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("otgate-cdp-{}-{seq}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir); // left by a crashed process with our pid
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut guard = ChildGuard {
            child: None,
            dir: dir.clone(),
        };
        let (profile, log_path) = (dir.join("profile"), dir.join("chromium.log"));
        let child = Command::new(&exe)
            .args(FLAGS.split_whitespace())
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path)?)
            .spawn()
            .with_context(|| format!("spawning {}", exe.display()))?;
        let child = guard.child.insert(child);
        let started = Instant::now();
        let ws_url = loop {
            let text = std::fs::read_to_string(profile.join("DevToolsActivePort"));
            let text = text.unwrap_or_default();
            let mut lines = text.lines();
            if let (Some(Ok(port)), Some(path)) =
                (lines.next().map(str::parse::<u16>), lines.next())
            {
                break format!("ws://127.0.0.1:{port}{path}");
            }
            let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(status) = child.try_wait()? {
                bail!("{} exited early ({status}):\n{}", exe.display(), log());
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!(
                    "{}: no DevToolsActivePort after 20 s:\n{}",
                    exe.display(),
                    log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .with_context(|| format!("connecting to {ws_url}"))?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        let conn = Arc::new(Conn {
            out,
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            pending: Mutex::default(),
            logs: Mutex::default(),
        });
        let writer = tokio::spawn(async move {
            while let Some(text) = out_rx.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let reader_conn = Arc::clone(&conn);
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                if let Message::Text(text) = msg {
                    reader_conn.dispatch(text.as_str());
                }
            }
            reader_conn.close();
        });
        Ok(Some(Browser {
            conn,
            tasks: vec![writer, reader],
            _guard: guard,
        }))
    }

    /// Opens a tab in a browser context of its own (its own cookies: one signed-in user per
    /// tab) with `Page`, `Runtime`, `Log` and `Network` enabled, certificate errors ignored
    /// and a 1400x900 viewport.
    pub async fn page(&self) -> Result<Page> {
        let conn = &self.conn;
        let context = conn
            .call(
                None,
                "Target.createBrowserContext",
                json!({"disposeOnDetach": true}),
            )
            .await?;
        let context = str_at(&context, "/browserContextId")
            .context("no browserContextId")?
            .to_owned();
        let target = json!({"url": "about:blank", "browserContextId": context});
        let target = conn.call(None, "Target.createTarget", target).await?;
        let target_id = str_at(&target, "/targetId")
            .context("no targetId")?
            .to_owned();
        let attach = json!({"targetId": target_id, "flatten": true});
        let attached = conn.call(None, "Target.attachToTarget", attach).await?;
        let session = str_at(&attached, "/sessionId")
            .context("no sessionId")?
            .to_owned();
        let log = conn.log(&session);
        log.send_modify(|l| l.main_frame.clone_from(&target_id));
        let page = Page {
            conn: Arc::clone(conn),
            session,
            log: log.subscribe(),
            weight_mark: AtomicU64::new(0),
            nav_mark: AtomicU64::new(0),
        };
        for domain in ["Page", "Runtime", "Log", "Network"] {
            page.call(&format!("{domain}.enable"), json!({})).await?;
        }
        let ignore = json!({"ignore": true});
        page.call("Security.setIgnoreCertificateErrors", ignore)
            .await?;
        let size = json!({"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": false});
        page.call("Emulation.setDeviceMetricsOverride", size)
            .await?;
        Ok(page)
    }
}

fn find_browser() -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH")?).collect();
    let names = ["chromium", "chromium-browser", "google-chrome"];
    let mut candidates = names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)));
    candidates.find(|p| p.is_file())
}

/// One tab, attached through a flat session; every method takes `&self`.
pub struct Page {
    conn: Arc<Conn>,
    session: String,
    log: watch::Receiver<PageLog>,
    weight_mark: AtomicU64,
    nav_mark: AtomicU64,
}

impl Page {
    /// Sends a raw CDP command on this tab's session.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.conn.call(Some(&self.session), method, params).await
    }

    /// Navigates to `url` and waits for that navigation's load event (30 s).
    pub async fn goto(&self, url: &str) -> Result<()> {
        let before = self.log.borrow().loads;
        let r = self.call("Page.navigate", json!({"url": url})).await?;
        if let Some(err) = str_at(&r, "/errorText").filter(|e| !e.is_empty()) {
            bail!("navigation to {url} failed: {err}");
        }
        if r.get("loaderId").is_none() {
            return Ok(()); // same-document navigation: no load event follows
        }
        self.loaded_after(before)
            .await
            .with_context(|| format!("loading {url}"))
    }

    /// Waits (30 s) for a page load that finished after the last [`Page::click`] started,
    /// e.g. the result of submitting a form.
    pub async fn wait_for_navigation(&self) -> Result<()> {
        self.loaded_after(self.nav_mark.load(Ordering::Acquire))
            .await
    }

    async fn loaded_after(&self, before: u64) -> Result<()> {
        let mut log = self.log.clone();
        match tokio::time::timeout(TIMEOUT, log.wait_for(|l| l.loads > before)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => bail!("browser connection closed while waiting for a page load"),
            Err(_) => bail!("no page load within {TIMEOUT:?}"),
        }
    }

    /// Evaluates `js`, awaiting a promise; returns the JSON value (`Null` for undefined).
    pub async fn eval(&self, js: &str) -> Result<Value> {
        let params = json!({"expression": js, "returnByValue": true, "awaitPromise": true});
        let r = self.call("Runtime.evaluate", params).await?;
        if let Some(d) = r.get("exceptionDetails") {
            let msg = str_at(d, "/exception/description").or_else(|| str_at(d, "/text"));
            bail!("evaluating `{js}` threw: {}", msg.unwrap_or("exception"));
        }
        Ok(r.pointer("/result/value").cloned().unwrap_or(Value::Null))
    }

    /// Polls `condition` every 100 ms until it is truthy; errors naming it on timeout.
    pub async fn wait_for(&self, condition: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last_err = String::new();
        loop {
            match self.eval(&format!("!!({condition})")).await {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(_) => {}
                Err(e) => last_err = format!(" (last error: {e:#})"), // e.g. mid-navigation
            }
            if Instant::now() >= deadline {
                bail!("timed out after {timeout:?} waiting for `{condition}`{last_err}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs the JS `body` with `e` bound to the first match of `selector` (error if none).
    async fn with_element(&self, selector: &str, body: &str) -> Result<Value> {
        let sel = Value::from(selector);
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); \
             if (!e) throw new Error('no element matches ' + {sel}); {body} }})()"
        ))
        .await
    }

    /// Clicks the first element matching `selector`.
    pub async fn click(&self, selector: &str) -> Result<()> {
        self.nav_mark
            .store(self.log.borrow().loads, Ordering::Release);
        let body = "e.scrollIntoView({block: 'center'}); e.click();";
        self.with_element(selector, body).await.map(drop)
    }

    /// Sets an input's value (through the native setter, so frameworks notice) and
    /// dispatches bubbling `input` and `change` events.
    pub async fn fill(&self, selector: &str, value: &str) -> Result<()> {
        let body = format!(
            "const d = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(e), 'value'); \
             if (d && d.set) d.set.call(e, {v}); else e.value = {v}; \
             for (const t of ['input', 'change']) e.dispatchEvent(new Event(t, {{bubbles: true}}));",
            v = Value::from(value)
        );
        self.with_element(selector, &body).await.map(drop)
    }

    /// The `innerText` of the first element matching `selector`.
    pub async fn text(&self, selector: &str) -> Result<String> {
        let v = self
            .with_element(selector, "return e.innerText ?? e.textContent;")
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Whether any element matches `selector`.
    pub async fn exists(&self, selector: &str) -> Result<bool> {
        let js = format!("document.querySelector({}) !== null", Value::from(selector));
        Ok(self.eval(&js).await?.as_bool().unwrap_or(false))
    }

    /// Writes a PNG screenshot of the viewport to `path`, creating parent directories.
    pub async fn screenshot(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let r = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await?;
        let data = str_at(&r, "/data").context("captureScreenshot: no data")?;
        let png = base64::engine::general_purpose::STANDARD.decode(data)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await?;
        }
        let written = tokio::fs::write(path, png).await;
        written.with_context(|| format!("writing {}", path.display()))
    }

    /// Console errors and assertions, uncaught exceptions and error log entries (CSP
    /// violations, failed loads) seen so far, each with its URL where known.
    pub fn console_errors(&self) -> Vec<String> {
        self.log.borrow().errors.clone()
    }

    /// Every request seen so far, in order.
    pub fn requests(&self) -> Vec<RequestSeen> {
        self.log.borrow().requests.clone()
    }

    /// The requests seen so far whose URL is not [`is_local`].
    pub fn foreign_requests(&self) -> Vec<RequestSeen> {
        let mut requests = self.requests();
        requests.retain(|r| !is_local(&r.url));
        requests
    }

    /// From now on fails every request that is not [`is_local`] (`BlockedByClient`)
    /// instead of letting it reach the network; such requests are still recorded.
    pub async fn block_foreign(&self) -> Result<()> {
        let patterns = json!({"patterns": [{"urlPattern": "*"}]});
        self.call("Fetch.enable", patterns).await.map(drop)
    }

    /// Starts counting page weight from now.
    pub fn mark_weight(&self) {
        self.weight_mark
            .store(self.log.borrow().bytes, Ordering::Release);
    }

    /// Encoded (on-the-wire) bytes of the responses finished since [`Page::mark_weight`].
    pub fn weight_since_mark(&self) -> u64 {
        let mark = self.weight_mark.load(Ordering::Acquire);
        self.log.borrow().bytes.saturating_sub(mark)
    }

    /// `first-contentful-paint` of the current document in ms, if it has painted.
    pub async fn first_contentful_paint(&self) -> Result<Option<f64>> {
        let js = "performance.getEntriesByName('first-contentful-paint', 'paint')[0]?.startTime";
        Ok(self.eval(js).await?.as_f64())
    }

    /// Navigation timing of the current document, if available.
    pub async fn navigation_timing(&self) -> Result<Option<NavTiming>> {
        let js = "(n => n && [n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd])\
                  (performance.getEntriesByType('navigation')[0])";
        let v = self.eval(js).await?;
        let f = |i: usize| v.get(i).and_then(Value::as_f64);
        Ok((|| {
            let (response_end, dom_content_loaded) = (f(0)?, f(1)?);
            Some(NavTiming {
                response_end,
                dom_content_loaded,
                load_event_end: f(2)?,
            })
        })())
    }
}
