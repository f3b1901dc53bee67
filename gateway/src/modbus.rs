//! Modbus/TCP: the codec (framing, request PDUs), the inspector that enforces a grant's
//! Modbus scope on a byte stream, and the relay that runs it between a vendor's stream (an
//! SSH forward or a QUIC tunnel stream) and the PLC.

pub mod frame;
pub mod inspector;
pub mod relay;
pub mod request;

#[cfg(test)]
mod tests;

pub use frame::{Frame, Malformed, next_frame};
pub use inspector::{Inspector, Output};
pub use request::{Refusal, Request, decode};
