//! Colours, fonts, text-width estimates and number formats shared by every plot.
//!
//! plotters is built without a font library (no `ttf` feature: that needs fontconfig), so it
//! cannot measure text; the SVG viewer lays text out. Where labels could collide, the plots
//! place them with [`text_width`], a deliberately generous estimate.

use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontDesc, IntoFont, RGBColor, TextStyle};

use crate::metrics::MarkKind;
pub use crate::report::format::{bytes, bytes_unit, ms, num, thousands, time_unit};
use crate::report::timeline::WindowKind;

pub const WHITE: RGBColor = RGBColor(255, 255, 255);
pub const INK: RGBColor = RGBColor(33, 33, 33);
pub const MUTED: RGBColor = RGBColor(100, 100, 100);
pub const GRID: RGBColor = RGBColor(226, 226, 226);
pub const GRID_LIGHT: RGBColor = RGBColor(243, 243, 243);

/// Series colours (Okabe–Ito, readable by colour-blind people), in order of use.
pub const SERIES: [RGBColor; 6] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(0, 158, 115),   // green
    RGBColor(204, 121, 167), // pink
    RGBColor(86, 180, 233),  // sky
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 0, 0),       // black
];

pub fn series_color(i: usize) -> RGBColor {
    SERIES[i % SERIES.len()]
}

/// The family every text uses; viewers substitute their sans-serif.
pub const FAMILY: &str = "sans-serif";

/// plotters writes `font-size = size / 1.24` into the SVG; this takes the wanted pixel size,
/// nudged by an ulp or two so that the SVG says `12`, not `12.000000000000002` (not every size can: 13 cannot).
pub fn font(px: f64) -> FontDesc<'static> {
    (FAMILY, plotters_size(px)).into_font()
}

fn plotters_size(px: f64) -> f64 {
    let size = px * 1.24;
    [0i64, 1, -1, 2, -2]
        .iter()
        .map(|d| f64::from_bits((size.to_bits() as i64 + d) as u64))
        .find(|s| s / 1.24 == px)
        .unwrap_or(size)
}

pub fn text(px: f64, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    font(px).color(&color).pos(Pos::new(h, v))
}

/// Width of `s` at `px` in a sans-serif font, over- rather than under-estimated (DejaVu Sans,
/// the widest common default, averages about 0.6 em for digits and lower case).
pub fn text_width(s: &str, px: f64) -> f64 {
    s.chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '!' | '|' | '\'' | ' ' => 0.34,
            'm' | 'w' | 'M' | 'W' | '@' => 0.92,
            c if c.is_ascii_uppercase() => 0.72,
            _ => 0.62,
        })
        .sum::<f64>()
        * px
}

/// Shading (fill) and label colour of a window kind.
pub fn window_colors(kind: WindowKind) -> (RGBColor, RGBColor, f64) {
    match kind {
        WindowKind::Crash => (RGBColor(213, 94, 0), RGBColor(160, 60, 0), 0.16),
        WindowKind::Partition => (RGBColor(204, 121, 167), RGBColor(150, 60, 110), 0.20),
        WindowKind::SlowDisk => (RGBColor(230, 159, 0), RGBColor(150, 100, 0), 0.20),
        WindowKind::Pause => (RGBColor(86, 180, 233), RGBColor(20, 110, 160), 0.20),
        WindowKind::Unavailable => (RGBColor(90, 90, 90), RGBColor(50, 50, 50), 0.16),
        WindowKind::Settle => (RGBColor(190, 190, 190), RGBColor(110, 110, 110), 0.18),
    }
}

pub fn mark_color(kind: MarkKind) -> RGBColor {
    match kind {
        MarkKind::Failover => RGBColor(0, 0, 0),
        MarkKind::RoleChange => RGBColor(70, 70, 70),
        MarkKind::Fault => RGBColor(160, 60, 0),
        MarkKind::Note => RGBColor(110, 110, 110),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(1234.0), "1234");
        assert_eq!(num(12.5), "12.5");
        assert_eq!(num(0.25), "0.25");
        assert_eq!(num(3.0), "3");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(ms(1_234_567), "1.23 ms");
    }

    #[test]
    fn font_sizes_come_out_round_in_the_svg() {
        for px in [11.0, 12.0, 12.5, 14.0, 18.0] {
            assert_eq!(plotters_size(px) / 1.24, px);
        }
    }

    #[test]
    fn wider_text_is_estimated_wider() {
        assert!(text_width("crash pg1", 12.0) > text_width("pg1", 12.0));
        assert!(text_width("MMMM", 12.0) > text_width("iiii", 12.0));
    }
}
