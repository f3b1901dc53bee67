//! Signing in (password, authenticator code, enrolment with a QR code, a new password
//! when the old one was one-time), home, signing out.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use time::OffsetDateTime;

use otgate_broker::{Credentials, LoginOutcome, Secret};

use super::form::Fields;
use super::session::SignedIn;
use super::{LOGIN_COOKIE, SESSION_COOKIE, cookie, csrf, set_cookie};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::ClientAddr;

/// How long a sign-in form stays valid.
const LOGIN_FORM_SECS: i64 = 600;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    user: String,
    problem: Option<String>,
    new_password: bool,
    sso: bool,
}

/// Enrolling an authenticator: at a first password sign-in (the form signs in again with the
/// password and a code) or at a first single sign-on (the code alone finishes it).
#[derive(Template)]
#[template(path = "enrol.html")]
pub(super) struct EnrolPage {
    /// The form token.
    pub(super) csrf: String,
    /// Who is enrolling.
    pub(super) user: String,
    /// The otpauth:// URI as a QR code; empty once shown.
    pub(super) qr: String,
    /// The secret in base32; empty once shown.
    pub(super) secret: String,
    /// Whether this finishes a single sign-on.
    pub(super) sso: bool,
    /// What was wrong with the code.
    pub(super) mistake: Option<String>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    csrf: String,
    me: String,
    display: String,
    org: Option<String>,
    roles: Vec<String>,
}

#[derive(Template)]
#[template(path = "problem.html")]
struct ProblemPage {
    title: String,
    message: String,
}

/// Renders a page, or the error a failure becomes.
pub(super) fn render(page: &impl Template) -> Result<String, ApiError> {
    page.render().map_err(|e| {
        tracing::error!(error = %e, "a page could not be rendered");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error: see the server log",
        )
    })
}

/// A refusal as a page that says what happened and what to do.
pub(super) fn problem(error: ApiError, title: &str) -> Response {
    let page = ProblemPage {
        title: title.to_owned(),
        message: error.message().to_owned(),
    };
    match render(&page) {
        Ok(body) => error.page(body),
        Err(e) => e.into_response(),
    }
}

fn with_cookie(mut response: Response, name: &str, value: &str, max_age: i64) -> Response {
    if let Some(value) = set_cookie(name, value, max_age) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `/`: the UI.
pub(super) async fn root() -> Redirect {
    Redirect::to("/ui/")
}

/// `/ui/`: who is signed in (the sign-in page otherwise).
pub(super) async fn home(State(state): State<AppState>, me: SignedIn) -> Response {
    let user = match state.broker.me(&me.principal).await {
        Ok(user) => user,
        Err(e) => return problem(e.into(), "Not available"),
    };
    let page = HomePage {
        csrf: me.csrf,
        me: user.name.to_string(),
        display: user
            .display_name
            .clone()
            .unwrap_or_else(|| user.name.to_string()),
        org: user.org.as_ref().map(ToString::to_string),
        roles: user.roles.iter().map(ToString::to_string).collect(),
    };
    html(&page)
}

/// A page, or the error page if it cannot be rendered.
pub(super) fn html(page: &impl Template) -> Response {
    match render(page) {
        Ok(body) => Html(body).into_response(),
        Err(e) => e.into_response(),
    }
}

fn login_page(
    state: &AppState,
    nonce: &str,
    user: &str,
    problem: Option<String>,
    new_password: bool,
) -> Result<String, ApiError> {
    render(&LoginPage {
        csrf: state.ui_key.token(nonce),
        user: user.to_owned(),
        problem,
        new_password,
        sso: state.ui.sso.is_some(),
    })
}

/// Why the sign-in page is shown (`?idle=1` after the idle timeout).
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct LoginQuery {
    #[serde(default)]
    idle: Option<String>,
}

/// `GET /ui/login`: the sign-in form, with a fresh pre-login cookie.
pub(super) async fn login_form(
    State(state): State<AppState>,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let idle = query.ok().and_then(|Query(q)| q.idle).is_some();
    let Some(nonce) = csrf::nonce() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no randomness: try again",
        )
        .into_response();
    };
    let note = idle.then(|| {
        format!(
            "you were signed out after {} min without activity: sign in again",
            state.ui.idle.minutes()
        )
    });
    match login_page(&state, &nonce, "", note, false) {
        Ok(body) => with_cookie(
            Html(body).into_response(),
            LOGIN_COOKIE,
            &nonce,
            LOGIN_FORM_SECS,
        ),
        Err(e) => e.into_response(),
    }
}

