//! Verification names every alteration: changed, truncated, removed or reordered files and
//! lines, forged signatures, wrong keys, junk; and never panics.

use std::path::Path;

use otgate_recorder::layout::new_session_id;
use otgate_recorder::{RecordingKey, Status, read};

use crate::support::{Local, local, scripted, small};

async fn recorded(tag: &str, compress: bool) -> (Local, String) {
    let local = local(tag, small(compress));
    let id = new_session_id();
    scripted(&local.recorder, &id).await;
    (local, id)
}

async fn verify(local: &Local, id: &str) -> otgate_recorder::Verification {
    read(&local.archive, id, Some(&local.keys.public))
        .await
        .unwrap()
        .verification
}

fn edit(path: &Path, change: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    change(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn a_changed_byte_in_a_sealed_file_names_the_file() {
    let (local, id) = recorded("flip", true).await;
    let file = local.session_dir(&id).join("terminal.000002.cast.zst");
    edit(&file, |b| b[10] ^= 0x01);
    let v = verify(&local, &id).await;
    assert_eq!(v.status, Status::Failed);
    let report = v.render();
    assert!(
        report.contains("terminal.000002.cast.zst: SHA-256 differs from the seal"),
        "{report}"
    );
    // What comes before the broken segment is still intact.
    assert_eq!(v.sealed, 1, "{report}");
}

#[tokio::test]
async fn a_truncated_file_is_named() {
    let (local, id) = recorded("truncate", false).await;
    let file = local.session_dir(&id).join("events.000001.jsonl");
    edit(&file, |b| b.truncate(b.len() / 2));
    let report = verify(&local, &id).await.render();
    assert!(report.contains("FAILED"), "{report}");
    assert!(report.contains("events.000001.jsonl: "), "{report}");
    assert!(report.contains("bytes, but the seal says"), "{report}");
}

#[tokio::test]
async fn a_missing_segment_is_named() {
    let (local, id) = recorded("missing", true).await;
    let dir = local.session_dir(&id);
    for name in [
        "seal.000002.json",
        "terminal.000002.cast.zst",
        "events.000002.jsonl.zst",
    ] {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
    let report = verify(&local, &id).await.render();
    assert!(
        report.contains("seal.000002.json: segment 2 has no seal"),
        "{report}"
    );
    assert!(report.starts_with(&format!("{id}: FAILED")), "{report}");
}

#[tokio::test]
async fn a_forged_signature_and_a_wrong_key_are_refused() {
    let (local, id) = recorded("forge", true).await;
    let dir = local.session_dir(&id);
    // An attacker edits the manifest's end reason and re-signs it with their own key.
    let other = local.dir.path().join("attacker.pem");
    RecordingKey::generate(&other).unwrap();
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let forged = manifest.replace("\"kind\":\"closed\"", "\"kind\":\"expired\"");
    assert_ne!(forged, manifest);
    std::fs::write(dir.join("manifest.json"), forged).unwrap();
    let report = verify(&local, &id).await.render();
    assert!(
        report.contains("manifest.json: signature does not verify with the given public key"),
        "{report}"
    );

    let (local, id) = recorded("wrong-key", true).await;
    let stranger = crate::support::keys(&local.dir.path().join("stranger")).public;
    let v = read(&local.archive, &id, Some(&stranger))
        .await
        .unwrap()
        .verification;
    assert_eq!(v.status, Status::Failed);
    assert!(
        v.render().contains("signature does not verify"),
        "{}",
        v.render()
    );
}

#[tokio::test]
async fn cutting_off_the_end_is_visible() {
    // Deleting the manifest and the last segment to hide how a session ended leaves a
    // recording that does not verify as complete.
    let (local, id) = recorded("cut-end", true).await;
    let dir = local.session_dir(&id);
    let last = crate::support::files(&dir)
        .into_iter()
        .filter(|n| n.starts_with("seal."))
        .count();
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    std::fs::remove_file(dir.join(format!("seal.{last:06}.json"))).unwrap();
    let v = verify(&local, &id).await;
    assert_eq!(v.status, Status::Failed, "{}", v.render());
    assert!(
        v.render().contains(&format!(
            "segment {last} was sealed (its files are compressed) but its seal is missing"
        )),
        "{}",
        v.render()
    );
}

#[tokio::test]
async fn unsealed_lines_are_chained_deleted_and_reordered_lines_are_named() {
    // An open segment (what a crash leaves): its lines are chained but unsigned. The
    // session stays open while the files are edited; the segment is not sealed for 60 s.
    let local = local("open", small(false));
    let id = new_session_id();
    let session = local
        .recorder
        .start(crate::support::info(&id))
        .await
        .unwrap();
    for i in 0..5 {
        session
            .event(otgate_recorder::SessionEvent::Note {
                text: format!("note {i}"),
            })
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let dir = local.session_dir(&id);
    let events = dir.join("events.000001.jsonl");
    let original = std::fs::read_to_string(&events).unwrap();
    let v = verify(&local, &id).await;
    assert_eq!(v.status, Status::Incomplete, "{}", v.render());
    assert_eq!(v.events, 6);
    assert!(v.render().contains("no manifest"), "{}", v.render());

    // Lines cannot move between sessions: the chain is seeded with the session id.
    let copy = local.dir.path().join("recordings").join("copied-session");
    std::fs::create_dir(&copy).unwrap();
    for name in crate::support::files(&dir) {
        std::fs::copy(dir.join(&name), copy.join(&name)).unwrap();
    }
    let report = verify(&local, "copied-session").await.render();
    assert!(
        report.contains("events.000001.jsonl line 1: hash mismatch"),
        "{report}"
    );

    let mut lines: Vec<&str> = original.lines().collect();
    lines.remove(3);
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();
    let report = verify(&local, &id).await.render();
    assert!(
        report.contains("events.000001.jsonl line 4: hash mismatch"),
        "{report}"
    );

    let mut lines: Vec<&str> = original.lines().collect();
    lines.swap(2, 3);
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();
    let report = verify(&local, &id).await.render();
    assert!(
        report.contains("events.000001.jsonl line 3: hash mismatch"),
        "{report}"
    );

    let mut bytes = original.clone().into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
    std::fs::write(&events, &bytes).unwrap();
    let report = verify(&local, &id).await.render();
    assert!(
        report.contains("events.000001.jsonl line 7: not UTF-8"),
        "{report}"
    );

    let mut huge = original.clone();
    huge.push_str(&"x".repeat(17 * 1024 * 1024));
    huge.push('\n');
    std::fs::write(&events, huge).unwrap();
    let report = verify(&local, &id).await.render();
    assert!(report.contains("line 7: line of"), "{report}");

    std::fs::write(&events, &original).unwrap();
    std::fs::write(dir.join("notes.txt"), "junk").unwrap();
    let report = verify(&local, &id).await.render();
    assert!(
        report.contains("notes.txt: not a file of a recording"),
        "{report}"
    );
    std::fs::remove_file(dir.join("notes.txt")).unwrap();
    drop(session);
}

#[tokio::test]
async fn garbage_everywhere_never_panics() {
    let (local, id) = recorded("garbage", true).await;
    let dir = local.session_dir(&id);
    for name in crate::support::files(&dir) {
        for content in [
            &b""[..],
            b"\xff\xfe",
            b"{}",
            b"[1,\"o\"",
            b"{\"signature\":\"!!\"}",
        ] {
            let saved = std::fs::read(dir.join(&name)).unwrap();
            std::fs::write(dir.join(&name), content).unwrap();
            let v = verify(&local, &id).await;
            assert_eq!(v.status, Status::Failed, "{name}: {}", v.render());
            assert!(
                v.render().contains(&name) || v.render().contains("no seal"),
                "{name}: {}",
                v.render()
            );
            std::fs::write(dir.join(&name), saved).unwrap();
        }
    }
    assert_eq!(verify(&local, &id).await.status, Status::Ok);
}
