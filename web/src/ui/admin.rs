//! The plant and its administration: the Purdue picture (levels as rows, zones as columns,
//! assets as tiles with their live sessions), users and roles, approval rules and the
//! detector's playbook; revoking a grant and quarantining a vendor or an asset. Each action
//! is the broker's decision, as in the API.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use otgate_broker::{NewQuarantine, NewUser, SessionFilter};
use otgate_policy::{AssetName, OrgName, PurdueLevel, QuarantineSubject, RoleAssignment, UserName};

use super::form::Fields;
use super::pages::{forged, form_page, form_target, html, problem};
use super::session::SignedIn;
use super::view;
use crate::AppState;
use crate::error::ApiError;

/// An asset on the picture.
struct Tile {
    name: String,
    kind: String,
    description: String,
    live: Vec<(String, String)>,
}

/// A row of the picture: one level.
struct LevelRow {
    level: &'static str,
    words: &'static str,
    class: &'static str,
    cells: Vec<Vec<Tile>>,
}

#[derive(Template)]
#[template(path = "plant.html")]
struct PlantPage {
    csrf: String,
    me: String,
    zones: Vec<String>,
    levels: Vec<LevelRow>,
    quarantines: Vec<(String, String, String)>,
}

/// `GET /ui/plant`: the Purdue picture.
pub(super) async fn plant(State(state): State<AppState>, me: SignedIn) -> Response {
    let loaded = async {
        let assets = state.broker.assets(&me.principal).await?;
        let live = state
            .broker
            .sessions(
                &me.principal,
                &SessionFilter {
                    live: true,
                    ..SessionFilter::default()
                },
            )
            .await?;
        // Those who may not list quarantines (vendors) see the picture without them.
        let quarantines = state
            .broker
            .quarantines(&me.principal)
            .await
            .unwrap_or_default();
        Ok::<_, otgate_broker::BrokerError>((assets, live, quarantines))
    }
    .await;
    let (assets, live, quarantines) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return problem(e.into(), "Not available"),
    };
    let zones: Vec<String> = assets
        .iter()
        .map(|a| a.zone.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut by_place: BTreeMap<(PurdueLevel, String), Vec<Tile>> = BTreeMap::new();
    for asset in &assets {
        by_place
            .entry((asset.level, asset.zone.to_string()))
            .or_default()
            .push(Tile {
                name: asset.name.to_string(),
                kind: format!("{:?}", asset.kind).to_lowercase(),
                description: asset.description.clone().unwrap_or_default(),
                live: live
                    .iter()
                    .filter(|s| s.asset == asset.name.as_str())
                    .map(|s| (s.id.clone(), s.vendor.clone()))
                    .collect(),
            });
    }
    let present: BTreeSet<PurdueLevel> = by_place.keys().map(|(l, _)| *l).collect();
    // Highest level on top, as the Purdue model is drawn.
    let levels = PurdueLevel::ALL
        .iter()
        .rev()
        .filter(|level| present.contains(*level))
        .map(|level| LevelRow {
            level: level.as_str(),
            words: view::level_words(*level),
            class: view::level_class(*level),
            cells: zones
                .iter()
                .map(|zone| by_place.remove(&(*level, zone.clone())).unwrap_or_default())
                .collect(),
        })
        .collect();
    html(&PlantPage {
        csrf: me.csrf,
        me: me.principal.user.to_string(),
        zones,
        levels,
        quarantines: quarantines
            .into_iter()
            .map(|q| (q.subject.to_string(), view::minute(q.until), q.reason))
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    csrf: String,
    me: String,
    users: Vec<(String, String, String, String, bool, bool)>,
    created: Option<(String, String)>,
    mistake: Option<String>,
}

/// `GET /ui/users`: users and roles (admins).
pub(super) async fn users(State(state): State<AppState>, me: SignedIn) -> Response {
    users_page(&state, me, None, None).await
}

/// The user list, with the user just created and their one-time password, or what was
/// wrong with the form.
async fn users_page(
    state: &AppState,
    me: SignedIn,
    created: Option<(String, String)>,
    mistake: Option<String>,
) -> Response {
    let users = match state.broker.users(&me.principal).await {
        Ok(users) => users,
        Err(e) => return problem(e.into(), "Not available"),
    };
    let page = UsersPage {
        created,
        mistake: mistake.clone(),
        csrf: me.csrf,
        me: me.principal.user.to_string(),
        users: users
            .into_iter()
            .map(|u| {
                (
                    u.name.to_string(),
                    u.display_name.unwrap_or_default(),
                    u.org.map(|o| o.to_string()).unwrap_or_default(),
                    roles_text(&u.roles),
                    u.totp_enrolled,
                    u.disabled,
                )
            })
            .collect(),
    };
    form_page(&page, mistake)
}

/// The form's `roles` field: `role@zone` separated by commas.
pub(super) fn roles_field(fields: &Fields) -> Result<Vec<RoleAssignment>, String> {
    fields
        .get("roles")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.parse::<RoleAssignment>().map_err(|e| e.to_string()))
        .collect()
}

/// Roles as the forms show them.
pub(super) fn roles_text(roles: &[RoleAssignment]) -> String {
    roles
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the new-user form.
fn new_user(fields: &Fields) -> Result<NewUser, String> {
    let name = UserName::new(fields.get("name").unwrap_or_default())
        .map_err(|e| format!("user name: {e}"))?;
    let org = fields
        .get("org")
        .map(OrgName::new)
        .transpose()
        .map_err(|e| format!("organisation: {e}"))?;
    let roles = roles_field(fields)?;
    if roles.is_empty() && org.is_none() {
        return Err(
            "give roles (engineer@line-1, auditor@*) or, for a vendor, an organisation".into(),
        );
    }
    Ok(NewUser {
        name,
        display_name: fields.get("display_name").map(str::to_owned),
        org,
        roles,
    })
}

/// `POST /ui/users`: adds a user (admins) and shows their one-time password once.
pub(super) async fn add_user(
    State(state): State<AppState>,
    me: SignedIn,
    fields: Fields,
) -> Response {
    if !me.checks(&state, fields.csrf()) {
        return problem(forged(), "Refused");
    }
    let new = match new_user(&fields) {
        Ok(new) => new,
        Err(mistake) => return users_page(&state, me, None, Some(mistake)).await,
    };
    match state.broker.add_user(&me.principal, new).await {
        Ok((user, password)) => {
            let created = (user.name.to_string(), password.expose().clone());
            users_page(&state, me, Some(created), None).await
        }
        Err(otgate_broker::BrokerError::Forbidden(message)) => problem(
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
            "Not added",
        ),
        Err(e) => {
            users_page(
                &state,
                me,
                None,
                Some(ApiError::from(e).message().to_owned()),
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage {
    csrf: String,
    me: String,
    rules: Vec<(String, u8, String, String)>,
    playbook: Vec<String>,
}

/// `GET /ui/rules`: approval rules and the detector's playbook (admins).
pub(super) async fn rules(State(state): State<AppState>, me: SignedIn) -> Response {
    // The same check as the user list: these pages are for admins.
    if let Err(e) = state.broker.users(&me.principal).await {
        return problem(e.into(), "Not available");
    }
    html(&RulesPage {
        csrf: me.csrf,
        me: me.principal.user.to_string(),
        rules: state
            .broker
            .rules()
            .levels()
            .map(|(level, rule)| {
                (
                    level.as_str().to_owned(),
                    rule.approvals,
                    otgate_policy::window::format_duration(rule.max_duration),
                    rule.allowed_hours.to_string(),
                )
            })
            .collect(),
        playbook: state.ui.options.playbook.clone(),
    })
}

/// `POST /ui/grants/{id}/revoke`.
pub(super) async fn revoke(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<String>,
    fields: Fields,
) -> Response {
    let id = match form_target(&state, &me, &fields, &id, "Not revoked") {
        Ok(id) => id,
        Err(page) => return *page,
    };
    let reason = fields.get("reason").unwrap_or_default();
    match state.broker.revoke_grant(&me.principal, id, reason).await {
        Ok(_) => Redirect::to(&format!("/ui/requests/{id}")).into_response(),
        Err(e) => problem(e.into(), "Not revoked"),
    }
}

/// `POST /ui/quarantines`: a vendor or an asset, for a while, with a reason.
pub(super) async fn quarantine(
    State(state): State<AppState>,
    me: SignedIn,
    fields: Fields,
) -> Response {
    if !me.checks(&state, fields.csrf()) {
        return problem(forged(), "Refused");
    }
    let name = fields.get("name").unwrap_or_default();
    let subject = match fields.get("kind") {
        Some("vendor") => UserName::new(name).map(QuarantineSubject::Vendor).ok(),
        Some("asset") => AssetName::new(name).map(QuarantineSubject::Asset).ok(),
        _ => None,
    };
    let Some(subject) = subject else {
        return problem(
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "name a vendor or an asset to quarantine",
            ),
            "Not quarantined",
        );
    };
    let new = NewQuarantine {
        subject,
        duration: fields.get("duration").map(str::to_owned),
        reason: fields.get("reason").unwrap_or_default().to_owned(),
    };
    match state.broker.quarantine(&me.principal, new).await {
        Ok(_) => Redirect::to(
            fields
                .get("back")
                .filter(|b| b.starts_with("/ui/"))
                .unwrap_or("/ui/plant"),
        )
        .into_response(),
        Err(e) => problem(e.into(), "Not quarantined"),
    }
}
