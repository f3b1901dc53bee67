//! `otgate demo`: a complete plant on embedded defaults. On first run it lays out the
//! directory, seeds users (one vendor, two engineers, an auditor, an admin, an IDS sensor)
//! with passwords and authenticator secrets, a small plant and the vendor's SSH key; then it
//! serves and writes `demo.json` with every endpoint and credential.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use ssh_key::LineEnding;
use ssh_key::private::Ed25519Keypair;
use time::OffsetDateTime;

use otgate_broker::keys::replace_private;
use otgate_broker::vault::random_bytes;
use otgate_broker::{Broker, NewUser, Principal, generate_password};
use otgate_policy::{
    Asset, AssetName, CredentialName, Domain, OrgName, Preset, Protocol, Role, RoleAssignment,
    UserName, ZoneName,
};

use crate::cli::{DemoArgs, DemoCommand};
use crate::commands::init::lay_out;
use crate::config::{Config, DEFAULT_LISTEN};
use crate::node::Node;

/// The demo plant: a bottling line (levels 1-2), site operations (level 3), a DMZ.
const PLANT: &str = include_str!("demo_plant.toml");

/// A seeded user, as written to demo.json.
#[derive(Clone, Serialize, Deserialize)]
pub struct DemoUser {
    /// Login name.
    pub name: String,
    /// Password.
    pub password: String,
    /// Roles, as `role@zone`.
    pub roles: Vec<String>,
    /// Base32 TOTP secret (engineers and admins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
    /// Vendor organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Private key registered for the user (vendors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<PathBuf>,
}

/// demo.json.
#[derive(Serialize, Deserialize)]
pub struct DemoFile {
    /// API address.
    pub api: String,
    /// CA that signed the API's certificate.
    pub ca: PathBuf,
    /// Configuration file.
    pub config: PathBuf,
    /// The SSH user-certificate CA (for sshd's TrustedUserCAKeys).
    pub ssh_user_ca: String,
    /// Its file.
    pub ssh_user_ca_file: PathBuf,
    /// The SSH gateway's address.
    pub ssh: Option<String>,
    /// The tunnel's address (`otgate connect --gateway`, QUIC over UDP).
    pub tunnel: Option<String>,
    /// A `known_hosts` line for the gateway (its host key, pinned once).
    pub ssh_known_hosts: Option<String>,
    /// The gateway host key's SHA-256 fingerprint.
    pub ssh_host_key_fingerprint: Option<String>,
    /// Where session recordings are kept.
    pub recordings: PathBuf,
    /// The public key that verifies recordings (`otgate audit verify --key`).
    pub recording_public_key: PathBuf,
    /// Seeded users.
    pub users: Vec<DemoUser>,
    /// Commands to try.
    pub try_this: Vec<String>,
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

fn totp_code(secret: &str) -> Result<String> {
    let bytes = totp_rs::Secret::try_from_base32(secret)
        .map_err(|e| anyhow::anyhow!("bad TOTP secret in demo.json: {e}"))?;
    let totp = totp_rs::Builder::new()
        .with_secret(bytes.as_ref().to_vec())
        .build()?;
    Ok(totp
        .generate(u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0))
        .to_string())
}

