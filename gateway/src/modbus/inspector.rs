//! The Modbus/TCP inspector, sans-IO: bytes from the vendor and from the PLC go in; bytes
//! for each side, session events and, for malformed input, a reason to close come out.
//! Requests outside the grant's scope are answered by the inspector itself with the proper
//! exception and the same transaction id; nothing malformed is ever forwarded.

use std::collections::HashMap;
use std::time::Instant;

use otgate_policy::{Decision, DenyReason, GrantId, Operation, Scope};
use otgate_recorder::{SessionEvent, Verdict};

use super::frame::{Frame, encode, next_frame};
use super::request::{Refusal, Request, Written, decode};

/// Most requests in flight on one connection: past this the relay stops reading the vendor
/// until the PLC has answered (pipelining stays bounded).
pub const MAX_PENDING: usize = 64;

/// A request forwarded to the PLC, waiting for its response.
struct Pending {
    event: SessionEvent,
    function: u8,
    sent: Instant,
}

/// What one call produced.
#[derive(Debug, Default)]
pub struct Output {
    /// Bytes for the PLC (whole, checked frames).
    pub to_server: Vec<u8>,
    /// Bytes for the vendor (the PLC's responses and the inspector's exceptions).
    pub to_client: Vec<u8>,
    /// One `modbus` event per finished transaction (answered, or denied by the inspector).
    pub events: Vec<SessionEvent>,
    /// Set when the connection must be closed: why.
    pub close: Option<String>,
}

/// One Modbus/TCP connection's inspector.
pub struct Inspector {
    scope: Scope,
    grant: GrantId,
    pending: HashMap<u16, Pending>,
    client: Vec<u8>,
    server: Vec<u8>,
}

/// The exception a denial is answered with.
fn exception_for(reason: &DenyReason) -> u8 {
    match reason {
        DenyReason::ModbusUnit { .. } => 0x0A,
        DenyReason::ModbusAddress { .. } => 2,
        DenyReason::ModbusValue { .. } => 3,
        _ => 1,
    }
}

/// The event for a request, before its outcome is known.
fn request_event(transaction: u16, unit: u8, request: &Request) -> SessionEvent {
    let (table, start, count, values) = match (&request.write, request.read) {
        (Some((table, start, written)), _) => {
            let values: Vec<u16> = match written {
                Written::Registers(values) => values.clone(),
                Written::Coils(bits) => bits.iter().map(|b| u16::from(*b)).collect(),
                Written::Masked { .. } => Vec::new(),
            };
            let count = match written {
                Written::Masked { .. } => 1,
                _ => u16::try_from(values.len()).unwrap_or(u16::MAX),
            };
            (
                Some(table.as_str().to_owned()),
                Some(*start),
                Some(count),
                values,
            )
        }
        (None, Some(read)) => (
            Some(read.table.as_str().to_owned()),
            Some(read.start),
            Some(read.count),
            Vec::new(),
        ),
        (None, None) => (None, None, None, Vec::new()),
    };
    SessionEvent::Modbus {
        transaction,
        unit,
        function: request.function,
        summary: request.summary(),
        table,
        start,
        count,
        values,
        verdict: Verdict::Allowed,
        reason: None,
        exception: None,
        rtt_us: None,
    }
}

/// A denied request's event, answered by the inspector with `code`.
fn denied(mut event: SessionEvent, why: String, code: u8) -> SessionEvent {
    if let SessionEvent::Modbus {
        verdict,
        reason,
        exception,
        ..
    } = &mut event
    {
        *verdict = Verdict::Denied;
        *reason = Some(why);
        *exception = Some(code);
    }
    event
}

/// Checks a response's shape for its request's function; returns its exception code, if any.
fn check_response(requested: u8, frame: &Frame<'_>) -> Result<Option<u8>, String> {
    let (function, data) = (frame.function(), frame.data());
    if function == requested | 0x80 {
        return match data {
            [code] => Ok(Some(*code)),
            _ => Err(format!("an exception response of {} bytes", data.len())),
        };
    }
    if function != requested {
        return Err(format!(
            "function {function} in the response to a function {requested} request"
        ));
    }
    let expected = match function {
        1..=4 | 23 => 1 + usize::from(data.first().copied().unwrap_or_default()),
        5 | 6 | 15 | 16 => 4,
        22 => 6,
        _ => return Ok(None),
    };
    if data.len() == expected {
        Ok(None)
    } else {
        Err(format!(
            "a function {function} response of {} bytes where {expected} are expected",
            data.len()
        ))
    }
}

impl Inspector {
    /// An inspector enforcing `scope` (of grant `grant`, named in denials).
    pub fn new(scope: Scope, grant: GrantId) -> Self {
        Self {
            scope,
            grant,
            pending: HashMap::new(),
            client: Vec::new(),
            server: Vec::new(),
        }
    }

    /// Whether as many requests are in flight as allowed (stop reading the vendor).
    pub fn is_full(&self) -> bool {
        self.pending.len() >= MAX_PENDING
    }

