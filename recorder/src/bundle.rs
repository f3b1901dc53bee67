//! The evidence bundle of one session: a zip with the recording's files exactly as stored,
//! the public key, the verification report, the plain asciicast and event log, a timeline
//! in Markdown and HTML, and SHA-256 sums of everything in it.

use std::io::Write as _;

use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

use crate::archive::Archive;
use crate::chain::{hex, sha256};
use crate::error::RecorderError;
use crate::key::VerifyingKey;
use crate::read::Recording;
use crate::replay::{export_cast, export_events};
use crate::timeline;

fn readme(recording: &Recording) -> String {
    format!(
        "Evidence bundle for otgate session {id}\n\n\
         recordings/{id}/   the recording exactly as stored (segments, seals, manifest)\n\
         recording.pub.pem  the Ed25519 public key that signed the seals and the manifest\n\
         verification.txt   the verification report (also verification.json)\n\
         terminal.cast      the terminal stream as one asciicast v2 file (asciinema play terminal.cast)\n\
         events.jsonl       the typed event log\n\
         timeline.md/.html  what happened, in order\n\
         SHA256SUMS         digests of every file in this bundle\n\n\
         To verify independently of the machine that recorded it:\n\
         \x20 otgate audit verify --dir recordings --key recording.pub.pem {id}\n",
        id = recording.id
    )
}

/// Builds the bundle of `recording` (read from `archive`) as zip bytes.
pub async fn evidence_bundle(
    archive: &Archive,
    recording: &Recording,
    key: Option<&VerifyingKey>,
) -> Result<Vec<u8>, RecorderError> {
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for file in &recording.files {
        let bytes = archive.get(&recording.id, &file.name).await?;
        entries.push((
            format!("recordings/{}/{}", recording.id, file.name),
            bytes.to_vec(),
        ));
    }
    if let Some(key) = key {
        entries.push(("recording.pub.pem".into(), key.to_pem().into_bytes()));
    }
    let verification = &recording.verification;
    entries.push((
        "verification.txt".into(),
        (verification.render() + "\n").into_bytes(),
    ));
    entries.push((
        "verification.json".into(),
        serde_json::to_vec_pretty(verification)
            .map_err(|e| RecorderError::Invalid(e.to_string()))?,
    ));
    entries.push(("terminal.cast".into(), export_cast(recording).into_bytes()));
    entries.push(("events.jsonl".into(), export_events(recording).into_bytes()));
    entries.push((
        "timeline.md".into(),
        timeline::markdown(recording).into_bytes(),
    ));
    entries.push((
        "timeline.html".into(),
        timeline::html(recording).into_bytes(),
    ));
    entries.push(("README.txt".into(), readme(recording).into_bytes()));
    let sums: String = entries
        .iter()
        .map(|(name, data)| format!("{}  {name}\n", hex(&sha256(data))))
        .collect();
    entries.push(("SHA256SUMS".into(), sums.into_bytes()));

    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .large_file(false);
    let failed = |e: &dyn std::fmt::Display| RecorderError::Invalid(format!("zip: {e}"));
    for (name, data) in entries {
        zip.start_file(name, options).map_err(|e| failed(&e))?;
        zip.write_all(&data).map_err(|e| failed(&e))?;
    }
    let cursor = zip.finish().map_err(|e| failed(&e))?;
    Ok(cursor.into_inner())
}
