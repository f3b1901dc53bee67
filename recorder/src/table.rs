//! A Modbus session as a readable table: one row per transaction, in order, with its time,
//! unit, function, addresses, written values, verdict, exception and round-trip time.

use crate::model::{SessionEvent, Verdict};
use crate::read::Recording;
use crate::replay::clock;

/// Longest values column before it is cut.
const VALUES_WIDTH: usize = 40;

/// Function code names.
fn function_name(code: u8) -> &'static str {
    match code {
        1 => "read coils",
        2 => "read discrete",
        3 => "read holding",
        4 => "read input",
        5 => "write coil",
        6 => "write register",
        7 => "exception status",
        8 => "diagnostics",
        11 => "comm counter",
        12 => "comm log",
        15 => "write coils",
        16 => "write registers",
        17 => "server id",
        20 => "read file",
        21 => "write file",
        22 => "mask write",
        23 => "read/write",
        24 => "read FIFO",
        43 => "device id",
        _ => "other",
    }
}

/// The session's Modbus transactions as a table; `None` when it has none.
pub fn modbus_table(recording: &Recording) -> Option<String> {
    let mut rows = vec![[
        "TIME".to_owned(),
        "UNIT".to_owned(),
        "FUNCTION".to_owned(),
        "ADDRESS".to_owned(),
        "VALUES".to_owned(),
        "VERDICT".to_owned(),
        "EXC".to_owned(),
        "RTT".to_owned(),
    ]];
    for line in &recording.events {
        let SessionEvent::Modbus {
            unit,
            function,
            table,
            start,
            count,
            values,
            verdict,
            reason,
            exception,
            rtt_us,
            ..
        } = &line.event
        else {
            continue;
        };
        let address = match (table, start, count) {
            (Some(table), Some(start), Some(count)) if *count > 1 => {
                format!(
                    "{table} {start}-{}",
                    u32::from(*start) + u32::from(*count) - 1
                )
            }
            (Some(table), Some(start), _) => format!("{table} {start}"),
            _ => "-".to_owned(),
        };
        let mut shown = values
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        if shown.len() > VALUES_WIDTH {
            shown.truncate(VALUES_WIDTH - 3);
            shown.push_str("...");
        }
        let verdict = match (verdict, reason) {
            (Verdict::Allowed, None) => "allowed".to_owned(),
            (Verdict::Allowed, Some(reason)) => format!("allowed ({reason})"),
            (Verdict::Denied, _) => "DENIED".to_owned(),
        };
        rows.push([
            clock(line.t),
            unit.to_string(),
            format!("{function:>2} {}", function_name(*function)),
            address,
            if shown.is_empty() { "-".into() } else { shown },
            verdict,
            exception.map_or_else(|| "-".into(), |code| format!("{code:02}")),
            rtt_us.map_or_else(|| "-".into(), |us| format!("{:.1} ms", us as f64 / 1000.0)),
        ]);
    }
    if rows.len() == 1 {
        return None;
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    Some(out)
}
