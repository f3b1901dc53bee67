//! Shared helpers: temporary directories, keys, a recorder over a local directory, and a
//! scripted session.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use otgate_recorder::storage::LocalStorage;
use otgate_recorder::{
    Archive, EndReason, Manifest, Recorder, RecorderConfig, RecordingKey, SessionEvent,
    SessionInfo, Verdict, VerifyingKey,
};
use time::OffsetDateTime;

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "otgate-rec-{tag}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
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

pub struct Keys {
    pub signing: Arc<RecordingKey>,
    pub public: VerifyingKey,
}

pub fn keys(dir: &Path) -> Keys {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("recording.pem");
    if !path.exists() {
        RecordingKey::generate(&path).unwrap();
    }
    let signing = RecordingKey::load(&path).unwrap();
    let public = VerifyingKey::load(&otgate_recorder::public_path(&path)).unwrap();
    Keys {
        signing: Arc::new(signing),
        public,
    }
}

/// A fast-flushing configuration with small segments.
pub fn small(compress: bool) -> RecorderConfig {
    RecorderConfig {
        segment_bytes: 2048,
        segment_duration: Duration::from_secs(60),
        flush_interval: Duration::from_millis(20),
        queue_bytes: 1024 * 1024,
        compress,
        upload_attempts: 1,
        stall: Duration::from_secs(2),
    }
}

pub fn info(id: &str) -> SessionInfo {
    SessionInfo {
        id: id.into(),
        grant: Some(7),
        vendor: "vendor1".into(),
        asset: "eng-ws-1".into(),
        zone: Some("cell-a".into()),
        protocol: "ssh".into(),
        client: Some("192.0.2.10:51234".into()),
        width: 80,
        height: 24,
        env: [("TERM".to_owned(), "xterm-256color".to_owned())].into(),
        started_at: OffsetDateTime::now_utc(),
    }
}

pub struct Local {
    pub dir: TempDir,
    pub keys: Keys,
    pub recorder: Recorder,
    pub archive: Archive,
}

pub fn local(tag: &str, config: RecorderConfig) -> Local {
    let dir = TempDir::new(tag);
    let keys = keys(dir.path());
    let storage = Arc::new(LocalStorage::new(dir.path().join("recordings")));
    std::fs::create_dir_all(dir.path().join("recordings")).unwrap();
    let recorder = Recorder::new(
        dir.path().join("spool"),
        storage.clone(),
        keys.signing.clone(),
        config,
    );
    let archive = Archive::new(storage, None);
    Local {
        dir,
        keys,
        recorder,
        archive,
    }
}

impl Local {
    pub fn session_dir(&self, id: &str) -> PathBuf {
        self.dir.path().join("recordings").join(id)
    }
}

/// A short shell session: prompt, a command that is allowed, one that is denied, output
/// with colours and a character split across two reads. Returns the output sent.
pub async fn scripted(recorder: &Recorder, id: &str) -> (Manifest, String) {
    let session = recorder.start(info(id)).await.unwrap();
    let mut output = String::new();
    let mut send = |text: &str| {
        session.output(text.as_bytes()).unwrap();
        output.push_str(text);
    };
    send("\x1b[32mvendor1@eng-ws-1\x1b[0m:~$ ");
    session
        .event(SessionEvent::Connected {
            client: "192.0.2.10:51234".into(),
        })
        .unwrap();
    session.input(b"systemctl restart historian\r").unwrap();
    session
        .event(SessionEvent::Command {
            command: "systemctl restart historian".into(),
            verdict: Verdict::Allowed,
            rule: Some("systemctl restart *".into()),
            reason: None,
        })
        .unwrap();
    send("systemctl restart historian\r\n");
    for i in 0..40 {
        send(&format!("log line {i}: historian service restarted ok\r\n"));
    }
    let euro = "temperature 21 °C, cost 3 €\r\n".as_bytes();
    session.output(&euro[..euro.len() - 4]).unwrap();
    session.output(&euro[euro.len() - 4..]).unwrap();
    output.push_str("temperature 21 °C, cost 3 €\r\n");
    session.resize(120, 40).unwrap();
    session
        .event(SessionEvent::Command {
            command: "rm -rf /opt/historian".into(),
            verdict: Verdict::Denied,
            rule: None,
            reason: Some("not in the grant's scope".into()),
        })
        .unwrap();
    let manifest = session.finish(EndReason::Closed).await.unwrap();
    (manifest, output)
}

/// Concatenated output frames of a recording.
pub fn output_of(recording: &otgate_recorder::Recording) -> String {
    recording
        .frames
        .iter()
        .filter(|f| f.code == otgate_recorder::cast::Code::Output)
        .map(|f| f.data.as_str())
        .collect()
}

/// Names of files in a session directory, sorted.
pub fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
