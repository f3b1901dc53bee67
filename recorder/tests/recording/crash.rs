//! Crash test: a process is killed (SIGKILL) mid-recording; verification reports the
//! signed, intact part and the lost tail, and replay plays what is intact.

use std::process::Command;
use std::time::{Duration, Instant};

use otgate_recorder::{Status, read};

use crate::support::{TempDir, info, keys, small};

const CHILD_DIR: &str = "OTGATE_TEST_CRASH_DIR";

/// Run by the parent test as a separate process: records until it is killed.
#[tokio::test]
#[ignore = "the crash test runs this in a child process"]
async fn child_records_until_killed() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let keys = keys(&dir);
    let storage = std::sync::Arc::new(otgate_recorder::storage::LocalStorage::new(
        dir.join("recordings"),
    ));
    let recorder =
        otgate_recorder::Recorder::new(dir.join("spool"), storage, keys.signing, small(true));
    let session = recorder.start(info("crashed")).await.unwrap();
    for i in 0u64.. {
        session.output(format!("line {i}\r\n").as_bytes()).unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[test]
fn a_killed_recording_verifies_up_to_the_crash() {
    let dir = TempDir::new("crash");
    keys(dir.path());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::child_records_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DIR, dir.path())
        .spawn()
        .unwrap();
    let session = dir.path().join("recordings").join("crashed");
    let deadline = Instant::now() + Duration::from_secs(30);
    // Wait for three sealed segments and some flushed output in the open one.
    loop {
        let seals = std::fs::read_dir(&session)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("seal.")
                })
                .count()
            })
            .unwrap_or(0);
        if seals >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the child did not record");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    child.wait().unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let storage = std::sync::Arc::new(otgate_recorder::storage::LocalStorage::new(
        dir.path().join("recordings"),
    ));
    let archive = otgate_recorder::Archive::new(storage, None);
    let public = keys(dir.path()).public;
    let recording = runtime
        .block_on(read(&archive, "crashed", Some(&public)))
        .unwrap();
    let v = &recording.verification;
    let report = v.render();
    assert_eq!(v.status, Status::Incomplete, "{report}");
    assert!(v.problems.is_empty(), "{report}");
    assert!(v.sealed >= 3, "{report}");
    assert!(
        report.contains("no manifest: the recording did not finish"),
        "{report}"
    );
    assert!(report.contains("was never sealed"), "{report}");
    // The intact part is every line from the first, in order, with nothing missing.
    let output = crate::support::output_of(&recording);
    let lines: Vec<&str> = output.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(lines.len() > 50, "{} lines", lines.len());
    for (i, line) in lines.iter().enumerate() {
        if i + 1 < lines.len() {
            assert_eq!(*line, format!("line {i}"));
        }
    }
    assert!(recording.verification.intact_until > 0.0);
}
