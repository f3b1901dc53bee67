//! S3 storage against a real S3-compatible server run locally (`moto_server` from PyPI,
//! installed in the CI venv): sealed segments are uploaded as they are sealed, the spool
//! is emptied once uploads are confirmed, reading works from the bucket, and a storage
//! outage fails the session while the spool keeps every byte.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use otgate_recorder::layout::new_session_id;
use otgate_recorder::storage::{LocalStorage, S3Config, S3Storage, Storage};
use otgate_recorder::{Archive, Recorder, Status, read};

use crate::support::{TempDir, keys, output_of, scripted, small};

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `moto_server`; `None` (skip) when it is not installed, unless peers are required.
fn moto() -> Option<(Moto, u16)> {
    let found = Command::new("sh")
        .args(["-c", "command -v moto_server"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("OTGATE_REQUIRE_PEERS").as_deref() != Ok("1"),
            "moto_server is required (OTGATE_REQUIRE_PEERS=1) but not installed"
        );
        eprintln!("skipping the S3 test: moto_server is not installed");
        return None;
    }
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let moto = Moto(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((moto, port))
}

/// Creates a bucket (moto accepts unsigned requests).
fn create_bucket(port: u16, bucket: &str) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

fn config(port: u16, bucket: &str) -> S3Config {
    S3Config {
        bucket: bucket.into(),
        prefix: "plant-a/recordings".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: "us-east-1".into(),
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        allow_http: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_go_to_s3_and_read_back_verified() {
    let Some((_moto, port)) = moto() else { return };
    create_bucket(port, "otgate");
    let dir = TempDir::new("s3");
    let keys = keys(dir.path());
    let store: Arc<dyn Storage> = Arc::new(S3Storage::new(&config(port, "otgate")).unwrap());
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let recorder = Recorder::new(
        spool.clone(),
        store.clone(),
        keys.signing.clone(),
        small(true),
    );
    let id = new_session_id();
    let (manifest, output) = scripted(&recorder, &id).await;

    // Everything is in the bucket and nothing is left in the spool.
    let objects = store.list(&format!("{id}/")).await.unwrap();
    assert_eq!(
        objects.len(),
        manifest.segments.len() * 3 + 1,
        "{objects:?}"
    );
    assert!(
        !spool.join(&id).exists(),
        "the spool is emptied after upload"
    );

    let archive = Archive::new(store.clone(), Some(LocalStorage::new(&spool)));
    let recording = read(&archive, &id, Some(&keys.public)).await.unwrap();
    assert_eq!(
        recording.verification.status,
        Status::Ok,
        "{}",
        recording.verification.render()
    );
    assert_eq!(output_of(&recording), output);
    assert_eq!(archive.sessions().await.unwrap().len(), 1);

    assert_eq!(archive.delete(&id).await.unwrap(), objects.len());
    assert!(store.list("").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_outage_fails_the_session_and_the_spool_keeps_everything() {
    let Some((moto, port)) = moto() else { return };
    create_bucket(port, "otgate");
    let dir = TempDir::new("s3-down");
    let keys = keys(dir.path());
    let store: Arc<dyn Storage> = Arc::new(S3Storage::new(&config(port, "otgate")).unwrap());
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let recorder = Recorder::new(spool.clone(), store, keys.signing.clone(), small(true));
    let id = new_session_id();
    let session = recorder.start(crate::support::info(&id)).await.unwrap();
    let mut failure = session.failure();
    drop(moto);
    for i in 0..100 {
        if session
            .output(format!("reading {i}\r\n").as_bytes())
            .is_err()
        {
            break;
        }
    }
    tokio::time::timeout(Duration::from_secs(60), failure.wait_for(Option::is_some))
        .await
        .expect("the outage is reported")
        .unwrap();
    let reason = failure.borrow().clone().unwrap();
    assert!(reason.contains("the spool keeps it"), "{reason}");
    assert!(session.output(b"more").is_err());
    // The sealed segment is still in the spool and verifies there.
    let local: Arc<dyn Storage> = Arc::new(LocalStorage::new(&spool));
    let recording = read(&Archive::new(local, None), &id, Some(&keys.public))
        .await
        .unwrap();
    assert!(
        recording.verification.sealed >= 1,
        "{}",
        recording.verification.render()
    );
    assert!(
        recording.verification.problems.is_empty(),
        "{}",
        recording.verification.render()
    );
}
