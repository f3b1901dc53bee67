//! One vendor channel: collects the pty and environment requests, then on `exec` or `shell`
//! checks the grant's scope, starts the recording (no recording, no session), opens the same
//! request on the asset, and relays both ways until either side ends, the grant stops being
//! usable or the recorder fails; the vendor is told why.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use time::OffsetDateTime;

use otgate_policy::{Decision, Event, EventKind, Operation};
use otgate_recorder::layout::new_session_id;
use otgate_recorder::model::Direction;
use otgate_recorder::{EndReason, SessionEvent, SessionInfo, SessionRecorder, Verdict};

use super::console::{Action, Editor};
use super::sftp;
use super::shellguard::{Expired, ShellGuard, Step};
use super::upstream::{self, Upstream};
use super::{Login, env_allowed};
use crate::access::{Access, Shared};
use crate::registry::Registered;

/// What the vendor asked the channel to run.
enum Mode {
    Exec(Vec<u8>),
    Shell,
    /// The SFTP subsystem (accepted by the handler only when the scope allows downloads).
    Sftp,
}

struct Pty {
    term: String,
    cols: u32,
    rows: u32,
}

pub(crate) struct ChannelTask {
    pub shared: Arc<Shared>,
    pub login: Arc<Login>,
    pub upstream: Arc<tokio::sync::Mutex<Option<Arc<Upstream>>>>,
    pub peer: Option<SocketAddr>,
}

/// The vendor's side of the channel, for writing.
type Vendor = ChannelWriteHalf<Msg>;

/// What the vendor typed while a console command ran.
#[derive(Default)]
struct Typed {
    keys: Vec<u8>,
    closed: bool,
}

/// Puts a command's decision on the session's record; a denial is also an event.
async fn judge_command(
    shared: &Shared,
    recorder: &SessionRecorder,
    session: &str,
    grant: &otgate_policy::Grant,
    command: &str,
    decision: &Decision,
) {
    let (verdict, reason) = match decision {
        Decision::Allow { .. } => (Verdict::Allowed, None),
        Decision::Deny { reason, .. } => (Verdict::Denied, Some(reason.to_string())),
    };
    record(
        recorder,
        SessionEvent::Command {
            command: command.to_owned(),
            verdict,
            rule: Some(decision.rule().to_string()),
            reason,
        },
    );
    if verdict == Verdict::Denied {
        shared
            .report(
                Event::now(EventKind::CommandDenied {
                    session: session.to_owned(),
                    grant: grant.id,
                    command: command.to_owned(),
                    decision: decision.to_string(),
                })
                .by(Some(grant.vendor.clone()))
                .in_zone(Some(grant.zone.clone())),
            )
            .await;
    }
}

/// Writes to the vendor's terminal, and records it.
async fn say(vendor: &Vendor, recorder: &SessionRecorder, text: &str) {
    let _ = recorder.output_paced(text.as_bytes()).await;
    let _ = vendor.data(text.as_bytes()).await;
}

/// Writes a line to the vendor's stderr, ends the channel with `status`.
async fn end_with(channel: &Vendor, message: &str, status: u32) {
    let line = format!("otgate: {message}\r\n");
    let _ = channel.extended_data(1, line.as_bytes()).await;
    let _ = channel.exit_status(status).await;
    let _ = channel.eof().await;
    let _ = channel.close().await;
}

fn record(recorder: &SessionRecorder, event: SessionEvent) {
    if let Err(error) = recorder.event(event) {
        tracing::warn!(%error, "recording an event failed");
    }
}

