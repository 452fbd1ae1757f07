//! The layout every run plot shares: a title, then panels stacked vertically on one time axis
//! (or a percentile axis), a legend to the right of each panel, and above the first time panel
//! an "events" band naming every shaded window and mark, each on the first row where its label
//! does not run into another one. Windows are shaded across every time panel at the same x, and
//! marks are dashed lines through them, so a spike lines up with the fault that caused it.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::style::{self, font, text, text_width, GRID, GRID_LIGHT, INK, MUTED, WHITE};
use super::PlotError;
use crate::report::timeline::{Timeline, WindowKind};

/// The grid, axes, tick labels and axis titles every panel shares.
macro_rules! mesh {
    ($chart:expr, $x_desc:expr, $y_desc:expr, $x_fmt:expr, $y_fmt:expr) => {
        $chart
            .configure_mesh()
            .x_desc($x_desc)
            .y_desc($y_desc)
            .x_label_formatter($x_fmt)
            .y_label_formatter($y_fmt)
            .label_style(font(12.0).color(&MUTED))
            .axis_desc_style(font(12.5).color(&INK))
            .bold_line_style(GRID)
            .light_line_style(GRID_LIGHT)
            .axis_style(MUTED)
            .x_labels(12)
            .y_labels(6)
    };
}

/// Figure width in pixels.
pub const WIDTH: i32 = 1000;
const MARGIN: i32 = 12;
const TITLE_H: i32 = 62;
const HEADING_H: i32 = 22;
const PANEL_H: i32 = 250;
const PANEL_GAP: i32 = 16;
const Y_AREA: i32 = 74;
const X_AREA: i32 = 42;
const CHART_RIGHT: i32 = 14;
const LEGEND_W: i32 = 215;
const ROW_H: i32 = 19;
const BAND_PAD: i32 = 6;
const BAND_TEXT: f64 = 12.0;

/// One line on a time panel: per-bucket values (`None` = a gap), drawn as steps.
pub struct Series {
    pub name: String,
    /// A second legend line: the summary figures for this series.
    pub note: String,
    pub color: RGBColor,
    pub values: Vec<Option<f64>>,
    pub dashed: bool,
}

pub struct TimePanel {
    pub heading: String,
    /// The y axis with its unit, e.g. "lag (KiB)".
    pub y_desc: String,
    pub series: Vec<Series>,
    pub log_y: bool,
}

/// A percentile curve on the "nines" axis: x = -log10(1 - q).
pub struct Curve {
    pub name: String,
    pub color: RGBColor,
    /// `(q, value)` along the curve.
    pub points: Vec<(f64, f64)>,
    /// `(q, value)`: the percentiles marked with a dot.
    pub marked: Vec<(f64, f64)>,
    /// Legend lines under the name: the marked values, as `summary.md` prints them.
    pub legend: Vec<String>,
}

pub struct SpectrumPanel {
    pub heading: String,
    pub y_desc: String,
    pub curves: Vec<Curve>,
}

pub enum Block {
    Time(TimePanel),
    Spectrum(SpectrumPanel),
}

pub struct Figure<'a> {
    pub title: String,
    pub subtitle: String,
    pub timeline: &'a Timeline,
    pub blocks: Vec<Block>,
}

/// An entry of the events band, in pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct BandItem {
    pub row: usize,
    /// Extent of the window's bar (equal for a mark).
    pub x0: i32,
    pub x1: i32,
    pub text_x: i32,
    pub text_w: i32,
    pub label: String,
    pub window: Option<WindowKind>,
    pub mark: Option<crate::metrics::MarkKind>,
}

impl BandItem {
    fn extent(&self) -> (i32, i32) {
        (self.x0.min(self.text_x) - 4, self.x1.max(self.text_x + self.text_w) + 8)
    }
}