pub async fn run(args: &DemoArgs) -> Result<()> {
    let demo_json = args.dir.join("demo.json");
    if let Some(DemoCommand::Totp { user }) = &args.command {
        let file: DemoFile = serde_json::from_str(
            &std::fs::read_to_string(&demo_json)
                .with_context(|| format!("reading {}", demo_json.display()))?,
        )?;
        let Some(secret) = file
            .users
            .iter()
            .find(|u| &u.name == user)
            .and_then(|u| u.totp_secret.clone())
        else {
            bail!(
                "{user} has no authenticator secret in {}",
                demo_json.display()
            );
        };
        println!("{}", totp_code(&secret)?);
        return Ok(());
    }

    let config_path = args.dir.join("otgate.toml");
    let fresh = !config_path.exists();
    if fresh {
        let listen: SocketAddr = args.listen.unwrap_or(DEFAULT_LISTEN.parse()?);
        let ssh_listen: SocketAddr = args
            .ssh_listen
            .unwrap_or(crate::config::DEFAULT_SSH_LISTEN.parse()?);
        lay_out(&args.dir, listen, ssh_listen, &[], Some("inventory.toml"))?;
        std::fs::write(args.dir.join("inventory.toml"), PLANT)?;
    }
    let config = Config::load(&config_path)?;
    let node = Node::start(&config, args.listen, args.ssh_listen).await?;
    let users = if fresh {
        seed(&node.broker, &args.dir).await?
    } else {
        let previous: DemoFile =
            serde_json::from_str(&std::fs::read_to_string(&demo_json).with_context(|| {
                format!(
                    "{} is missing: remove {} to start the demo afresh",
                    demo_json.display(),
                    args.dir.display()
                )
            })?)?;
        previous.users
    };
    let workstation = match &node.ssh {
        Some((gateway, _)) => {
            Some(simulated_workstation(&node.broker, &config, &args.dir, fresh, *gateway).await?)
        }
        None => None,
    };
    let plc = match node.tunnel {
        Some(tunnel) => simulated_plc(&node.broker, fresh, tunnel).await?,
        None => Vec::new(),
    };
    let api = format!("https://{}", node.api.context("the demo serves the API")?);
    let ca = absolute(
        &config
            .web
            .ca
            .clone()
            .unwrap_or_else(|| config.data_dir.join("tls/ca.pem")),
    );
    let ssh_user_ca_file = absolute(&config.broker.keys.ssh_ca.with_extension("pub"));
    let dir = absolute(&args.dir);
    let vendor_key = users
        .iter()
        .find_map(|u| u.ssh_key.clone())
        .unwrap_or_default();
    let mut try_this = workstation.unwrap_or_default();
    try_this.extend([
        format!("export OTGATE_SERVER={api} OTGATE_CA={}", ca.display()),
        "otgate login --user vendor1".to_owned(),
        "otgate assets list".to_owned(),
        "otgate request create --asset ews-1 --protocol ssh --scope read-only --duration 1h --reason 'check the backup job'".to_owned(),
        format!("otgate login --user eng1 --totp $(otgate demo --dir {} totp eng1)", dir.display()),
        "otgate request list --status pending".to_owned(),
        "otgate request approve 1".to_owned(),
        "otgate login --user vendor1".to_owned(),
        format!("otgate grant cert 1 --key {}.pub", vendor_key.display()),
        format!("ssh-keygen -L -f {}-cert.pub", vendor_key.display()),
        "otgate events".to_owned(),
        "otgate login --user auditor".to_owned(),
        "otgate sessions list".to_owned(),
        "otgate sessions search 'systemctl restart'".to_owned(),
        format!(
            "otgate audit verify --all --dir {} --key {}",
            absolute(&config.recordings.dir).display(),
            absolute(&otgate_recorder::public_path(&config.recording_key)).display()
        ),
    ]);
    try_this.extend(plc);
    let file = DemoFile {
        api: api.clone(),
        ca,
        config: absolute(&config_path),
        ssh_user_ca: node.broker.keys().ssh_ca_public(),
        ssh_user_ca_file,
        ssh: node.ssh.as_ref().map(|(address, _)| address.to_string()),
        tunnel: node.tunnel.map(|address| address.to_string()),
        ssh_known_hosts: node.ssh.as_ref().and_then(|(address, key)| {
            key.to_openssh()
                .ok()
                .map(|k| format!("[{}]:{} {k}", address.ip(), address.port()))
        }),
        ssh_host_key_fingerprint: node
            .ssh
            .as_ref()
            .map(|(_, key)| key.fingerprint(ssh_key::HashAlg::Sha256).to_string()),
        recordings: absolute(&config.recordings.dir),
        recording_public_key: absolute(&otgate_recorder::public_path(&config.recording_key)),
        users,
        try_this,
    };
    let text = serde_json::to_string_pretty(&file)?;
    replace_private(&demo_json, text.as_bytes())?;
    println!("otgate demo is running at {api} (browser: {api}/ui/)");
    if let (Some(ssh), Some(fingerprint)) = (&file.ssh, &file.ssh_host_key_fingerprint) {
        println!("SSH gateway at {ssh}, host key {fingerprint}");
        if let Some(line) = &file.ssh_known_hosts {
            println!("  known_hosts: {line}");
        }
    }
    println!(
        "Everything you need (users, passwords, authenticator secrets, keys) is in {}",
        absolute(&demo_json).display()
    );
    println!("Try:");
    for line in &file.try_this {
        println!("  {line}");
    }
    println!("Passwords are in demo.json; stop with Ctrl-C.");
    node.run_until_signal().await
}

