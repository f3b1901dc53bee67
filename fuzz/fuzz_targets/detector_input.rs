//! What the detector reads from outside: external alerts (API bodies from sensors), packet
//! captures and their Modbus messages (evaluation files), and command lines typed by vendors.
//! Each must be refused or read without panicking, in bounded time and memory; what the
//! detector then scores from them must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otgate_detector::eval::capture::{modbus, packets};
use otgate_detector::{
    Detector, DetectorConfig, ExternalAlert, Observation, Observed, SessionContext,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = ExternalAlert::parse(&value);
    }
    if let Ok((list, _)) = packets(data) {
        for packet in list.iter().take(64) {
            let _ = modbus(packet.payload, true);
            let _ = modbus(packet.payload, false);
        }
    }
    let requests = modbus(data, true);
    let Ok(mut detector) = Detector::new(DetectorConfig::default()) else {
        return;
    };
    let at = time::OffsetDateTime::UNIX_EPOCH;
    detector.start(SessionContext {
        id: "s".into(),
        grant: None,
        vendor: "v".into(),
        asset: "a".into(),
        zone: None,
        level: None,
        addresses: Vec::new(),
        maintenance: Vec::new(),
        started_at: at,
    });
    for message in requests.into_iter().take(64) {
        let _ = detector.observe(&Observation {
            session: "s".into(),
            at,
            what: Observed::Modbus { request: message.request, allowed: true },
        });
    }
    let line = String::from_utf8_lossy(data);
    let _ = detector.observe(&Observation {
        session: "s".into(),
        at,
        what: Observed::Command { line: line.into_owned(), allowed: false },
    });
});
