//! What an asset prints is untrusted, and live view and replay run it through the terminal
//! emulator into screen frames: any bytes and any resizes must give frames of the announced
//! size (never a panic, never more rows or columns than the bounds), and the rows a frame
//! reports as changed must be exactly those that differ.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otgate_recorder::screen::Terminal;

fuzz_target!(|data: &[u8]| {
    let mut term = Terminal::new(40, 12);
    let mut previous = term.frame();
    for chunk in data.split(|b| *b == 0xff) {
        match chunk {
            // A chunk starting with 0xfe is a resize: two bytes of columns, one of rows.
            [0xfe, c1, c2, r, ..] => term.resize(u16::from_le_bytes([*c1, *c2]), u16::from(*r)),
            output => term.feed(&String::from_utf8_lossy(output)),
        }
        let frame = term.frame();
        assert!(frame.cols >= 1 && frame.cols <= 500 && frame.rows >= 1 && frame.rows <= 200);
        assert_eq!(frame.lines.len(), usize::from(frame.rows));
        let (row, col, _) = frame.cursor;
        assert!(row < frame.rows && col <= frame.cols);
        if let Some(changed) = frame.changes(&previous) {
            for (index, line) in &changed {
                assert_ne!(previous.lines.get(usize::from(*index)), Some(line));
            }
            let unchanged = frame
                .lines
                .iter()
                .zip(&previous.lines)
                .filter(|(a, b)| a == b)
                .count();
            assert_eq!(unchanged + changed.len(), frame.lines.len());
        }
        previous = frame;
    }
});
