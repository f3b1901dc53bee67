//! The SSH gateway against a direct connection to the same `sshd`, in one run: memory per
//! idle session, bulk throughput (terminal-like output through `ssh ... | head -c`) and CPU
//! per GB, connect-and-exec latency, keystroke echo latency in a shell, and revocation
//! latency (from the revoke call returning to the vendor's ssh exiting). Recording is on, as
//! always.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::demo::Demo;
use crate::stats::summarize;

pub(crate) struct Sshd {
    pub(crate) child: Child,
    pub(crate) port: u16,
    pub(crate) host_key: String,
    pub(crate) service_key: PathBuf,
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

pub(crate) fn sshd(dir: &Path) -> Result<Sshd> {
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

/// The stock ssh client in batch mode (options after the destination are read too).
pub fn ssh(port: &str, login: &str, key: &Path, certificate: Option<&Path>) -> Command {
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
pub(crate) async fn grant(
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

/// CPU seconds (user + system) the process has used so far, and those of its children
/// (and their descendants) that it has waited for.
fn cpu_seconds(pid: u32) -> Result<(f64, f64)> {
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
    // utime, stime, cutime and cstime are fields 14 to 17 of the line, 12 to 15 after the
    // name.
    Ok((
        (ticks(11)? + ticks(12)?) / tck,
        (ticks(13)? + ticks(14)?) / tck,
    ))
}

/// CPU used so far by the asset's sshd with everything it ran, the gateway, and the ssh
/// clients this harness ran.
#[derive(Clone, Copy)]
struct Cpu {
    sshd: f64,
    gateway: f64,
    clients: f64,
}

impl Cpu {
    fn now(sshd: u32, gateway: u32) -> Result<Self> {
        let (own, children) = cpu_seconds(sshd)?;
        Ok(Self {
            sshd: own + children,
            gateway: cpu_seconds(gateway)?.0,
            clients: cpu_seconds(std::process::id())?.1,
        })
    }

    fn since(self, before: Self) -> Self {
        Self {
            sshd: self.sshd - before.sshd,
            gateway: self.gateway - before.gateway,
            clients: self.clients - before.clients,
        }
    }

    /// What a direct connection costs: the gateway is not on its path.
    fn direct(self) -> f64 {
        self.sshd + self.clients
    }

    /// What a connection through the gateway costs.
    fn through_gateway(self) -> f64 {
        self.sshd + self.gateway + self.clients
    }
}

/// Waits (at most 60 s) until the process is nearly idle (under 5% of a core over half a
/// second), so that work left over from one measurement (closing and indexing recordings)
/// is not counted in the next.
fn quiesce(pid: u32) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let before = cpu_seconds(pid)?.0;
        std::thread::sleep(Duration::from_millis(500));
        if cpu_seconds(pid)?.0 - before < 0.025 {
            break;
        }
    }
    Ok(())
}

/// Proportional memory (PSS) of the process and all its descendants, in bytes: shared pages
/// are counted once across the tree.
fn tree_pss_bytes(pid: u32) -> Result<u64> {
    let mut total = 0;
    let mut pending = vec![pid];
    while let Some(pid) = pending.pop() {
        let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue; // gone meanwhile
        };
        if let Some(line) = rollup.lines().find(|l| l.starts_with("Pss:")) {
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .context("Pss value")?
                .parse()?;
            total += kib * 1024;
        }
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            pending.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    Ok(total)
}

/// Opens `count` sessions that stay idle (`sleep`), `batch` at a time, each confirmed by a
/// line it prints; returns the clients and how many are up.
fn open_idle(make: &dyn Fn() -> Command, count: usize) -> Result<(Vec<Child>, usize)> {
    const BATCH: usize = 25;
    let mut clients = Vec::new();
    let mut up = 0;
    while clients.len() < count {
        let mut batch = Vec::new();
        for _ in 0..BATCH.min(count - clients.len()) {
            batch.push(
                make()
                    .arg("echo up; exec sleep 900")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()?,
            );
        }
        for client in &mut batch {
            let mut line = String::new();
            if let Some(stdout) = client.stdout.as_mut() {
                let _ = BufReader::new(stdout).read_line(&mut line);
            }
            if line.trim() == "up" {
                up += 1;
            }
        }
        clients.extend(batch);
    }
    Ok((clients, up))
}

fn close_all(clients: Vec<Child>) {
    for mut client in clients {
        let _ = client.kill();
        let _ = client.wait();
    }
}

/// Keystroke echo latency in an interactive shell on the asset (a pty, the user's shell with
/// line editing): the time from writing one key to seeing it echoed, `keys` times.
fn echo_latency(mut command: Command, keys: usize) -> Result<Vec<Duration>> {
    let mut child = command
        .arg("-tt")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let rx = chunks(child.stdout.take().context("stdout")?);
    let wait_for = |needle: &[u8]| -> Result<()> {
        let mut seen = Vec::new();
        loop {
            let chunk = rx
                .recv_timeout(Duration::from_secs(10))
                .context("the shell stopped answering")?;
            seen.extend_from_slice(&chunk);
            if seen.windows(needle.len()).any(|w| w == needle) {
                return Ok(());
            }
        }
    };
    let drain = || {
        std::thread::sleep(Duration::from_millis(200));
        while rx.try_recv().is_ok() {}
    };
    // The shell is ready when it has run a command (its echo spells the word differently).
    stdin.write_all(b"echo RE''ADY\r")?;
    wait_for(b"READY")?;
    drain();
    let mut samples = Vec::with_capacity(keys);
    for i in 0..keys {
        let key = b'a' + (i % 26) as u8;
        let start = Instant::now();
        stdin.write_all(&[key])?;
        stdin.flush()?;
        wait_for(&[key])?;
        samples.push(start.elapsed());
        if i % 40 == 39 {
            stdin.write_all(b"\x15")?; // Ctrl-U: clear the line
            drain();
        }
    }
    stdin.write_all(b"\x15exit\r")?;
    let _ = child.kill();
    let _ = child.wait();
    Ok(samples)
}

/// An interactive shell (OpenSSH with a terminal) on `bench-ws` through the gateway on `port`:
/// the child, its stdin, and its output chunk by chunk.
pub(crate) fn shell(
    port: &str,
    key: &Path,
    certificate: &Path,
) -> Result<(
    Child,
    std::process::ChildStdin,
    std::sync::mpsc::Receiver<Vec<u8>>,
)> {
    let mut child = ssh(port, "vendor1+bench-ws", key, Some(certificate))
        .arg("-tt")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdin = child.stdin.take().context("stdin")?;
    let rx = chunks(child.stdout.take().context("stdout")?);
    Ok((child, stdin, rx))
}

/// What a child writes, chunk by chunk, from a reader thread.
pub(crate) fn chunks(mut stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buffer) {
            if n == 0 || tx.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Resident memory of the process, in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
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

/// The bench asset: a real sshd registered as `bench-ws` (level 3) in a running demo, and
/// what a vendor needs to reach it through the gateway.
pub(crate) struct Lab {
    pub(crate) asset: Sshd,
    pub(crate) me: String,
    pub(crate) vendor: crate::demo::Session,
    pub(crate) eng1: crate::demo::Session,
    pub(crate) key: PathBuf,
    pub(crate) public: String,
    pub(crate) certificate: PathBuf,
}

/// Starts the sshd and registers it in `demo` (its key in the vault, the asset).
pub(crate) async fn lab(demo: &Demo) -> Result<Lab> {
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
    Ok(Lab {
        asset,
        me,
        vendor,
        eng1,
        key,
        public,
        certificate,
    })
}

/// Runs every measurement: `megabytes` per transfer, `rounds` for latencies, `idle`
/// concurrent idle sessions.
pub async fn run(megabytes: u64, rounds: usize, idle: usize) -> Result<()> {
    let demo = Demo::start()?;
    let Lab {
        asset,
        me,
        vendor,
        eng1,
        key,
        public,
        certificate,
    } = lab(&demo).await?;
    let id = grant(&vendor, &eng1, &public, &certificate).await?;
    let gateway = demo.file["ssh"].as_str().context("ssh")?.to_owned();
    let (_, gateway_port) = gateway.rsplit_once(':').context("gateway address")?;
    let direct_port = asset.port.to_string();
    let login = "vendor1+bench-ws".to_owned();
    let via_gateway = || ssh(gateway_port, &login, &key, Some(&certificate));
    let direct = || ssh(&direct_port, &me, &asset.service_key, None);

    // Memory per idle session, first, while the process is fresh: before and with `idle`
    // idle sessions, against the same number straight to sshd (its whole process tree).
    let sshd_pid = asset.child.id();
    let before = rss_bytes(demo.pid())?;
    let (clients, up) = open_idle(&via_gateway, idle)?;
    std::thread::sleep(Duration::from_secs(2));
    let during = rss_bytes(demo.pid())?;
    close_all(clients);
    let direct_idle = idle.min(200);
    std::thread::sleep(Duration::from_secs(2));
    let sshd_before = tree_pss_bytes(sshd_pid)?;
    let (clients, direct_up) = open_idle(&direct, direct_idle)?;
    std::thread::sleep(Duration::from_secs(2));
    let sshd_during = tree_pss_bytes(sshd_pid)?;
    close_all(clients);
    let per = |during: u64, before: u64, n: usize| {
        during.saturating_sub(before) as f64 / 1e6 / n.max(1) as f64
    };
    let gateway_per = per(during, before, up);
    let sshd_per = per(sshd_during, sshd_before, direct_up);
    println!("idle sessions:");
    println!(
        "  gateway process (RSS)  {:.1} MB before, {:.1} MB with {up} of {idle} sessions up: {gateway_per:.2} MB per session",
        before as f64 / 1e6,
        during as f64 / 1e6,
    );
    println!(
        "  direct sshd (PSS of its process tree, {direct_up} of {direct_idle} up): {sshd_per:.2} MB per session; gateway/sshd {:.2}x",
        gateway_per / sshd_per.max(f64::MIN_POSITIVE)
    );

    // Throughput, and the CPU each transfer costs: direct (sshd and what it runs, the
    // client), through the gateway (the same, plus the gateway process).
    let bytes = megabytes * 1_000_000;
    let gb = bytes as f64 / 1e9;
    let (mut d, mut g) = (Vec::new(), Vec::new());
    let (mut dcpu, mut gcpu) = (Vec::new(), Vec::new());
    let settle = || std::thread::sleep(Duration::from_millis(300));
    quiesce(demo.pid())?;
    for _ in 0..3 {
        let before = Cpu::now(sshd_pid, demo.pid())?;
        d.push(pull(direct(), bytes)?);
        settle();
        let middle = Cpu::now(sshd_pid, demo.pid())?;
        dcpu.push(middle.since(before));
        g.push(pull(via_gateway(), bytes)?);
        settle();
        gcpu.push(Cpu::now(sshd_pid, demo.pid())?.since(middle));
        quiesce(demo.pid())?;
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
    let med = |v: Vec<f64>| {
        let mut v = v;
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let direct_total = med(dcpu.iter().map(|c| c.direct() / gb).collect());
    let gateway_total = med(gcpu.iter().map(|c| c.through_gateway() / gb).collect());
    println!("CPU seconds per GB (median of 3):");
    println!(
        "  direct               {direct_total:>8.2} s   (sshd and its shell {:.2}, ssh client {:.2})",
        med(dcpu.iter().map(|c| c.sshd / gb).collect()),
        med(dcpu.iter().map(|c| c.clients / gb).collect()),
    );
    println!(
        "  through the gateway  {gateway_total:>8.2} s   (gateway {:.2}: both ciphers, relay, recording with zstd, indexing; sshd {:.2}, client {:.2})   ratio {:.2}x direct",
        med(gcpu.iter().map(|c| c.gateway / gb).collect()),
        med(gcpu.iter().map(|c| c.sshd / gb).collect()),
        med(gcpu.iter().map(|c| c.clients / gb).collect()),
        gateway_total / direct_total.max(f64::MIN_POSITIVE)
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

    // Keystroke echo in a shell.
    let keys = rounds.max(50) * 4;
    let (sd, sg) = (
        summarize(&echo_latency(direct(), keys)?),
        summarize(&echo_latency(via_gateway(), keys)?),
    );
    println!("keystroke echo in an interactive shell ({keys} keys):");
    println!("  {}", sd.line("direct sshd"));
    println!("  {}", sg.line("through the gateway"));
    println!(
        "  added by the gateway (p50) {:.2} ms",
        (sg.p50.as_secs_f64() - sd.p50.as_secs_f64()) * 1e3
    );

    // Revocation: from the revoke call (sent, and returned) to the vendor's ssh exiting. The
    // session often ends before the HTTP answer arrives: that counts as 0 after return.
    let (mut from_sent, mut latencies) = (Vec::new(), Vec::new());
    let mut current = id;
    for _ in 0..rounds {
        let mut running = via_gateway()
            .arg("sleep 120")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // Wait for the session to be live (the asset runs sleep).
        std::thread::sleep(Duration::from_millis(400));
        let sent = Instant::now();
        eng1.post(
            &format!("/grants/{current}/revoke"),
            json!({ "reason": "bench" }),
        )
        .await?;
        let revoked = Instant::now();
        running.wait()?;
        let exited = Instant::now();
        from_sent.push(exited - sent);
        latencies.push(exited.saturating_duration_since(revoked));
        current = grant(&vendor, &eng1, &public, &certificate).await?;
    }
    println!("revocation to channel closed ({rounds} sessions):");
    println!(
        "  {}",
        summarize(&from_sent).line("revoke sent -> vendor's ssh exits")
    );
    println!(
        "  {}",
        summarize(&latencies).line("revoke -> vendor's ssh exits")
    );

    Ok(())
}
