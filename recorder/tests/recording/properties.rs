//! Properties: `replay(record(x))` reproduces `x`, and any single-byte change to any sealed
//! file is detected.

use proptest::prelude::*;

use otgate_recorder::layout::new_session_id;
use otgate_recorder::{EndReason, Status, read};

use crate::support::{files, local, output_of, scripted, small};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn replaying_a_recording_reproduces_the_output(
        text in "(\\PC|\r|\n|\u{1b}\\[[0-9;]{0,6}m){0,400}",
        cuts in proptest::collection::vec(0usize..2000, 0..12),
        compress in any::<bool>(),
    ) {
        let runtime = runtime();
        let local = local("prop-replay", small(compress));
        let id = new_session_id();
        let bytes = text.as_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let recording = runtime.block_on(async {
            let session = local.recorder.start(crate::support::info(&id)).await.unwrap();
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                // Chunks split anywhere, also inside a character.
                session.output(&bytes[start..cut]).unwrap();
                start = cut;
            }
            session.finish(EndReason::Closed).await.unwrap();
            read(&local.archive, &id, Some(&local.keys.public)).await.unwrap()
        });
        prop_assert_eq!(recording.verification.status, Status::Ok);
        prop_assert_eq!(output_of(&recording), text);
    }
}

#[test]
fn any_single_byte_change_to_a_sealed_file_is_detected() {
    let runtime = runtime();
    let local = local("prop-flip", small(true));
    let id = new_session_id();
    runtime.block_on(scripted(&local.recorder, &id));
    let dir = local.session_dir(&id);
    let names = files(&dir);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(0..names.len(), any::<prop::sample::Index>(), 1u8..=255),
            |(file, offset, xor)| {
                let path = dir.join(&names[file]);
                let original = std::fs::read(&path).unwrap();
                let mut changed = original.clone();
                let at = offset.index(changed.len());
                changed[at] ^= xor;
                std::fs::write(&path, &changed).unwrap();
                let verification = runtime
                    .block_on(read(&local.archive, &id, Some(&local.keys.public)))
                    .unwrap()
                    .verification;
                std::fs::write(&path, &original).unwrap();
                prop_assert_eq!(
                    verification.status,
                    Status::Failed,
                    "{} byte {} ^ {}: {}",
                    names[file],
                    at,
                    xor,
                    verification.render()
                );
                Ok(())
            },
        )
        .unwrap();
}
