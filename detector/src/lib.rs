//! otgate-detector: anomaly detection on the session event stream, external alert intake, and
//! the response playbook (alert, freeze, terminate and revoke, quarantine).
//!
//! Empty until the detector issue: it will build on `policy` and consume the broker's event
//! bus. Never: block a session's data path; it acts through the same tokens as manual kills.
