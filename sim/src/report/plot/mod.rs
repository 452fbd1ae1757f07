//! The SVG plots of a run (`lag.svg`, `throughput.svg`, `latency.svg`, with the plotted data in
//! `series.json`) and of a comparison (`compare.svg`), drawn with plotters' SVG backend.
//!
//! plotters is used without any feature that needs a system library: no bitmap backend, no
//! `ttf`/font-kit (fontconfig). Text goes into the SVG as `<text>` for the viewer to lay out;
//! where labels could collide, [`style::text_width`] estimates their width generously and the
//! layout keeps them apart (the events band, the legends beside the panels).

pub mod compare;
pub mod figure;
pub mod runs;
pub mod style;
pub mod sweep;

use std::path::Path;

pub use crate::report::timeline::{Timeline, Window, WindowKind};

use crate::report::summary::Summary;

/// Drawing failed (plotters reports errors of its backend; for a string buffer, none occur).
#[derive(Debug)]
pub struct PlotError(pub String);

impl std::fmt::Display for PlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot draw the plot: {}", self.0)
    }
}

impl std::error::Error for PlotError {}

impl<E: std::error::Error + Send + Sync> From<plotters::drawing::DrawingAreaErrorKind<E>> for PlotError {
    fn from(e: plotters::drawing::DrawingAreaErrorKind<E>) -> Self {
        PlotError(e.to_string())
    }
}

impl From<PlotError> for std::io::Error {
    fn from(e: PlotError) -> Self {
        std::io::Error::other(e)
    }
}

/// Writes `series.json`, `lag.svg`, `throughput.svg` and `latency.svg` into `dir` (which must
/// exist). A summary without a timeline (built by hand) gets no plots.
pub fn write_run_plots(dir: &Path, summary: &Summary) -> std::io::Result<()> {
    let Some(timeline) = summary.timeline.as_deref() else {
        return Ok(());
    };
    let json = serde_json::to_string(timeline).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("series.json"), json + "\n")?;
    std::fs::write(dir.join("lag.svg"), runs::lag_svg(summary, timeline)?)?;
    std::fs::write(dir.join("throughput.svg"), runs::throughput_svg(summary, timeline)?)?;
    std::fs::write(dir.join("latency.svg"), runs::latency_svg(summary, timeline)?)?;
    Ok(())
}