/// Places every window and mark of `timeline` on the first band row where it collides with
/// nothing, given the time -> pixel mapping of the panels.
pub fn band_items(timeline: &Timeline, to_px: &dyn Fn(f64) -> i32, right_limit: i32) -> Vec<BandItem> {
    let mut items: Vec<BandItem> = Vec::new();
    // A window's label goes inside its bar when it fits, else right of the bar, else from the
    // bar's start over its end, else (at the right edge) left of the bar; a mark's label goes
    // right of its line, or left of it at the right edge.
    let place = |x0: i32, x1: i32, label: &str, is_mark: bool| {
        let w = text_width(label, BAND_TEXT).ceil() as i32;
        let fits = |x: i32| x + w <= right_limit;
        let text_x = if is_mark {
            if fits(x0 + 5) {
                x0 + 5
            } else {
                x0 - 5 - w
            }
        } else if w + 8 <= x1 - x0 {
            x0 + 4
        } else if fits(x1 + 5) {
            x1 + 5
        } else if fits(x0 + 4) {
            x0 + 4
        } else {
            x0 - 5 - w
        };
        (text_x, w)
    };
    let mut candidates: Vec<BandItem> = Vec::new();
    for w in &timeline.windows {
        let x0 = to_px(w.from_ns as f64 / 1e9);
        let x1 = to_px(w.to_ns as f64 / 1e9).max(x0 + 2);
        let (text_x, text_w) = place(x0, x1, &w.label, false);
        candidates.push(BandItem {
            row: 0,
            x0,
            x1,
            text_x,
            text_w,
            label: w.label.clone(),
            window: Some(w.kind),
            mark: None,
        });
    }
    for m in &timeline.marks {
        let x = to_px(m.at_ns as f64 / 1e9);
        let (text_x, text_w) = place(x, x, &m.label, true);
        candidates.push(BandItem {
            row: 0,
            x0: x,
            x1: x,
            text_x,
            text_w,
            label: m.label.clone(),
            window: None,
            mark: Some(m.kind),
        });
    }
    // Settle last: it is the least interesting and always at the right.
    candidates.sort_by_key(|i| (i.window == Some(WindowKind::Settle), i.x0));
    for mut item in candidates {
        let (a, b) = item.extent();
        let mut row = 0;
        while items.iter().any(|o| {
            let (c, d) = o.extent();
            o.row == row && a < d && c < b
        }) {
            row += 1;
        }
        item.row = row;
        items.push(item);
    }
    items
}

fn rows(items: &[BandItem]) -> i32 {
    items.iter().map(|i| i.row as i32 + 1).max().unwrap_or(0)
}

type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;