async fn seed(broker: &Broker, dir: &Path) -> Result<Vec<DemoUser>> {
    let zone = |name: &str| -> Result<Domain> { Ok(Domain::Zone(ZoneName::new(name)?)) };
    let engineer_zones = vec![
        RoleAssignment {
            role: Role::Engineer,
            domain: zone("line-1")?,
        },
        RoleAssignment {
            role: Role::Engineer,
            domain: zone("site-ops")?,
        },
        RoleAssignment {
            role: Role::Engineer,
            domain: zone("dmz")?,
        },
    ];
    let people: Vec<(&str, &str, Vec<RoleAssignment>, Option<&str>)> = vec![
        (
            "admin",
            "Plant administrator",
            vec![RoleAssignment {
                role: Role::Admin,
                domain: Domain::Any,
            }],
            None,
        ),
        ("eng1", "Erika Engineer", engineer_zones.clone(), None),
        ("eng2", "Emil Engineer", engineer_zones, None),
        (
            "auditor",
            "Ada Auditor",
            vec![RoleAssignment {
                role: Role::Auditor,
                domain: Domain::Any,
            }],
            None,
        ),
        (
            "vendor1",
            "Victor Vendor (Acme Automation)",
            Vec::new(),
            Some("acme"),
        ),
        (
            "ids",
            "The plant's IDS (Suricata) reporting alerts",
            vec![RoleAssignment {
                role: Role::Sensor,
                domain: Domain::Any,
            }],
            None,
        ),
    ];
    let mut users = Vec::new();
    for (name, display, roles, org) in people {
        let password = generate_password()?;
        let needs_totp = roles.iter().any(|r| r.role.requires_totp());
        let seed = random_bytes::<20>()?;
        let described: Vec<String> = roles.iter().map(ToString::to_string).collect();
        let new = NewUser {
            name: UserName::new(name)?,
            display_name: Some(display.to_owned()),
            org: org.map(OrgName::new).transpose()?,
            roles,
        };
        broker
            .provision(
                None,
                new,
                password.clone(),
                false,
                needs_totp.then_some(&seed[..]),
            )
            .await?;
        let mut user = DemoUser {
            name: name.to_owned(),
            password: password.expose().clone(),
            roles: if described.is_empty() {
                vec![format!("vendor via {}", org.unwrap_or_default())]
            } else {
                described
            },
            totp_secret: needs_totp.then(|| totp_rs::Secret::from(seed.to_vec()).to_base32()),
            org: org.map(str::to_owned),
            ssh_key: None,
        };
        if org.is_some() {
            user.ssh_key = Some(vendor_key(broker, dir, name).await?);
        }
        users.push(user);
    }
    Ok(users)
}

