//! otgate-policy: what may be done, where, by whom, and when. Pure logic, no I/O.
//!
//! Role: the plant inventory (assets on Purdue levels in IEC 62443 zones), grant scopes and their
//! evaluation (SSH commands, Modbus functions and ranges, TCP ports), approval rules per level,
//! role-based authorization with zones as domains (casbin), and the typed event model every
//! other crate emits.
//!
//! Invariants:
//! - Evaluation is deny by default: [`Scope::check`] allows an operation only when a rule allows
//!   it, and a deny rule always wins; adding a deny rule never widens access.
//! - Untrusted input (commands typed by vendors, scope and inventory files) never panics: lengths
//!   and nesting are bounded and errors name what to fix.
//!
//! Layout: [`id`] names and ids, [`level`], [`asset`], [`inventory`], [`window`] (time),
//! [`scope`] (shell lexer, command patterns, SSH, Modbus, presets), [`decision`], [`approval`],
//! [`authz`], [`grant`], [`event`].
//!
//! Never: open sockets or files, read the clock inside evaluation, or depend on another otgate
//! crate.

pub mod approval;
pub mod asset;
pub mod authz;
pub mod decision;
pub mod error;
pub mod event;
pub mod finding;
pub mod grant;
pub mod id;
pub mod inventory;
pub mod level;
pub mod scope;
pub mod window;

mod schema;

pub use approval::{ApprovalConfig, ApprovalRules, LevelRule, WindowError};
pub use asset::{Asset, AssetKind, Endpoint, Protocol};
pub use authz::{Action, Authorizer, Domain, Role, RoleAssignment};
pub use decision::{Decision, DenyReason, Rule};
pub use error::{PolicyError, Result};
pub use event::{Event, EventKind, QuarantineSubject};
pub use finding::Finding;
pub use grant::Grant;
pub use id::{AssetName, CredentialName, EndpointName, GrantId, OrgName, UserName, ZoneName};
pub use inventory::{Inventory, Zone};
pub use level::PurdueLevel;
pub use scope::{Operation, Preset, Scope};
pub use window::{DailyHours, MaintenanceWindow, Window};
