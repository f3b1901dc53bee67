//! Recording and reading back: asciicast v2 format, chained events, seals, manifest.

use otgate_recorder::cast::{Code, Header};
use otgate_recorder::layout::new_session_id;
use otgate_recorder::replay::{PlayOptions, export_cast, play};
use otgate_recorder::text::{TextKind, fragments};
use otgate_recorder::{EndReason, SessionEvent, Status, read};

use crate::support::{files, local, output_of, scripted, small};

#[tokio::test]
async fn a_recorded_session_reads_back_verified_and_whole() {
    for compress in [true, false] {
        let local = local("round-trip", small(compress));
        let id = new_session_id();
        let (manifest, output) = scripted(&local.recorder, &id).await;
        assert!(
            manifest.segments.len() >= 2,
            "small segments must cut: {manifest:?}"
        );
        assert_eq!(manifest.counts.commands, 2);
        assert_eq!(manifest.counts.denials, 1);
        assert_eq!(manifest.end_reason, EndReason::Closed);

        let recording = read(&local.archive, &id, Some(&local.keys.public))
            .await
            .unwrap();
        let v = &recording.verification;
        assert_eq!(v.status, Status::Ok, "{}", v.render());
        assert!(v.signatures_checked);
        assert_eq!(v.sealed as usize, manifest.segments.len());
        assert_eq!(output_of(&recording), output);
        assert_eq!(recording.info.as_ref().unwrap().vendor, "vendor1");
        assert_eq!(recording.events.first().unwrap().seq, 0);
        assert!(matches!(
            recording.events.last().unwrap().event,
            SessionEvent::RecordingEnded {
                reason: EndReason::Closed,
                ..
            }
        ));
        assert!(recording.frames.iter().any(|f| f.code == Code::Input));
        assert!(
            recording
                .frames
                .iter()
                .any(|f| f.code == Code::Resize && f.data == "120x40")
        );
        let names = files(&local.session_dir(&id));
        assert!(names.contains(&"manifest.json".to_owned()));
        let sealed_terminal = if compress {
            "terminal.000001.cast.zst"
        } else {
            "terminal.000001.cast"
        };
        assert!(names.contains(&sealed_terminal.to_owned()), "{names:?}");
        assert!(!names.iter().any(|n| n.ends_with(".partial")));
    }
}

#[tokio::test]
async fn the_export_is_asciicast_v2() {
    let local = local("export", small(true));
    let id = new_session_id();
    let (_, output) = scripted(&local.recorder, &id).await;
    let recording = read(&local.archive, &id, None).await.unwrap();
    let cast = export_cast(&recording);
    let mut lines = cast.lines();
    let header: Header = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!((header.version, header.width, header.height), (2, 80, 24));
    assert_eq!(header.title.as_deref(), Some("vendor1@eng-ws-1 (grant 7)"));
    assert_eq!(header.env["TERM"], "xterm-256color");
    assert!(header.timestamp.is_some());
    let mut previous = 0.0;
    let mut replayed = String::new();
    for line in lines {
        // Every event is [time, code, data] with non-decreasing times (the spec's rule).
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let items = value.as_array().unwrap();
        assert_eq!(items.len(), 3, "{line}");
        let t = items[0].as_f64().unwrap();
        assert!(t >= previous, "{line}");
        previous = t;
        let code = items[1].as_str().unwrap();
        assert!(["o", "i", "r"].contains(&code), "{line}");
        if code == "o" {
            replayed.push_str(items[2].as_str().unwrap());
        }
    }
    assert_eq!(replayed, output);
}

#[tokio::test]
async fn replay_draws_the_output_with_events_and_capped_pauses() {
    let local = local("replay", small(true));
    let id = new_session_id();
    let session = local
        .recorder
        .start(crate::support::info(&id))
        .await
        .unwrap();
    session.output(b"first\r\n").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    session.output(b"second\r\n").unwrap();
    session
        .event(SessionEvent::Alert {
            score: 91,
            summary: "command nc never used by this vendor".into(),
        })
        .unwrap();
    session.finish(EndReason::Closed).await.unwrap();
    let recording = read(&local.archive, &id, None).await.unwrap();

    let mut out = Vec::new();
    let mut pauses = Vec::new();
    let options = PlayOptions {
        speed: 2.0,
        idle_cap: 0.1,
        ..PlayOptions::default()
    };
    play(&recording, &mut out, &options, &mut |d| pauses.push(d)).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("first\r\n"));
    assert!(text.contains("second\r\n"));
    assert!(text.contains("ALERT risk 91: command nc never used by this vendor"));
    // The 300 ms gap is capped at 100 ms and played at double speed.
    let longest = pauses.iter().max().unwrap().as_secs_f64();
    assert!((0.04..=0.051).contains(&longest), "{pauses:?}");

    // From an offset after "first": drawn at once, no pause before it.
    let second_at = recording
        .frames
        .iter()
        .find(|f| f.data == "second\r\n")
        .unwrap()
        .t;
    let mut out = Vec::new();
    let mut pauses = Vec::new();
    let options = PlayOptions {
        from: second_at,
        ..PlayOptions::default()
    };
    play(&recording, &mut out, &options, &mut |d| pauses.push(d)).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.find("first").unwrap() < text.find("second").unwrap());
    assert!(pauses.iter().all(|d| d.as_secs_f64() < 0.05), "{pauses:?}");
}

