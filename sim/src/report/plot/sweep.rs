//! `distributions.svg` of a sweep: across the seeds, how many lost acknowledged writes, how
//! long writes were unavailable, how high the p99 commit latency went. One histogram per figure,
//! the seeds that failed (a violated invariant or expectation) stacked in a second colour, and
//! the min / p50 / p90 / max of `summary.json` (nearest rank) beside each.

use std::path::Path;

use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::style::{font, text, GRID, GRID_LIGHT, INK, MUTED, WHITE};
use super::PlotError;
use crate::report::summary::Summary;
use crate::report::sweep::{Distribution, SeedRun};

const WIDTH: i32 = 1000;
const MARGIN: i32 = 12;
const TITLE_H: i32 = 62;
const HEADING_H: i32 = 22;
const PANEL_H: i32 = 220;
const GAP: i32 = 16;
const LEGEND_W: i32 = 215;
const PASS: RGBColor = RGBColor(0, 114, 178);
const FAIL: RGBColor = RGBColor(213, 94, 0);

/// One seed's figures, as the histograms need them.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedPoint {
    pub seed: u64,
    pub ok: bool,
    pub lost_acked_writes: u64,
    pub unavailable_ns: u64,
    pub commit_p99_ns: u64,
}

impl SeedPoint {
    pub fn of(s: &Summary) -> SeedPoint {
        SeedPoint {
            seed: s.seed,
            ok: s.ok,
            lost_acked_writes: s.lost_acked_writes,
            unavailable_ns: s.unavailable_ns,
            commit_p99_ns: s.commit_latency_ns.p99,
        }
    }
}

/// A histogram bin: `[from, to)` in display units, and the passing and failing seeds in it.
#[derive(Clone, Debug, PartialEq)]
pub struct Bin {
    pub from: f64,
    pub to: f64,
    pub passed: u64,
    pub failed: u64,
}

/// Bins for `values` (display units, with whether the seed passed): one per integer when the
/// values are small integers (lost writes), else `n` equal bins from the min to the max (one
/// narrow bin when every seed has the same value); and the x range to show them in.
pub fn bins(values: &[(f64, bool)], n: usize) -> (Vec<Bin>, (f64, f64)) {
    if values.is_empty() {
        return (Vec::new(), (0.0, 1.0));
    }
    let lo = values.iter().map(|v| v.0).fold(f64::INFINITY, f64::min);
    let hi = values.iter().map(|v| v.0).fold(f64::NEG_INFINITY, f64::max);
    let integral = values.iter().all(|v| v.0.fract() == 0.0) && hi - lo <= n as f64;
    let (start, width, count, range) = if integral {
        // At least five integers wide, so that "every seed lost 0" is a bar, not the whole panel.
        (lo - 0.5, 1.0, (hi - lo) as usize + 1, (lo - 0.5, hi.max(lo + 4.0) + 0.5))
    } else if hi > lo {
        (lo, (hi - lo) / n as f64, n, (lo, hi))
    } else {
        let w = if lo == 0.0 { 0.05 } else { lo.abs() * 0.01 };
        (lo - w / 2.0, w, 1, (lo - 10.0 * w, lo + 10.0 * w))
    };
    let mut out: Vec<Bin> = (0..count)
        .map(|i| Bin { from: start + i as f64 * width, to: start + (i + 1) as f64 * width, passed: 0, failed: 0 })
        .collect();
    for &(v, ok) in values {
        let i = (((v - start) / width).floor() as usize).min(count - 1);
        if ok {
            out[i].passed += 1;
        } else {
            out[i].failed += 1;
        }
    }
    (out, range)
}

/// Tick labels with as many decimals as ticks about a tenth of `span` apart need.
fn tick_decimals(span: f64) -> usize {
    if span <= 0.0 || !span.is_finite() {
        return 0;
    }
    (-(span / 10.0).log10().floor()).clamp(0.0, 9.0) as usize
}

struct Metric {
    heading: &'static str,
    x_desc: &'static str,
    scale: f64,
    pick: fn(&SeedPoint) -> u64,
    unit: &'static str,
    decimals: usize,
}

