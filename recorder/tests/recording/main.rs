//! Recorder tests: format, verification of tampered and truncated recordings, fail-closed
//! writing, crash recovery, S3 storage (a real S3-compatible server: moto), properties.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod crash;
mod failure;
mod properties;
mod round_trip;
mod s3;
mod support;
mod tamper;