/// `POST /ui/login`: password and, for engineers and admins, the authenticator code.
pub(super) async fn login(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    form: Fields,
) -> Response {
    let Some(nonce) = cookie(&headers, LOGIN_COOKIE).filter(|n| state.ui_key.check(n, form.csrf()))
    else {
        let error = ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "this form expired or did not come from this site: reload the sign-in page and try again",
        );
        return problem(error, "Sign-in refused");
    };
    let user = form.get("user").unwrap_or_default().to_owned();
    let outcome = state
        .broker
        .login(Credentials {
            user: user.clone(),
            password: Secret::new(form.raw("password").to_owned()),
            totp: form.get("totp").map(str::to_owned),
            new_password: form.get("new_password").map(|p| Secret::new(p.to_owned())),
            source,
        })
        .await;
    match outcome {
        Ok(LoginOutcome::Session(session)) => {
            let max_age = (session.expires_at - OffsetDateTime::now_utc()).whole_seconds();
            let response = Redirect::to("/ui/").into_response();
            let response = with_cookie(response, SESSION_COOKIE, session.token.expose(), max_age);
            with_cookie(response, LOGIN_COOKIE, "", 0)
        }
        Ok(LoginOutcome::Enrol(enrolment)) => {
            let page = EnrolPage {
                csrf: state.ui_key.token(nonce),
                user: user.clone(),
                qr: qr_svg(enrolment.otpauth_uri.expose()),
                secret: enrolment.secret.expose().clone(),
                sso: false,
                mistake: None,
            };
            html(&page)
        }
        Err(e) => {
            let error = ApiError::from(e);
            let new_password = error.code() == "password_change_required";
            match login_page(
                &state,
                nonce,
                &user,
                Some(error.message().to_owned()),
                new_password,
            ) {
                Ok(body) => error.page(body),
                Err(e) => e.into_response(),
            }
        }
    }
}

/// The otpauth:// URI as an inline SVG QR code (no image request, nothing inline to run).
pub(super) fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(220, 220)
                .quiet_zone(true)
                .build();
            // Drop the XML declaration: the SVG goes inside the page.
            match svg.find("<svg") {
                Some(at) => svg.get(at..).unwrap_or_default().to_owned(),
                None => String::new(),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "no QR code for an enrolment URI");
            String::new()
        }
    }
}

/// `POST /ui/logout`: revokes the session's token and forgets the cookie.
pub(super) async fn logout(State(state): State<AppState>, me: SignedIn, form: Fields) -> Response {
    if !me.checks(&state, form.csrf()) {
        return problem(forged(), "Refused");
    }
    state.ui.idle.forget(&me.token);
    if let Err(e) = state.broker.logout(&me.principal, &me.token).await {
        return problem(e.into(), "Not signed out");
    }
    with_cookie(
        Redirect::to("/ui/login").into_response(),
        SESSION_COOKIE,
        "",
        0,
    )
}

/// A form's page: 200, or 422 (and a refusal event) when it comes back with `mistake`.
pub(super) fn form_page(page: &impl Template, mistake: Option<String>) -> Response {
    match (mistake, render(page)) {
        (_, Err(e)) => e.into_response(),
        (None, Ok(body)) => Html(body).into_response(),
        (Some(message), Ok(body)) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message).page(body)
        }
    }
}

/// The request or grant a signed-in form acts on: the form token checked, the id read; the
/// refusal as a page (titled `title`) otherwise.
pub(super) fn form_target(
    state: &AppState,
    me: &SignedIn,
    fields: &Fields,
    id: &str,
    title: &str,
) -> Result<otgate_policy::GrantId, Box<Response>> {
    form_target_read(state, me, fields, id, crate::extract::grant_id, title)
}

/// What a signed-in form acts on, read from the path by `read` once the form token is
/// checked; the refusal as a page (titled `title`) otherwise.
pub(super) fn form_target_read<T>(
    state: &AppState,
    me: &SignedIn,
    fields: &Fields,
    target: &str,
    read: impl FnOnce(&str) -> Result<T, ApiError>,
    title: &str,
) -> Result<T, Box<Response>> {
    if !me.checks(state, fields.csrf()) {
        return Err(Box::new(problem(forged(), "Refused")));
    }
    read(target).map_err(|e| Box::new(problem(e, title)))
}

/// A form that did not come from the signed-in session.
pub(super) fn forged() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "this form did not come from your session: reload the page and try again",
    )
}
