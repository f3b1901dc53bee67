//! otgate-detector: anomaly detection on the session event stream, external alert intake,
//! and the response playbook.
//!
//! Role: learn what normal looks like per vendor (commands, hours, assets reached), per asset
//! (Modbus function codes, addresses, values, rates) and per vendor-and-asset (registers
//! written); score every session event 0-100 with the findings that drove it, in words; keep
//! each live session's running risk; decide the playbook's response (alert, freeze,
//! terminate and revoke, quarantine) per Purdue level and zone; read external alerts
//! (generic JSON, Suricata EVE); and evaluate all of it offline on public data with the same
//! code ([`eval`]).
//!
//! Invariants:
//! - Pure and synchronous: no I/O, no clock (times come with the events), so live scoring and
//!   offline evaluation are the same computation.
//! - Models learn only from what stayed normal: a block of events in which nothing reached
//!   the alert threshold, or what an engineer marked a false positive.
//! - Every bounded: per-session history, remembered registers, flows and assets have caps,
//!   so a flood of odd input costs bounded memory.
//!
//! Layout: [`observation`] (input), [`words`] (command lines to programs), the models
//! ([`commands`], [`industrial`], [`hours`], [`reach`], [`probing`], [`attacks`]), [`score`]
//! (findings, risk), [`playbook`], [`engine`] (the detector), [`external`] (alerts from
//! outside), [`eval`].
//!
//! Never: act on sessions itself (the binary turns responses into the broker's tokens), or
//! depend on another otgate crate than `policy`.

pub mod attacks;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod eval;
pub mod external;
pub mod hours;
pub mod industrial;
pub mod observation;
pub mod playbook;
pub mod probing;
pub mod profile;
pub mod reach;
pub mod score;
pub mod words;

pub use config::DetectorConfig;
pub use engine::{Assessment, Detector, Sizes};
pub use error::{DetectorError, Result};
pub use external::{AssetRef, ExternalAlert};
pub use observation::{ModbusRequest, Observation, Observed, SessionContext, Table};
pub use playbook::{FailMode, Playbook, PlaybookConfig, Response};
pub use score::{Finding, Risk};
