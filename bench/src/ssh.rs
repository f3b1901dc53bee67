//! The SSH gateway against a direct connection to the same `sshd`, in one run: bulk
//! throughput (terminal-like output through `ssh ... | head -c`), connect-and-exec latency,
//! and revocation latency (from the revoke call returning to the vendor's ssh exiting).
//! Recording is on, as always.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::demo::Demo;
use crate::stats::summarize;

struct Sshd {
    child: Child,
    port: u16,
    host_key: String,
    service_key: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) -> Result<()> {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()?;
    if !status.success() {
        bail!("ssh-keygen failed");
    }
    Ok(())
}

fn sshd(dir: &Path) -> Result<Sshd> {
    let host = dir.join("host_ed25519");
    let service_key = dir.join("service_ed25519");
    keygen(&host)?;
    keygen(&service_key)?;
    std::fs::copy(
        service_key.with_extension("pub"),
        dir.join("authorized_keys"),
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n",
        host.display(),
        d = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), config)?;
    let _ = std::fs::create_dir_all("/run/sshd");
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-f"])
        .arg(dir.join("sshd_config"))
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .spawn()
        .context("starting /usr/sbin/sshd")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("sshd did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Sshd {
        child,
        port,
        host_key: std::fs::read_to_string(host.with_extension("pub"))?
            .trim()
            .to_owned(),
        service_key,
    })
}

fn ssh(port: &str, login: &str, key: &Path, certificate: Option<&Path>) -> Command {
    let mut command = Command::new("ssh");
    command.args(["-F", "/dev/null", "-i"]).arg(key);
    if let Some(certificate) = certificate {
        command
            .arg("-o")
            .arg(format!("CertificateFile={}", certificate.display()));
    }
    command
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-p",
            port,
        ])
        .arg(format!("{login}@127.0.0.1"));
    command
}

/// Seconds to pull `bytes` of terminal-like text through `command`.
fn pull(mut command: Command, bytes: u64) -> Result<Duration> {
    let start = Instant::now();
    let status = command
        .arg(format!(
            "yes 'historian-agent[4242]: wrote 1200 points to PLC7.Line1.Temp in 3 ms' | head -c {bytes}"
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("the transfer failed ({status})");
    }
    Ok(start.elapsed())
}

/// A maintenance grant on the bench asset, approved, with a certificate for `public`.
async fn grant(
    vendor: &crate::demo::Session,
    eng1: &crate::demo::Session,
    public: &str,
    certificate: &Path,
) -> Result<i64> {
    let request = vendor
        .post("/requests", json!({ "asset": "bench-ws", "protocols": ["ssh"], "scope": { "preset": "maintenance" }, "duration": "1h", "reason": "bench" }))
        .await?;
    let id = request["id"].as_i64().context("id")?;
    eng1.post(&format!("/requests/{id}/approve"), json!({}))
        .await?;
    let issued = vendor
        .post(
            &format!("/grants/{id}/certificate"),
            json!({ "key": public.trim() }),
        )
        .await?;
    let text = issued["certificate"].as_str().context("certificate")?;
    std::fs::write(certificate, format!("{text}\n"))?;
    Ok(id)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

pub async fn run(megabytes: u64, rounds: usize) -> Result<()> {
    let demo = Demo::start()?;
    let dir = demo.dir().join("asset");
    std::fs::create_dir_all(&dir)?;
    let asset = sshd(&dir)?;
    let me = String::from_utf8(Command::new("id").arg("-un").output()?.stdout)?
        .trim()
        .to_owned();
    let admin = demo.session("admin").await?;
    let vendor = demo.session("vendor1").await?;
    let eng1 = demo.session("eng1").await?;
    admin
        .post("/vault", json!({ "name": "bench-key", "kind": "private_key", "secret": std::fs::read_to_string(&asset.service_key)? }))
        .await?;
    admin
        .post("/assets", json!({ "name": "bench-ws", "kind": "ews", "level": "3", "zone": "site-ops",
            "endpoints": [{ "protocol": "ssh", "host": "127.0.0.1", "port": asset.port, "host_key": asset.host_key, "credential": "bench-key", "user": me }] }))
        .await?;
    let key = PathBuf::from(
        demo.file["users"]
            .as_array()
            .context("users")?
            .iter()
            .find(|u| u["name"] == "vendor1")
            .and_then(|u| u["ssh_key"].as_str())
            .context("vendor key")?,
    );
    let public = std::fs::read_to_string(format!("{}.pub", key.display()))?;
    let certificate = PathBuf::from(format!("{}-cert.pub", key.display()));
    let id = grant(&vendor, &eng1, &public, &certificate).await?;
    let gateway = demo.file["ssh"].as_str().context("ssh")?.to_owned();
    let (_, gateway_port) = gateway.rsplit_once(':').context("gateway address")?;
    let direct_port = asset.port.to_string();
    let login = "vendor1+bench-ws".to_owned();
    let via_gateway = || ssh(gateway_port, &login, &key, Some(&certificate));
    let direct = || ssh(&direct_port, &me, &asset.service_key, None);

    // Throughput.
    let bytes = megabytes * 1_000_000;
    let (mut d, mut g) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        d.push(pull(direct(), bytes)?);
        g.push(pull(via_gateway(), bytes)?);
    }
    let (d, g) = (median(d), median(g));
    let rate = |t: Duration| bytes as f64 / t.as_secs_f64() / 1e6;
    println!("throughput, {megabytes} MB of terminal text (median of 3):");
    println!("  direct sshd          {:>8.1} MB/s", rate(d));
    println!(
        "  through the gateway  {:>8.1} MB/s   ratio {:.2}x direct",
        rate(g),
        d.as_secs_f64() / g.as_secs_f64()
    );

    // Connect and exec.
    let (mut d, mut g) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let start = Instant::now();
        if !direct().arg("true").status()?.success() {
            bail!("direct exec failed");
        }
        d.push(start.elapsed());
        let start = Instant::now();
        if !via_gateway().arg("true").status()?.success() {
            bail!("gateway exec failed");
        }
        g.push(start.elapsed());
    }
    let (sd, sg) = (summarize(&d), summarize(&g));
    println!("connect + exec `true`:");
    println!("  {}", sd.line("direct sshd"));
    println!("  {}", sg.line("through the gateway"));
    println!(
        "  ratio (p50) {:.2}x direct",
        sg.p50.as_secs_f64() / sd.p50.as_secs_f64()
    );

    // Revocation: from the revoke call returning to the vendor's ssh exiting.
    let mut latencies = Vec::new();
    let mut current = id;
    for _ in 0..rounds {
        let mut running = via_gateway()
            .arg("sleep 120")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // Wait for the session to be live (the asset runs sleep).
        std::thread::sleep(Duration::from_millis(400));
        eng1.post(
            &format!("/grants/{current}/revoke"),
            json!({ "reason": "bench" }),
        )
        .await?;
        let revoked = Instant::now();
        running.wait()?;
        latencies.push(revoked.elapsed());
        current = grant(&vendor, &eng1, &public, &certificate).await?;
    }
    println!("revocation to channel closed:");
    println!(
        "  {}",
        summarize(&latencies).line("revoke -> vendor's ssh exits")
    );
    Ok(())
}