/// The simulated workstation `ews-sim` behind the gateway: its keys, its vaulted service key,
/// its inventory entry (with the port of this run), and on the first run a grant for vendor1
/// with a certificate beside vendor1's key. Returns the commands to try it.
/// The scope of the seeded setpoint grant: read the tank, write the pump setpoint within
/// bounds.
const SETPOINT_SCOPE: &str = r#"
[modbus]
units = [1]
allow = [
  { access = "read", table = "holding", range = "0-99" },
  { access = "read", table = "input", range = "0-99" },
  { access = "read", table = "coils", range = "0-99" },
  { access = "write", table = "holding", range = "2", values = "0-500" },
]
"#;

/// Starts the simulated PLC, puts it in the inventory (level 1, two approvals) and, on a
/// fresh demo, seeds vendor1 a read-only grant and a setpoint grant; returns what to try.
async fn simulated_plc(broker: &Broker, fresh: bool, tunnel: SocketAddr) -> Result<Vec<String>> {
    let address = crate::plc::start().await?;
    let admin = Principal {
        user: UserName::new("admin")?,
        source: None,
    };
    let asset: Asset = toml::from_str(&format!(
        "name = \"plc-sim\"\nkind = \"plc\"\nlevel = \"1\"\nzone = \"line-1\"\n\
         description = \"The demo's simulated PLC: a tank, an inlet valve, a pump with a setpoint (Modbus/TCP inside otgate)\"\n\
         endpoints = [{{ name = \"modbus\", protocol = \"modbus\", host = \"127.0.0.1\", port = {}, units = [1] }}]\n",
        address.port(),
    ))?;
    broker.save_asset(&admin, asset).await?;
    let mut grants = Vec::new();
    if fresh {
        let principal = |name: &str| -> Result<Principal> {
            Ok(Principal {
                user: UserName::new(name)?,
                source: None,
            })
        };
        let vendor = principal("vendor1")?;
        for (scope, reason) in [
            (
                otgate_broker::ScopeSpec::Preset(Preset::ReadOnly),
                "demo: watch the tank level",
            ),
            (
                otgate_broker::ScopeSpec::Custom(otgate_policy::Scope::from_toml(
                    SETPOINT_SCOPE,
                    "setpoint.toml",
                )?),
                "demo: tune the pump setpoint (0-500 only)",
            ),
        ] {
            let request = broker
                .create_request(
                    &vendor,
                    otgate_broker::NewRequest {
                        asset: AssetName::new("plc-sim")?,
                        protocols: vec![Protocol::Modbus],
                        scope,
                        start: None,
                        duration: "4h".into(),
                        reason: reason.into(),
                        ticket: None,
                    },
                )
                .await?;
            broker.approve(&principal("eng1")?, request.id).await?;
            broker.approve(&principal("eng2")?, request.id).await?;
            grants.push(request.id);
        }
    }
    let connect = |grant: String| {
        format!(
            "otgate connect {grant} --gateway {tunnel} --listen 127.0.0.1:5020   # as vendor1; then point any Modbus tool at 127.0.0.1:5020"
        )
    };
    let (read_only, setpoint) = match grants.as_slice() {
        [a, b] => (a.to_string(), b.to_string()),
        _ => ("READ_ONLY_GRANT".into(), "SETPOINT_GRANT".into()),
    };
    Ok(vec![
        connect(read_only),
        connect(setpoint),
        "python3 -c 'from pymodbus.client import ModbusTcpClient as C; c=C(\"127.0.0.1\", port=5020); c.connect(); print(c.read_holding_registers(0, count=4, slave=1).registers); print(c.write_register(2, 400, slave=1))'".into(),
    ])
}

