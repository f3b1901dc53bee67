//! Request PDUs: what each function code reads and writes, checked against the protocol's
//! own limits before the scope sees it.

use otgate_policy::scope::{ModbusRead, ModbusRequest, ModbusWrite, Table, WriteValues};

use super::frame::Malformed;

/// What a request writes, owned (for events) and viewable as the policy's [`ModbusWrite`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// Register values (FC 6, 16, 23).
    Registers(Vec<u16>),
    /// Coil values (FC 5, 15).
    Coils(Vec<bool>),
    /// A masked write (FC 22).
    Masked {
        /// AND mask.
        and: u16,
        /// OR mask.
        or: u16,
    },
}

/// A decoded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Function code.
    pub function: u8,
    /// What it reads.
    pub read: Option<ModbusRead>,
    /// What it writes: table, first address, values.
    pub write: Option<(Table, u16, Written)>,
}

/// Why a request cannot go to the PLC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not Modbus: the connection is closed.
    Malformed(Malformed),
    /// Well-formed but outside what the protocol allows; answered with this exception code.
    Exception(u8, String),
}

fn malformed(function: u8, what: impl Into<String>) -> Refusal {
    Refusal::Malformed(Malformed(format!("function {function}: {}", what.into())))
}

fn word(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([
        data.get(at).copied().unwrap_or_default(),
        data.get(at + 1).copied().unwrap_or_default(),
    ])
}

/// Checks that `data` is exactly `len` bytes.
fn exactly(function: u8, data: &[u8], len: usize) -> Result<(), Refusal> {
    if data.len() == len {
        Ok(())
    } else {
        Err(malformed(
            function,
            format!("{} data bytes where {len} are expected", data.len()),
        ))
    }
}

/// Checks a quantity against the protocol's limit for the function (exception 03 if not).
fn quantity(function: u8, count: u16, max: u16) -> Result<u16, Refusal> {
    if (1..=max).contains(&count) {
        Ok(count)
    } else {
        Err(Refusal::Exception(
            3,
            format!("function {function}: quantity {count} (1 to {max})"),
        ))
    }
}

/// Checks that `start + count` stays inside the 16-bit address space (exception 02 if not).
fn span(function: u8, start: u16, count: u16) -> Result<(), Refusal> {
    if u32::from(start) + u32::from(count) <= 0x1_0000 {
        Ok(())
    } else {
        Err(Refusal::Exception(
            2,
            format!("function {function}: {count} items from {start} pass the end of the table"),
        ))
    }
}

/// The registers in `bytes`, big-endian.
fn registers(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|pair| {
            u16::from_be_bytes([
                pair.first().copied().unwrap_or_default(),
                pair.get(1).copied().unwrap_or_default(),
            ])
        })
        .collect()
}

/// The first `count` bits of `bytes`, least significant bit first.
fn coils(bytes: &[u8], count: u16) -> Vec<bool> {
    (0..usize::from(count))
        .map(|i| bytes.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0))
        .collect()
}