    /// Bytes from the vendor.
    pub fn from_client(&mut self, data: &[u8], now: Instant) -> Output {
        let mut out = Output::default();
        let Self {
            scope,
            grant,
            pending,
            client,
            ..
        } = self;
        client.extend_from_slice(data);
        let mut used = 0;
        loop {
            let rest = client.get(used..).unwrap_or_default();
            let (frame, length) = match next_frame(rest) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(malformed) => {
                    out.close = Some(format!("malformed Modbus from the vendor: {malformed}"));
                    break;
                }
            };
            let raw = rest.get(..length).unwrap_or_default();
            let checked = Checked {
                scope,
                grant: *grant,
                pending,
            };
            if let Err(why) = checked.request(frame, raw, now, &mut out) {
                out.close = Some(why);
                break;
            }
            used += length;
        }
        if out.close.is_some() {
            client.clear();
        } else {
            client.drain(..used);
        }
        out
    }

    /// Bytes from the PLC.
    pub fn from_server(&mut self, data: &[u8], now: Instant) -> Output {
        let mut out = Output::default();
        self.server.extend_from_slice(data);
        let mut used = 0;
        loop {
            let rest = self.server.get(used..).unwrap_or_default();
            let (frame, length) = match next_frame(rest) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(malformed) => {
                    out.close = Some(format!("malformed Modbus from the PLC: {malformed}"));
                    break;
                }
            };
            let Some(pending) = self.pending.remove(&frame.transaction) else {
                out.close = Some(format!(
                    "malformed Modbus from the PLC: a response to transaction {}, which is not outstanding",
                    frame.transaction
                ));
                break;
            };
            match check_response(pending.function, &frame) {
                Ok(code) => {
                    out.to_client
                        .extend_from_slice(rest.get(..length).unwrap_or_default());
                    let mut event = pending.event;
                    if let SessionEvent::Modbus {
                        exception, rtt_us, ..
                    } = &mut event
                    {
                        *exception = code;
                        *rtt_us = Some(
                            u64::try_from(now.duration_since(pending.sent).as_micros())
                                .unwrap_or(u64::MAX),
                        );
                    }
                    out.events.push(event);
                }
                Err(why) => {
                    out.close = Some(format!("malformed Modbus from the PLC: {why}"));
                    break;
                }
            }
            used += length;
        }
        if out.close.is_some() {
            self.server.clear();
        } else {
            self.server.drain(..used);
        }
        out
    }

    /// The connection ended: requests never answered are recorded as such, and a frame cut
    /// off on either side is named.
    pub fn finish(&mut self) -> (Vec<SessionEvent>, Option<String>) {
        let mut events: Vec<(u16, SessionEvent)> = self
            .pending
            .drain()
            .map(|(transaction, pending)| {
                let mut event = pending.event;
                if let SessionEvent::Modbus { reason, .. } = &mut event {
                    *reason = Some("no response before the connection closed".into());
                }
                (transaction, event)
            })
            .collect();
        events.sort_by_key(|(transaction, _)| *transaction);
        let cut = match (self.client.len(), self.server.len()) {
            (0, 0) => None,
            (c, s) => Some(format!(
                "a Modbus frame was cut off ({c} bytes from the vendor, {s} from the PLC were never forwarded)"
            )),
        };
        (events.into_iter().map(|(_, e)| e).collect(), cut)
    }
}

/// The parts of the inspector a request is checked with (borrowed apart from the buffer
/// the request is read from).
struct Checked<'a> {
    scope: &'a Scope,
    grant: GrantId,
    pending: &'a mut HashMap<u16, Pending>,
}

impl Checked<'_> {
    /// Forwards an allowed request, answers a denied one; `Err` closes the connection.
    fn request(
        self,
        frame: Frame<'_>,
        raw: &[u8],
        now: Instant,
        out: &mut Output,
    ) -> Result<(), String> {
        let (transaction, unit, function) = (frame.transaction, frame.unit, frame.function());
        if self.pending.contains_key(&transaction) {
            return Err(format!(
                "malformed Modbus from the vendor: transaction {transaction} reused while outstanding"
            ));
        }
        let answer = |out: &mut Output, code: u8| {
            encode(
                &mut out.to_client,
                transaction,
                unit,
                &[function | 0x80, code],
            );
        };
        let request = match decode(function, frame.data()) {
            Ok(request) => request,
            Err(Refusal::Malformed(malformed)) => {
                return Err(format!("malformed Modbus from the vendor: {malformed}"));
            }
            Err(Refusal::Exception(code, why)) => {
                answer(out, code);
                let event = request_event(
                    transaction,
                    unit,
                    &Request {
                        function,
                        read: None,
                        write: None,
                    },
                );
                out.events.push(denied(event, why, code));
                return Ok(());
            }
        };
        let event = request_event(transaction, unit, &request);
        let decision = self
            .scope
            .check(&Operation::Modbus(&request.as_policy(unit)));
        match &decision {
            Decision::Allow { .. } => {
                out.to_server.extend_from_slice(raw);
                self.pending.insert(
                    transaction,
                    Pending {
                        event,
                        function,
                        sent: now,
                    },
                );
            }
            Decision::Deny { reason, .. } => {
                let code = exception_for(reason);
                answer(out, code);
                let why = format!("grant {} {decision}", self.grant);
                out.events.push(denied(event, why, code));
            }
        }
        Ok(())
    }
}