impl Figure<'_> {
    fn end_s(&self) -> f64 {
        (self.timeline.end_ns as f64 / 1e9).max(1e-9)
    }

    /// The time -> pixel mapping shared by every time panel (and the events band): built from a
    /// chart with the panels' horizontal geometry, so it is plotters' own mapping.
    fn x_mapping(&self, root: &Area<'_>) -> impl Fn(f64) -> i32 {
        let area = root.clone().shrink((MARGIN, 0), (WIDTH - MARGIN - LEGEND_W, 200));
        let probe = ChartBuilder::on(&area)
            .margin_right(CHART_RIGHT)
            .y_label_area_size(Y_AREA)
            .build_cartesian_2d(0.0..self.end_s(), 0.0..1.0)
            .expect("a chart on a non-empty area");
        let coord = probe.as_coord_spec().clone();
        move |t: f64| coord.translate(&(t, 0.0)).0
    }

    pub fn render(&self) -> Result<String, PlotError> {
        let mut buf = String::new();
        // Height: known once the band's rows are: lay out on a scratch backend first.
        let band = {
            let mut scratch = String::new();
            let root = SVGBackend::with_string(&mut scratch, (WIDTH as u32, 400)).into_drawing_area();
            let to_px = self.x_mapping(&root);
            band_items(self.timeline, &to_px, WIDTH - MARGIN)
        };
        let has_time = self.blocks.iter().any(|b| matches!(b, Block::Time(_)));
        let band_h = if has_time { rows(&band) * ROW_H + 2 * BAND_PAD } else { 0 };
        let block_h = HEADING_H + PANEL_H + PANEL_GAP;
        let height = TITLE_H + band_h + block_h * self.blocks.len() as i32 + MARGIN;
        {
            let root = SVGBackend::with_string(&mut buf, (WIDTH as u32, height as u32)).into_drawing_area();
            root.fill(&WHITE)?;
            root.draw(&Text::new(self.title.clone(), (MARGIN, 20), text(18.0, INK, HPos::Left, VPos::Center)))?;
            root.draw(&Text::new(self.subtitle.clone(), (MARGIN, 44), text(12.0, MUTED, HPos::Left, VPos::Center)))?;
            let to_px = self.x_mapping(&root);
            let mut top = TITLE_H;
            let mut band_drawn = !has_time;
            for block in &self.blocks {
                if !band_drawn && matches!(block, Block::Time(_)) {
                    self.draw_band(&root, &band, top)?;
                    top += band_h;
                    band_drawn = true;
                }
                match block {
                    Block::Time(panel) => self.draw_time_panel(&root, panel, top, &to_px)?,
                    Block::Spectrum(panel) => draw_spectrum(&root, panel, top)?,
                }
                top += block_h;
            }
            root.present()?;
        }
        Ok(buf)
    }

    fn draw_band(&self, root: &Area<'_>, items: &[BandItem], top: i32) -> Result<(), PlotError> {
        let label_x = MARGIN + Y_AREA - 8;
        root.draw(&Text::new(
            "events".to_string(),
            (label_x, top + BAND_PAD + ROW_H / 2),
            text(12.0, MUTED, HPos::Right, VPos::Center),
        ))?;
        for item in items {
            let y = top + BAND_PAD + item.row as i32 * ROW_H;
            let (text_color, line) = if let Some(kind) = item.window {
                let (fill, ink, _) = style::window_colors(kind);
                root.draw(&Rectangle::new([(item.x0, y + 2), (item.x1, y + ROW_H - 2)], fill.mix(0.45).filled()))?;
                (ink, None)
            } else {
                let color = style::mark_color(item.mark.unwrap_or(crate::metrics::MarkKind::Note));
                (color, Some(color))
            };
            if let Some(color) = line {
                root.draw(&PathElement::new(vec![(item.x0, y + 1), (item.x0, y + ROW_H - 1)], color.stroke_width(2)))?;
            }
            root.draw(&Text::new(
                item.label.clone(),
                (item.text_x, y + ROW_H / 2),
                text(BAND_TEXT, text_color, HPos::Left, VPos::Center),
            ))?;
        }
        Ok(())
    }

    fn draw_time_panel(
        &self,
        root: &Area<'_>,
        panel: &TimePanel,
        top: i32,
        to_px: &dyn Fn(f64) -> i32,
    ) -> Result<(), PlotError> {
        root.draw(&Text::new(
            panel.heading.clone(),
            (MARGIN, top + HEADING_H / 2),
            text(14.0, INK, HPos::Left, VPos::Center),
        ))?;
        let area = root.clone().shrink((MARGIN, top + HEADING_H), (WIDTH - MARGIN - LEGEND_W, PANEL_H));
        let values = panel.series.iter().flat_map(|s| s.values.iter().flatten().copied());
        let end_s = self.end_s();
        let bucket_s = self.timeline.bucket_ns as f64 / 1e9;
        let x_fmt = |v: &f64| style::num(*v);
        let y_fmt = |v: &f64| style::num(*v);
        let mut builder = ChartBuilder::on(&area);
        builder.margin_right(CHART_RIGHT).margin_top(6).x_label_area_size(X_AREA).y_label_area_size(Y_AREA);
        let plot_y;
        if panel.log_y {
            let (lo, hi) = log_range(values);
            let mut chart = builder.build_cartesian_2d(0.0..end_s, (lo..hi).log_scale())?;
            mesh!(chart, "time (s)", &panel.y_desc, &x_fmt, &y_fmt).draw()?;
            plot_y = chart.plotting_area().get_pixel_range().1;
            self.shade(root, to_px, &plot_y)?;
            for s in &panel.series {
                let positive: Vec<Option<f64>> = s.values.iter().map(|v| v.filter(|x| *x > 0.0)).collect();
                for run in steps(&positive, bucket_s, end_s) {
                    chart.draw_series(std::iter::once(line(run, s)))?;
                }
            }
        } else {
            let hi = linear_top(values);
            let mut chart = builder.build_cartesian_2d(0.0..end_s, 0.0..hi)?;
            mesh!(chart, "time (s)", &panel.y_desc, &x_fmt, &y_fmt).draw()?;
            plot_y = chart.plotting_area().get_pixel_range().1;
            self.shade(root, to_px, &plot_y)?;
            for s in &panel.series {
                for run in steps(&s.values, bucket_s, end_s) {
                    chart.draw_series(std::iter::once(line(run, s)))?;
                }
            }
        }
        for m in &self.timeline.marks {
            let x = to_px(m.at_ns as f64 / 1e9);
            let color = style::mark_color(m.kind);
            root.draw(&DashedPathElement::new(vec![(x, plot_y.start), (x, plot_y.end)], 5, 4, color.stroke_width(2)))?;
        }
        let legend: Vec<(String, String, RGBColor, bool)> =
            panel.series.iter().map(|s| (s.name.clone(), s.note.clone(), s.color, s.dashed)).collect();
        draw_legend(root, &legend, plot_y.start + 4)
    }

    /// Every window, shaded across the panel's full height at its exact time span.
    fn shade(
        &self,
        root: &Area<'_>,
        to_px: &dyn Fn(f64) -> i32,
        plot_y: &std::ops::Range<i32>,
    ) -> Result<(), PlotError> {
        for w in &self.timeline.windows {
            let (fill, _, alpha) = style::window_colors(w.kind);
            let x0 = to_px(w.from_ns as f64 / 1e9);
            let x1 = to_px(w.to_ns as f64 / 1e9).max(x0 + 1);
            root.draw(&Rectangle::new([(x0, plot_y.start), (x1, plot_y.end)], fill.mix(alpha).filled()))?;
        }
        Ok(())
    }
}

