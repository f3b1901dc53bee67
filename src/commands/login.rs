//! `otgate login` and `otgate logout`.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cli::{Cli, LoginArgs};
use crate::client::{ApiFailure, Client, SavedSession, forget_session, save_session};

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
    let mut body = json!({ "user": args.user, "password": password });
    if let Some(code) = &args.totp {
        body["totp"] = json!(code);
    }
    loop {
        match client.post::<_, Value>("/login", &body).await {
            Ok(answer) => {
                if let Some(session) = answer.get("session") {
                    let token = session["token"]
                        .as_str()
                        .context("the server sent no token")?
                        .to_owned();
                    let expires = session["expires_at"].as_str().unwrap_or("?").to_owned();
                    let roles: Vec<String> = session["roles"]
                        .as_array()
                        .map(|list| {
                            list.iter()
                                .map(|r| {
                                    format!(
                                        "{}@{}",
                                        r["role"].as_str().unwrap_or("?"),
                                        r["domain"].as_str().unwrap_or("?")
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let path = save_session(&SavedSession {
                        server: client.server.clone(),
                        ca: client.ca.clone(),
                        user: args.user.clone(),
                        token,
                    })?;
                    let roles = if roles.is_empty() {
                        "vendor".to_owned()
                    } else {
                        roles.join(", ")
                    };
                    println!(
                        "Logged in to {} as {} ({roles}) until {expires}.",
                        client.server, args.user
                    );
                    eprintln!("Session saved in {}", path.display());
                    return Ok(());
                }
                if let Some(enrolment) = answer.get("totp_enrolment") {
                    println!("Enrol an authenticator app (required for your role):");
                    println!("  secret: {}", enrolment["secret"].as_str().unwrap_or("?"));
                    println!(
                        "  URI:    {}",
                        enrolment["otpauth_uri"].as_str().unwrap_or("?")
                    );
                    if body.get("new_password").is_some() {
                        body["password"] = body["new_password"].clone();
                        if let Some(map) = body.as_object_mut() {
                            map.remove("new_password");
                        }
                    }
                    body["totp"] = json!(ask_line("Code from the app")?);
                    continue;
                }
                bail!("unexpected answer from the server");
            }
            Err(error) => {
                let Some(failure) = error.downcast_ref::<ApiFailure>() else {
                    return Err(error);
                };
                match failure.code.as_str() {
                    "password_change_required" if body.get("new_password").is_none() => {
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
                        body["new_password"] = json!(new);
                    }
                    "totp_required" if body.get("totp").is_none() => {
                        body["totp"] = json!(ask_line("Authenticator code")?);
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
