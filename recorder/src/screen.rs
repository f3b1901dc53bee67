//! Terminal screens as a browser paints them: the recorded output run through `vt100` (the
//! same emulator that extracts the searchable text), each row cut into runs of equal style.
//! Live view and replay both send these frames, so what an engineer or auditor sees is what
//! was indexed. Styles are class names (`f12` foreground colour 12, `k4` background 4, `fk`
//! foreground in the background colour, `kf` the reverse, `tb` bold, `ti` italic, `tu`
//! underline, `td` dim): the page's stylesheet gives them colours, so no inline style is
//! needed under the Content-Security-Policy. Truecolour maps to the nearest of the 256.

use std::fmt::Write as _;
use std::num::NonZeroU16;

use serde::Serialize;

/// Largest terminal accepted (columns, rows); recordings asking for more are clamped.
const MAX_SIZE: (u16, u16) = (500, 200);

/// A run of cells with one style: `[text, classes]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Run(pub String, pub String);

/// A row of the screen.
pub type Line = Vec<Run>;

/// One screen, whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScreenFrame {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
    /// Cursor `[row, column, visible]`.
    pub cursor: (u16, u16, bool),
    /// The rows, top to bottom.
    pub lines: Vec<Line>,
}

impl ScreenFrame {
    /// The rows that differ from `previous`, with their index; `None` when the size changed
    /// (send the whole frame then).
    pub fn changes(&self, previous: &ScreenFrame) -> Option<Vec<(u16, Line)>> {
        if (self.cols, self.rows) != (previous.cols, previous.rows) {
            return None;
        }
        Some(
            self.lines
                .iter()
                .zip(&previous.lines)
                .zip(0u16..)
                .filter(|((now, before), _)| now != before)
                .map(|((now, _), row)| (row, now.clone()))
                .collect(),
        )
    }

    /// The screen as plain text, one line per row, trailing blanks trimmed.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            let row: String = line.iter().map(|run| run.0.as_str()).collect();
            let _ = writeln!(out, "{}", row.trim_end());
        }
        out
    }
}

/// A terminal emulator fed with recorded output.
pub struct Terminal {
    parser: vt100::Parser,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (rows, cols) = self.parser.screen().size();
        write!(f, "Terminal({cols}x{rows})")
    }
}

fn dimension(value: u16, max: u16, default: u16) -> NonZeroU16 {
    let value = if value == 0 { default } else { value.min(max) };
    NonZeroU16::new(value).unwrap_or(NonZeroU16::MIN)
}

impl Terminal {
    /// A blank terminal of `cols` x `rows` (0 means 80 x 24; at most 500 x 200).
    pub fn new(cols: u16, rows: u16) -> Self {
        Self {
            parser: vt100::Parser::new(
                dimension(rows, MAX_SIZE.1, 24),
                dimension(cols, MAX_SIZE.0, 80),
                0,
            ),
        }
    }

    /// Feeds output.
    pub fn feed(&mut self, text: &str) {
        self.parser.process(text.as_bytes());
    }

    /// Resizes.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.parser.set_size(
            dimension(rows, MAX_SIZE.1, 24),
            dimension(cols, MAX_SIZE.0, 80),
        );
    }

    /// The screen now.
    pub fn frame(&self) -> ScreenFrame {
        let screen = self.parser.screen();
        let (rows, cols) = screen.size();
        let (rows, cols) = (rows.get(), cols.get());
        let (row, col) = screen.cursor_position();
        let mut lines = Vec::with_capacity(usize::from(rows));
        for r in 0..rows {
            let mut line: Line = Vec::new();
            for c in 0..cols {
                let Some(cell) = screen.cell(r, c) else {
                    continue;
                };
                if cell.is_wide_continuation() {
                    continue;
                }
                let text = if cell.has_contents() {
                    cell.contents()
                } else {
                    " "
                };
                let class = classes(cell);
                match line.last_mut() {
                    Some(Run(run, style)) if *style == class => run.push_str(text),
                    _ => line.push(Run(text.to_owned(), class)),
                }
            }
            // Trailing plain blanks carry nothing.
            if let Some(Run(run, style)) = line.last_mut()
                && style.is_empty()
            {
                let kept = run.trim_end_matches(' ').len();
                run.truncate(kept);
                if run.is_empty() {
                    line.pop();
                }
            }
            lines.push(line);
        }
        ScreenFrame {
            cols,
            rows,
            cursor: (row, col, !screen.hide_cursor()),
            lines,
        }
    }
}

/// The xterm 256-colour index nearest to an RGB colour.
fn nearest(r: u8, g: u8, b: u8) -> u8 {
    let step = |v: u8| -> u8 {
        match v {
            0..=47 => 0,
            48..=114 => 1,
            _ => (v - 35) / 40,
        }
    };
    let cube = 16 + 36 * step(r) + 6 * step(g) + step(b);
    let level = |i: u8| if i == 0 { 0 } else { 55 + 40 * i };
    let cube_rgb = (level(step(r)), level(step(g)), level(step(b)));
    let average = (u16::from(r) + u16::from(g) + u16::from(b)) / 3;
    let grey_index = u8::try_from(average.saturating_sub(3) / 10)
        .unwrap_or(23)
        .min(23);
    let grey = 8 + 10 * grey_index;
    let distance = |(x, y, z): (u8, u8, u8)| {
        let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2);
        d(x, r) + d(y, g) + d(z, b)
    };
    if distance((grey, grey, grey)) < distance(cube_rgb) {
        232 + grey_index
    } else {
        cube
    }
}