fn line(points: Vec<(f64, f64)>, s: &Series) -> PathElement<(f64, f64)> {
    PathElement::new(points, s.color.stroke_width(2))
}

/// Step runs: bucket `i` holds its value over `[i, i+1) * bucket_s`; a `None` ends a run.
pub fn steps(values: &[Option<f64>], bucket_s: f64, end_s: f64) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let (t0, t1) = (i as f64 * bucket_s, ((i + 1) as f64 * bucket_s).min(end_s));
        match v {
            Some(v) if t1 > t0 => {
                run.push((t0, *v));
                run.push((t1, *v));
            }
            _ => {
                if !run.is_empty() {
                    runs.push(std::mem::take(&mut run));
                }
            }
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// 0 .. a little above the largest value (1 when there is nothing to show).
fn linear_top(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.fold(0.0f64, f64::max);
    if max <= 0.0 {
        1.0
    } else {
        max * 1.1
    }
}

/// Whole decades around the positive values, so a log axis always shows labelled powers of 10.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for v in values.filter(|v| *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi <= 0.0 {
        return (1.0, 10.0);
    }
    let lo = 10f64.powi(lo.log10().floor() as i32);
    let mut hi = 10f64.powi(hi.log10().ceil() as i32);
    if hi <= lo {
        hi = lo * 10.0;
    }
    // A hair wider than the decades, so that rounding in plotters' log axis still labels both.
    (lo * 0.999, hi * 1.001)
}

