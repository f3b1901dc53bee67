//! otgate-gateway: the data plane (SSH proxy, QUIC tunnel, protocol inspectors, live session
//! registry with kill switches).
//!
//! This first part is the gateway's only door to the control plane: [`ControlPlane`], a small
//! trait to look up a grant and report an event. The binary implements it over an in-process
//! broker; a remote implementation lets a gateway run on its own node. The gateway never
//! depends on the broker crate.
//!
//! Never: decide access without asking [`ControlPlane::grant`], or let a session run
//! unrecorded.

mod access;
mod control;
mod forward;
pub mod modbus;
mod registry;
pub mod ssh;
pub mod tunnel;

pub use control::{AssetSecret, ControlPlane, GatewayError, Refusal};
pub use registry::Registry;
