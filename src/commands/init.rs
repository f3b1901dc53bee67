//! `otgate init`: a data directory with configuration, keys, TLS material, database and a
//! first admin whose one-time password is printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use otgate_broker::{Broker, LocalBus, NewUser, generate_password};
use otgate_policy::{Domain, Role, RoleAssignment, UserName};
use otgate_web::tls::TlsFiles;

use crate::cli::InitArgs;
use crate::config::{Config, template};

/// Creates the directory layout, configuration and key material; refuses to overwrite.
pub fn lay_out(
    dir: &Path,
    listen: SocketAddr,
    ssh_listen: SocketAddr,
    hostnames: &[String],
    inventory: Option<&str>,
) -> Result<PathBuf> {
    let config_path = dir.join("otgate.toml");
    if config_path.exists() || dir.join("keys").exists() {
        bail!(
            "{} already holds an otgate configuration or keys: refusing to overwrite",
            dir.display()
        );
    }
    for sub in ["keys", "tls", "recordings"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("keys"), std::fs::Permissions::from_mode(0o700))?;
    }
    std::fs::write(&config_path, template(listen, ssh_listen, inventory))
        .with_context(|| format!("writing {}", config_path.display()))?;
    let config = Config::load(&config_path)?;
    config.broker.keys.generate()?;
    otgate_recorder::RecordingKey::generate(&config.recording_key)?;
    crate::hostkey::load_or_create(&config.gateway.host_key)?;
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !listen.ip().is_unspecified() && !names.contains(&listen.ip().to_string()) {
        names.push(listen.ip().to_string());
    }
    names.extend(hostnames.iter().cloned());
    TlsFiles {
        ca_cert: config.data_dir.join("tls/ca.pem"),
        ca_key: config.data_dir.join("tls/ca.key"),
        cert: config.web.cert.clone(),
        key: config.web.key.clone(),
    }
    .generate(&names)?;
    Ok(config_path)
}

/// Opens the broker of a freshly laid-out directory (creating the database).
pub async fn open(config: &Config) -> Result<Broker> {
    Broker::open(&config.broker, Arc::new(LocalBus::new(64)))
        .await
        .context("creating the database")
}

pub async fn run(args: &InitArgs) -> Result<()> {
    let admin = UserName::new(args.admin.clone())?;
    let config_path = lay_out(
        &args.dir,
        args.listen,
        args.ssh_listen,
        &args.hostnames,
        None,
    )?;
    let config = Config::load(&config_path)?;
    let broker = open(&config).await?;
    let password = generate_password()?;
    let new = NewUser {
        name: admin.clone(),
        display_name: Some("First administrator".into()),
        org: None,
        roles: vec![RoleAssignment {
            role: Role::Admin,
            domain: Domain::Any,
        }],
    };
    broker
        .provision(None, new, password.clone(), true, None)
        .await?;
    broker.close().await;
    let dir = args.dir.display();
    println!("Created {dir}:");
    println!("  configuration  {}", config_path.display());
    println!(
        "  SSH user CA    {} (sshd: TrustedUserCAKeys)",
        config.broker.keys.ssh_ca.with_extension("pub").display()
    );
    println!("  TLS CA         {}/tls/ca.pem (clients: --ca)", dir);
    println!();
    println!("Admin `{admin}` one-time password: {}", password.expose());
    println!("It must be changed, and an authenticator app enrolled, at the first login:");
    println!("  otgate serve --config {}", config_path.display());
    println!(
        "  otgate login --server https://{} --ca {dir}/tls/ca.pem --user {admin}",
        args.listen
    );
    Ok(())
}
