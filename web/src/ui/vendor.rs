//! A vendor's side: asking for access (assets grouped by site, zone and level; a scope
//! preset, or a scope written out and checked field by field; window, reason, ticket), their
//! grants with the exact commands to connect and the certificate to download. Mistakes in
//! the form come back next to the field, with everything typed kept and nothing stored.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use otgate_broker::{NewRequest, RequestFilter, ScopeSpec, SessionFilter};
use otgate_policy::window::parse_duration;
use otgate_policy::{Asset, AssetName, Preset, Protocol, Scope};

use super::form::Fields;
use super::pages::{forged, form_target, html, problem};
use super::session::SignedIn;
use super::view;
use crate::AppState;
use crate::error::ApiError;

/// An asset in the picker.
struct AssetOption {
    name: String,
    description: String,
    protocols: String,
    selected: bool,
}

/// Assets of one site, zone and level.
struct AssetGroup {
    label: String,
    level_class: &'static str,
    assets: Vec<AssetOption>,
}

/// What was typed, kept when the form comes back.
#[derive(Default)]
struct Typed {
    asset: String,
    protocols: Vec<String>,
    preset: String,
    scope: String,
    start: String,
    duration: String,
    reason: String,
    ticket: String,
}

/// Mistakes, next to their fields.
#[derive(Default)]
struct Mistakes {
    asset: Option<String>,
    protocols: Option<String>,
    scope: Option<String>,
    start: Option<String>,
    duration: Option<String>,
    reason: Option<String>,
    general: Option<String>,
}

impl Mistakes {
    fn any(&self) -> bool {
        [
            &self.asset,
            &self.protocols,
            &self.scope,
            &self.start,
            &self.duration,
            &self.reason,
            &self.general,
        ]
        .iter()
        .any(|m| m.is_some())
    }
}

#[derive(Template)]
#[template(path = "request_new.html")]
struct NewRequestPage {
    csrf: String,
    me: String,
    groups: Vec<AssetGroup>,
    presets: Vec<(&'static str, &'static str)>,
    typed: Typed,
    mistakes: Mistakes,
}

/// A scope written out, as the editor's starting point.
const EXAMPLE_SCOPE: &str = "# Commands (glob patterns) and Modbus ranges this work needs.\n\
[ssh]\nshell = false\nallow = [\"systemctl status *\", \"journalctl -u * -n *\"]\n\n\
# [modbus]\n# units = [1]\n# allow = [{ functions = [3], table = \"holding\", start = 0, count = 10 }]\n";

