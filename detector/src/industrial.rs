//! Industrial behaviour per asset and unit: which Modbus function codes are used, which
//! addresses are read and written, which values are written, and how fast requests come. A
//! write to a register never written, or far outside the values seen, scores high.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::observation::{ModbusRequest, Table};
use crate::score::Finding;

/// Most registers whose values a unit profile tracks; further ones only count as written.
pub const MAX_TRACKED: usize = 4096;
/// Most read ranges remembered per unit.
const MAX_READ_RANGES: usize = 512;

/// Function codes common in normal operation: reads, single and multiple writes, mask write,
/// read/write multiple.
pub const COMMON_FUNCTIONS: [u8; 10] = [1, 2, 3, 4, 5, 6, 15, 16, 22, 23];

/// What a function code does, in words.
pub fn function_name(code: u8) -> &'static str {
    match code {
        1 => "read coils",
        2 => "read discrete inputs",
        3 => "read holding registers",
        4 => "read input registers",
        5 => "write single coil",
        6 => "write single register",
        7 => "read exception status",
        8 => "diagnostics",
        11 => "get comm event counter",
        12 => "get comm event log",
        15 => "write multiple coils",
        16 => "write multiple registers",
        17 => "report server id",
        20 => "read file record",
        21 => "write file record",
        22 => "mask write register",
        23 => "read/write multiple registers",
        24 => "read FIFO queue",
        43 => "device identification",
        90 => "vendor programming (Unity/UMAS)",
        _ => "an unassigned or vendor function",
    }
}

/// A register's key in a profile: its table and address in one number (JSON maps need
/// scalar keys).
pub(crate) fn slot(table: Table, address: u16) -> u32 {
    let table = match table {
        Table::Coils => 0,
        Table::DiscreteInputs => 1,
        Table::Holding => 2,
        Table::Input => 3,
    };
    (table << 16) | u32::from(address)
}

/// The values seen written to one register or coil.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// Smallest value.
    pub min: u16,
    /// Largest value.
    pub max: u16,
    /// How many writes.
    pub writes: u32,
}

/// What is normal on one unit of one asset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitProfile {
    /// Requests learnt.
    pub requests: u64,
    /// Function codes used (bit set of 256).
    functions: [u64; 4],
    /// Registers and coils written, with their values, by [`slot`].
    written: BTreeMap<u32, Written>,
    /// Read ranges, merged, as (table, first, last).
    reads: BTreeSet<(Table, u16, u16)>,
}

impl UnitProfile {
    fn has_function(&self, code: u8) -> bool {
        let word = self.functions.get(usize::from(code / 64)).copied();
        word.is_some_and(|w| w & (1 << (code % 64)) != 0)
    }

    fn add_function(&mut self, code: u8) {
        if let Some(word) = self.functions.get_mut(usize::from(code / 64)) {
            *word |= 1 << (code % 64);
        }
    }

    /// Learns a request as normal.
    pub fn learn(&mut self, request: &ModbusRequest) {
        if request.exception.is_some() {
            // A refused request teaches nothing about normal operation.
            return;
        }
        self.requests += 1;
        self.add_function(request.function);
        let (Some(table), Some(start)) = (request.table, request.start) else {
            return;
        };
        if request.is_write() {
            for (i, value) in request.values.iter().enumerate() {
                let Some(address) = u16::try_from(i).ok().and_then(|i| start.checked_add(i)) else {
                    break;
                };
                let full = self.written.len() >= MAX_TRACKED;
                match self.written.get_mut(&slot(table, address)) {
                    Some(w) => {
                        w.min = w.min.min(*value);
                        w.max = w.max.max(*value);
                        w.writes = w.writes.saturating_add(1);
                    }
                    None if !full => {
                        self.written.insert(
                            slot(table, address),
                            Written {
                                min: *value,
                                max: *value,
                                writes: 1,
                            },
                        );
                    }
                    None => {}
                }
            }
        } else {
            let last = start.saturating_add(request.count.unwrap_or(1).saturating_sub(1));
            self.add_read(table, start, last);
        }
    }

    fn add_read(&mut self, table: Table, first: u16, last: u16) {
        if self.reads_cover(table, first, last) {
            return;
        }
        // Merge with overlapping or adjacent ranges of the same table.
        let (mut lo, mut hi) = (first, last);
        let touching: Vec<(Table, u16, u16)> = self
            .reads
            .iter()
            .filter(|(t, a, b)| {
                *t == table && *a <= hi.saturating_add(1) && lo <= b.saturating_add(1)
            })
            .copied()
            .collect();
        for range in touching {
            self.reads.remove(&range);
            lo = lo.min(range.1);
            hi = hi.max(range.2);
        }
        if self.reads.len() < MAX_READ_RANGES {
            self.reads.insert((table, lo, hi));
        }
    }

    /// Whether the profile knows this request: its function, and for reads the range, for
    /// writes the register.
    pub fn knows(&self, request: &ModbusRequest) -> bool {
        if !self.has_function(request.function) {
            return false;
        }
        let (Some(table), Some(start)) = (request.table, request.start) else {
            return true;
        };
        if request.is_write() {
            self.written.contains_key(&slot(table, start))
        } else {
            let last = start.saturating_add(request.count.unwrap_or(1).saturating_sub(1));
            self.reads_cover(table, start, last)
        }
    }

    fn reads_cover(&self, table: Table, first: u16, last: u16) -> bool {
        self.reads
            .iter()
            .any(|(t, a, b)| *t == table && *a <= first && last <= *b)
    }