impl ChannelTask {
    pub async fn run(self, channel: Channel<Msg>) {
        let (mut reader, channel) = channel.split();
        let mut pty = None;
        let mut env = BTreeMap::new();
        let mode = loop {
            match reader.wait().await {
                Some(ChannelMsg::RequestPty {
                    term,
                    col_width,
                    row_height,
                    ..
                }) => {
                    pty = Some(Pty {
                        term,
                        cols: col_width,
                        rows: row_height,
                    });
                }
                Some(ChannelMsg::SetEnv {
                    variable_name,
                    variable_value,
                    ..
                }) => {
                    if env_allowed(&variable_name) {
                        env.insert(variable_name, variable_value);
                    }
                }
                Some(ChannelMsg::Exec { command, .. }) => break Mode::Exec(command),
                Some(ChannelMsg::RequestShell { .. }) => break Mode::Shell,
                Some(ChannelMsg::RequestSubsystem { name, .. }) if name == "sftp" => {
                    break Mode::Sftp;
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return,
                Some(_) => {}
            }
        };
        let access = match &self.login.outcome {
            Ok(access) => access,
            Err(message) => return end_with(&channel, message, 1).await,
        };
        self.session(reader, channel, access, mode, pty, env).await;
    }

    #[allow(clippy::too_many_arguments)]
    async fn session(
        &self,
        reader: ChannelReadHalf,
        channel: Vendor,
        access: &Access,
        mode: Mode,
        pty: Option<Pty>,
        env: BTreeMap<String, String>,
    ) {
        let grant = &access.grant;
        let id = new_session_id();
        // A client without a terminal sends 0x0: record the usual 80x24.
        let dimension = |value: u32, default: u32| if value == 0 { default } else { value };
        let (cols, rows) = pty
            .as_ref()
            .map_or((80, 24), |p| (dimension(p.cols, 80), dimension(p.rows, 24)));
        let info = SessionInfo {
            id: id.clone(),
            grant: Some(grant.id.get()),
            vendor: grant.vendor.to_string(),
            asset: grant.asset.to_string(),
            zone: Some(grant.zone.to_string()),
            protocol: "ssh".into(),
            client: self.peer.map(|p| p.to_string()),
            width: u16::try_from(cols).unwrap_or(u16::MAX),
            height: u16::try_from(rows).unwrap_or(u16::MAX),
            env: env.clone(),
            started_at: OffsetDateTime::now_utc(),
        };
        // Fail closed: a session that cannot be recorded does not start.
        let recorder = match self.shared.recorder.start(info).await {
            Ok(recorder) => recorder,
            Err(error) => {
                let reason = format!("recording is unavailable ({error}): no session");
                self.shared
                    .report(Event::now(EventKind::SessionRefused {
                        user: self.login.user.clone(),
                        grant: Some(grant.id),
                        reason: reason.clone(),
                    }))
                    .await;
                return end_with(&channel, &reason, 1).await;
            }
        };
        record(
            &recorder,
            SessionEvent::Authenticated {
                method: "certificate".into(),
                principal: grant.vendor.to_string(),
            },
        );
        let mode_name = match &mode {
            Mode::Exec(_) => "exec",
            Mode::Shell => "shell",
            Mode::Sftp => "sftp",
        };
        self.shared
            .report(
                Event::now(EventKind::SessionStarted {
                    session: id.clone(),
                    grant: grant.id,
                    vendor: grant.vendor.clone(),
                    asset: grant.asset.clone(),
                    mode: mode_name.into(),
                    client: self.peer.map(|p| p.to_string()),
                })
                .by(Some(grant.vendor.clone()))
                .in_zone(Some(grant.zone.clone())),
            )
            .await;
        let registered = self.shared.registry.register(
            &id,
            grant.id,
            grant.vendor.as_str(),
            grant.asset.as_str(),
            &access.token,
        );
        let (reason, words) = self
            .run_session(
                reader,
                &channel,
                access,
                &registered,
                &recorder,
                &id,
                mode,
                pty,
                env,
            )
            .await;
        self.shared.registry.remove(&id);
        if let Err(error) = recorder.finish(reason).await {
            tracing::error!(session = %id, %error, "the recording could not be finished");
        }
        self.shared
            .report(
                Event::now(EventKind::SessionEnded {
                    session: id,
                    grant: grant.id,
                    reason: words,
                })
                .in_zone(Some(grant.zone.clone())),
            )
            .await;
    }

    /// Runs the session; returns how it ended (for the recording and the event log).
    #[allow(clippy::too_many_arguments)]
    async fn run_session(
        &self,
        reader: ChannelReadHalf,
        channel: &Vendor,
        access: &Access,
        registered: &Registered,
        recorder: &SessionRecorder,
        id: &str,
        mode: Mode,
        pty: Option<Pty>,
        env: BTreeMap<String, String>,
    ) -> (EndReason, String) {
        let grant = &access.grant;
        let decision = match &mode {
            Mode::Exec(command) => grant.scope.check(&Operation::Exec(command)),
            Mode::Shell => grant.scope.check(&Operation::Shell),
            Mode::Sftp => grant.scope.check(&Operation::Sftp { write: false }),
        };
        let command_text = match &mode {
            Mode::Exec(command) => String::from_utf8_lossy(command).into_owned(),
            Mode::Shell => "(interactive shell)".into(),
            Mode::Sftp => "(sftp)".into(),
        };
        // A grant with commands but no shell gets the gateway's console instead.
        let console_commands: Vec<String> = grant
            .scope
            .ssh
            .as_ref()
            .map(|ssh| ssh.allow.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        if matches!(mode, Mode::Shell) && !decision.is_allowed() && !console_commands.is_empty() {
            return self
                .console(
                    reader,
                    channel,
                    access,
                    registered,
                    recorder,
                    id,
                    console_commands,
                )
                .await;
        }
        judge_command(&self.shared, recorder, id, grant, &command_text, &decision).await;
        if !decision.is_allowed() {
            let message = format!("grant {} {decision}", grant.id);
            let _ = recorder.output(format!("otgate: {message}\r\n").as_bytes());
            end_with(channel, &message, 126).await;
            return (EndReason::Closed, format!("command denied: {decision}"));
        }

        let upstream = match self.connect(access).await {
            Ok(upstream) => upstream,
            Err(message) => {
                record(
                    recorder,
                    SessionEvent::Note {
                        text: message.clone(),
                    },
                );
                end_with(channel, &message, 1).await;
                return (EndReason::AssetClosed, message);
            }
        };
        let asset_channel = match upstream.channel_open_session().await {
            Ok(c) => c,
            Err(e) => {
                let message = format!("the asset refused a session channel: {e}");
                end_with(channel, &message, 1).await;
                return (EndReason::AssetClosed, message);
            }
        };
        if let Some(pty) = &pty {
            let _ = asset_channel
                .request_pty(false, &pty.term, pty.cols, pty.rows, 0, 0, &[])
                .await;
        }
        for (name, value) in env {
            let _ = asset_channel.set_env(false, name, value).await;
        }
        let mode_is_shell = matches!(mode, Mode::Shell);
        let mode_is_sftp = matches!(mode, Mode::Sftp);
        let started = match mode {
            Mode::Exec(command) => asset_channel.exec(true, command).await,
            Mode::Shell => asset_channel.request_shell(true).await,
            Mode::Sftp => asset_channel.request_subsystem(true, "sftp").await,
        };
        if let Err(e) = started {
            let message = format!("the asset did not start the session: {e}");
            end_with(channel, &message, 1).await;
            return (EndReason::AssetClosed, message);
        }
        if mode_is_sftp {
            let write = grant
                .scope
                .check(&Operation::Sftp { write: true })
                .is_allowed();
            return self
                .sftp(
                    reader,
                    channel,
                    asset_channel,
                    access,
                    registered,
                    recorder,
                    id,
                    write,
                )
                .await;
        }
        let guard = match (&mode_is_shell, &pty) {
            (true, Some(pty)) => Some(ShellGuard::new(pty.cols, pty.rows)),
            _ => None,
        };
        let judge = Judge {
            shared: &self.shared,
            session: id,
            guard,
        };
        relay(
            reader,
            channel,
            asset_channel,
            access,
            registered,
            recorder,
            judge,
        )
        .await
    }

    /// Relays SFTP through the scope's filter: changes refused when only downloads are
    /// allowed; every file's name and bytes on the record.
    #[allow(clippy::too_many_arguments)]
    async fn sftp(
        &self,
        mut vendor_read: ChannelReadHalf,
        vendor: &Vendor,
        asset: Channel<russh::client::Msg>,
        access: &Access,
        registered: &Registered,
        recorder: &SessionRecorder,
        id: &str,
        write: bool,
    ) -> (EndReason, String) {
        let grant = &access.grant;
        let (mut asset_read, asset_write) = asset.split();
        let mut filter = sftp::Filter::new(write);
        let (mut from_vendor, mut from_asset) = (Vec::new(), Vec::new());
        let mut failure = recorder.failure();
        let malformed =
            |e: sftp::Malformed| (EndReason::Closed, format!("malformed SFTP: {}", e.0));
        loop {
            tokio::select! {
                _ = registered.token.cancelled() => {
                    let why = access.end_reason(registered);
                    let _ = vendor.close().await;
                    let _ = asset_write.close().await;
                    return (EndReason::Terminated { by: "otgate".into(), reason: why.clone() }, why);
                }
                _ = failure.changed() => {
                    let _ = vendor.close().await;
                    let _ = asset_write.close().await;
                    return (EndReason::RecordingFailed { reason: "the recorder failed".into() }, "recording failed".into());
                }
                message = vendor_read.wait() => match message {
                    Some(ChannelMsg::Data { data }) => {
                        from_vendor.extend_from_slice(&data);
                        let packets = match sftp::packets(&mut from_vendor) {
                            Ok(packets) => packets,
                            Err(e) => {
                                let _ = vendor.close().await;
                                let _ = asset_write.close().await;
                                return malformed(e);
                            }
                        };
                        for packet in packets {
                            if let Some(done) = filter.closed(&packet) {
                                record(recorder, SessionEvent::FileTransfer {
                                    path: done.path,
                                    direction: if done.write { Direction::Upload } else { Direction::Download },
                                    bytes: done.bytes,
                                    verdict: Verdict::Allowed,
                                });
                            }
                            match filter.vendor_packet(&packet) {
                                Ok(sftp::Verdict::Forward) => {
                                    let _ = asset_write.data(&packet[..]).await;
                                }
                                Ok(sftp::Verdict::Refuse { reply, what }) => {
                                    let decision = grant.scope.check(&Operation::Sftp { write: true });
                                    judge_command(&self.shared, recorder, id, grant, &format!("sftp: {what}"), &decision).await;
                                    let _ = vendor.data(&reply[..]).await;
                                }
                                Err(e) => {
                                    let _ = vendor.close().await;
                                    let _ = asset_write.close().await;
                                    return malformed(e);
                                }
                            }
                        }
                    }
                    Some(ChannelMsg::Eof) => {
                        let _ = asset_write.eof().await;
                    }
                    Some(ChannelMsg::Close) | None => {
                        let _ = asset_write.close().await;
                        return (EndReason::Closed, "sftp closed by the vendor".into());
                    }
                    Some(_) => {}
                },
                message = asset_read.wait() => match message {
                    Some(ChannelMsg::Data { data }) => {
                        from_asset.extend_from_slice(&data);
                        if let Ok(packets) = sftp::packets(&mut from_asset) {
                            for packet in packets {
                                filter.asset_packet(&packet);
                            }
                        } else {
                            from_asset.clear();
                        }
                        let _ = vendor.data(&data[..]).await;
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        let _ = vendor.exit_status(exit_status).await;
                    }
                    Some(ChannelMsg::Eof) => {
                        let _ = vendor.eof().await;
                    }
                    Some(ChannelMsg::Failure) => {
                        let _ = vendor.close().await;
                        return (EndReason::AssetClosed, "the asset refused the SFTP subsystem".into());
                    }
                    Some(ChannelMsg::Close) | None => {
                        let _ = vendor.close().await;
                        return (EndReason::AssetClosed, "sftp closed by the asset".into());
                    }
                    Some(_) => {}
                },
            }
        }
    }

    /// The gateway's console: edits lines locally, runs allowed ones on the asset.
    #[allow(clippy::too_many_arguments)]
    async fn console(
        &self,
        mut reader: ChannelReadHalf,
        vendor: &Vendor,
        access: &Access,
        registered: &Registered,
        recorder: &SessionRecorder,
        id: &str,
        commands: Vec<String>,
    ) -> (EndReason, String) {
        let grant = &access.grant;
        let prompt = format!("{}> ", access.asset.name);
        let mut editor = Editor::new(&commands);
        let mut failure = recorder.failure();
        let banner = format!(
            "otgate console: grant {} on {} runs only its commands (Tab lists them, Ctrl-D ends).\r\n{prompt}",
            grant.id, access.asset.name
        );
        say(vendor, recorder, &banner).await;
        // Keys typed while a command ran, and whether the vendor closed their input meanwhile.
        let mut backlog: Vec<u8> = Vec::new();
        let mut closed = false;
        loop {
            let message = if !backlog.is_empty() {
                Some(ChannelMsg::Data {
                    data: std::mem::take(&mut backlog).into(),
                })
            } else if closed {
                None
            } else {
                tokio::select! {
                    _ = registered.token.cancelled() => {
                        let why = access.end_reason(registered);
                        say(vendor, recorder, &format!("\r\notgate: session ended: {why}\r\n")).await;
                        let _ = vendor.exit_status(255).await;
                        let _ = vendor.close().await;
                        return (EndReason::Terminated { by: "otgate".into(), reason: why.clone() }, why);
                    }
                    _ = failure.changed() => {
                        let _ = vendor.close().await;
                        return (EndReason::RecordingFailed { reason: "the recorder failed".into() }, "recording failed".into());
                    }
                    message = reader.wait() => message,
                }
            };
            match message {
                Some(ChannelMsg::Data { data }) => {
                    if recorder.input(&data).is_err() || registered.frozen.borrow().is_some() {
                        continue;
                    }
                    for action in editor.feed(&data, &prompt) {
                        match action {
                            Action::Echo(text) => say(vendor, recorder, &text).await,
                            Action::Interrupt => say(vendor, recorder, &prompt).await,
                            Action::Quit => {
                                say(vendor, recorder, "logout\r\n").await;
                                let _ = vendor.exit_status(0).await;
                                let _ = vendor.eof().await;
                                let _ = vendor.close().await;
                                return (EndReason::Closed, "console closed by the vendor".into());
                            }
                            Action::Submit(line) => {
                                if !line.trim().is_empty() {
                                    let typed = self
                                        .console_run(
                                            &line,
                                            &mut reader,
                                            vendor,
                                            access,
                                            recorder,
                                            id,
                                        )
                                        .await;
                                    backlog.extend(typed.keys);
                                    closed |= typed.closed;
                                }
                                say(vendor, recorder, &prompt).await;
                            }
                        }
                    }
                }
                Some(ChannelMsg::WindowChange {
                    col_width,
                    row_height,
                    ..
                }) => {
                    let _ = recorder.resize(
                        u16::try_from(col_width).unwrap_or(u16::MAX),
                        u16::try_from(row_height).unwrap_or(u16::MAX),
                    );
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                    let _ = vendor.exit_status(0).await;
                    let _ = vendor.close().await;
                    return (EndReason::Closed, "console closed by the vendor".into());
                }
                Some(_) => {}
            }
        }
    }

    /// Runs one console line: checked, then an exec on the asset with its output streamed.
    /// Returns what the vendor typed meanwhile.
    async fn console_run(
        &self,
        line: &str,
        reader: &mut ChannelReadHalf,
        vendor: &Vendor,
        access: &Access,
        recorder: &SessionRecorder,
        id: &str,
    ) -> Typed {
        let mut typed = Typed::default();
        let grant = &access.grant;
        let decision = grant.scope.check(&Operation::Exec(line.as_bytes()));
        judge_command(&self.shared, recorder, id, grant, line, &decision).await;
        if !decision.is_allowed() {
            let notice = format!("otgate: not run: grant {} {decision}\r\n", grant.id);
            say(vendor, recorder, &notice).await;
            return typed;
        }
        let upstream = match self.connect(access).await {
            Ok(upstream) => upstream,
            Err(message) => {
                say(vendor, recorder, &format!("otgate: {message}\r\n")).await;
                return typed;
            }
        };
        let mut asset = match upstream.channel_open_session().await {
            Ok(channel) => channel,
            Err(e) => {
                say(
                    vendor,
                    recorder,
                    &format!("otgate: the asset refused a channel: {e}\r\n"),
                )
                .await;
                return typed;
            }
        };
        if let Err(e) = asset.exec(true, line.as_bytes()).await {
            say(
                vendor,
                recorder,
                &format!("otgate: the asset did not run it: {e}\r\n"),
            )
            .await;
            return typed;
        }
        loop {
            tokio::select! {
                message = asset.wait() => match message {
                    Some(ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. }) => {
                        // Exec output has bare newlines; the vendor's terminal is raw.
                        let text = String::from_utf8_lossy(&data).replace('\n', "\r\n");
                        say(vendor, recorder, &text).await;
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) if exit_status != 0 => {
                        say(vendor, recorder, &format!("[exit {exit_status}]\r\n")).await;
                    }
                    Some(ChannelMsg::Close) | None => return typed,
                    Some(_) => {}
                },
                message = reader.wait(), if !typed.closed => match message {
                    // Ctrl-C stops the command; other keys wait for the prompt.
                    Some(ChannelMsg::Data { data }) if data.contains(&0x03) => {
                        let _ = asset.close().await;
                        say(vendor, recorder, "^C\r\n").await;
                        return typed;
                    }
                    Some(ChannelMsg::Data { data }) => typed.keys.extend_from_slice(&data),
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => typed.closed = true,
                    Some(_) => {}
                },
            }
        }
    }

    /// One logged-in connection to the asset per vendor connection, opened on first use.
    async fn connect(&self, access: &Access) -> Result<Arc<Upstream>, String> {
        let mut slot = self.upstream.lock().await;
        if let Some(upstream) = slot.as_ref()
            && !upstream.is_closed()
        {
            return Ok(upstream.clone());
        }
        let endpoint = access.endpoint.as_ref().ok_or_else(|| {
            format!(
                "asset {} has no SSH endpoint: its grant is for port forwarding only (ssh -N -L)",
                access.asset.name
            )
        })?;
        let credential = endpoint.credential.as_ref().ok_or_else(|| {
            format!(
                "asset {} has no vaulted credential for SSH",
                access.asset.name
            )
        })?;
        let user = endpoint.user.clone().unwrap_or_else(|| "root".into());
        let secret = self.shared.control.secret(credential).await.map_err(|e| {
            format!(
                "the credential for {} is unavailable ({e})",
                access.asset.name
            )
        })?;
        let connected =
            match upstream::connect(access.asset.name.as_str(), endpoint, &user, secret).await {
                Ok(handle) => Arc::new(handle),
                Err(message) => {
                    self.shared
                        .report(
                            Event::now(EventKind::SessionRefused {
                                user: self.login.user.clone(),
                                grant: Some(access.grant.id),
                                reason: message.clone(),
                            })
                            .in_zone(Some(access.grant.zone.clone())),
                        )
                        .await;
                    return Err(message);
                }
            };
        *slot = Some(connected.clone());
        Ok(connected)
    }
}

/// Relays until one side ends, the grant ends or the recorder fails.
/// Judges the lines of a full shell (when there is a pty).
struct Judge<'a> {
    shared: &'a Shared,
    session: &'a str,
    guard: Option<ShellGuard>,
}