/// Decodes a request PDU (`function` and `data`).
pub fn decode(function: u8, data: &[u8]) -> Result<Request, Refusal> {
    let read = |table, max| -> Result<Request, Refusal> {
        exactly(function, data, 4)?;
        let (start, count) = (word(data, 0), quantity(function, word(data, 2), max)?);
        span(function, start, count)?;
        Ok(Request {
            function,
            read: Some(ModbusRead {
                table,
                start,
                count,
            }),
            write: None,
        })
    };
    let plain = |len: Option<usize>| -> Result<Request, Refusal> {
        if let Some(len) = len {
            exactly(function, data, len)?;
        }
        Ok(Request {
            function,
            read: None,
            write: None,
        })
    };
    match function {
        1 => read(Table::Coils, 2000),
        2 => read(Table::Discrete, 2000),
        3 => read(Table::Holding, 125),
        4 => read(Table::Input, 125),
        5 => {
            exactly(function, data, 4)?;
            let value = match word(data, 2) {
                0xFF00 => true,
                0x0000 => false,
                other => {
                    return Err(Refusal::Exception(
                        3,
                        format!("function 5: coil value {other:#06x} (0xFF00 or 0x0000)"),
                    ));
                }
            };
            Ok(Request {
                function,
                read: None,
                write: Some((Table::Coils, word(data, 0), Written::Coils(vec![value]))),
            })
        }
        6 => {
            exactly(function, data, 4)?;
            Ok(Request {
                function,
                read: None,
                write: Some((
                    Table::Holding,
                    word(data, 0),
                    Written::Registers(vec![word(data, 2)]),
                )),
            })
        }
        15 | 16 => {
            let header = data
                .get(..5)
                .ok_or_else(|| malformed(function, "shorter than its header"))?;
            let (start, count) = (word(header, 0), word(header, 2));
            let bytes = usize::from(header.get(4).copied().unwrap_or_default());
            exactly(function, data, 5 + bytes)?;
            let values = data.get(5..).unwrap_or_default();
            let (table, written, needed) = if function == 15 {
                let count = quantity(function, count, 1968)?;
                (
                    Table::Coils,
                    Written::Coils(coils(values, count)),
                    usize::from(count).div_ceil(8),
                )
            } else {
                let count = quantity(function, count, 123)?;
                (
                    Table::Holding,
                    Written::Registers(registers(values)),
                    usize::from(count) * 2,
                )
            };
            if bytes != needed {
                return Err(malformed(
                    function,
                    format!("byte count {bytes} for {count} items (expected {needed})"),
                ));
            }
            span(function, start, count)?;
            Ok(Request {
                function,
                read: None,
                write: Some((table, start, written)),
            })
        }
        22 => {
            exactly(function, data, 6)?;
            Ok(Request {
                function,
                read: None,
                write: Some((
                    Table::Holding,
                    word(data, 0),
                    Written::Masked {
                        and: word(data, 2),
                        or: word(data, 4),
                    },
                )),
            })
        }
        23 => {
            let header = data
                .get(..9)
                .ok_or_else(|| malformed(function, "shorter than its header"))?;
            let (read_start, read_count) =
                (word(header, 0), quantity(function, word(header, 2), 125)?);
            let (write_start, write_count) =
                (word(header, 4), quantity(function, word(header, 6), 121)?);
            let bytes = usize::from(header.get(8).copied().unwrap_or_default());
            exactly(function, data, 9 + bytes)?;
            if bytes != usize::from(write_count) * 2 {
                return Err(malformed(
                    function,
                    format!("byte count {bytes} for {write_count} registers"),
                ));
            }
            span(function, read_start, read_count)?;
            span(function, write_start, write_count)?;
            Ok(Request {
                function,
                read: Some(ModbusRead {
                    table: Table::Holding,
                    start: read_start,
                    count: read_count,
                }),
                write: Some((
                    Table::Holding,
                    write_start,
                    Written::Registers(registers(data.get(9..).unwrap_or_default())),
                )),
            })
        }
        24 => {
            exactly(function, data, 2)?;
            Ok(Request {
                function,
                // A FIFO queue is read at its pointer register (up to 31 values follow it).
                read: Some(ModbusRead {
                    table: Table::Holding,
                    start: word(data, 0),
                    count: 1,
                }),
                write: None,
            })
        }
        7 | 11 | 12 | 17 => plain(Some(0)),
        8 => {
            if data.len() < 2 {
                return Err(malformed(function, "no sub-function"));
            }
            plain(None)
        }
        20 | 21 => {
            let bytes = usize::from(data.first().copied().unwrap_or_default());
            exactly(function, data, 1 + bytes)?;
            if bytes == 0 || (function == 20 && bytes % 7 != 0) {
                return Err(malformed(function, format!("byte count {bytes}")));
            }
            plain(None)
        }
        43 => {
            exactly(function, data, 3)?;
            match data.first() {
                Some(14) => plain(None),
                _ => Err(Refusal::Exception(
                    1,
                    "function 43: only MEI type 14 (device identification) is supported".into(),
                )),
            }
        }
        f if f >= 0x80 => Err(malformed(function, "an exception code in a request")),
        // Other codes carry no addresses the gateway could check: forwarded only when the
        // scope lists them.
        _ => plain(None),
    }
}

