//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// otgate: just-in-time, command-scoped, recorded access to industrial assets.
#[derive(Parser)]
#[command(name = "otgate", version, about, propagate_version = true)]
pub struct Cli {
    /// Print JSON instead of tables (list and show commands).
    #[arg(long, global = true)]
    pub json: bool,
    /// Where the otgate API is (client commands), e.g. https://gateway.plant:8443.
    #[arg(long, global = true, env = "OTGATE_SERVER")]
    pub server: Option<String>,
    /// CA certificate that signed the server's certificate (client commands).
    #[arg(long, global = true, env = "OTGATE_CA")]
    pub ca: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Subcommand)]
pub enum Command {
    /// Create a data directory: configuration, keys, CA, database, and an admin user.
    Init(InitArgs),
    /// Run the roles named in the configuration.
    Serve {
        /// Configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run a complete demo plant on embedded defaults (initialises it on first run).
    Demo(DemoArgs),
    /// Validate a configuration and its inventory without binding ports.
    Check {
        /// Configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the OpenAPI document of the API.
    Openapi,
    /// Log in and keep the token for the next commands.
    Login(LoginArgs),
    /// Forget the saved token and revoke it.
    Logout,
    /// The plant inventory.
    #[command(subcommand)]
    Assets(AssetsCommand),
    /// User accounts (admins).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Your SSH public keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Asset credentials in the vault (admins).
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Access requests.
    #[command(subcommand)]
    Request(RequestCommand),
    /// Grants and their credentials.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Quarantine of vendors and assets.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// The event log.
    Events(EventsArgs),
    /// SSH to a grant's asset through the gateway: fetches the certificate for your key and
    /// runs the system `ssh` (plain `ssh` works as well; see the README).
    Ssh(SshArgs),
    /// Tunnel local TCP connections to a grant's Modbus or TCP endpoint over QUIC: any tool
    /// on this machine talks to `--listen` as if it were the PLC.
    Connect(ConnectArgs),
    /// Recorded sessions: list, show, full-text search.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Play a session's terminal recording with its events, or export it as asciicast v2.
    Replay(ReplayArgs),
    /// Verify recordings, export evidence bundles, write incident reports.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Detector and external alerts: list, show, report, mark false positives.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// The anomaly detector offline: evaluate it on recorded or public data.
    #[command(subcommand)]
    Detector(DetectorCommand),
}

/// `otgate alerts ...`.
#[derive(Subcommand)]
pub enum AlertsCommand {
    /// Alerts you may see, newest first.
    List {
        /// Only those that touched this session.
        #[arg(long)]
        session: Option<String>,
        /// Only about this asset.
        #[arg(long)]
        asset: Option<String>,
        /// Only about this vendor.
        #[arg(long)]
        vendor: Option<String>,
    },
    /// One alert with its findings.
    Show {
        /// Alert id.
        id: i64,
    },
    /// Report an external alert from a JSON file (generic or Suricata EVE; `-` for stdin).
    Report {
        /// The file.
        file: PathBuf,
    },
    /// Mark an alert a false positive: the detector learns its events as normal.
    FalsePositive {
        /// Alert id.
        id: i64,
        /// Why it was not a threat.
        #[arg(long)]
        note: String,
    },
}

/// `otgate detector ...`.
#[derive(Subcommand)]
pub enum DetectorCommand {
    /// Score data offline with the live detector's code; print hit rate, false-alarm rate,
    /// ROC points and AUC.
    Eval(EvalArgs),
}

/// `otgate detector eval`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("data").required(true).args(["sea", "events", "pcap"])))]
pub struct EvalArgs {
    /// A masquerade data set in the SEA layout: `User<N>` files and `labels.txt`.
    #[arg(long)]
    pub sea: Option<PathBuf>,
    /// An event stream in JSON lines (commands or Modbus requests, optional labels).
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// A Modbus/TCP capture (pcap), with `--labels`.
    #[arg(long, requires = "labels")]
    pub pcap: Option<PathBuf>,
    /// Per-packet labels for `--pcap` (`index;0|1`).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// The false-alarm rate the SEA thresholds are calibrated to, on training data only.
    #[arg(long, default_value_t = 0.013)]
    pub max_false_alarm: f64,
    /// A configuration whose `[detector]` section to use (default: built-in settings).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// `otgate connect`.
#[derive(Args)]
pub struct ConnectArgs {
    /// The grant.
    pub grant: i64,
    /// The gateway's tunnel address (HOST:PORT, UDP), as `otgate demo` or your admin gives it.
    #[arg(long, env = "OTGATE_GATEWAY")]
    pub gateway: String,
    /// Where local tools connect.
    #[arg(long, default_value = "127.0.0.1:5020")]
    pub listen: std::net::SocketAddr,
    /// Which of the grant's endpoints (by name, or HOST:PORT); needed when it has several.
    #[arg(long)]
    pub endpoint: Option<String>,
}

/// `otgate ssh`.
#[derive(Args)]
pub struct SshArgs {
    /// The grant.
    pub grant: i64,
    /// The gateway's SSH address (HOST:PORT), as `otgate demo` or your admin gives it.
    #[arg(long, env = "OTGATE_GATEWAY")]
    pub gateway: String,
    /// Your private key (its `.pub` must be registered with `otgate keys add`).
    #[arg(long, default_value = "~/.ssh/id_ed25519")]
    pub key: String,
    /// Options passed to ssh as `-o OPTION` (e.g. `UserKnownHostsFile=...`).
    #[arg(short = 'o', value_name = "OPTION")]
    pub options: Vec<String>,
    /// The command to run (an interactive shell when absent), after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// `otgate sessions ...`.
#[derive(Subcommand)]
pub enum SessionsCommand {
    /// Recorded sessions you may see, newest first.
    List {
        /// Only this vendor's.
        #[arg(long)]
        vendor: Option<String>,
        /// Only this asset's.
        #[arg(long)]
        asset: Option<String>,
        /// Only sessions started since: an RFC 3339 time or a duration back (24h, 7days).
        #[arg(long)]
        since: Option<String>,
        /// Only live sessions.
        #[arg(long)]
        live: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One session: who, where, when, how it ended, what verification found.
    Show {
        /// Session id.
        id: String,
    },
    /// End a live session now (engineers of its zone, admins); the vendor sees who and why.
    Kill {
        /// Session id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Hold a live session's input (output still flows) until it is resumed.
    Freeze {
        /// Session id.
        id: String,
        /// Why.
        #[arg(long, default_value = "an engineer is checking this session")]
        reason: String,
    },
    /// Let a frozen session go on.
    Resume {
        /// Session id.
        id: String,
    },
    /// Watch a live session's terminal (read-only) until it ends.
    Watch {
        /// Session id.
        id: String,
    },
    /// Sessions whose commands, terminal output or events contain a phrase, and where.
    Search {
        /// The phrase, e.g. "systemctl restart".
        query: String,
        /// At most this many sessions.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// Where recordings are read from.
#[derive(Args)]
pub struct SourceArgs {
    /// Read recordings from this directory (a copy of `recordings/` works offline) instead of
    /// the server.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The recording public key (PEM) signatures must verify with.
    #[arg(long, env = "OTGATE_RECORDING_KEY")]
    pub key: Option<PathBuf>,
}

/// `otgate replay`.
#[derive(Args)]
pub struct ReplayArgs {
    /// Session id.
    pub id: String,
    /// Speed factor (2 plays twice as fast).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Start here: seconds, mm:ss, or a duration (1m30s); earlier output is drawn at once.
    #[arg(long)]
    pub from: Option<String>,
    /// Longest pause between frames, in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub idle_cap: f64,
    /// Do not show the session's events between frames.
    #[arg(long)]
    pub no_events: bool,
    /// Write the terminal recording as one asciicast v2 file instead of playing it.
    #[arg(long, value_name = "FILE.cast")]
    pub export: Option<PathBuf>,
    /// Write a plain TCP forward's captured bytes to this file as pcap (Wireshark, tshark).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Where to read from.
    #[command(flatten)]
    pub source: SourceArgs,
}

/// `otgate audit ...`.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Re-compute hash chains and file digests and check signatures; exit 1 on any failure.
    Verify {
        /// Session id (or --all).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every recording.
        #[arg(long)]
        all: bool,
        /// Where to read from, and the key.
        #[command(flatten)]
        source: SourceArgs,
    },
    /// An evidence bundle (zip): recording, manifest, key, verification, timeline.
    Export {
        /// Session id.
        id: String,
        /// The zip to write.
        #[arg(long)]
        out: PathBuf,
        /// Where to read from, and the key.
        #[command(flatten)]
        source: SourceArgs,
    },
    /// An incident timeline over the sessions of a period (24 h early warning, 72 h
    /// notification), in Markdown.
    Report {
        /// Start of the period: an RFC 3339 time or a duration back (24h, 3days).
        #[arg(long)]
        since: String,
        /// End of the period (default now).
        #[arg(long)]
        until: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where to read from, and the key.
        #[command(flatten)]
        source: SourceArgs,
    },
}

/// `otgate init`.
#[derive(Args)]
pub struct InitArgs {
    /// Directory to create (must not hold a configuration yet).
    #[arg(long)]
    pub dir: PathBuf,
    /// Address the API listens on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Address the SSH gateway listens on.
    #[arg(long, default_value = "127.0.0.1:2222")]
    pub ssh_listen: SocketAddr,
    /// Extra host names or addresses for the server certificate.
    #[arg(long = "hostname")]
    pub hostnames: Vec<String>,
    /// Name of the first admin.
    #[arg(long, default_value = "admin")]
    pub admin: String,
}

/// `otgate demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Demo directory (created on first run).
    #[arg(long, default_value = "otgate-demo")]
    pub dir: PathBuf,
    /// Address the API listens on (port 0 picks a free one; demo.json tells which).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Address the SSH gateway listens on (port 0 picks a free one; demo.json tells which).
    #[arg(long)]
    pub ssh_listen: Option<SocketAddr>,
    /// Demo helpers.
    #[command(subcommand)]
    pub command: Option<DemoCommand>,
}

/// Demo helpers.
#[derive(Subcommand)]
pub enum DemoCommand {
    /// Print a seeded user's current authenticator code.
    Totp {
        /// User name from demo.json.
        user: String,
    },
}

/// `otgate login`.
#[derive(Args)]
pub struct LoginArgs {
    /// User name.
    #[arg(long, short)]
    pub user: String,
    /// Read the password from the first line of standard input (and a new password from the
    /// second, when a one-time password must be changed).
    #[arg(long)]
    pub password_stdin: bool,
    /// Authenticator code.
    #[arg(long)]
    pub totp: Option<String>,
}

/// `otgate assets ...`.
#[derive(Subcommand)]
pub enum AssetsCommand {
    /// Assets you can see.
    List,
    /// One asset.
    Show {
        /// Asset name.
        name: String,
    },
    /// Add or change one asset from a TOML file.
    Add {
        /// TOML file describing one asset.
        file: PathBuf,
    },
    /// Import zones and assets from an inventory TOML file (all or nothing).
    Import {
        /// Inventory file.
        file: PathBuf,
    },
}

/// Roles as typed on the command line.
#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Asks for access.
    Vendor,
    /// Approves and watches.
    Engineer,
    /// Reads recordings and events.
    Auditor,
    /// Manages assets, users, policy.
    Admin,
    /// An IDS/EDR integration: posts alerts only.
    Sensor,
}

/// `otgate users ...`.
#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user; prints a one-time password.
    Add {
        /// Login name.
        name: String,
        /// Role (repeatable).
        #[arg(long = "role")]
        roles: Vec<RoleArg>,
        /// Zone where the roles hold (repeatable; default every zone).
        #[arg(long = "zone")]
        zones: Vec<String>,
        /// Vendor organisation.
        #[arg(long)]
        org: Option<String>,
        /// Full name.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Every user.
    List,
    /// Replace a user's roles (a vendor keeps their organisation).
    Roles {
        /// Login name.
        name: String,
        /// Role (repeatable; none leaves a vendor with their organisation only).
        #[arg(long = "role")]
        roles: Vec<RoleArg>,
        /// Zone where the roles hold (repeatable; default every zone).
        #[arg(long = "zone")]
        zones: Vec<String>,
    },
    /// Disable an account: its sign-ins, tokens and live sessions end.
    Disable {
        /// Login name.
        name: String,
        /// Why (kept for auditors).
        #[arg(long)]
        reason: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// Login name.
        name: String,
    },
}

/// `otgate keys ...`.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Register an SSH public key (the .pub file).
    Add {
        /// Public key file.
        file: PathBuf,
    },
    /// Your registered keys.
    List,
}

/// Credential kinds as typed.
#[derive(Clone, Copy, ValueEnum)]
pub enum CredentialKindArg {
    /// A password.
    Password,
    /// An OpenSSH private key.
    PrivateKey,
}

/// `otgate vault ...`.
#[derive(Subcommand)]
pub enum VaultCommand {
    /// Store an asset credential (read from --file, or standard input).
    Add {
        /// Credential name (referenced by asset endpoints).
        name: String,
        /// Kind.
        #[arg(long, value_enum)]
        kind: CredentialKindArg,
        /// File holding the secret.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Names and kinds (never the secrets).
    List,
}

/// Protocols as typed.
#[derive(Clone, Copy, ValueEnum)]
pub enum ProtocolArg {
    /// SSH.
    Ssh,
    /// Modbus/TCP.
    Modbus,
    /// Plain TCP.
    Tcp,
}

/// `otgate request ...`.
#[derive(Subcommand)]
pub enum RequestCommand {
    /// Ask for access.
    Create {
        /// Asset name.
        #[arg(long)]
        asset: String,
        /// Protocol (repeatable).
        #[arg(long = "protocol", value_enum, required = true)]
        protocols: Vec<ProtocolArg>,
        /// A scope file (TOML) or a preset: read-only, maintenance.
        #[arg(long)]
        scope: String,
        /// Start: `now`, `+30m`, or an RFC 3339 time.
        #[arg(long, default_value = "now")]
        start: String,
        /// Length, e.g. 2h or 90m.
        #[arg(long)]
        duration: String,
        /// Why (shown to approvers and auditors).
        #[arg(long)]
        reason: String,
        /// Change or work-order ticket.
        #[arg(long)]
        ticket: Option<String>,
    },
    /// Requests you can see.
    List(ListFilter),
    /// One request.
    Show {
        /// Request id.
        id: String,
    },
    /// Approve (engineers).
    Approve {
        /// Request id.
        id: String,
    },
    /// Deny (engineers).
    Deny {
        /// Request id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Withdraw your own pending request.
    Withdraw {
        /// Request id.
        id: String,
    },
}

/// Filters of list commands.
#[derive(Args)]
pub struct ListFilter {
    /// Only this status (pending, approved, active, expired, revoked, denied, withdrawn).
    #[arg(long)]
    pub status: Option<String>,
    /// Only this vendor.
    #[arg(long)]
    pub vendor: Option<String>,
    /// Only this asset.
    #[arg(long)]
    pub asset: Option<String>,
}

/// `otgate grant ...`.
#[derive(Subcommand)]
pub enum GrantCommand {
    /// Grants you can see.
    List(ListFilter),
    /// One grant.
    Show {
        /// Grant id.
        id: String,
    },
    /// Revoke a grant, or every live grant of a vendor.
    Revoke {
        /// Grant id.
        #[arg(required_unless_present = "vendor", conflicts_with = "vendor")]
        id: Option<String>,
        /// Revoke every live grant of this vendor instead.
        #[arg(long)]
        vendor: Option<String>,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Write the OpenSSH certificate for your registered key.
    Cert {
        /// Grant id.
        id: String,
        /// Which key: its .pub file or fingerprint (needed when you registered several).
        #[arg(long)]
        key: Option<String>,
        /// Where to write it (default: beside --key as *-cert.pub, else grant-ID-cert.pub).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print a tunnel token (JWT) for the grant.
    Token {
        /// Grant id.
        id: String,
    },
}

/// `otgate quarantine ...`.
#[derive(Subcommand)]
pub enum QuarantineCommand {
    /// Quarantine a vendor.
    Vendor {
        /// Vendor user name.
        name: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// How long (default 2h).
        #[arg(long)]
        duration: Option<String>,
    },
    /// Quarantine an asset.
    Asset {
        /// Asset name.
        name: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// How long (default 2h).
        #[arg(long)]
        duration: Option<String>,
    },
    /// Active and recent quarantines.
    List,
    /// End a quarantine early.
    Lift {
        /// Quarantine id.
        id: i64,
    },
}

/// Event output formats.
#[derive(Clone, Copy, Default, ValueEnum)]
pub enum EventFormat {
    /// One line per event for people.
    #[default]
    Text,
    /// JSON lines, for SIEMs.
    Json,
    /// ArcSight CEF lines, for SIEMs.
    Cef,
}

/// `otgate events`.
#[derive(Args)]
pub struct EventsArgs {
    /// Keep printing events as they happen.
    #[arg(long, short)]
    pub follow: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: EventFormat,
    /// Start after this sequence number.
    #[arg(long, default_value_t = 0)]
    pub after: i64,
    /// At most this many (without --follow).
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
}