#[tokio::test]
async fn search_text_is_what_the_terminal_showed() {
    let local = local("text", small(true));
    let id = new_session_id();
    let session = local
        .recorder
        .start(crate::support::info(&id))
        .await
        .unwrap();
    // Line editing: the vendor typed "systemctl restrat", erased two characters with
    // backspaces and retyped; colours and cursor movement around it.
    session.output(b"$ systemctl restrat").unwrap();
    session.output(b"\x08\x08\x08\x1b[Kart historian").unwrap();
    session
        .output(b"\r\n\x1b[1;31mFailed\x1b[0m to restart historian.service\r\n$ ")
        .unwrap();
    session
        .event(SessionEvent::Command {
            command: "systemctl restart historian".into(),
            verdict: otgate_recorder::Verdict::Allowed,
            rule: None,
            reason: None,
        })
        .unwrap();
    session.finish(EndReason::Closed).await.unwrap();
    let recording = read(&local.archive, &id, None).await.unwrap();
    let text = fragments(&recording, 1 << 20);
    let output: Vec<&str> = text
        .iter()
        .filter(|f| f.kind == TextKind::Output)
        .map(|f| f.text.as_str())
        .collect();
    let all = output.join("\n");
    assert!(all.contains("$ systemctl restart historian"), "{all}");
    assert!(all.contains("Failed to restart historian.service"), "{all}");
    assert!(!all.contains("restrat"), "{all}");
    assert!(!all.contains('\u{1b}'), "{all}");
    assert!(
        text.iter()
            .any(|f| f.kind == TextKind::Command && f.text == "systemctl restart historian")
    );
}

#[tokio::test]
async fn search_text_renders_a_bounded_amount_of_output_but_every_command() {
    let local = local("text-budget", small(true));
    let id = new_session_id();
    let session = local
        .recorder
        .start(crate::support::info(&id))
        .await
        .unwrap();
    session.output(b"first screen\r\n").unwrap();
    // 64 KiB of the same line: no new text, only rendering work.
    for _ in 0..1024 {
        session
            .output(&b"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n"[..])
            .unwrap();
    }
    session.output(b"after the flood\r\n").unwrap();
    session
        .event(SessionEvent::Command {
            command: "tail -f /var/log/historian.log".into(),
            verdict: otgate_recorder::Verdict::Allowed,
            rule: None,
            reason: None,
        })
        .unwrap();
    session.finish(EndReason::Closed).await.unwrap();
    let recording = read(&local.archive, &id, None).await.unwrap();
    let output = |budget: usize| {
        let text = fragments(&recording, budget);
        assert!(text.iter().any(|f| f.kind == TextKind::Command));
        text.iter()
            .filter(|f| f.kind == TextKind::Output)
            .map(|f| f.text.clone())
            .collect::<Vec<_>>()
            .join("\n")
    };
    // A budget of 1 KiB renders at most 16 KiB of output: the line after the flood is not
    // reached; with room, it is.
    let bounded = output(1024);
    assert!(bounded.contains("first screen"), "{bounded}");
    assert!(!bounded.contains("after the flood"), "{bounded}");
    assert!(output(1 << 20).contains("after the flood"));
}

#[tokio::test]
async fn a_dropped_handle_still_gets_a_manifest() {
    let local = local("abandoned", small(true));
    let id = new_session_id();
    let session = local
        .recorder
        .start(crate::support::info(&id))
        .await
        .unwrap();
    session.output(b"hello\r\n").unwrap();
    drop(session);
    let manifest_path = local.session_dir(&id).join("manifest.json");
    for _ in 0..200 {
        if manifest_path.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let recording = read(&local.archive, &id, Some(&local.keys.public))
        .await
        .unwrap();
    assert_eq!(recording.verification.status, Status::Ok);
    assert_eq!(recording.manifest.unwrap().end_reason, EndReason::Abandoned);
}

#[tokio::test]
async fn ids_are_checked_and_never_reused() {
    let local = local("ids", small(true));
    let id = new_session_id();
    let err = local
        .recorder
        .start(crate::support::info("../escape"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a valid session id"), "{err}");
    scripted(&local.recorder, &id).await;
    let err = local
        .recorder
        .start(crate::support::info(&id))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already has a recording"), "{err}");
    let err = read(&local.archive, "no-such-session", None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no recording of session no-such-session")
    );
}

#[tokio::test]
async fn retention_deletes_what_is_older_than_the_period() {
    let local = local("retention", small(true));
    let old = new_session_id();
    scripted(&local.recorder, &old).await;
    let keep = std::time::Duration::from_secs(30 * 86400);
    let now = time::OffsetDateTime::now_utc();
    // Nothing is older than 30 days yet.
    assert!(
        otgate_recorder::expire(&local.archive, keep, now)
            .await
            .unwrap()
            .is_empty()
    );
    // Forty days on, the recording is past the period: every file goes.
    let later = now + time::Duration::days(40);
    let expired = otgate_recorder::expire(&local.archive, keep, later)
        .await
        .unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].session, old);
    assert!(expired[0].files >= 4);
    assert!(!local.session_dir(&old).exists());
    assert!(local.archive.sessions().await.unwrap().is_empty());
}