impl Request {
    /// The request as the policy checks it.
    pub fn as_policy(&self, unit: u8) -> ModbusRequest<'_> {
        ModbusRequest {
            unit,
            function: self.function,
            read: self.read,
            write: self
                .write
                .as_ref()
                .map(|(table, start, written)| ModbusWrite {
                    table: *table,
                    start: *start,
                    values: match written {
                        Written::Registers(values) => WriteValues::Registers(values),
                        Written::Coils(values) => WriteValues::Coils(values.len()),
                        Written::Masked { .. } => WriteValues::Masked,
                    },
                }),
        }
    }

    /// Words for the record: `read holding 100-109`, `write holding 105 = [42]`.
    pub fn summary(&self) -> String {
        let range = |start: u16, count: usize| {
            let last = usize::from(start) + count.max(1) - 1;
            if count <= 1 {
                start.to_string()
            } else {
                format!("{start}-{last}")
            }
        };
        let mut parts = Vec::new();
        if let Some(read) = self.read {
            parts.push(format!(
                "read {} {}",
                read.table.as_str(),
                range(read.start, usize::from(read.count))
            ));
        }
        if let Some((table, start, written)) = &self.write {
            parts.push(match written {
                Written::Registers(values) => format!(
                    "write {} {} = {values:?}",
                    table.as_str(),
                    range(*start, values.len())
                ),
                Written::Coils(values) => format!(
                    "write {} {} = [{}]",
                    table.as_str(),
                    range(*start, values.len()),
                    values
                        .iter()
                        .map(|v| if *v { "1" } else { "0" })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Written::Masked { and, or } => format!(
                    "mask write {} {start} and {and:#06x} or {or:#06x}",
                    table.as_str()
                ),
            });
        }
        if parts.is_empty() {
            parts.push(
                match self.function {
                    7 => "read exception status",
                    8 => "diagnostics",
                    11 => "get comm event counter",
                    12 => "get comm event log",
                    17 => "report server id",
                    20 => "read file record",
                    21 => "write file record",
                    43 => "read device identification",
                    _ => "function without addresses",
                }
                .to_owned(),
            );
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_their_limits() {
        let r = decode(3, &[0, 100, 0, 10]).unwrap();
        assert_eq!(r.summary(), "read holding registers 100-109");
        let w = decode(16, &[0, 105, 0, 2, 4, 0, 42, 1, 0]).unwrap();
        assert_eq!(w.summary(), "write holding registers 105-106 = [42, 256]");
        let c = decode(15, &[0, 3, 0, 3, 1, 0b101]).unwrap();
        assert_eq!(c.summary(), "write coils 3-5 = [1, 0, 1]");
        let rw = decode(23, &[0, 0, 0, 2, 0, 9, 0, 1, 2, 0, 7]).unwrap();
        assert_eq!(
            rw.summary(),
            "read holding registers 0-1; write holding registers 9 = [7]"
        );
        // Protocol limits are exception 03; an address past the table's end 02.
        assert!(matches!(
            decode(3, &[0, 0, 0, 126]),
            Err(Refusal::Exception(3, _))
        ));
        assert!(matches!(
            decode(3, &[0, 0, 0, 0]),
            Err(Refusal::Exception(3, _))
        ));
        assert!(matches!(
            decode(3, &[255, 255, 0, 2]),
            Err(Refusal::Exception(2, _))
        ));
        assert!(matches!(
            decode(5, &[0, 0, 0x12, 0x34]),
            Err(Refusal::Exception(3, _))
        ));
        assert!(matches!(
            decode(43, &[13, 0, 0]),
            Err(Refusal::Exception(1, _))
        ));
        // Lengths that disagree with the bytes close the connection.
        assert!(matches!(decode(3, &[0, 0, 0]), Err(Refusal::Malformed(_))));
        assert!(matches!(
            decode(16, &[0, 0, 0, 2, 4, 0, 1]),
            Err(Refusal::Malformed(_))
        ));
        assert!(matches!(
            decode(16, &[0, 0, 0, 2, 2, 0, 1]),
            Err(Refusal::Malformed(_))
        ));
        assert!(matches!(decode(0x83, &[2]), Err(Refusal::Malformed(_))));
    }
}
