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
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nMaxStartups 500\nMaxSessions 500\n",
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

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let after = stat.rsplit_once(')').context("stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks =
        |i: usize| -> Result<f64> { Ok(fields.get(i).context("stat field")?.parse::<f64>()?) };
    let tck = String::from_utf8(Command::new("getconf").arg("CLK_TCK").output()?.stdout)?
        .trim()
        .parse::<f64>()
        .unwrap_or(100.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Ok((ticks(11)? + ticks(12)?) / tck)
}

/// Resident memory of the process, in bytes.
fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("VmRSS")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?;
    Ok(kib * 1024)
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

    // Memory per idle session, first, while the process is fresh: before and with N idle
    // sessions.
    let idle = rounds * 5;
    let before = rss_bytes(demo.pid())?;
    let mut clients = Vec::new();
    for _ in 0..idle {
        clients.push(
            via_gateway()
                .arg("sleep 600")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
    }
    std::thread::sleep(Duration::from_secs(5));
    let mut alive = 0;
    for client in &mut clients {
        if matches!(client.try_wait(), Ok(None)) {
            alive += 1;
        }
    }
    let during = rss_bytes(demo.pid())?;
    for client in &mut clients {
        let _ = client.kill();
        let _ = client.wait();
    }
    println!("idle sessions ({alive} of {idle} connected):");
    println!(
        "  gateway process memory  {:.1} MB before, {:.1} MB with them: {:.2} MB per idle session",
        before as f64 / 1e6,
        during as f64 / 1e6,
        during.saturating_sub(before) as f64 / 1e6 / alive.max(1) as f64
    );

    // Throughput.
    let bytes = megabytes * 1_000_000;
    let (mut d, mut g) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        d.push(pull(direct(), bytes)?);
        g.push(pull(via_gateway(), bytes)?);
    }
    let cpu_before = cpu_seconds(demo.pid())?;
    let extra = pull(via_gateway(), bytes)?;
    let cpu_per_gb = (cpu_seconds(demo.pid())? - cpu_before) / (bytes as f64 / 1e9);
    g.push(extra);
    let (d, g) = (median(d), median(g));
    let rate = |t: Duration| bytes as f64 / t.as_secs_f64() / 1e6;
    println!("throughput, {megabytes} MB of terminal text (median of 3):");
    println!("  direct sshd          {:>8.1} MB/s", rate(d));
    println!(
        "  through the gateway  {:>8.1} MB/s   ratio {:.2}x direct",
        rate(g),
        d.as_secs_f64() / g.as_secs_f64()
    );
    println!(
        "  gateway process CPU  {cpu_per_gb:>8.2} s per GB relayed (both ciphers, relay, recording with zstd)"
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
