//! End-to-end tests of the built `otgate` binary against real peers (OpenSSH).
//!
//! Peers missing from the machine make the affected test fail when `OTGATE_REQUIRE_PEERS=1`
//! (CI) and skip with a message otherwise.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

// Shared with the bench harness (`otgate-bench ui`), which also uses its page metrics.
#[allow(dead_code)]
mod browser;
mod browser_ui;
mod control_plane;
mod detector;
mod gateway;
mod gateway_endings;
mod modbus;
mod recordings;
mod support;
