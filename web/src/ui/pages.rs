//! The pages so far: sign in, home, sign out.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;

use otgate_broker::{Credentials, LoginOutcome, Secret};

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

fn render(page: &impl Template) -> Result<String, ApiError> {
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
        roles: user
            .roles
            .iter()
            .map(|r| format!("{}@{}", r.role, r.domain))
            .collect(),
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
) -> Result<String, ApiError> {
    render(&LoginPage {
        csrf: state.ui_key.token(nonce),
        user: user.to_owned(),
        problem,
    })
}

/// `GET /ui/login`: the sign-in form, with a fresh pre-login cookie.
pub(super) async fn login_form(State(state): State<AppState>) -> Response {
    let Some(nonce) = csrf::nonce() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no randomness: try again",
        )
        .into_response();
    };
    match login_page(&state, &nonce, "", None) {
        Ok(body) => with_cookie(
            Html(body).into_response(),
            LOGIN_COOKIE,
            &nonce,
            LOGIN_FORM_SECS,
        ),
        Err(e) => e.into_response(),
    }
}

/// What the sign-in form posts.
#[derive(Deserialize)]
pub(super) struct LoginForm {
    csrf: String,
    user: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
}

/// `POST /ui/login`: password and, for engineers and admins, the authenticator code.
pub(super) async fn login(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(nonce) = cookie(&headers, LOGIN_COOKIE).filter(|n| state.ui_key.check(n, &form.csrf))
    else {
        let error = ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "this form expired or did not come from this site: reload the sign-in page and try again",
        );
        return problem(error, "Sign-in refused");
    };
    let outcome = state
        .broker
        .login(Credentials {
            user: form.user.clone(),
            password: Secret::new(form.password),
            totp: form.totp.filter(|t| !t.trim().is_empty()),
            new_password: None,
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
        Ok(LoginOutcome::Enrol(_)) => problem(
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "totp_enrolment",
                "enrol an authenticator app first: `otgate login` shows the secret and its otpauth:// URI",
            ),
            "Authenticator needed",
        ),
        Err(e) => {
            let error = ApiError::from(e);
            match login_page(&state, nonce, &form.user, Some(error.message().to_owned())) {
                Ok(body) => error.page(body),
                Err(e) => e.into_response(),
            }
        }
    }
}

/// What a signed-in form posts at least.
#[derive(Deserialize)]
pub(super) struct SignedForm {
    pub(super) csrf: String,
}

/// `POST /ui/logout`: revokes the session's token and forgets the cookie.
pub(super) async fn logout(
    State(state): State<AppState>,
    me: SignedIn,
    Form(form): Form<SignedForm>,
) -> Response {
    if !me.checks(&state, &form.csrf) {
        return problem(forged(), "Refused");
    }
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

/// A form that did not come from the signed-in session.
pub(super) fn forged() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "this form did not come from your session: reload the page and try again",
    )
}
