//! The inspector on byte streams: scope enforcement, pipelining, malformed input.

use std::time::{Duration, Instant};

use otgate_policy::{GrantId, Scope};
use otgate_recorder::{SessionEvent, Verdict};

use super::frame::{encode, next_frame};
use super::inspector::{Inspector, MAX_PENDING};

fn scoped() -> Inspector {
    let scope = Scope::from_toml(
        r#"
[modbus]
units = [1]
allow = [
  { access = "read", table = "holding", range = "0-999" },
  { access = "write", table = "holding", range = "100-110", values = "0-500" },
]
"#,
        "scope.toml",
    )
    .unwrap();
    Inspector::new(scope, GrantId::new(7).unwrap())
}

fn frame(transaction: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode(&mut out, transaction, unit, pdu);
    out
}

/// The single frame in `bytes`: (transaction, unit, pdu).
fn only_frame(bytes: &[u8]) -> (u16, u8, Vec<u8>) {
    let (frame, used) = next_frame(bytes).unwrap().unwrap();
    assert_eq!(used, bytes.len(), "one frame expected");
    (frame.transaction, frame.unit, frame.pdu.to_vec())
}

fn verdict_and_exception(event: &SessionEvent) -> (Verdict, Option<u8>) {
    match event {
        SessionEvent::Modbus {
            verdict, exception, ..
        } => (*verdict, *exception),
        other => panic!("not a modbus event: {other:?}"),
    }
}