/// Splits a legend note at its " · " separators into lines that fit `width` pixels at `px`.
pub fn wrap_note(note: &str, px: f64, width: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for part in note.split(" · ").filter(|p| !p.is_empty()) {
        match lines.last_mut() {
            Some(last) if text_width(&format!("{last} · {part}"), px) <= width => {
                last.push_str(" · ");
                last.push_str(part);
            }
            _ => lines.push(part.to_string()),
        }
    }
    lines
}

/// Legend entries to the right of a panel: a line swatch, the name, and a note under it
/// (wrapped to the legend's width).
fn draw_legend(root: &Area<'_>, entries: &[(String, String, RGBColor, bool)], top: i32) -> Result<(), PlotError> {
    let x = WIDTH - LEGEND_W + 6;
    let note_width = f64::from(WIDTH - MARGIN / 2 - (x + 30));
    let mut y = top + 8;
    for (name, note, color, dashed) in entries {
        if *dashed {
            root.draw(&DashedPathElement::new(vec![(x, y), (x + 24, y)], 5, 3, color.stroke_width(3)))?;
        } else {
            root.draw(&PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)))?;
        }
        root.draw(&Text::new(name.clone(), (x + 30, y), text(12.5, INK, HPos::Left, VPos::Center)))?;
        for line in wrap_note(note, 11.0, note_width) {
            y += 15;
            root.draw(&Text::new(line, (x + 30, y), text(11.0, MUTED, HPos::Left, VPos::Center)))?;
        }
        y += 24;
    }
    Ok(())
}

/// "nines" (x = -log10(1 - q)) as a percentile label: 0 -> "0%", 2 -> "99%", 4 -> "99.99%".
pub fn percentile_label(nines: f64) -> String {
    let q = 1.0 - 10f64.powf(-nines);
    let decimals = (nines.round() as i32 - 2).clamp(0, 6) as usize;
    format!("{:.decimals$}%", q * 100.0)
}

pub fn nines(q: f64) -> f64 {
    -(1.0 - q).max(1e-12).log10()
}