    /// Scores a request against this profile; `warm` says whether the profile has learnt
    /// enough to judge novelty.
    pub fn score(&self, asset: &str, request: &ModbusRequest, warm: bool, out: &mut Vec<Finding>) {
        let code = request.function;
        if !COMMON_FUNCTIONS.contains(&code) && !self.has_function(code) {
            out.push(Finding::new(
                "modbus",
                if code == 8 || code == 43 || code == 90 || code == 17 {
                    60
                } else {
                    55
                },
                format!(
                    "function {code} ({}) on {asset} is not normal operation and never seen there",
                    function_name(code)
                ),
            ));
        } else if warm && !self.has_function(code) {
            out.push(Finding::new(
                "modbus",
                50,
                format!(
                    "function {code} ({}) never used on {asset}",
                    function_name(code)
                ),
            ));
        }
        let (Some(table), Some(start)) = (request.table, request.start) else {
            return;
        };
        if request.is_write() {
            if !warm {
                return;
            }
            for (i, value) in request.values.iter().enumerate().take(256) {
                let Some(address) = u16::try_from(i).ok().and_then(|i| start.checked_add(i)) else {
                    break;
                };
                match self.written.get(&slot(table, address)) {
                    None => {
                        out.push(Finding::new(
                            "modbus",
                            65,
                            format!("first write to {} {address} on {asset}", table.name()),
                        ));
                        return;
                    }
                    Some(w) if *value < w.min || *value > w.max => {
                        let span = f64::from(w.max - w.min)
                            .max(f64::from(w.max.max(1)) * 0.1)
                            .max(1.0);
                        let distance = if *value > w.max {
                            f64::from(*value - w.max)
                        } else {
                            f64::from(w.min - *value)
                        };
                        let far = distance / span;
                        if far > 0.25 {
                            let score = (45.0 + 15.0 * far.min(3.0)) as u8;
                            out.push(Finding::new(
                                "modbus",
                                score,
                                format!(
                                    "value {value} for {} {address} on {asset} is outside the values seen ({}-{})",
                                    table.name(),
                                    w.min,
                                    w.max
                                ),
                            ));
                            return;
                        }
                    }
                    Some(_) => {}
                }
            }
        } else if warm {
            let last = start.saturating_add(request.count.unwrap_or(1).saturating_sub(1));
            if !self.reads_cover(table, start, last) {
                out.push(Finding::new(
                    "modbus",
                    25,
                    format!(
                        "read of {} {start}-{last} on {asset} never seen",
                        table.name()
                    ),
                ));
            }
        }
    }
}

/// Scores a session's request rate (requests in the current ten seconds) against the
/// highest rate learnt on the asset.
pub fn score_rate(asset: &str, rate: u32, peak: u32, warm: bool, out: &mut Vec<Finding>) {
    if warm && peak > 0 && rate > peak.saturating_mul(4).max(20) {
        out.push(Finding::new(
            "modbus",
            40,
            format!("{rate} requests in 10 s on {asset}, usually at most {peak}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(start: u16, values: &[u16]) -> ModbusRequest {
        ModbusRequest {
            unit: 1,
            function: 16,
            table: Some(Table::Holding),
            start: Some(start),
            count: Some(values.len() as u16),
            values: values.to_vec(),
            exception: None,
        }
    }

    fn read(function: u8, start: u16, count: u16) -> ModbusRequest {
        ModbusRequest {
            unit: 1,
            function,
            table: Some(Table::Holding),
            start: Some(start),
            count: Some(count),
            values: vec![],
            exception: None,
        }
    }

    #[test]
    fn learnt_writes_and_reads_are_normal() {
        let mut unit = UnitProfile::default();
        for v in 100..200 {
            unit.learn(&write(105, &[v]));
            unit.learn(&read(3, 100, 10));
        }
        let mut out = Vec::new();
        unit.score("plc", &write(105, &[150]), true, &mut out);
        unit.score("plc", &read(3, 102, 5), true, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn new_registers_far_values_and_odd_functions_score() {
        let mut unit = UnitProfile::default();
        for v in 100..200 {
            unit.learn(&write(105, &[v]));
        }
        let mut out = Vec::new();
        unit.score("plc-7", &write(4000, &[1]), true, &mut out);
        assert_eq!(out.len(), 1);
        assert!(
            out[0].text.contains("first write to holding 4000 on plc-7"),
            "{out:?}"
        );
        out.clear();
        unit.score("plc-7", &write(105, &[9000]), true, &mut out);
        assert!(out[0].score >= 80, "{out:?}");
        assert!(out[0].text.contains("outside the values seen (100-199)"));
        out.clear();
        // Slightly outside is not worth a finding.
        unit.score("plc-7", &write(105, &[205]), true, &mut out);
        assert!(out.is_empty(), "{out:?}");
        // Diagnostics is suspicious even before warm-up.
        unit.score("plc-7", &read(8, 0, 1), false, &mut out);
        assert!(out[0].score >= 55, "{out:?}");
        // Nothing about values before warm-up.
        out.clear();
        unit.score("plc-7", &write(4000, &[1]), false, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn read_ranges_merge() {
        let mut unit = UnitProfile::default();
        unit.learn(&read(3, 0, 10));
        unit.learn(&read(3, 10, 10));
        unit.learn(&read(3, 5, 3));
        assert_eq!(unit.reads.len(), 1);
        assert!(unit.reads_cover(Table::Holding, 0, 19));
        assert!(!unit.reads_cover(Table::Holding, 0, 20));
    }
}
