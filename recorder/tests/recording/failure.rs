//! Fail closed: a writer that falls behind or cannot write says so, and every later call
//! is refused, so the gateway ends the session.

use std::time::Duration;

use otgate_recorder::layout::new_session_id;
use otgate_recorder::{EndReason, RecorderConfig, RecorderError, SessionEvent, Status, read};

use crate::support::{info, local, small};

#[tokio::test]
async fn a_writer_that_falls_behind_fails_the_session_and_says_so_on_the_record() {
    let config = RecorderConfig {
        queue_bytes: 4096,
        ..small(true)
    };
    let local = local("lag", config);
    let id = new_session_id();
    let session = local.recorder.start(info(&id)).await.unwrap();
    let mut failure = session.failure();
    // This test's runtime has one thread and the loop never yields: the writer cannot run,
    // exactly like a writer stuck on a slow disk.
    let chunk = vec![b'x'; 1024];
    let mut accepted = 0;
    let error = loop {
        match session.output(&chunk) {
            Ok(()) => accepted += 1,
            Err(error) => break error,
        }
    };
    assert_eq!(accepted, 4);
    assert!(matches!(error, RecorderError::Lagging(4096)), "{error}");
    assert!(failure.borrow_and_update().is_some());
    let later = session
        .event(SessionEvent::Note { text: "x".into() })
        .unwrap_err();
    assert!(later.to_string().contains("fell behind"), "{later}");

    let manifest = session
        .finish(EndReason::RecordingFailed {
            reason: error.to_string(),
        })
        .await
        .unwrap();
    assert_eq!(manifest.counts.output_bytes, 4096);
    let recording = read(&local.archive, &id, Some(&local.keys.public))
        .await
        .unwrap();
    assert_eq!(recording.verification.status, Status::Ok);
    assert!(recording.events.iter().any(|l| matches!(
        &l.event,
        SessionEvent::RecordingFailed { reason } if reason.contains("not recorded")
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_fails_the_session() {
    let local = local("write-fails", small(true));
    let id = new_session_id();
    let session = local.recorder.start(info(&id)).await.unwrap();
    let mut failure = session.failure();
    // The disk goes away under the recording: the next seal cannot be written.
    std::fs::remove_dir_all(local.session_dir(&id)).unwrap();
    // The writer may notice on its own (a timed flush) before all of this is
    // written; from then on output is refused with the failure.
    for _ in 0..8 {
        if let Err(refused) = session.output(&[b'y'; 512]) {
            assert!(matches!(refused, RecorderError::Failed(_)), "{refused}");
            break;
        }
    }
    tokio::time::timeout(Duration::from_secs(5), failure.wait_for(Option::is_some))
        .await
        .expect("the failure is reported")
        .unwrap();
    let reason = failure.borrow().clone().unwrap();
    assert!(reason.contains(&id), "{reason}");
    let refused = session.output(b"more").unwrap_err();
    assert!(matches!(refused, RecorderError::Failed(_)), "{refused}");
    assert!(session.finish(EndReason::Closed).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_output_waits_for_the_writer_instead_of_failing() {
    let config = RecorderConfig {
        queue_bytes: 64 * 1024,
        ..small(true)
    };
    let local = local("paced", config);
    let id = new_session_id();
    let session = local.recorder.start(info(&id)).await.unwrap();
    // 4 MiB through a 64 KiB queue, as fast as the caller can: paced, nothing lost.
    let chunk = vec![b'z'; 32 * 1024];
    for _ in 0..128 {
        session.output_paced(&chunk).await.unwrap();
    }
    assert!(session.failure().borrow().is_none());
    let manifest = session.finish(EndReason::Closed).await.unwrap();
    assert_eq!(manifest.counts.output_bytes, 4 * 1024 * 1024);
    let recording = read(&local.archive, &id, Some(&local.keys.public))
        .await
        .unwrap();
    assert_eq!(recording.verification.status, Status::Ok);
}
