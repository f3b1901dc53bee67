//! Test harness: the demo as a child process, a CLI session per user, an OpenSSH `sshd` per
//! test on an ephemeral port. Every peer is killed by its guard's `Drop`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const OTGATE: &str = env!("CARGO_BIN_EXE_otgate");

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path =
            std::env::temp_dir().join(format!("otgate-e2e-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether a peer program is there; fails under `OTGATE_REQUIRE_PEERS=1` when it is not.
pub fn peer_available(program: &str) -> bool {
    let found = Path::new(program).is_file()
        || Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("OTGATE_REQUIRE_PEERS").as_deref() != Ok("1"),
            "{program} is required (OTGATE_REQUIRE_PEERS=1) but not installed"
        );
        eprintln!("skipping the part that needs {program}: not installed");
    }
    found
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `otgate demo` running in its own directory.
pub struct Demo {
    child: Child,
    pub dir: TempDir,
    pub file: Value,
}

impl Demo {
    pub fn start() -> Self {
        let dir = TempDir::new("demo");
        let (child, file) = Self::spawn(&dir, "127.0.0.1:0", None);
        Self { child, dir, file }
    }

    /// Stops the demo, appends `config` to its otgate.toml, and starts it again on the same
    /// HTTPS port (what it seeded is kept).
    pub fn restart_with(&mut self, config: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let path = self.plant().join("otgate.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(config);
        std::fs::write(&path, text).unwrap();
        let listen = self.file["api"]
            .as_str()
            .unwrap()
            .trim_start_matches("https://")
            .to_owned();
        let demo_json = self.plant().join("demo.json");
        let before = std::fs::metadata(&demo_json).unwrap().modified().unwrap();
        let (child, file) = Self::spawn(&self.dir, &listen, Some(before));
        self.child = child;
        self.file = file;
    }

    /// Starts the demo; waits for a demo.json written after `after`, when given.
    fn spawn(dir: &TempDir, listen: &str, after: Option<std::time::SystemTime>) -> (Child, Value) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("demo.log"))
            .unwrap();
        let child = Command::new(OTGATE)
            .args([
                "demo",
                "--listen",
                listen,
                "--ssh-listen",
                "127.0.0.1:0",
                "--dir",
            ])
            .arg(dir.path().join("plant"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let demo_json = dir.path().join("plant/demo.json");
        let deadline = Instant::now() + Duration::from_secs(60);
        let file = loop {
            let fresh = after.is_none_or(|after| {
                std::fs::metadata(&demo_json)
                    .and_then(|m| m.modified())
                    .is_ok_and(|modified| modified > after)
            });
            if let Some(file) = std::fs::read_to_string(&demo_json)
                .ok()
                .filter(|_| fresh)
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            {
                break file;
            }
            assert!(Instant::now() < deadline, "the demo did not start: {}", {
                let log = std::fs::read_to_string(dir.path().join("demo.log")).unwrap_or_default();
                let tail: String = log.chars().rev().take(4000).collect();
                tail.chars().rev().collect::<String>()
            });
            std::thread::sleep(Duration::from_millis(100));
        };
        (child, file)
    }

    pub fn plant(&self) -> PathBuf {
        self.dir.path().join("plant")
    }

    pub fn user(&self, name: &str) -> &Value {
        self.file["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .unwrap()
    }

    /// A CLI session with its own saved login.
    pub fn cli(&self, name: &str) -> Session<'_> {
        let config_dir = self.dir.path().join(format!("cli-{name}"));
        std::fs::create_dir_all(&config_dir).unwrap();
        Session {
            demo: self,
            name: name.to_owned(),
            config_dir,
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One user's CLI.
pub struct Session<'a> {
    demo: &'a Demo,
    pub name: String,
    config_dir: PathBuf,
}

impl Session<'_> {
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = Command::new(OTGATE);
        command
            .args(args)
            .env("OTGATE_SERVER", self.demo.file["api"].as_str().unwrap())
            .env("OTGATE_CA", self.demo.file["ca"].as_str().unwrap())
            .env("OTGATE_CONFIG_DIR", &self.config_dir)
            .env_remove("OTGATE_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    /// Starts a long-running command (such as `events --follow`), its stdout piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        Command::new(OTGATE)
            .args(args)
            .env("OTGATE_SERVER", self.demo.file["api"].as_str().unwrap())
            .env("OTGATE_CA", self.demo.file["ca"].as_str().unwrap())
            .env("OTGATE_CONFIG_DIR", &self.config_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(
            out.status.success(),
            "{} `otgate {}` failed: {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects failure with exit code 1 and a message containing `needle`.
    pub fn refused(&self, args: &[&str], needle: &str) {
        let out = self.run(args, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{} `otgate {}` should fail: {stderr}",
            self.name,
            args.join(" ")
        );
        assert!(
            stderr.contains(needle),
            "`otgate {}`: expected `{needle}` in: {stderr}",
            args.join(" ")
        );
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Logs in with the password from demo.json and, if seeded, a current TOTP code.
    pub fn login(&self) {
        let user = self.demo.user(&self.name);
        let password = format!("{}\n", user["password"].as_str().unwrap());
        let mut args = vec![
            "login".to_owned(),
            "--user".to_owned(),
            self.name.clone(),
            "--password-stdin".to_owned(),
        ];
        if let Some(secret) = user["totp_secret"].as_str() {
            let seed = totp_rs::Secret::try_from_base32(secret).unwrap();
            let totp = totp_rs::Builder::new()
                .with_secret(seed.as_ref().to_vec())
                .build()
                .unwrap();
            let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
            args.push("--totp".into());
            args.push(totp.generate(now).to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&args, Some(&password));
        assert!(
            out.status.success(),
            "login of {} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// An OpenSSH server that trusts a user CA, started per test and killed on drop.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    _dir: TempDir,
}

pub const SSHD: &str = "/usr/sbin/sshd";

impl Sshd {
    /// Trusts `ca_public_key_file` for certificates naming `principal`, for the current user.
    pub fn start(ca_public_key_file: &Path, principal: &str) -> Self {
        let dir = TempDir::new("sshd");
        let host_key = dir.path().join("host_ed25519");
        let keygen = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .output()
            .unwrap();
        assert!(keygen.status.success());
        std::fs::write(dir.path().join("principals"), format!("{principal}\n")).unwrap();
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {dir}/sshd.pid\nAuthorizedKeysFile none\n\
             AuthorizedPrincipalsFile {dir}/principals\nTrustedUserCAKeys {ca}\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             PermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
            host = host_key.display(),
            dir = dir.path().display(),
            ca = ca_public_key_file.display(),
        );
        let config_path = dir.path().join("sshd_config");
        std::fs::write(&config_path, config).unwrap();
        // Debian's sshd wants its privilege separation directory when run as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let log = dir.path().join("sshd.log");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(&config_path)
            .arg("-E")
            .arg(&log)
            .spawn()
            .unwrap();
        wait_for_port(port, "sshd");
        Self {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    /// Runs `command` over SSH as the current user with `key` and its certificate.
    pub fn ssh(&self, key: &Path, certificate: &Path, command: &str) -> Output {
        let user =
            String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        Command::new("ssh")
            .args(["-F", "/dev/null", "-i"])
            .arg(key)
            .arg("-o")
            .arg(format!("CertificateFile={}", certificate.display()))
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
            ])
            .arg(self.port.to_string())
            .arg(format!("{}@127.0.0.1", user.trim()))
            .arg(command)
            .output()
            .unwrap()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OpenSSH server acting as an asset: its own host key, and the gateway's service key in
/// `authorized_keys` for the current user.
pub struct AssetSshd {
    child: Child,
    pub port: u16,
    /// The host public key, OpenSSH format (what the inventory pins).
    pub host_key: String,
    /// The service private key the vault holds.
    pub service_key: PathBuf,
    _dir: TempDir,
}

impl AssetSshd {
    pub fn start() -> Self {
        let dir = TempDir::new("asset-sshd");
        let keygen = |path: &Path| {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path)
                .output()
                .unwrap();
            assert!(out.status.success());
        };
        let host_key = dir.path().join("host_ed25519");
        let service_key = dir.path().join("service_ed25519");
        keygen(&host_key);
        keygen(&service_key);
        std::fs::copy(
            service_key.with_extension("pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             PermitRootLogin prohibit-password\nLogLevel VERBOSE\nSubsystem sftp internal-sftp\n",
            host = host_key.display(),
            dir = dir.path().display(),
        );
        let config_path = dir.path().join("sshd_config");
        std::fs::write(&config_path, config).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(&config_path)
            .arg("-E")
            .arg(dir.path().join("sshd.log"))
            .spawn()
            .unwrap();
        wait_for_port(port, "asset sshd");
        let host_key = std::fs::read_to_string(host_key.with_extension("pub"))
            .unwrap()
            .trim()
            .to_owned();
        Self {
            child,
            port,
            host_key,
            service_key,
            _dir: dir,
        }
    }
}

impl AssetSshd {
    /// Puts this sshd in the demo's inventory as `name` (level 3, zone site-ops): its host key
    /// pinned, the service key vaulted as `<name>-service`, `extra` endpoints (TOML inline
    /// tables) beside the ssh one. Returns the login user on the asset.
    pub fn register(
        &self,
        demo: &Demo,
        admin: &Session<'_>,
        name: &str,
        extra: &[String],
    ) -> String {
        self.register_at(demo, admin, name, "3", "site-ops", extra)
    }

    /// As [`Self::register`], on `level` in `zone`.
    pub fn register_at(
        &self,
        demo: &Demo,
        admin: &Session<'_>,
        name: &str,
        level: &str,
        zone: &str,
        extra: &[String],
    ) -> String {
        let credential = format!("{name}-service");
        admin.ok(&[
            "vault",
            "add",
            &credential,
            "--kind",
            "private-key",
            "--file",
            self.service_key.to_str().unwrap(),
        ]);
        let me = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        let mut endpoints = vec![format!(
            "{{ protocol = \"ssh\", host = \"127.0.0.1\", port = {port}, host_key = \"{key}\", credential = \"{credential}\", user = \"{user}\" }}",
            port = self.port,
            key = self.host_key,
            user = me.trim()
        )];
        endpoints.extend(extra.iter().cloned());
        let file = demo.dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &file,
            format!(
                "name = \"{name}\"\nkind = \"ews\"\nlevel = \"{level}\"\nzone = \"{zone}\"\nendpoints = [{}]\n",
                endpoints.join(", ")
            ),
        )
        .unwrap();
        admin.ok(&["assets", "add", file.to_str().unwrap()]);
        me.trim().to_owned()
    }
}

impl Drop for AssetSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stock `ssh` client through the gateway with a key and its certificate.
pub fn ssh_via_gateway(gateway: &str, login: &str, key: &Path, certificate: &Path) -> Command {
    client_via_gateway("ssh", "-p", &[], gateway, login, key, certificate)
}

/// The stock `sftp` client through the gateway, running the commands in `batch`.
pub fn sftp_via_gateway(
    gateway: &str,
    login: &str,
    key: &Path,
    certificate: &Path,
    batch: &Path,
) -> Command {
    let batch = ["-b", batch.to_str().unwrap()];
    client_via_gateway("sftp", "-P", &batch, gateway, login, key, certificate)
}

/// An OpenSSH client (`ssh` or `sftp`, which spell the port flag differently) in batch mode
/// with a key and its certificate, trusting any host key (the gateway's is fresh per test).
fn client_via_gateway(
    program: &str,
    port_flag: &str,
    extra: &[&str],
    gateway: &str,
    login: &str,
    key: &Path,
    certificate: &Path,
) -> Command {
    let (host, port) = gateway.rsplit_once(':').unwrap();
    let mut command = Command::new(program);
    command
        .args(["-F", "/dev/null", "-i"])
        .arg(key)
        .arg("-o")
        .arg(format!("CertificateFile={}", certificate.display()))
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
            port_flag,
            port,
        ])
        .args(extra)
        .arg(format!("{login}@{host}"));
    command
}

/// A grant on `asset` for `protocols` with the `scope` preset for `duration`, requested by
/// `vendor`, approved by `engineer`, with a certificate for `key` (written beside it).
pub fn grant(
    vendor: &Session<'_>,
    engineer: &Session<'_>,
    asset: &str,
    protocols: &[&str],
    scope: &str,
    duration: &str,
    key: &Path,
) -> String {
    let mut args = vec!["request", "create", "--asset", asset];
    for protocol in protocols {
        args.extend(["--protocol", protocol]);
    }
    args.extend([
        "--scope",
        scope,
        "--duration",
        duration,
        "--reason",
        "maintenance by the vendor",
    ]);
    let id = vendor.json(&args)["id"].as_i64().unwrap().to_string();
    engineer.ok(&["request", "approve", &id]);
    let public = format!("{}.pub", key.display());
    vendor.ok(&["grant", "cert", &id, "--key", &public]);
    id
}

/// The live session on `asset`, once the gateway lists it.
pub fn live_session(engineer: &Session<'_>, asset: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live = engineer.json(&["sessions", "list", "--live"]);
        if let Some(session) = live
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["asset"] == asset)
        {
            return session["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "the live session was not listed");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether `python3` can import `module`; fails under `OTGATE_REQUIRE_PEERS=1` when not.
pub fn python_module(module: &str) -> bool {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("OTGATE_REQUIRE_PEERS").as_deref() != Ok("1"),
            "the Python module {module} is required (OTGATE_REQUIRE_PEERS=1) but missing"
        );
        eprintln!("skipping the part that needs the Python module {module}");
    }
    found
}

/// The folder of the Python peers (pymodbus PLC and client).
fn peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/peers")
}

/// A pymodbus server acting as the PLC (unit 1; register N holds N).
pub struct ModbusPlc {
    child: Child,
    pub port: u16,
}

impl ModbusPlc {
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new("python3")
            .arg(peers().join("modbus_plc.py"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, "the pymodbus PLC");
        Self { child, port }
    }
}

impl Drop for ModbusPlc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs pymodbus's client against `port` for `unit`: one JSON result per operation.
pub fn modbus_client(port: u16, unit: u8, ops: Value) -> Vec<Value> {
    let out = Command::new("python3")
        .arg(peers().join("modbus_client.py"))
        .arg(port.to_string())
        .arg(unit.to_string())
        .arg(ops.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}