const METRICS: [Metric; 3] = [
    Metric {
        heading: "Lost acknowledged writes per seed",
        x_desc: "lost acknowledged writes",
        scale: 1.0,
        pick: |p| p.lost_acked_writes,
        unit: "",
        decimals: 0,
    },
    Metric {
        heading: "Longest write unavailability per seed",
        x_desc: "unavailable (s)",
        scale: 1e9,
        pick: |p| p.unavailable_ns,
        unit: " s",
        decimals: 3,
    },
    Metric {
        heading: "p99 commit latency per seed",
        x_desc: "commit latency p99 (ms)",
        scale: 1e6,
        pick: |p| p.commit_p99_ns,
        unit: " ms",
        decimals: 2,
    },
];

/// The SVG: three histograms across the seeds of one sweep.
pub fn sweep_svg(scenario: &str, points: &[SeedPoint]) -> Result<String, PlotError> {
    let height = TITLE_H + METRICS.len() as i32 * (HEADING_H + PANEL_H + GAP) + MARGIN;
    let failed = points.iter().filter(|p| !p.ok).count();
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let (first, last) = (points.iter().map(|p| p.seed).min(), points.iter().map(|p| p.seed).max());
        let seeds = match (first, last) {
            (Some(a), Some(b)) => format!("seeds {a}..={b}"),
            _ => "no seeds".into(),
        };
        let title = format!("{scenario} — sweep over {} seeds", points.len());
        root.draw(&Text::new(title, (MARGIN, 20), text(18.0, INK, HPos::Left, VPos::Center)))?;
        let sub =
            format!("{seeds}; {failed} failed (violated an invariant or an expectation); panicked seeds are not drawn");
        root.draw(&Text::new(sub, (MARGIN, 44), text(12.0, MUTED, HPos::Left, VPos::Center)))?;
        for (i, m) in METRICS.iter().enumerate() {
            let top = TITLE_H + i as i32 * (HEADING_H + PANEL_H + GAP);
            draw_histogram(&root, m, points, top)?;
        }
        root.present()?;
    }
    Ok(buf)
}

fn draw_histogram(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    m: &Metric,
    points: &[SeedPoint],
    top: i32,
) -> Result<(), PlotError> {
    root.draw(&Text::new(
        m.heading.to_string(),
        (MARGIN, top + HEADING_H / 2),
        text(14.0, INK, HPos::Left, VPos::Center),
    ))?;
    let values: Vec<(f64, bool)> = points.iter().map(|p| ((m.pick)(p) as f64 / m.scale, p.ok)).collect();
    let (bins, (x0, x1)) = bins(&values, 20);
    let tallest = bins.iter().map(|b| b.passed + b.failed).max().unwrap_or(0).max(1) as f64;
    let area = root.clone().shrink((MARGIN, top + HEADING_H), (WIDTH - MARGIN - LEGEND_W, PANEL_H));
    let mut chart = ChartBuilder::on(&area)
        .margin_right(14)
        .margin_top(6)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0.0..tallest * 1.15)?;
    let decimals = tick_decimals(x1 - x0);
    let x_fmt = |v: &f64| {
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    let y_fmt = |v: &f64| if v.fract() == 0.0 { format!("{v:.0}") } else { String::new() };
    chart
        .configure_mesh()
        .x_desc(m.x_desc)
        .y_desc("seeds")
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(font(12.0).color(&MUTED))
        .axis_desc_style(font(12.5).color(&INK))
        .bold_line_style(GRID)
        .light_line_style(GRID_LIGHT)
        .axis_style(MUTED)
        .x_labels(10)
        .y_labels(6)
        .draw()?;
    let pad = (x1 - x0) / 400.0;
    for b in &bins {
        let (l, r) = (b.from + pad, b.to - pad);
        if b.passed > 0 {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(l, 0.0), (r, b.passed as f64)],
                PASS.mix(0.85).filled(),
            )))?;
        }
        if b.failed > 0 {
            let (y0, y1) = (b.passed as f64, (b.passed + b.failed) as f64);
            chart.draw_series(std::iter::once(Rectangle::new([(l, y0), (r, y1)], FAIL.mix(0.9).filled())))?;
        }
    }
    let dist = Distribution::of(points.iter().map(m.pick));
    let fmt = |v: u64| format!("{:.*}{}", m.decimals, v as f64 / m.scale, m.unit);
    let plot_y = chart.plotting_area().get_pixel_range().1;
    if let Some(d) = dist {
        for (v, color) in [(d.p50, MUTED), (d.p90, INK)] {
            let x = chart.backend_coord(&(v as f64 / m.scale, 0.0)).0;
            root.draw(&DashedPathElement::new(vec![(x, plot_y.start), (x, plot_y.end)], 5, 4, color.stroke_width(2)))?;
        }
    }
    // Legend: what the colours and lines are, then the distribution as summary.json has it.
    let x = WIDTH - LEGEND_W + 6;
    let mut y = plot_y.start + 8;
    let passed = points.iter().filter(|p| p.ok).count();
    for (color, label) in [(PASS, format!("passed ({passed})")), (FAIL, format!("failed ({})", points.len() - passed))]
    {
        root.draw(&Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()))?;
        root.draw(&Text::new(label, (x + 22, y), text(12.5, INK, HPos::Left, VPos::Center)))?;
        y += 18;
    }
    for (color, label) in [(MUTED, "p50"), (INK, "p90")] {
        root.draw(&DashedPathElement::new(vec![(x, y), (x + 14, y)], 4, 3, color.stroke_width(2)))?;
        root.draw(&Text::new(label.to_string(), (x + 22, y), text(12.5, INK, HPos::Left, VPos::Center)))?;
        y += 18;
    }
    if let Some(d) = dist {
        y += 6;
        for (label, v) in [("min", d.min), ("p50", d.p50), ("p90", d.p90), ("max", d.max)] {
            root.draw(&Text::new(format!("{label} {}", fmt(v)), (x, y), text(11.0, MUTED, HPos::Left, VPos::Center)))?;
            y += 15;
        }
    }
    Ok(())
}

