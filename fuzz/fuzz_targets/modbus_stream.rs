//! Bytes from a vendor and from a PLC, in any split, pass through the Modbus inspector:
//! nothing panics, and whatever it forwards to the PLC is whole frames of requests the
//! scope allows (nothing malformed, nothing outside the grant ever reaches the PLC).
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use otgate_gateway::modbus::{Inspector, decode, next_frame};
use otgate_policy::scope::Operation;
use otgate_policy::{GrantId, Scope};

fn scope() -> &'static Scope {
    static SCOPE: OnceLock<Scope> = OnceLock::new();
    SCOPE.get_or_init(|| {
        Scope::from_toml(
            r#"
[modbus]
units = [1, 2]
allow = [
  { access = "read", table = "holding", range = "0-999" },
  { access = "read", table = "coils", range = "0-99" },
  { access = "write", table = "holding", range = "100-110", values = "0-500" },
  { access = "write", table = "coils", range = "10-20" },
]
"#,
            "fuzz.toml",
        )
        .expect("the fuzz scope parses")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut inspector = Inspector::new(scope().clone(), GrantId::new(1).expect("id"));
    let start = Instant::now();
    let mut rest = data;
    let mut step = 0u64;
    while let Some((&control, tail)) = rest.split_first() {
        let length = usize::from(control >> 1) % 64 + 1;
        let (chunk, tail) = tail.split_at(length.min(tail.len()));
        rest = tail;
        step += 1;
        let now = start + Duration::from_micros(step);
        let out = if control & 1 == 0 {
            inspector.from_client(chunk, now)
        } else {
            inspector.from_server(chunk, now)
        };
        let mut forwarded = out.to_server.as_slice();
        while !forwarded.is_empty() {
            let (frame, used) = next_frame(forwarded)
                .expect("forwarded bytes are frames")
                .expect("forwarded frames are whole");
            let request = decode(frame.function(), frame.data()).expect("forwarded requests decode");
            let policy = request.as_policy(frame.unit);
            assert!(
                scope().check(&Operation::Modbus(&policy)).is_allowed(),
                "forwarded a request the scope denies: {request:?}"
            );
            forwarded = &forwarded[used..];
        }
        if out.close.is_some() {
            return;
        }
    }
    let _ = inspector.finish();
});