async fn groups(
    state: &AppState,
    me: &SignedIn,
    chosen: &str,
) -> Result<Vec<AssetGroup>, ApiError> {
    let assets = state.broker.assets(&me.principal).await?;
    let mut grouped: BTreeMap<(String, String, String), (&'static str, Vec<AssetOption>)> =
        BTreeMap::new();
    for asset in &assets {
        let key = (
            asset.site.clone().unwrap_or_else(|| "plant".into()),
            asset.zone.to_string(),
            asset.level.as_str().to_owned(),
        );
        let entry = grouped
            .entry(key)
            .or_insert_with(|| (view::level_class(asset.level), Vec::new()));
        entry.1.push(option(asset, chosen));
    }
    Ok(grouped
        .into_iter()
        .map(|((site, zone, level), (level_class, assets))| AssetGroup {
            label: format!("{site} / {zone} / level {level}"),
            level_class,
            assets,
        })
        .collect())
}

fn option(asset: &Asset, chosen: &str) -> AssetOption {
    let protocols: Vec<&str> = [Protocol::Ssh, Protocol::Modbus, Protocol::Tcp]
        .into_iter()
        .filter(|p| asset.offers(*p))
        .map(Protocol::as_str)
        .collect();
    AssetOption {
        name: asset.name.to_string(),
        description: asset.description.clone().unwrap_or_default(),
        protocols: protocols.join(", "),
        selected: asset.name.as_str() == chosen,
    }
}

async fn form_page(state: &AppState, me: SignedIn, typed: Typed, mistakes: Mistakes) -> Response {
    let groups = match groups(state, &me, &typed.asset).await {
        Ok(groups) => groups,
        Err(e) => return problem(e, "Not available"),
    };
    let status = if mistakes.any() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = NewRequestPage {
        csrf: me.csrf,
        me: me.principal.user.to_string(),
        groups,
        presets: Preset::ALL
            .iter()
            .map(|p| (p.as_str(), p.summary()))
            .collect(),
        typed,
        mistakes,
    };
    let response = html(&page);
    if status == StatusCode::OK {
        return response;
    }
    // A refusal like any other: recorded, with the page that says what to fix.
    match super::pages::render(&page) {
        Ok(body) => ApiError::new(status, "invalid", "the request form has mistakes").page(body),
        Err(e) => e.into_response(),
    }
}

/// `GET /ui/requests/new`.
pub(super) async fn new_form(State(state): State<AppState>, me: SignedIn) -> Response {
    let typed = Typed {
        protocols: vec!["ssh".into()],
        preset: Preset::ReadOnly.as_str().into(),
        duration: "2h".into(),
        start: "now".into(),
        scope: EXAMPLE_SCOPE.into(),
        ..Typed::default()
    };
    form_page(&state, me, typed, Mistakes::default()).await
}

fn parse_start(text: &str) -> Result<Option<OffsetDateTime>, String> {
    let text = text.trim();
    if text.is_empty() || text == "now" {
        return Ok(None);
    }
    if let Some(relative) = text.strip_prefix('+') {
        return parse_duration(relative)
            .map(|d| Some(OffsetDateTime::now_utc() + d))
            .map_err(|e| e.to_string());
    }
    // `datetime-local` sends `2026-12-05T08:00` (taken as UTC, as shown everywhere).
    let full = if text.len() == 16 {
        format!("{text}:00Z")
    } else {
        text.to_owned()
    };
    OffsetDateTime::parse(&full, &Rfc3339)
        .map(Some)
        .map_err(|_| format!("`{text}`: use now, +30m, or a time such as 2026-12-05T08:00 (UTC)"))
}

/// Reads the form into a request, collecting every mistake.
fn read(fields: &Fields) -> (Typed, Mistakes, Option<NewRequest>) {
    let typed = Typed {
        asset: fields.get("asset").unwrap_or_default().to_owned(),
        protocols: fields
            .all("protocol")
            .into_iter()
            .map(str::to_owned)
            .collect(),
        preset: fields.get("preset").unwrap_or("read-only").to_owned(),
        scope: fields.raw("scope").to_owned(),
        start: fields.get("start").unwrap_or("now").to_owned(),
        duration: fields.get("duration").unwrap_or_default().to_owned(),
        reason: fields.get("reason").unwrap_or_default().to_owned(),
        ticket: fields.get("ticket").unwrap_or_default().to_owned(),
    };
    let mut mistakes = Mistakes::default();
    let asset = AssetName::new(&typed.asset)
        .map_err(|_| mistakes.asset = Some("choose an asset from the list".into()))
        .ok();
    let mut protocols = Vec::new();
    for name in &typed.protocols {
        match name.as_str() {
            "ssh" => protocols.push(Protocol::Ssh),
            "modbus" => protocols.push(Protocol::Modbus),
            "tcp" => protocols.push(Protocol::Tcp),
            other => mistakes.protocols = Some(format!("`{other}` is not a protocol otgate knows")),
        }
    }
    if protocols.is_empty() && mistakes.protocols.is_none() {
        mistakes.protocols = Some("tick at least one protocol".into());
    }
    let scope = if typed.preset == "custom" {
        Scope::from_toml(&typed.scope, "scope")
            .map(ScopeSpec::Custom)
            .map_err(|e| mistakes.scope = Some(e.to_string()))
            .ok()
    } else {
        typed
            .preset
            .parse::<Preset>()
            .map(ScopeSpec::Preset)
            .map_err(|e| mistakes.scope = Some(e.to_string()))
            .ok()
    };
    let start = parse_start(&typed.start)
        .map_err(|e| mistakes.start = Some(e))
        .ok();
    if let Err(e) = parse_duration(&typed.duration) {
        mistakes.duration = Some(format!("{e}: write it as 2h, 90m or 1h30m"));
    }
    if typed.reason.is_empty() {
        mistakes.reason = Some("say what the work is: approvers read this".into());
    }
    let request = match (asset, scope, start, mistakes.any()) {
        (Some(asset), Some(scope), Some(start), false) => Some(NewRequest {
            asset,
            protocols,
            scope,
            start,
            duration: typed.duration.clone(),
            reason: typed.reason.clone(),
            ticket: Some(typed.ticket.clone()).filter(|t| !t.is_empty()),
        }),
        _ => None,
    };
    (typed, mistakes, request)
}

/// `POST /ui/requests`: files the request, or shows the form again with what to fix.
pub(super) async fn create(
    State(state): State<AppState>,
    me: SignedIn,
    fields: Fields,
) -> Response {
    if !me.checks(&state, fields.csrf()) {
        return problem(forged(), "Refused");
    }
    let (typed, mut mistakes, request) = read(&fields);
    let Some(request) = request else {
        return form_page(&state, me, typed, mistakes).await;
    };
    match state.broker.create_request(&me.principal, request).await {
        Ok(created) => Redirect::to(&format!("/ui/requests?filed={}", created.id)).into_response(),
        Err(e) => {
            mistakes.general = Some(ApiError::from(e).message().to_owned());
            form_page(&state, me, typed, mistakes).await
        }
    }
}

/// `POST /ui/requests/{id}/withdraw`.
pub(super) async fn withdraw(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<String>,
    fields: Fields,
) -> Response {
    let id = match form_target(&state, &me, &fields, &id, "Not withdrawn") {
        Ok(id) => id,
        Err(page) => return *page,
    };
    match state.broker.withdraw(&me.principal, id).await {
        Ok(_) => Redirect::to("/ui/requests").into_response(),
        Err(e) => problem(e.into(), "Not withdrawn"),
    }
}

/// A grant of the signed-in vendor, with how to use it.
struct GrantRow {
    id: i64,
    asset: String,
    level: &'static str,
    level_class: &'static str,
    zone: String,
    scope: String,
    window: String,
    status: String,
    live: bool,
    commands: Vec<String>,
}

/// A past session.
struct SessionRow {
    id: String,
    asset: String,
    protocol: String,
    started: String,
    duration: String,
    state: String,
    denials: i64,
    alerts: i64,
}

#[derive(Template)]
#[template(path = "grants.html")]
struct GrantsPage {
    csrf: String,
    me: String,
    grants: Vec<GrantRow>,
    keys: Vec<String>,
    sessions: Vec<SessionRow>,
}

/// The exact commands that use grant `id` on `asset`.
fn commands(
    state: &AppState,
    vendor: &str,
    id: i64,
    asset: &str,
    protocols: &[Protocol],
) -> Vec<String> {
    let mut out = Vec::new();
    let options = &state.ui.options;
    if let Some(ssh) = options.ssh {
        let login = format!("{vendor}+{asset}@{}", ssh.ip());
        if protocols.contains(&Protocol::Ssh) {
            out.push(format!("ssh -p {} {login}", ssh.port()));
            out.push(format!(
                "ssh -p {} -o CertificateFile=otgate-{id}-cert.pub {login}   # with the certificate below",
                ssh.port()
            ));
        }
        if protocols.contains(&Protocol::Modbus) {
            out.push(format!(
                "ssh -p {} -N -L 5020:{asset}:502 {login}   # then point a Modbus tool at 127.0.0.1:5020",
                ssh.port()
            ));
        }
    }
    if let Some(tunnel) = options.tunnel
        && (protocols.contains(&Protocol::Modbus) || protocols.contains(&Protocol::Tcp))
    {
        out.push(format!(
            "otgate connect {id} --gateway {tunnel} --listen 127.0.0.1:5020"
        ));
    }
    out
}

/// `GET /ui/grants`: the signed-in vendor's grants and past sessions.
pub(super) async fn grants(State(state): State<AppState>, me: SignedIn) -> Response {
    let filter = RequestFilter {
        vendor: Some(me.principal.user.clone()),
        grants: true,
        ..RequestFilter::default()
    };
    let loaded = async {
        let grants = state.broker.requests(&me.principal, &filter).await?;
        let keys = state.broker.keys_of(&me.principal).await?;
        let sessions = state
            .broker
            .sessions(
                &me.principal,
                &SessionFilter {
                    vendor: Some(me.principal.user.to_string()),
                    limit: Some(50),
                    ..SessionFilter::default()
                },
            )
            .await?;
        Ok::<_, otgate_broker::BrokerError>((grants, keys, sessions))
    }
    .await;
    let (grants, keys, sessions) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return problem(e.into(), "Not available"),
    };
    let vendor = me.principal.user.to_string();
    let grants = grants
        .iter()
        .map(|g| {
            let live = g.status.is_live_grant();
            GrantRow {
                id: g.id.get(),
                asset: g.asset.to_string(),
                level: g.level.as_str(),
                level_class: view::level_class(g.level),
                zone: g.zone.to_string(),
                scope: g.scope_name.clone(),
                window: format!(
                    "{} - {}",
                    view::minute(g.window.start),
                    view::minute(g.window.end)
                ),
                status: g.status.to_string(),
                live,
                commands: if live {
                    commands(&state, &vendor, g.id.get(), g.asset.as_str(), &g.protocols)
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    html(&GrantsPage {
        csrf: me.csrf,
        me: vendor,
        grants,
        keys: keys.into_iter().map(|k| k.fingerprint).collect(),
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                started: view::minute(s.started_at),
                duration: view::clock(s.duration_ms as f64 / 1000.0),
                state: s.state.as_str().to_owned(),
                id: s.id,
                asset: s.asset,
                protocol: s.protocol,
                denials: s.denials,
                alerts: s.alerts,
            })
            .collect(),
    })
}

/// `POST /ui/grants/{id}/certificate`: an OpenSSH certificate for one of the vendor's keys,
/// valid for the grant's window, as a file to save next to the key.
pub(super) async fn certificate(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<String>,
    fields: Fields,
) -> Response {
    let id = match form_target(&state, &me, &fields, &id, "No certificate") {
        Ok(id) => id,
        Err(page) => return *page,
    };
    match state
        .broker
        .issue_certificate(&me.principal, id, fields.get("key"))
        .await
        .map_err(ApiError::from)
    {
        Ok(issued) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"otgate-{}-cert.pub\"", issued.grant),
                ),
            ],
            format!("{}\n", issued.certificate),
        )
            .into_response(),
        Err(e) => problem(e, "No certificate"),
    }
}