impl Judge<'_> {
    /// A held line's deadline passed: judge it, or release what waited for the prompt.
    async fn expire(
        &mut self,
        access: &Access,
        vendor: &Vendor,
        recorder: &SessionRecorder,
    ) -> Vec<u8> {
        let Some(guard) = self.guard.as_mut() else {
            return Vec::new();
        };
        match guard.expire() {
            Expired::Settled(bytes) => bytes,
            Expired::Judge => {
                let line = guard.line();
                if line.is_empty() {
                    return guard.judged(true);
                }
                let grant = &access.grant;
                let decision = grant.scope.check(&Operation::Exec(line.as_bytes()));
                judge_command(self.shared, recorder, self.session, grant, &line, &decision).await;
                if !decision.is_allowed() {
                    let notice = format!("\r\notgate: not run: grant {} {decision}\r\n", grant.id);
                    let _ = recorder.output(notice.as_bytes());
                    let _ = vendor.data(notice.as_bytes()).await;
                }
                guard.judged(decision.is_allowed())
            }
        }
    }
}

/// Relays until one side ends, the grant ends or the recorder fails.
#[allow(clippy::too_many_arguments)]
async fn relay(
    mut vendor_read: ChannelReadHalf,
    vendor: &Vendor,
    asset: Channel<russh::client::Msg>,
    access: &Access,
    registered: &Registered,
    recorder: &SessionRecorder,
    mut judge: Judge<'_>,
) -> (EndReason, String) {
    let (mut asset_read, asset_write) = asset.split();
    let mut failure = recorder.failure();
    let mut frozen = registered.frozen.clone();
    let mut notices = access.notice.subscribe();
    // A notice given before this channel opened is shown too.
    notices.mark_changed();
    let mut exit_status = None;
    // The vendor's EOF waits until held input has gone to the asset.
    let mut eof_pending = false;
    loop {
        let deadline = judge.guard.as_ref().and_then(ShellGuard::deadline);
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                let bytes = judge.expire(access, vendor, recorder).await;
                if !bytes.is_empty() {
                    let _ = asset_write.data(&bytes[..]).await;
                }
                if eof_pending && judge.guard.as_ref().is_none_or(ShellGuard::idle) {
                    eof_pending = false;
                    let _ = asset_write.eof().await;
                }
            }
            _ = registered.token.cancelled() => {
                let why = access.end_reason(registered);
                let notice = format!("\r\notgate: session ended: {why}\r\n");
                let _ = recorder.output(notice.as_bytes());
                let _ = vendor.extended_data(1, notice.as_bytes()).await;
                let _ = vendor.exit_status(255).await;
                let _ = vendor.eof().await;
                let _ = vendor.close().await;
                let _ = asset_write.close().await;
                return (
                    EndReason::Terminated { by: "otgate".into(), reason: why.clone() },
                    why,
                );
            }
            changed = failure.changed() => {
                let why = match changed {
                    Ok(()) => failure.borrow().clone().unwrap_or_default(),
                    Err(_) => "the recorder stopped".into(),
                };
                let notice = format!("\r\notgate: session ended: recording failed ({why}); sessions are never left unrecorded\r\n");
                let _ = vendor.extended_data(1, notice.as_bytes()).await;
                let _ = vendor.exit_status(255).await;
                let _ = vendor.close().await;
                let _ = asset_write.close().await;
                return (EndReason::RecordingFailed { reason: why.clone() }, format!("recording failed: {why}"));
            }
            changed = notices.changed() => {
                if changed.is_err() {
                    continue;
                }
                let text = notices.borrow_and_update().clone();
                if let Some(text) = text {
                    record(recorder, SessionEvent::Note { text: text.clone() });
                    let _ = vendor.extended_data(1, format!("\r\notgate: {text}\r\n").as_bytes()).await;
                }
            }
            changed = frozen.changed() => {
                if changed.is_err() {
                    continue;
                }
                let state = frozen.borrow_and_update().clone();
                let notice = match &state {
                    Some(why) => {
                        record(recorder, SessionEvent::Frozen { by: crate::registry::frozen_by(why).into(), reason: why.clone() });
                        format!("\r\notgate: session {why}; what you type is recorded but not sent to the asset until an engineer resumes the session\r\n")
                    }
                    None => {
                        record(recorder, SessionEvent::Resumed { by: "engineer".into() });
                        "\r\notgate: session resumed\r\n".to_owned()
                    }
                };
                let _ = recorder.output(notice.as_bytes());
                let _ = vendor.extended_data(1, notice.as_bytes()).await;
            }
            message = vendor_read.wait() => match message {
                Some(ChannelMsg::Data { data }) => {
                    // Frozen: the vendor's input is recorded but not sent to the asset.
                    if recorder.input(&data).is_err() || frozen.borrow().is_some() {
                        continue;
                    }
                    let forward = match judge.guard.as_mut() {
                        Some(guard) => match guard.input(&data) {
                            Step::Forward(bytes) => bytes,
                            Step::Hold => Vec::new(),
                        },
                        None => data.to_vec(),
                    };
                    if !forward.is_empty() {
                        let _ = asset_write.data(&forward[..]).await;
                    }
                }
                Some(ChannelMsg::WindowChange { col_width, row_height, pix_width, pix_height }) => {
                    if let Some(guard) = judge.guard.as_mut() {
                        guard.resize(col_width, row_height);
                    }
                    let _ = recorder.resize(u16::try_from(col_width).unwrap_or(u16::MAX), u16::try_from(row_height).unwrap_or(u16::MAX));
                    let _ = asset_write.window_change(col_width, row_height, pix_width, pix_height).await;
                }
                Some(ChannelMsg::Signal { signal }) => {
                    let _ = asset_write.signal(signal).await;
                }
                Some(ChannelMsg::Eof) => {
                    if judge.guard.as_ref().is_none_or(ShellGuard::idle) {
                        let _ = asset_write.eof().await;
                    } else {
                        eof_pending = true;
                    }
                }
                Some(ChannelMsg::Close) | None => {
                    let _ = asset_write.close().await;
                    return (EndReason::Closed, "closed by the vendor".into());
                }
                Some(_) => {}
            },
            message = asset_read.wait() => match message {
                Some(ChannelMsg::Data { data }) => {
                    if let Some(guard) = judge.guard.as_mut() {
                        guard.output(&data);
                    }
                    // Paced by the recorder; a stuck recorder fails the session (below).
                    if recorder.output_paced(&data).await.is_err() {
                        continue;
                    }
                    let _ = vendor.data(&data[..]).await;
                }
                Some(ChannelMsg::ExtendedData { data, ext }) => {
                    if recorder.output_paced(&data).await.is_err() {
                        continue;
                    }
                    let _ = vendor.extended_data(ext, &data[..]).await;
                }
                Some(ChannelMsg::ExitStatus { exit_status: status }) => {
                    exit_status = Some(status);
                    let _ = vendor.exit_status(status).await;
                }
                Some(ChannelMsg::Eof) => {
                    let _ = vendor.eof().await;
                }
                Some(ChannelMsg::Failure) => {
                    let message = "the asset refused the request";
                    end_with(vendor, message, 1).await;
                    return (EndReason::AssetClosed, message.into());
                }
                Some(ChannelMsg::Close) | None => {
                    let _ = vendor.eof().await;
                    let _ = vendor.close().await;
                    let words = match exit_status {
                        Some(status) => format!("closed by the asset (exit status {status})"),
                        None => "closed by the asset".into(),
                    };
                    return (EndReason::AssetClosed, words);
                }
                Some(_) => {}
            },
        }
    }
}
