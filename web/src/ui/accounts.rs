//! One user's page (admins): what the account is, its roles replaced, the account disabled
//! or enabled. Mistakes and the broker's refusals (the last admin, an unknown role) come
//! back on the page; refusals of the caller are pages of their own, as everywhere.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use otgate_broker::{BrokerError, User};
use otgate_policy::UserName;

use super::admin::{roles_field, roles_text};
use super::form::Fields;
use super::pages::{form_page, form_target_read, problem};
use super::session::SignedIn;
use super::view;
use crate::AppState;
use crate::error::ApiError;

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    csrf: String,
    me: String,
    name: String,
    display: String,
    org: String,
    roles: String,
    roles_field: String,
    totp: bool,
    disabled: bool,
    created: String,
    mistake: Option<String>,
}

/// The user named in the path, for an admin (the broker's user list decides who is one).
async fn find(state: &AppState, me: &SignedIn, name: &str) -> Result<User, ApiError> {
    let name: UserName = crate::extract::name(name)?;
    state
        .broker
        .users(&me.principal)
        .await?
        .into_iter()
        .find(|u| u.name == name)
        .ok_or_else(|| ApiError::from(BrokerError::NotFound(format!("no user `{name}`"))))
}

/// The page, with what was typed in the roles field kept when it was wrong.
fn page(me: SignedIn, user: User, typed: Option<&str>, mistake: Option<String>) -> Response {
    let roles = roles_text(&user.roles);
    let page = UserPage {
        csrf: me.csrf,
        me: me.principal.user.to_string(),
        name: user.name.to_string(),
        display: user.display_name.unwrap_or_default(),
        org: user.org.map(|o| o.to_string()).unwrap_or_default(),
        roles_field: typed.map_or_else(|| roles.clone(), str::to_owned),
        roles,
        totp: user.totp_enrolled,
        disabled: user.disabled,
        created: view::minute(user.created_at),
        mistake: mistake.clone(),
    };
    form_page(&page, mistake)
}

/// `GET /ui/users/{name}`.
pub(super) async fn show(
    State(state): State<AppState>,
    me: SignedIn,
    Path(name): Path<String>,
) -> Response {
    match find(&state, &me, &name).await {
        Ok(user) => page(me, user, None, None),
        Err(e) => problem(e, "Not available"),
    }
}

/// What an account change did: back to the page, or the refusal on it.
async fn after(
    state: &AppState,
    me: SignedIn,
    name: &str,
    typed: Option<&str>,
    outcome: Result<User, BrokerError>,
    title: &str,
) -> Response {
    match outcome {
        Ok(user) => Redirect::to(&format!("/ui/users/{}", user.name)).into_response(),
        Err(BrokerError::Forbidden(message)) => problem(
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
            title,
        ),
        Err(refused) => {
            let message = ApiError::from(refused).message().to_owned();
            match find(state, &me, name).await {
                Ok(user) => page(me, user, typed, Some(message)),
                Err(e) => problem(e, title),
            }
        }
    }
}

/// The form token checked and the user name read, or the refusal as a page.
fn target(
    state: &AppState,
    me: &SignedIn,
    fields: &Fields,
    name: &str,
    title: &str,
) -> Result<UserName, Box<Response>> {
    form_target_read(state, me, fields, name, crate::extract::name, title)
}

/// `POST /ui/users/{name}/roles`: replaces the roles.
pub(super) async fn set_roles(
    State(state): State<AppState>,
    me: SignedIn,
    Path(name): Path<String>,
    fields: Fields,
) -> Response {
    let title = "Roles not changed";
    let user = match target(&state, &me, &fields, &name, title) {
        Ok(user) => user,
        Err(page) => return *page,
    };
    let typed = fields.get("roles");
    let outcome = match roles_field(&fields) {
        Ok(roles) => state.broker.set_roles(&me.principal, &user, roles).await,
        Err(mistake) => Err(BrokerError::Invalid(mistake)),
    };
    after(&state, me, &name, typed, outcome, title).await
}

/// `POST /ui/users/{name}/disable`: with a reason.
pub(super) async fn disable(
    State(state): State<AppState>,
    me: SignedIn,
    Path(name): Path<String>,
    fields: Fields,
) -> Response {
    let title = "Not disabled";
    let user = match target(&state, &me, &fields, &name, title) {
        Ok(user) => user,
        Err(page) => return *page,
    };
    let reason = fields.get("reason").unwrap_or_default();
    let outcome = state
        .broker
        .disable_user(&me.principal, &user, reason)
        .await;
    after(&state, me, &name, None, outcome, title).await
}

/// `POST /ui/users/{name}/enable`.
pub(super) async fn enable(
    State(state): State<AppState>,
    me: SignedIn,
    Path(name): Path<String>,
    fields: Fields,
) -> Response {
    let title = "Not enabled";
    let user = match target(&state, &me, &fields, &name, title) {
        Ok(user) => user,
        Err(page) => return *page,
    };
    let outcome = state.broker.enable_user(&me.principal, &user).await;
    after(&state, me, &name, None, outcome, title).await
}
