//! `otgate login` and `otgate logout`.

use std::io::{BufRead, IsTerminal};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use otgate_policy::RoleAssignment;

use crate::cli::{Cli, LoginArgs};
use crate::client::{ApiFailure, Client, SavedSession, forget_session, save_session};
use crate::output;

fn prompt(label: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("{label} needed, and standard input is not a terminal");
    }
    Ok(rpassword::prompt_password(format!("{label}: "))?)
}

fn ask_line(label: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("{label} needed: pass it with --totp");
    }
    eprint!("{label}: ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

#[derive(Serialize)]
struct LoginBody {
    user: String,
    password: String,
    totp: Option<String>,
    new_password: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum LoginAnswer {
    Session {
        token: String,
        expires_at: String,
        roles: Vec<RoleAssignment>,
    },
    TotpEnrolment {
        secret: String,
        otpauth_uri: String,
    },
}

pub async fn login(cli: &Cli, args: &LoginArgs) -> Result<()> {
    let client = Client::anonymous(cli)?;
    let mut stdin_lines = Vec::new();
    if args.password_stdin {
        stdin_lines = std::io::stdin()
            .lock()
            .lines()
            .take(2)
            .collect::<std::io::Result<Vec<_>>>()?;
    }
    let mut lines = stdin_lines.into_iter();
    let password = match lines.next() {
        Some(line) => line,
        None => prompt(&format!("Password for {} at {}", args.user, client.server))?,
    };
    let mut body = LoginBody {
        user: args.user.clone(),
        password,
        totp: args.totp.clone(),
        new_password: None,
    };
    loop {
        match client.post::<_, LoginAnswer>("/login", &body).await {
            Ok(LoginAnswer::Session {
                token,
                expires_at,
                roles,
            }) => {
                let path = save_session(&SavedSession {
                    server: client.server.clone(),
                    ca: client.ca.clone(),
                    user: args.user.clone(),
                    token,
                })?;
                let roles: Vec<String> = roles.iter().map(ToString::to_string).collect();
                let roles = if roles.is_empty() {
                    "vendor".to_owned()
                } else {
                    roles.join(", ")
                };
                let expires = OffsetDateTime::parse(&expires_at, &Rfc3339)
                    .map(output::time)
                    .unwrap_or(expires_at);
                println!(
                    "Logged in to {} as {} ({roles}) until {expires}.",
                    client.server, args.user
                );
                eprintln!("Session saved in {}", path.display());
                return Ok(());
            }
            Ok(LoginAnswer::TotpEnrolment {
                secret,
                otpauth_uri,
            }) => {
                println!("Enrol an authenticator app (required for your role):");
                println!("  secret: {secret}");
                println!("  URI:    {otpauth_uri}");
                if let Some(new) = body.new_password.take() {
                    body.password = new;
                }
                body.totp = Some(ask_line("Code from the app")?);
            }
            Err(error) => {
                let Some(failure) = error.downcast_ref::<ApiFailure>() else {
                    return Err(error);
                };
                match failure.code.as_str() {
                    "password_change_required" if body.new_password.is_none() => {
                        eprintln!("{}", failure.message);
                        let new = match lines.next() {
                            Some(line) => line,
                            None => {
                                let first = prompt("New password")?;
                                if prompt("Repeat it")? != first {
                                    bail!("the passwords differ");
                                }
                                first
                            }
                        };
                        body.new_password = Some(new);
                    }
                    "totp_required" if body.totp.is_none() => {
                        body.totp = Some(ask_line("Authenticator code")?)
                    }
                    _ => return Err(error),
                }
            }
        }
    }
}

pub async fn logout(cli: &Cli) -> Result<()> {
    let client = Client::connect(cli)?;
    let result = client.post_no_content("/logout", &json!({})).await;
    forget_session();
    result?;
    println!("Logged out of {}.", client.server);
    Ok(())
}