async fn simulated_workstation(
    broker: &Broker,
    config: &Config,
    dir: &Path,
    fresh: bool,
    gateway: SocketAddr,
) -> Result<Vec<String>> {
    let keys = config.data_dir.join("keys");
    let host = crate::hostkey::load_or_create(&keys.join("ews-sim_host"))?;
    let service = crate::hostkey::load_or_create(&keys.join("ews-sim_service"))?;
    let address = crate::simulator::start(host.clone(), service.public_key().clone()).await?;
    let admin = Principal {
        user: UserName::new("admin")?,
        source: None,
    };
    if fresh {
        broker
            .store_credential(
                &admin,
                otgate_broker::NewCredential {
                    name: CredentialName::new("ews-sim-service")?,
                    kind: otgate_broker::CredentialKind::PrivateKey,
                    secret: otgate_broker::Secret::new(
                        service.to_openssh(LineEnding::LF)?.to_string(),
                    ),
                },
            )
            .await?;
    }
    let asset: Asset = toml::from_str(&format!(
        "name = \"ews-sim\"\nkind = \"ews\"\nlevel = \"3\"\nzone = \"site-ops\"\n\
         description = \"The demo's simulated engineering workstation (an SSH server inside otgate)\"\n\
         endpoints = [{{ protocol = \"ssh\", host = \"127.0.0.1\", port = {}, host_key = \"{}\", credential = \"ews-sim-service\", user = \"engineer\" }}]\n",
        address.port(),
        host.public_key().to_openssh()?
    ))?;
    broker.save_asset(&admin, asset).await?;
    let vendor_key = dir.join("vendor1/id_ed25519");
    if fresh {
        let vendor = Principal {
            user: UserName::new("vendor1")?,
            source: None,
        };
        let eng1 = Principal {
            user: UserName::new("eng1")?,
            source: None,
        };
        let request = broker
            .create_request(
                &vendor,
                otgate_broker::NewRequest {
                    asset: AssetName::new("ews-sim")?,
                    protocols: vec![Protocol::Ssh],
                    scope: otgate_broker::ScopeSpec::Preset(Preset::Maintenance),
                    start: None,
                    duration: "8h".into(),
                    reason: "demo: look around the simulated workstation".into(),
                    ticket: None,
                },
            )
            .await?;
        broker.approve(&eng1, request.id).await?;
        let public = std::fs::read_to_string(vendor_key.with_extension("pub"))?;
        let issued = broker
            .issue_certificate(&vendor, request.id, Some(public.trim()))
            .await?;
        std::fs::write(
            dir.join("vendor1/id_ed25519-cert.pub"),
            format!("{}\n", issued.certificate),
        )?;
    }
    let gateway_key = crate::hostkey::load_or_create(&config.gateway.host_key)?;
    let known_hosts = dir.join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!(
            "[{}]:{} {}\n",
            gateway.ip(),
            gateway.port(),
            gateway_key.public_key().to_openssh()?
        ),
    )?;
    let ssh = format!(
        "ssh -p {} -i {} -o UserKnownHostsFile={} vendor1+ews-sim@{}",
        gateway.port(),
        absolute(&vendor_key).display(),
        absolute(&known_hosts).display(),
        gateway.ip()
    );
    Ok(vec![
        format!("{ssh} 'systemctl status historian'"),
        format!("{ssh}            # a shell on the simulated workstation, recorded"),
    ])
}

/// Generates and registers the vendor's SSH key pair.
async fn vendor_key(broker: &Broker, dir: &Path, name: &str) -> Result<PathBuf> {
    let keys_dir = dir.join(name);
    std::fs::create_dir_all(&keys_dir)?;
    let mut key = ssh_key::PrivateKey::from(Ed25519Keypair::from_seed(&random_bytes::<32>()?));
    key.set_comment(format!("{name}@otgate-demo"));
    let path = keys_dir.join("id_ed25519");
    replace_private(&path, key.to_openssh(LineEnding::LF)?.as_bytes())?;
    let public = key.public_key().to_openssh()?;
    std::fs::write(path.with_extension("pub"), format!("{public}\n"))?;
    let principal = Principal {
        user: UserName::new(name)?,
        source: None,
    };
    broker.register_key(&principal, &public).await?;
    Ok(absolute(&path))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_plant_is_valid() {
        let inventory =
            otgate_policy::Inventory::from_toml(super::PLANT, "demo_plant.toml").unwrap();
        assert!(inventory.assets.iter().any(|a| a.level.is_control()));
    }
}