fn index(color: vt100::Color) -> Option<u8> {
    match color {
        vt100::Color::Default => None,
        vt100::Color::Idx(i) => Some(i),
        vt100::Color::Rgb(r, g, b) => Some(nearest(r, g, b)),
    }
}

fn classes(cell: &vt100::Cell) -> String {
    let (fg, bg) = (index(cell.fgcolor()), index(cell.bgcolor()));
    let (fg, bg) = if cell.inverse() {
        (
            Some(bg.map_or_else(|| "fk".to_owned(), |i| format!("f{i}"))),
            Some(fg.map_or_else(|| "kf".to_owned(), |i| format!("k{i}"))),
        )
    } else {
        (fg.map(|i| format!("f{i}")), bg.map(|i| format!("k{i}")))
    };
    let mut out: Vec<String> = Vec::new();
    out.extend(fg);
    out.extend(bg);
    for (on, name) in [
        (cell.bold(), "tb"),
        (cell.dim(), "td"),
        (cell.italic(), "ti"),
        (cell.underline(), "tu"),
    ] {
        if on {
            out.push(name.to_owned());
        }
    }
    out.join(" ")
}

/// The stylesheet for the classes above: the 16 ANSI colours as the page's palette, the
/// 6x6x6 cube and the grey ramp computed.
pub fn stylesheet() -> String {
    const ANSI: [&str; 16] = [
        "#1d1f21", "#cc342b", "#198844", "#c5a332", "#3971ed", "#a36ac7", "#3971ed", "#c5c8c6",
        "#969896", "#ff5f56", "#5af78e", "#f3f99d", "#57c7ff", "#ff6ac1", "#9aedfe", "#ffffff",
    ];
    let mut css = String::from(
        ".term .fk{color:var(--term-bg)}.term .kf{background:var(--term-fg)}\
         .term .tb{font-weight:bold}.term .td{opacity:.7}.term .ti{font-style:italic}\
         .term .tu{text-decoration:underline}\n",
    );
    for i in 0u16..256 {
        let color = match usize::from(i) {
            n @ 0..16 => ANSI.get(n).copied().unwrap_or("#ffffff").to_owned(),
            n @ 16..232 => {
                let n = n - 16;
                let level = |v: usize| if v == 0 { 0 } else { 55 + 40 * v };
                format!(
                    "#{:02x}{:02x}{:02x}",
                    level(n / 36),
                    level((n / 6) % 6),
                    level(n % 6)
                )
            }
            n => {
                let v = 8 + 10 * (n - 232);
                format!("#{v:02x}{v:02x}{v:02x}")
            }
        };
        let _ = writeln!(
            css,
            ".term .f{i}{{color:{color}}}.term .k{i}{{background:{color}}}"
        );
    }
    css
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_cursor_and_full_screen_programs() {
        let mut term = Terminal::new(20, 4);
        term.feed("plain \x1b[31mred\x1b[0m \x1b[1;44mbold\x1b[0m\r\n\x1b[7minv\x1b[0m");
        let frame = term.frame();
        assert_eq!(
            frame.lines[0],
            vec![
                Run("plain ".into(), String::new()),
                Run("red".into(), "f1".into()),
                Run(" ".into(), String::new()),
                Run("bold".into(), "k4 tb".into()),
            ]
        );
        assert_eq!(frame.lines[1], vec![Run("inv".into(), "fk kf".into())]);
        assert_eq!(frame.cursor, (1, 3, true));
        // An alternate-screen program draws, then leaves: the shell screen comes back.
        let before = term.frame();
        term.feed("\x1b[?1049h\x1b[2J\x1b[Htop - 10:00\x1b[?25l");
        let top = term.frame();
        assert_eq!(top.lines[0], vec![Run("top - 10:00".into(), String::new())]);
        assert!(!top.cursor.2);
        let changed = top.changes(&before).unwrap();
        assert_eq!(changed.len(), 2);
        term.feed("\x1b[?1049l\x1b[?25h");
        assert_eq!(term.frame(), before);
    }

    #[test]
    fn truecolour_maps_to_the_nearest_of_256_and_sizes_are_bounded() {
        assert_eq!(nearest(255, 0, 0), 196);
        assert_eq!(nearest(128, 128, 128), 244);
        let mut term = Terminal::new(0, 0);
        assert_eq!((term.frame().cols, term.frame().rows), (80, 24));
        term.resize(60_000, 60_000);
        assert_eq!((term.frame().cols, term.frame().rows), (500, 200));
        let mut sized = Terminal::new(10, 2);
        sized.feed("\x1b[38;2;255;0;0mx");
        assert_eq!(sized.frame().lines[0][0].1, "f196");
        assert!(stylesheet().contains(".term .f196{color:#ff0000}"));
    }
}
