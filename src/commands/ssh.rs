//! `otgate ssh GRANT [-- COMMAND]`: a thin convenience over the system `ssh`. It fetches a
//! certificate for the vendor's key and the grant, then runs `ssh` to `vendor+GRANT` at the
//! gateway, so the vendor types one command.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::json;

use otgate_broker::IssuedCertificate;

use crate::cli::{Cli, SshArgs};
use crate::client::Client;

fn expand(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

pub async fn run(cli: &Cli, args: &SshArgs) -> Result<()> {
    let client = Client::connect(cli)?;
    let key = expand(&args.key);
    let public = PathBuf::from(format!("{}.pub", key.display()));
    let text = std::fs::read_to_string(&public).with_context(|| {
        format!(
            "reading {} (register it with `otgate keys add`)",
            public.display()
        )
    })?;
    let issued: IssuedCertificate = client
        .post(
            &format!("/grants/{}/certificate", args.grant),
            &json!({ "key": text.trim() }),
        )
        .await?;
    let certificate = PathBuf::from(format!("{}-cert.pub", key.display()));
    std::fs::write(&certificate, format!("{}\n", issued.certificate))
        .with_context(|| format!("writing {}", certificate.display()))?;
    let Some((host, port)) = args.gateway.rsplit_once(':') else {
        bail!("--gateway {}: use HOST:PORT", args.gateway);
    };
    let mut ssh = Command::new("ssh");
    ssh.arg("-i")
        .arg(&key)
        .arg("-o")
        .arg(format!("CertificateFile={}", certificate.display()))
        .args(["-o", "IdentitiesOnly=yes", "-p", port]);
    for option in &args.options {
        ssh.arg("-o").arg(option);
    }
    ssh.arg(format!("{}+{}@{host}", issued.principal, args.grant));
    if args.command.is_empty() {
        ssh.arg("-t");
    } else {
        ssh.arg("--").args(&args.command);
    }
    let status = ssh
        .status()
        .context("running ssh (is OpenSSH installed?)")?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(crate::commands::ExitCode(u8::try_from(code).unwrap_or(1)).into()),
        None => bail!("ssh was stopped by a signal"),
    }
}
