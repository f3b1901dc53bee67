//! The demo's simulated PLC: a small Modbus/TCP server (on the gateway's own codec) with a
//! register map that changes over time. A tank fills through an inlet valve and drains
//! through a pump whose setpoint may be written:
//!
//! | table | address | meaning |
//! |---|---|---|
//! | holding | 0 | tank level, tenths of a percent (0-1000) |
//! | holding | 1 | pump speed, rpm |
//! | holding | 2 | pump setpoint, 0-500 (writable) |
//! | holding | 3 | high-level alarm limit (writable) |
//! | input | 0 | outlet temperature, tenths of a degree C |
//! | input | 1 | inflow, litres per minute |
//! | coils | 0, 1 | pump running, inlet valve open |

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use otgate_gateway::modbus::frame::encode;
use otgate_gateway::modbus::request::Written;
use otgate_gateway::modbus::{Refusal, Request, decode, next_frame};
use otgate_policy::scope::Table;

/// Addresses per table.
const SIZE: usize = 100;

/// The PLC's memory.
struct Memory {
    holding: [u16; SIZE],
    input: [u16; SIZE],
    coils: [bool; SIZE],
    discrete: [bool; SIZE],
    tick: u64,
}

impl Memory {
    fn new() -> Self {
        let mut memory = Self {
            holding: [0; SIZE],
            input: [0; SIZE],
            coils: [false; SIZE],
            discrete: [false; SIZE],
            tick: 0,
        };
        memory.holding[0] = 500;
        memory.holding[2] = 250;
        memory.holding[3] = 900;
        memory.coils[0] = true;
        memory.coils[1] = true;
        memory.step();
        memory
    }

    /// Half a second of process: the valve fills, the pump drains at its setpoint.
    fn step(&mut self) {
        self.tick += 1;
        let level = i32::from(self.holding[0]);
        let setpoint = i32::from(self.holding[2].min(500));
        if level >= 950 {
            self.coils[1] = false;
        } else if level <= 200 {
            self.coils[1] = true;
        }
        let inflow = if self.coils[1] { 300 } else { 0 };
        let outflow = if self.coils[0] { setpoint } else { 0 };
        self.holding[0] =
            u16::try_from((level + (inflow - outflow) / 25).clamp(0, 1000)).unwrap_or(0);
        self.holding[1] = u16::try_from(setpoint * 3).unwrap_or(0);
        self.input[0] = 215 + u16::try_from(self.tick % 20).unwrap_or(0);
        self.input[1] = u16::try_from(inflow).unwrap_or(0);
        self.discrete[0] = self.holding[0] >= self.holding[3];
    }

    fn bits(&self, table: Table) -> &[bool; SIZE] {
        if table == Table::Coils {
            &self.coils
        } else {
            &self.discrete
        }
    }

    fn registers(&self, table: Table) -> &[u16; SIZE] {
        if table == Table::Holding {
            &self.holding
        } else {
            &self.input
        }
    }
}

/// Whether `count` items from `start` fit in a table.
fn fits(start: u16, count: usize) -> bool {
    usize::from(start) + count <= SIZE
}