/// The points of the seeds that ran (panicked seeds have no figures).
pub fn points(run: &SeedRun) -> Vec<SeedPoint> {
    run.results.iter().filter_map(|r| r.summary()).map(SeedPoint::of).collect()
}

/// Writes `distributions.svg` into the sweep's folder (which must exist).
pub fn write_sweep_plot(dir: &Path, run: &SeedRun, scenario: &str) -> std::io::Result<()> {
    std::fs::write(dir.join("distributions.svg"), sweep_svg(scenario, &points(run))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_integers_get_one_bin_each_and_failures_are_counted_apart() {
        let (b, range) = bins(&[(0.0, true), (0.0, true), (2.0, false), (1.0, true)], 20);
        assert_eq!(range, (-0.5, 4.5));
        assert_eq!(b.len(), 3);
        assert_eq!((b[0].passed, b[0].failed), (2, 0));
        assert_eq!((b[2].from, b[2].to, b[2].failed), (1.5, 2.5, 1));
        assert_eq!(b.iter().map(|b| b.passed + b.failed).sum::<u64>(), 4);
    }

    #[test]
    fn continuous_values_fill_equal_bins_and_the_max_lands_in_the_last() {
        let values: Vec<(f64, bool)> = (0..100).map(|i| (f64::from(i) * 0.01 + 0.005, i % 10 != 0)).collect();
        let (b, _) = bins(&values, 20);
        assert_eq!(b.len(), 20);
        assert_eq!(b.iter().map(|b| b.passed + b.failed).sum::<u64>(), 100);
        assert_eq!(b.iter().map(|b| b.failed).sum::<u64>(), 10);
        assert!(b[19].passed + b[19].failed > 0);
        let (one, (lo, hi)) = bins(&[(3.5, true), (3.5, true)], 20);
        assert_eq!(one.len(), 1, "one value: one bin");
        assert!(one[0].from < 3.5 && one[0].to > 3.5 && lo < one[0].from && hi > one[0].to);
        assert!(bins(&[], 20).0.is_empty());
        assert_eq!(tick_decimals(0.013), 3);
        assert_eq!(tick_decimals(50.0), 0);
        assert_eq!(tick_decimals(0.5), 2);
    }

    #[test]
    fn the_svg_names_every_figure_and_its_distribution() {
        let points: Vec<SeedPoint> = (1..=30)
            .map(|seed| SeedPoint {
                seed,
                ok: seed % 7 != 0,
                lost_acked_writes: seed % 3,
                unavailable_ns: seed * 100_000_000,
                commit_p99_ns: 5_000_000 + seed * 10_000,
            })
            .collect();
        let svg = sweep_svg("demo", &points).unwrap();
        assert!(svg.contains("demo — sweep over 30 seeds"));
        assert!(svg.contains("failed (4)") && svg.contains("passed (26)"));
        let d = Distribution::of(points.iter().map(|p| p.unavailable_ns)).unwrap();
        assert!(svg.contains(&format!("p90 {:.3} s", d.p90 as f64 / 1e9)), "the legend prints summary.json's p90");
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    }
}
