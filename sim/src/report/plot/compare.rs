//! `compare.svg`: small multiples, one panel per figure, a bar per combination of settings
//! (the mean over the seeds) with a whisker for the min–max range across seeds. The value of
//! every bar is printed on it when it fits, as `compare.md` prints it.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::style::{self, font, text, text_width, GRID, GRID_LIGHT, INK, MUTED, WHITE};
use super::PlotError;
use crate::report::compare::{Comparison, Metric, Stat};

const WIDTH: i32 = 1100;
const MARGIN: i32 = 14;
const TITLE_H: i32 = 64;
const HEADING_H: i32 = 24;
const PANEL_H: i32 = 250;
const GAP: i32 = 18;
const COLUMNS: i32 = 2;

struct Panel {
    heading: &'static str,
    y_desc: &'static str,
    /// `(legend name, metric, colour)`: one bar per entry in each slot.
    bars: Vec<(&'static str, Metric, RGBColor)>,
    scale: f64,
    decimals: usize,
}

fn panels() -> Vec<Panel> {
    let blue = style::series_color(0);
    vec![
        Panel {
            heading: "Commit latency",
            y_desc: "ms",
            bars: vec![("p50", Metric::CommitP50, style::series_color(3)), ("p99", Metric::CommitP99, blue)],
            scale: 1e6,
            decimals: 2,
        },
        Panel {
            heading: "Throughput",
            y_desc: "commits/s",
            bars: vec![("commits/s", Metric::CommitsPerSec, style::series_color(1))],
            scale: 1.0,
            decimals: 1,
        },
        Panel {
            heading: "Replay lag p99 (worst standby)",
            y_desc: "ms",
            bars: vec![("replay_lag p99", Metric::ReplayLagP99, blue)],
            scale: 1e6,
            decimals: 2,
        },
        Panel {
            heading: "Lag in bytes p99 (worst standby)",
            y_desc: "KiB",
            bars: vec![("lag p99", Metric::LagBytesP99, style::series_color(2))],
            scale: 1024.0,
            decimals: 1,
        },
        Panel {
            heading: "Lost acknowledged writes",
            y_desc: "writes",
            bars: vec![("lost", Metric::LostAckedWrites, RGBColor(213, 94, 0))],
            scale: 1.0,
            decimals: 1,
        },
        Panel {
            heading: "Longest write unavailability",
            y_desc: "s",
            bars: vec![("unavailable", Metric::Unavailable, RGBColor(90, 90, 90))],
            scale: 1e9,
            decimals: 3,
        },
    ]
}

type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;

/// Separates the entries of the key under the figure.
const KEY_SEP: &str = "  ·  ";

/// How the slots are named under the x axis, and at which font size: the labels themselves,
/// or numbers with a key under the figure when a label would not fit its slot.
pub fn slot_names(labels: &[String], slot_px: f64) -> (Vec<String>, f64, Option<String>) {
    for px in [12.0, 11.0] {
        if labels.iter().all(|l| text_width(l, px) <= slot_px - 4.0) {
            return (labels.to_vec(), px, None);
        }
    }
    let names = (1..=labels.len()).map(|i| i.to_string()).collect();
    let key = labels.iter().enumerate().map(|(i, l)| format!("{} = {l}", i + 1)).collect::<Vec<_>>().join(KEY_SEP);
    (names, 12.0, Some(key))
}

/// Splits `key` at its separators into lines no wider than `width` pixels at `px`.
fn wrap(key: &str, px: f64, width: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for part in key.split(KEY_SEP) {
        match lines.last_mut() {
            Some(last) if text_width(&format!("{last}{KEY_SEP}{part}"), px) <= width => {
                last.push_str(KEY_SEP);
                last.push_str(part);
            }
            _ => lines.push(part.to_string()),
        }
    }
    lines
}

pub fn compare_svg(c: &Comparison) -> Result<String, PlotError> {
    let panels = panels();
    let n = c.rows.len().max(1);
    let panel_w = (WIDTH - 2 * MARGIN - GAP) / COLUMNS;
    let plot_w = f64::from(panel_w - 64 - 10);
    let labels: Vec<String> = c.rows.iter().map(|r| r.combination.label.clone()).collect();
    let (names, label_px, key) = slot_names(&labels, plot_w / n as f64);
    let key_lines = key.as_deref().map_or(Vec::new(), |k| wrap(k, 12.0, f64::from(WIDTH - 2 * MARGIN)));
    let grid_rows = (panels.len() as i32 + COLUMNS - 1) / COLUMNS;
    let height = TITLE_H + grid_rows * (HEADING_H + PANEL_H + GAP) + key_lines.len() as i32 * 18 + MARGIN;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let what = c.label_heading();
        let title = format!("{} — {what} compared over {} seeds", c.scenario, c.seeds.len());
        root.draw(&Text::new(title, (MARGIN, 20), text(18.0, INK, HPos::Left, VPos::Center)))?;
        let seeds = match (c.seeds.first(), c.seeds.last()) {
            (Some(a), Some(b)) => format!("seeds {a}..={b}"),
            _ => "no seeds".into(),
        };
        let sub = format!(
            "bars: mean over {seeds}; whiskers: min–max across seeds; every setting runs the same seeds (same workload, same faults)"
        );
        root.draw(&Text::new(sub, (MARGIN, 44), text(12.0, MUTED, HPos::Left, VPos::Center)))?;
        for (i, panel) in panels.iter().enumerate() {
            let (col, row) = (i as i32 % COLUMNS, i as i32 / COLUMNS);
            let x = MARGIN + col * (panel_w + GAP);
            let y = TITLE_H + row * (HEADING_H + PANEL_H + GAP);
            draw_panel(&root, c, panel, (&names, label_px), (x, y), panel_w)?;
        }
        let mut y = TITLE_H + grid_rows * (HEADING_H + PANEL_H + GAP);
        for line in key_lines {
            root.draw(&Text::new(line, (MARGIN, y), text(12.0, INK, HPos::Left, VPos::Center)))?;
            y += 18;
        }
        root.present()?;
    }
    Ok(buf)
}