/// The response PDU to `request` (or an exception).
fn answer(memory: &mut Memory, request: &Request) -> Vec<u8> {
    let f = request.function;
    let exception = |code: u8| vec![f | 0x80, code];
    if let Some((table, start, written)) = &request.write {
        let count = match written {
            Written::Registers(values) => values.len(),
            Written::Coils(bits) => bits.len(),
            Written::Masked { .. } => 1,
        };
        if !fits(*start, count) {
            return exception(2);
        }
        let at = usize::from(*start);
        match (table, written) {
            (Table::Holding, Written::Registers(values)) => {
                for (slot, value) in memory.holding.iter_mut().skip(at).zip(values) {
                    *slot = *value;
                }
            }
            (Table::Holding, Written::Masked { and, or }) => {
                if let Some(slot) = memory.holding.get_mut(at) {
                    *slot = (*slot & and) | (or & !and);
                }
            }
            (Table::Coils, Written::Coils(bits)) => {
                for (slot, bit) in memory.coils.iter_mut().skip(at).zip(bits) {
                    *slot = *bit;
                }
            }
            _ => return exception(1),
        }
    }
    match (f, request.read, &request.write) {
        (1 | 2, Some(read), _) => {
            let count = usize::from(read.count);
            if !fits(read.start, count) {
                return exception(2);
            }
            let bits = memory.bits(read.table);
            let mut packed = vec![0u8; count.div_ceil(8)];
            for i in 0..count {
                if bits
                    .get(usize::from(read.start) + i)
                    .copied()
                    .unwrap_or(false)
                    && let Some(byte) = packed.get_mut(i / 8)
                {
                    *byte |= 1 << (i % 8);
                }
            }
            let mut pdu = vec![f, u8::try_from(packed.len()).unwrap_or(0)];
            pdu.extend(packed);
            pdu
        }
        (3 | 4 | 23, Some(read), _) => {
            let count = usize::from(read.count);
            if !fits(read.start, count) {
                return exception(2);
            }
            let mut pdu = vec![f, u8::try_from(count * 2).unwrap_or(0)];
            for value in memory
                .registers(read.table)
                .iter()
                .skip(usize::from(read.start))
                .take(count)
            {
                pdu.extend(value.to_be_bytes());
            }
            pdu
        }
        (5 | 6, None, Some((_, start, written))) => {
            let value = match written {
                Written::Registers(values) => values.first().copied().unwrap_or(0),
                Written::Coils(bits) if bits.first() == Some(&true) => 0xFF00,
                _ => 0,
            };
            let mut pdu = vec![f];
            pdu.extend(start.to_be_bytes());
            pdu.extend(value.to_be_bytes());
            pdu
        }
        (15 | 16, None, Some((_, start, written))) => {
            let count = match written {
                Written::Registers(values) => values.len(),
                Written::Coils(bits) => bits.len(),
                Written::Masked { .. } => 1,
            };
            let mut pdu = vec![f];
            pdu.extend(start.to_be_bytes());
            pdu.extend(u16::try_from(count).unwrap_or(0).to_be_bytes());
            pdu
        }
        (43, None, None) => {
            // Basic device identification, all three objects in one answer.
            let mut pdu = vec![0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x03];
            for (id, text) in [(0u8, "otgate"), (1, "demo-plc"), (2, "1.0")] {
                pdu.push(id);
                pdu.push(u8::try_from(text.len()).unwrap_or(0));
                pdu.extend(text.as_bytes());
            }
            pdu
        }
        _ => exception(1),
    }
}

async fn serve(mut stream: TcpStream, memory: Arc<Mutex<Memory>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buffer.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let mut out = Vec::new();
        let mut used = 0;
        loop {
            let rest = buffer.get(used..).unwrap_or_default();
            let (frame, length) = match next_frame(rest) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(_) => return,
            };
            let pdu = match decode(frame.function(), frame.data()) {
                Ok(request) => match memory.lock() {
                    Ok(mut memory) => answer(&mut memory, &request),
                    Err(_) => return,
                },
                Err(Refusal::Exception(code, _)) => vec![frame.function() | 0x80, code],
                Err(Refusal::Malformed(_)) => return,
            };
            encode(&mut out, frame.transaction, frame.unit, &pdu);
            used += length;
        }
        buffer.drain(..used);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Starts the simulated PLC on a free local port; it runs until the process ends.
pub async fn start() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("starting the simulated PLC")?;
    let address = listener.local_addr()?;
    let memory = Arc::new(Mutex::new(Memory::new()));
    let process = memory.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            if let Ok(mut memory) = process.lock() {
                memory.step();
            }
        }
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, memory.clone()));
        }
    });
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(memory: &mut Memory, function: u8, data: &[u8]) -> Vec<u8> {
        answer(memory, &decode(function, data).unwrap())
    }

    #[test]
    fn the_plc_reads_writes_and_moves() {
        let mut memory = Memory::new();
        assert_eq!(run(&mut memory, 6, &[0, 2, 0, 100]), vec![6, 0, 2, 0, 100]);
        assert_eq!(memory.holding[2], 100);
        let level = memory.holding[0];
        memory.step();
        assert_ne!(memory.holding[0], level, "the tank level moves");
        let read = run(&mut memory, 3, &[0, 1, 0, 2]);
        assert_eq!(read, vec![3, 4, 1, 44, 0, 100]);
        assert_eq!(run(&mut memory, 3, &[0, 99, 0, 2]), vec![0x83, 2]);
        assert_eq!(run(&mut memory, 1, &[0, 0, 0, 2]), vec![1, 1, 0b11]);
        assert_eq!(run(&mut memory, 8, &[0, 0]), vec![0x88, 1]);
    }
}
