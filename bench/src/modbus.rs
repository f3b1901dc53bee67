//! Modbus through the gateway against a direct connection to the same Rust Modbus server
//! (the demo's simulated PLC), in one run: sequential request latency (read 10 holding
//! registers) and requests per second, direct vs the QUIC tunnel (`otgate connect`) vs
//! `ssh -L`, each inspected and recorded; then memory with many concurrent tunnel
//! connections.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::demo::{Demo, otgate};
use crate::ssh::rss_bytes;
use crate::stats::summarize;

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wait_for(port: u16, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("{what} did not listen on {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// One read of 10 holding registers from 0; the time until its response.
fn transact(stream: &mut TcpStream, transaction: u16) -> Result<Duration> {
    let [t0, t1] = transaction.to_be_bytes();
    let request = [t0, t1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 10];
    let mut response = [0u8; 29];
    let start = Instant::now();
    stream.write_all(&request)?;
    stream.read_exact(&mut response)?;
    let took = start.elapsed();
    if response[..2] != [t0, t1] || response[7] != 3 {
        bail!("unexpected response {response:?}");
    }
    Ok(took)
}

fn connect(port: u16) -> Result<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(stream)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub async fn run(requests: usize, concurrent: usize) -> Result<()> {
    let demo = Demo::start()?;
    let vendor = demo.session("vendor1").await?;
    let admin = demo.session("admin").await?;
    let asset = admin.get("/assets/plc-sim").await?;
    let plc = asset["endpoints"][0]["port"]
        .as_u64()
        .context("the simulated PLC's port")? as u16;
    // The seeded read-only grant (demo.json's first `otgate connect` line).
    let grant: String = demo.file["try_this"]
        .as_array()
        .context("try_this")?
        .iter()
        .filter_map(|l| l.as_str()?.strip_prefix("otgate connect "))
        .filter_map(|rest| rest.split_whitespace().next())
        .next()
        .context("no seeded Modbus grant in demo.json")?
        .to_owned();
    let tunnel = demo.file["tunnel"].as_str().context("tunnel")?.to_owned();
    let ssh = demo.file["ssh"].as_str().context("ssh")?.to_owned();

    // The QUIC tunnel client.
    let tunnel_port = free_port()?;
    let config_dir = demo.dir().join("vendor-cli");
    std::fs::create_dir_all(&config_dir)?;
    let connect_client = Running(
        Command::new(otgate()?)
            .args(["connect", &grant, "--gateway", &tunnel, "--listen"])
            .arg(format!("127.0.0.1:{tunnel_port}"))
            .env("OTGATE_SERVER", demo.file["api"].as_str().context("api")?)
            .env("OTGATE_CA", demo.file["ca"].as_str().context("ca")?)
            .env("OTGATE_TOKEN", vendor.token())
            .env("OTGATE_CONFIG_DIR", &config_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_for(tunnel_port, "otgate connect")?;

    // `ssh -L` with the grant's certificate.
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
    let issued = vendor
        .post(
            &format!("/grants/{grant}/certificate"),
            json!({ "key": public.trim() }),
        )
        .await?;
    let certificate = PathBuf::from(format!("{}-cert.pub", key.display()));
    std::fs::write(
        &certificate,
        format!(
            "{}\n",
            issued["certificate"].as_str().context("certificate")?
        ),
    )?;
    let (_, gateway_port) = ssh.rsplit_once(':').context("ssh address")?;
    let forward_port = free_port()?;
    let _ssh = Running(
        crate::ssh::ssh(gateway_port, "vendor1+plc-sim", &key, Some(&certificate))
            .args(["-o", "ExitOnForwardFailure=yes", "-N", "-L"])
            .arg(format!("{forward_port}:127.0.0.1:{plc}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_for(forward_port, "ssh -L")?;

    // Sequential latency, the three paths interleaved in blocks so they share the noise.
    let paths = [
        ("direct", plc),
        ("QUIC tunnel", tunnel_port),
        ("ssh -L", forward_port),
    ];
    let mut streams = Vec::new();
    for (_, port) in paths {
        let mut stream = connect(port)?;
        for i in 0..200 {
            transact(&mut stream, i)?;
        }
        streams.push(stream);
    }
    let mut samples = vec![Vec::with_capacity(requests); paths.len()];
    let mut spent = vec![Duration::ZERO; paths.len()];
    let block = 500.min(requests.max(1));
    let mut done = 0;
    while done < requests {
        let n = block.min(requests - done);
        for (i, stream) in streams.iter_mut().enumerate() {
            let start = Instant::now();
            for k in 0..n {
                samples[i].push(transact(stream, (done + k) as u16)?);
            }
            spent[i] += start.elapsed();
        }
        done += n;
    }
    let direct = summarize(&samples[0]);
    println!(
        "Modbus read of 10 holding registers, sequential, {requests} requests per path (inspected and recorded):"
    );
    for (i, (name, _)) in paths.iter().enumerate() {
        let s = summarize(&samples[i]);
        println!(
            "  {name:<12} p50 {:>7.1} us  p99 {:>7.1} us  {:>7.0} requests/s  added at p50 {:>6.1} us",
            micros(s.p50),
            micros(s.p99),
            requests as f64 / spent[i].as_secs_f64(),
            micros(s.p50) - micros(direct.p50),
        );
    }
    drop(streams);

    // Many concurrent tunnel connections, each with one transaction done, held open.
    std::thread::sleep(Duration::from_secs(2));
    let gateway_before = rss_bytes(demo.pid())?;
    let client_before = rss_bytes(connect_client.0.id())?;
    let mut held = Vec::with_capacity(concurrent);
    for i in 0..concurrent {
        let mut stream = connect(tunnel_port)?;
        transact(&mut stream, i as u16)?;
        held.push(stream);
    }
    std::thread::sleep(Duration::from_secs(2));
    let gateway_during = rss_bytes(demo.pid())?;
    let client_during = rss_bytes(connect_client.0.id())?;
    let per = |during: u64, before: u64| {
        during.saturating_sub(before) as f64 / 1e3 / held.len().max(1) as f64
    };
    println!(
        "{} concurrent tunnel connections (each a stream, a recorded session, a PLC connection):",
        held.len()
    );
    println!(
        "  gateway process  {:.1} MB -> {:.1} MB: {:.1} KB per connection",
        gateway_before as f64 / 1e6,
        gateway_during as f64 / 1e6,
        per(gateway_during, gateway_before)
    );
    println!(
        "  otgate connect   {:.1} MB -> {:.1} MB: {:.1} KB per connection",
        client_before as f64 / 1e6,
        client_during as f64 / 1e6,
        per(client_during, client_before)
    );
    drop(held);
    Ok(())
}