#[test]
fn allowed_requests_pass_and_their_responses_come_back_with_timing() {
    let mut inspector = scoped();
    let now = Instant::now();
    let request = frame(1, 1, &[3, 0, 10, 0, 2]);
    let out = inspector.from_client(&request, now);
    assert_eq!(out.to_server, request);
    assert!(out.to_client.is_empty() && out.events.is_empty() && out.close.is_none());
    let response = frame(1, 1, &[3, 4, 0, 42, 0, 43]);
    let out = inspector.from_server(&response, now + Duration::from_micros(250));
    assert_eq!(out.to_client, response);
    let [event] = out.events.as_slice() else {
        panic!("{:?}", out.events)
    };
    match event {
        SessionEvent::Modbus {
            summary,
            table,
            start,
            count,
            rtt_us,
            verdict,
            ..
        } => {
            assert_eq!(summary, "read holding registers 10-11");
            assert_eq!(table.as_deref(), Some("holding registers"));
            assert_eq!((*start, *count), (Some(10), Some(2)));
            assert_eq!(*rtt_us, Some(250));
            assert_eq!(*verdict, Verdict::Allowed);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn denials_are_answered_with_the_right_exception_and_never_forwarded() {
    let mut inspector = scoped();
    let now = Instant::now();
    for (pdu, unit, code) in [
        (vec![3, 0x03, 0xE8, 0, 1], 1, 2),   // read holding 1000: address
        (vec![6, 0, 120, 0, 1], 1, 2),       // write 120: address
        (vec![6, 0, 105, 0x02, 0x58], 1, 3), // write 600 to 105: value
        (vec![5, 0, 1, 0xFF, 0], 1, 1),      // coils: function
        (vec![4, 0, 0, 0, 1], 1, 1),         // input registers: function
        (vec![3, 0, 0, 0, 1], 2, 0x0A),      // unit 2
        (vec![3, 0, 0, 0, 200], 1, 3),       // quantity beyond the protocol's 125
    ] {
        let out = inspector.from_client(&frame(9, unit, &pdu), now);
        assert!(out.to_server.is_empty(), "{pdu:?} was forwarded");
        assert!(out.close.is_none());
        let (transaction, answered_unit, answer) = only_frame(&out.to_client);
        assert_eq!((transaction, answered_unit), (9, unit));
        assert_eq!(answer, vec![pdu[0] | 0x80, code], "{pdu:?}");
        let [event] = out.events.as_slice() else {
            panic!()
        };
        assert_eq!(verdict_and_exception(event), (Verdict::Denied, Some(code)));
    }
    // Within bounds: forwarded.
    let write = frame(10, 1, &[16, 0, 100, 0, 2, 4, 0, 1, 1, 0xF4]);
    assert_eq!(inspector.from_client(&write, now).to_server, write);
}

#[test]
fn pipelined_requests_are_matched_by_transaction_in_any_order() {
    let mut inspector = scoped();
    let now = Instant::now();
    let mut requests = frame(1, 1, &[3, 0, 0, 0, 1]);
    requests.extend(frame(2, 1, &[3, 0, 1, 0, 1]));
    requests.extend(frame(3, 1, &[3, 0x0F, 0xA0, 0, 1])); // 4000: denied
    // Arriving in two pieces that cut a frame in half.
    let out = inspector.from_client(&requests[..17], now);
    assert_eq!(out.to_server.len(), 12);
    let out = inspector.from_client(&requests[17..], now);
    assert_eq!(out.to_server.len(), 12);
    assert_eq!(out.events.len(), 1, "the denial");
    let mut responses = frame(2, 1, &[3, 2, 0, 7]);
    responses.extend(frame(1, 1, &[0x83, 2]));
    let out = inspector.from_server(&responses, now);
    assert_eq!(out.to_client, responses);
    let exceptions: Vec<_> = out.events.iter().map(verdict_and_exception).collect();
    assert_eq!(
        exceptions,
        [(Verdict::Allowed, None), (Verdict::Allowed, Some(2))]
    );
}

#[test]
fn malformed_input_closes_without_forwarding() {
    let now = Instant::now();
    for bytes in [
        b"GET / HTTP/1.1\r\nHost: plc\r\n\r\n".to_vec(),
        vec![0, 1, 0, 5, 0, 6, 1, 3, 0, 0, 0, 1], // protocol id 5
        vec![0, 1, 0, 0, 1, 0, 1, 3],             // length 256
        frame(1, 1, &[3, 0, 0, 0]),               // length disagrees with the function
        frame(1, 1, &[16, 0, 100, 0, 2, 4, 0, 1]), // byte count beyond the frame
    ] {
        let mut inspector = scoped();
        let out = inspector.from_client(&bytes, now);
        assert!(out.to_server.is_empty(), "{bytes:?} was forwarded");
        assert!(out.close.is_some(), "{bytes:?} was accepted");
    }
    // A valid request before garbage still goes; the garbage does not.
    let mut inspector = scoped();
    let mut bytes = frame(1, 1, &[3, 0, 0, 0, 1]);
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 9, 1, 1]);
    let out = inspector.from_client(&bytes, now);
    assert_eq!(out.to_server.len(), 12);
    assert!(out.close.is_some());
    // A transaction id reused while outstanding.
    let mut inspector = scoped();
    let request = frame(5, 1, &[3, 0, 0, 0, 1]);
    assert!(inspector.from_client(&request, now).close.is_none());
    assert!(inspector.from_client(&request, now).close.is_some());
    // The PLC answering what was not asked, or with the wrong shape.
    let mut inspector = scoped();
    assert!(
        inspector
            .from_server(&frame(1, 1, &[3, 2, 0, 1]), now)
            .close
            .is_some()
    );
    let mut inspector = scoped();
    inspector.from_client(&frame(1, 1, &[3, 0, 0, 0, 1]), now);
    assert!(
        inspector
            .from_server(&frame(1, 1, &[3, 9, 0, 1]), now)
            .close
            .is_some()
    );
}

#[test]
fn outstanding_and_cut_off_frames_are_reported_at_the_end() {
    let mut inspector = scoped();
    let now = Instant::now();
    let mut bytes = Vec::new();
    for transaction in 0..u16::try_from(MAX_PENDING).unwrap() {
        bytes.extend(frame(transaction, 1, &[3, 0, 0, 0, 1]));
    }
    bytes.extend(&frame(999, 1, &[3, 0, 0, 0, 1])[..5]);
    inspector.from_client(&bytes, now);
    assert!(inspector.is_full());
    let (unanswered, cut) = inspector.finish();
    assert_eq!(unanswered.len(), MAX_PENDING);
    assert!(cut.unwrap().contains("5 bytes from the vendor"));
}