fn draw_spectrum(root: &Area<'_>, panel: &SpectrumPanel, top: i32) -> Result<(), PlotError> {
    root.draw(&Text::new(
        panel.heading.clone(),
        (MARGIN, top + HEADING_H / 2),
        text(14.0, INK, HPos::Left, VPos::Center),
    ))?;
    let area = root.clone().shrink((MARGIN, top + HEADING_H), (WIDTH - MARGIN - LEGEND_W, PANEL_H));
    let values = panel.curves.iter().flat_map(|c| c.points.iter().chain(&c.marked).map(|p| p.1));
    let (lo, hi) = log_range(values);
    let mut chart = ChartBuilder::on(&area)
        .margin_right(CHART_RIGHT)
        .margin_top(6)
        .x_label_area_size(X_AREA)
        .y_label_area_size(Y_AREA)
        .build_cartesian_2d(0.0..4.0, (lo..hi).log_scale())?;
    let x_fmt = |v: &f64| percentile_label(*v);
    let y_fmt = |v: &f64| style::num(*v);
    mesh!(chart, "percentile", &panel.y_desc, &x_fmt, &y_fmt).x_labels(5).draw()?;
    for c in &panel.curves {
        let pts: Vec<(f64, f64)> = c.points.iter().filter(|p| p.1 > 0.0).map(|&(q, v)| (nines(q), v)).collect();
        chart.draw_series(std::iter::once(PathElement::new(pts, c.color.stroke_width(2))))?;
        chart.draw_series(
            c.marked.iter().filter(|m| m.1 > 0.0).map(|(q, v)| Circle::new((nines(*q), *v), 4, c.color.filled())),
        )?;
    }
    let plot_top = chart.plotting_area().get_pixel_range().1.start;
    let x = WIDTH - LEGEND_W + 6;
    let mut y = plot_top + 8;
    for c in &panel.curves {
        root.draw(&PathElement::new(vec![(x, y), (x + 24, y)], c.color.stroke_width(3)))?;
        root.draw(&Circle::new((x + 12, y), 4, c.color.filled()))?;
        root.draw(&Text::new(c.name.clone(), (x + 30, y), text(12.5, INK, HPos::Left, VPos::Center)))?;
        y += 17;
        for l in &c.legend {
            root.draw(&Text::new(l.clone(), (x + 30, y), text(11.0, MUTED, HPos::Left, VPos::Center)))?;
            y += 14;
        }
        y += 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Mark, MarkKind};
    use crate::report::timeline::Window;

    #[test]
    fn steps_break_at_gaps_and_stop_at_the_end() {
        let runs = steps(&[Some(1.0), Some(2.0), None, Some(3.0)], 1.0, 3.5);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0], vec![(0.0, 1.0), (1.0, 1.0), (1.0, 2.0), (2.0, 2.0)]);
        assert_eq!(runs[1], vec![(3.0, 3.0), (3.5, 3.0)]);
    }

    #[test]
    fn long_notes_wrap_at_their_separators() {
        assert_eq!(wrap_note("p99 1 ms · max 2 ms", 11.0, 500.0), vec!["p99 1 ms · max 2 ms"]);
        assert_eq!(wrap_note("p99 181.53 ms · max 181.80 ms", 11.0, 150.0), vec!["p99 181.53 ms", "max 181.80 ms"]);
        assert!(wrap_note("", 11.0, 100.0).is_empty());
    }

    #[test]
    fn percentile_labels_count_nines() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(4.0), "99.99%");
        assert!((nines(0.999) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn log_ranges_are_whole_decades() {
        let near = |(lo, hi): (f64, f64), (a, b): (f64, f64)| {
            assert!(lo < a && hi > b && lo / a > 0.99 && hi / b < 1.01, "({lo}, {hi}) around ({a}, {b})")
        };
        near(log_range([0.3, 12.0].into_iter()), (0.1, 100.0));
        near(log_range([2.0, 8.0].into_iter()), (1.0, 10.0));
        assert_eq!(log_range(std::iter::empty()), (1.0, 10.0));
    }

    #[test]
    fn band_labels_never_overlap_on_a_row() {
        let window = |kind, from_s: u64, to_s: u64, label: &str| Window {
            kind,
            from_ns: from_s * 1_000_000_000,
            to_ns: to_s * 1_000_000_000,
            label: label.into(),
        };
        let timeline = Timeline {
            bucket_ns: 1_000_000_000,
            duration_ns: 20_000_000_000,
            end_ns: 30_000_000_000,
            windows: vec![
                window(WindowKind::Crash, 8, 12, "crash pg1"),
                window(WindowKind::Unavailable, 8, 12, "writes unavailable 4.123 s"),
                window(WindowKind::Partition, 9, 10, "partition pg1 | pg2,pg3"),
                window(WindowKind::Settle, 20, 30, "settle: clients stopped, faults healed"),
            ],
            marks: vec![Mark { at_ns: 12_000_000_000, kind: MarkKind::Failover, label: "failover to pg2".into() }],
            ..Timeline::default()
        };
        let to_px = |t: f64| 100 + (t * 25.0) as i32;
        let items = band_items(&timeline, &to_px, 880);
        assert_eq!(items.len(), 5);
        for a in &items {
            for b in &items {
                if a != b && a.row == b.row {
                    let ((a0, a1), (b0, b1)) = (a.extent(), b.extent());
                    assert!(a1 <= b0 || b1 <= a0, "{a:?} overlaps {b:?}");
                }
            }
            assert!(a.text_x + a.text_w <= 880, "{a:?} runs off the figure");
        }
        assert!(rows(&items) >= 3, "crash, unavailable and partition start together");
        let crash = items.iter().find(|i| i.window == Some(WindowKind::Crash)).unwrap();
        assert_eq!((crash.x0, crash.x1), (to_px(8.0), to_px(12.0)));
    }
}
