//! `otgate users ...`, `otgate keys ...`, `otgate vault ...`.

use std::io::Read;

use anyhow::{Context, Result};
use serde_json::json;

use otgate_broker::{Credential, SshKey, User};
use otgate_policy::{Domain, Role, RoleAssignment};

use crate::cli::{Cli, CredentialKindArg, KeysCommand, RoleArg, UsersCommand, VaultCommand};
use crate::client::{Client, encode};
use crate::output;

fn role(arg: RoleArg) -> Role {
    match arg {
        RoleArg::Vendor => Role::Vendor,
        RoleArg::Engineer => Role::Engineer,
        RoleArg::Auditor => Role::Auditor,
        RoleArg::Admin => Role::Admin,
        RoleArg::Sensor => Role::Sensor,
    }
}

fn roles_text(user: &User) -> String {
    let roles: Vec<String> = user.roles.iter().map(ToString::to_string).collect();
    match (&user.org, roles.is_empty()) {
        (Some(org), true) => format!("vendor via {org}"),
        (Some(org), false) => format!("{} (org {org})", roles.join(" ")),
        (None, _) => roles.join(" "),
    }
}

/// Each role in each zone (every zone when none is named).
fn assignments(roles: &[RoleArg], zones: &[String]) -> Result<Vec<RoleAssignment>> {
    let domains = if zones.is_empty() {
        vec![Domain::Any]
    } else {
        zones
            .iter()
            .map(|z| Domain::try_from(z.clone()))
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(roles
        .iter()
        .flat_map(|r| {
            domains.iter().map(move |d| RoleAssignment {
                role: role(*r),
                domain: d.clone(),
            })
        })
        .collect())
}

/// Prints a changed user.
fn changed(cli: &Cli, user: &User) -> Result<()> {
    if cli.json {
        return output::json(user);
    }
    let state = if user.disabled { "disabled" } else { "active" };
    println!("{}: {} ({state})", user.name, roles_text(user));
    Ok(())
}

pub async fn users(cli: &Cli, command: &UsersCommand) -> Result<()> {
    let client = Client::connect(cli)?;
    match command {
        UsersCommand::Add {
            name,
            roles,
            zones,
            org,
            display_name,
        } => {
            let assignments = assignments(roles, zones)?;
            let body = json!({ "name": name, "roles": assignments, "org": org, "display_name": display_name });
            #[derive(serde::Deserialize, serde::Serialize)]
            struct Created {
                user: User,
                one_time_password: String,
            }
            let created: Created = client.post("/users", &body).await?;
            if cli.json {
                return output::json(&created);
            }
            println!("created {name}; one-time password (must be changed at first login):");
            println!("{}", created.one_time_password);
        }
        UsersCommand::Roles { name, roles, zones } => {
            let body = json!({ "roles": assignments(roles, zones)? });
            let user: User = client
                .put(&format!("/users/{}/roles", encode(name)), &body)
                .await?;
            changed(cli, &user)?;
        }
        UsersCommand::Disable { name, reason } => {
            let user: User = client
                .post(
                    &format!("/users/{}/disable", encode(name)),
                    &json!({ "reason": reason }),
                )
                .await?;
            changed(cli, &user)?;
        }
        UsersCommand::Enable { name } => {
            let user: User = client
                .post(&format!("/users/{}/enable", encode(name)), &json!({}))
                .await?;
            changed(cli, &user)?;
        }
        UsersCommand::List => {
            let users: Vec<User> = client.get("/users").await?;
            if cli.json {
                return output::json(&users);
            }
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    vec![
                        u.name.to_string(),
                        roles_text(u),
                        if u.totp_enrolled { "yes" } else { "no" }.to_owned(),
                        if u.disabled {
                            "disabled"
                        } else if u.must_change_password {
                            "must change password"
                        } else {
                            "active"
                        }
                        .to_owned(),
                        u.display_name.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(&["NAME", "ROLES", "TOTP", "STATE", "FULL NAME"], &rows);
        }
    }
    Ok(())
}

pub async fn keys(cli: &Cli, command: &KeysCommand) -> Result<()> {
    let client = Client::connect(cli)?;
    match command {
        KeysCommand::Add { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let key: SshKey = client
                .post("/keys", &json!({ "public_key": text.trim() }))
                .await?;
            if cli.json {
                return output::json(&key);
            }
            println!("registered {}", key.fingerprint);
        }
        KeysCommand::List => {
            let keys: Vec<SshKey> = client.get("/keys").await?;
            if cli.json {
                return output::json(&keys);
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    let comment = k
                        .public_key
                        .split_whitespace()
                        .nth(2)
                        .unwrap_or_default()
                        .to_owned();
                    vec![k.fingerprint.clone(), output::time(k.created_at), comment]
                })
                .collect();
            output::table(&["FINGERPRINT", "REGISTERED", "COMMENT"], &rows);
        }
    }
    Ok(())
}

pub async fn vault(cli: &Cli, command: &VaultCommand) -> Result<()> {
    let client = Client::connect(cli)?;
    match command {
        VaultCommand::Add { name, kind, file } => {
            let mut secret = String::new();
            match file {
                Some(path) => {
                    secret = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?
                }
                None => {
                    std::io::stdin().read_to_string(&mut secret)?;
                }
            }
            let kind = match kind {
                CredentialKindArg::Password => "password",
                CredentialKindArg::PrivateKey => "private_key",
            };
            let secret = if kind == "password" {
                secret.trim_end_matches(['\n', '\r']).to_owned()
            } else {
                secret
            };
            let stored: Credential = client
                .post(
                    "/vault",
                    &json!({ "name": name, "kind": kind, "secret": secret }),
                )
                .await?;
            println!("stored {} ({kind}), encrypted", stored.name);
        }
        VaultCommand::List => {
            let list: Vec<Credential> = client.get("/vault").await?;
            if cli.json {
                return output::json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|c| {
                    vec![
                        c.name.to_string(),
                        c.kind.as_str().to_owned(),
                        output::time(c.updated_at),
                    ]
                })
                .collect();
            output::table(&["NAME", "KIND", "UPDATED"], &rows);
        }
    }
    Ok(())
}