fn draw_panel(
    root: &Area<'_>,
    c: &Comparison,
    panel: &Panel,
    (names, label_px): (&[String], f64),
    (x, y): (i32, i32),
    w: i32,
) -> Result<(), PlotError> {
    root.draw(&Text::new(
        panel.heading.to_string(),
        (x, y + HEADING_H / 2),
        text(14.0, INK, HPos::Left, VPos::Center),
    ))?;
    if panel.bars.len() > 1 {
        // A legend for grouped bars, right-aligned on the heading line.
        let mut lx = x + w - 10;
        for (name, _, color) in panel.bars.iter().rev() {
            lx -= text_width(name, 12.0).ceil() as i32;
            root.draw(&Text::new(
                name.to_string(),
                (lx, y + HEADING_H / 2),
                text(12.0, INK, HPos::Left, VPos::Center),
            ))?;
            lx -= 16;
            root.draw(&Rectangle::new(
                [(lx, y + HEADING_H / 2 - 5), (lx + 10, y + HEADING_H / 2 + 5)],
                color.filled(),
            ))?;
            lx -= 14;
        }
    }
    let stats: Vec<Vec<Option<Stat>>> =
        c.rows.iter().map(|r| panel.bars.iter().map(|(_, m, _)| r.stat(*m)).collect()).collect();
    let top = stats.iter().flatten().flatten().map(|s| s.max / panel.scale).fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.2 } else { 1.0 };
    let n = c.rows.len().max(1);
    let area = root.clone().shrink((x, y + HEADING_H), (w, PANEL_H));
    let mut chart = ChartBuilder::on(&area)
        .margin_right(10)
        .margin_top(4)
        .x_label_area_size(30)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..top)?;
    let y_fmt = |v: &f64| style::num(*v);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(panel.y_desc)
        .y_label_formatter(&y_fmt)
        .label_style(font(12.0).color(&MUTED))
        .axis_desc_style(font(12.5).color(&INK))
        .bold_line_style(GRID)
        .light_line_style(GRID_LIGHT)
        .axis_style(MUTED)
        .y_labels(6)
        .draw()?;
    let k = panel.bars.len() as f64;
    let group = 0.76;
    let bar_w = group / k;
    let px_per_unit = {
        let (a, b) = (chart.backend_coord(&(0.0, 0.0)).0, chart.backend_coord(&(1.0, 0.0)).0);
        f64::from(b - a)
    };
    for (slot, row_stats) in stats.iter().enumerate() {
        let center = slot as f64;
        let base = chart.backend_coord(&(center, 0.0));
        root.draw(&Text::new(names[slot].clone(), (base.0, base.1 + 8), text(label_px, INK, HPos::Center, VPos::Top)))?;
        for (j, stat) in row_stats.iter().enumerate() {
            let Some(s) = stat else {
                continue;
            };
            let (mean, min, max) = (s.mean / panel.scale, s.min / panel.scale, s.max / panel.scale);
            let x0 = center - group / 2.0 + j as f64 * bar_w + 0.01;
            let x1 = x0 + bar_w - 0.02;
            let color = panel.bars[j].2;
            chart.draw_series(std::iter::once(Rectangle::new([(x0, 0.0), (x1, mean)], color.mix(0.85).filled())))?;
            let mid = (x0 + x1) / 2.0;
            if max > min {
                let cap = bar_w * 0.2;
                let whisker = INK.stroke_width(1);
                chart.draw_series([
                    PathElement::new(vec![(mid, min), (mid, max)], whisker),
                    PathElement::new(vec![(mid - cap, min), (mid + cap, min)], whisker),
                    PathElement::new(vec![(mid - cap, max), (mid + cap, max)], whisker),
                ])?;
            }
            let label = format!("{:.*}", panel.decimals, mean);
            if text_width(&label, 11.0) <= (x1 - x0) * px_per_unit + 10.0 {
                let at = chart.backend_coord(&(mid, max.max(mean)));
                root.draw(&Text::new(label, (at.0, at.1 - 4), text(11.0, INK, HPos::Center, VPos::Bottom)))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_labels_become_numbers_with_a_key() {
        let short = vec!["off".to_string(), "on".to_string()];
        assert_eq!(slot_names(&short, 100.0), (short.clone(), 12.0, None));
        let levels = vec!["remote_write".to_string(), "remote_apply".to_string()];
        assert_eq!(slot_names(&levels, 93.0).2, None, "the five levels fit a two-column figure");
        let long = vec!["remote_apply, 32 clients".to_string(), "off, 8 clients".to_string()];
        let (names, _, key) = slot_names(&long, 60.0);
        assert_eq!(names, ["1", "2"]);
        assert_eq!(key.as_deref(), Some("1 = remote_apply, 32 clients  ·  2 = off, 8 clients"));
        assert_eq!(wrap("1 = a  ·  2 = b", 12.0, 30.0), ["1 = a", "2 = b"]);
    }
}
