//! SFTP bytes from a vendor pass through the gateway's filter: any stream is framed or
//! refused, every packet gets a verdict, a read-only filter never forwards a write, and
//! nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otgate_gateway::ssh::sftp::{Filter, Verdict, packets};

fuzz_target!(|data: &[u8]| {
    let mut buffer = data.to_vec();
    let Ok(framed) = packets(&mut buffer) else {
        return;
    };
    let mut read_only = Filter::new(false);
    let mut writable = Filter::new(true);
    for packet in framed {
        let _ = writable.vendor_packet(&packet);
        let _ = read_only.asset_packet(&packet);
        let _ = read_only.closed(&packet);
        if let Ok(Verdict::Forward) = read_only.vendor_packet(&packet) {
            // A forwarded packet from a read-only session is never a write request.
            let kind = packet.get(4).copied().unwrap_or(0);
            assert!(![6u8, 9, 10, 13, 14, 15, 18, 20, 200].contains(&kind), "{kind}");
        }
    }
});
