//! The demo's simulated engineering workstation: a small SSH server of ours (russh) that
//! answers a few commands like a Linux EWS running a historian agent, so a newcomer can ssh
//! through the gateway in the first minute without a real asset. It trusts exactly one key:
//! the gateway's vaulted service key.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{self, Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId, ChannelMsg, MethodKind, MethodSet};

/// The prompt of the simulated shell.
const PROMPT: &str = "engineer@ews-sim:~$ ";

/// What a command prints and its exit status.
fn run(line: &str) -> (String, u32) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let text = match words.as_slice() {
        [] => return (String::new(), 0),
        ["uptime"] => {
            " 10:42:01 up 41 days,  3:12,  1 user,  load average: 0.08, 0.05, 0.01\n".into()
        }
        ["hostname"] => "ews-sim\n".into(),
        ["whoami"] => "engineer\n".into(),
        ["id"] => "uid=1000(engineer) gid=1000(engineer) groups=1000(engineer),27(sudo)\n".into(),
        ["date"] => format!("{}\n", time::OffsetDateTime::now_utc()),
        ["uname", ..] => {
            "Linux ews-sim 6.1.0-28-amd64 #1 SMP Debian 6.1.119-1 x86_64 GNU/Linux\n".into()
        }
        ["systemctl", "status", "historian", ..] => {
            "\u{25cf} historian.service - Plant historian agent\n     \
             Loaded: loaded (/etc/systemd/system/historian.service; enabled)\n     \
             Active: active (running) since Mon 2026-10-24 07:30:12 UTC; 41 days ago\n   \
             Main PID: 4242 (historian-agent)\n"
                .into()
        }
        ["systemctl", "restart", "historian", ..] => String::new(),
        ["ls", "/var/log", ..] | ["ls", "-l", "/var/log", ..] => {
            "historian.log\nsyslog\nauth.log\ndpkg.log\n".into()
        }
        ["cat" | "tail", .., "/var/log/historian.log"] => {
            "2026-12-04T10:40:01Z wrote 1200 points to PLC7.Line1.Temp in 3 ms\n\
             2026-12-04T10:41:01Z wrote 1200 points to PLC7.Line1.Temp in 4 ms\n\
             2026-12-04T10:42:01Z wrote 1198 points to PLC7.Line1.Temp in 3 ms (2 stale)\n"
                .into()
        }
        ["echo", rest @ ..] => format!("{}\n", rest.join(" ")),
        [command, ..] => return (format!("sh: 1: {command}: not found\n"), 127),
    };
    (text, 0)
}

fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

#[derive(Clone)]
struct Simulator {
    trusted: PublicKey,
}

impl server::Server for Simulator {
    type Handler = Self;
    fn new_client(&mut self, _: Option<SocketAddr>) -> Self {
        self.clone()
    }
}

/// One channel: an exec, or a line-edited shell.
async fn serve_channel(mut channel: Channel<Msg>) {
    let mut line = String::new();
    while let Some(message) = channel.wait().await {
        match message {
            ChannelMsg::Exec { command, .. } => {
                let (text, status) = run(&String::from_utf8_lossy(&command));
                let _ = channel.data(text.as_bytes()).await;
                let _ = channel.exit_status(status).await;
                let _ = channel.eof().await;
                let _ = channel.close().await;
                return;
            }
            ChannelMsg::RequestShell { .. } => {
                let banner =
                    "Welcome to ews-sim (the otgate demo's simulated engineering workstation).\r\n";
                let _ = channel.data(format!("{banner}{PROMPT}").as_bytes()).await;
            }
            ChannelMsg::Data { data } => {
                let mut echo = String::new();
                for byte in data.iter() {
                    match byte {
                        b'\r' | b'\n' => {
                            let command = std::mem::take(&mut line);
                            if command.trim() == "exit" || command.trim() == "logout" {
                                let _ = channel.data(&b"\r\nlogout\r\n"[..]).await;
                                let _ = channel.exit_status(0).await;
                                let _ = channel.close().await;
                                return;
                            }
                            let (text, _) = run(&command);
                            echo.push_str("\r\n");
                            echo.push_str(&crlf(&text));
                            echo.push_str(PROMPT);
                        }
                        0x7f | 0x08 if line.pop().is_some() => {
                            echo.push_str("\x08 \x08");
                        }
                        0x03 => {
                            line.clear();
                            echo.push_str("^C\r\n");
                            echo.push_str(PROMPT);
                        }
                        0x15 => {
                            for _ in 0..line.chars().count() {
                                echo.push_str("\x08 \x08");
                            }
                            line.clear();
                        }
                        0x04 if line.is_empty() => {
                            let _ = channel.data(&b"\r\nlogout\r\n"[..]).await;
                            let _ = channel.close().await;
                            return;
                        }
                        byte if byte.is_ascii_graphic() || *byte == b' ' => {
                            line.push(char::from(*byte));
                            echo.push(char::from(*byte));
                        }
                        _ => {}
                    }
                }
                let _ = channel.data(echo.as_bytes()).await;
            }
            ChannelMsg::Eof | ChannelMsg::Close => return,
            _ => {}
        }
    }
}

impl server::Handler for Simulator {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _: &str,
        key: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if key.public_key.key_data() == self.trusted.key_data() {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        tokio::spawn(serve_channel(channel));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _: &str,
        _: u32,
        _: u32,
        _: u32,
        _: u32,
        _: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }
}

/// Starts the simulator on a free local port with `host_key`, trusting `trusted`; returns
/// its address. It runs as long as the process.
pub async fn start(host_key: PrivateKey, trusted: PublicKey) -> Result<SocketAddr> {
    let config = Arc::new(server::Config {
        keys: vec![host_key],
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: std::time::Duration::from_millis(100),
        auth_rejection_time_initial: Some(std::time::Duration::ZERO),
        ..server::Config::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("starting the simulated workstation")?;
    let address = listener.local_addr()?;
    let mut simulator = Simulator { trusted };
    tokio::spawn(async move {
        if let Err(e) = simulator.run_on_socket(config, &listener).await {
            tracing::error!(error = %e, "the simulated workstation stopped");
        }
    });
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::run;

    #[test]
    fn the_workstation_answers_a_few_commands() {
        assert!(
            run("systemctl status historian")
                .0
                .contains("active (running)")
        );
        assert_eq!(run("echo hello  world").0, "hello world\n");
        assert_eq!(run("nmap 10.0.0.0/8").1, 127);
    }
}
