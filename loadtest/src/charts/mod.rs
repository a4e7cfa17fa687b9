//! Charts of what the load and benchmark commands measured, drawn as SVG beside the JSON
//! they write, so a run is read as curves rather than columns:
//!
//! - [`rate`]: latency percentiles against offered rate, one line per server and
//!   percentile (the ingress beside the bridge in `bench-pipeline`'s stage 3);
//! - [`distribution`]: the latency distribution of runs as percentile curves (HDR style);
//! - [`timeline`]: a load run second by second, answers by status, acknowledged rate and
//!   the consumers' lag, with the fault marked (`infra/faults.sh`);
//! - [`partition_lag`]: lag per partition over a scaling demo (`infra/scale-demo.sh`).
//!
//! [`open_loop`] draws `loadtest open-loop`'s distribution and timeline beside its JSON;
//! [`cli`] is `loadtest chart`, which draws from files the scripts collect.
//!
//! SVG needs no font on the machine that draws it: the viewer's browser sets the text.

use std::path::{Path, PathBuf};

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

pub mod cli;
pub mod distribution;
pub mod lag_samples;
pub mod open_loop;
pub mod partition_lag;
pub mod rate;
pub mod timeline;

/// Every chart's size in pixels: wide enough for a timeline's seconds, readable when a
/// document scales it down.
const SIZE: (u32, u32) = (960, 540);
const FONT: &str = "sans-serif";

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Runs `draw` on a blank white canvas and returns the SVG document it drew.
fn render(draw: impl FnOnce(&Area<'_>) -> DrawResult) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        area.fill(&WHITE).map_err(anyhow_of)?;
        draw(&area).map_err(|error| anyhow::anyhow!("drawing a chart: {error}"))?;
        area.present().map_err(anyhow_of)?;
    }
    Ok(svg)
}

fn anyhow_of(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {error}")
}

/// A chart's frame: its title, margins and room for the axes' labels.
fn frame<'a, 's>(area: &'a Area<'s>, title: &str) -> ChartBuilder<'a, 'static, SVGBackend<'s>> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, (FONT, 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64);
    builder
}

/// Draws the legend of `chart`'s labelled series at `position`, on a light box that lets
/// the lines under it show through.
fn draw_legend<'a, 's: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'s>, CT>,
    position: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}

/// Writes `svg` to `path`, making its directory.
pub fn write(path: &Path, svg: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, svg)?;
    Ok(())
}

/// `results/run.json` → `results/run-<suffix>.svg`: a chart beside the JSON it draws.
pub fn beside(json: &Path, suffix: &str) -> PathBuf {
    let stem = json
        .file_stem()
        .map_or_else(|| "run".into(), |stem| stem.to_string_lossy().into_owned());
    json.with_file_name(format!("{stem}-{suffix}.svg"))
}

/// Distinct colours for up to a dozen series, readable on white, in a fixed order so a
/// server or partition keeps its colour from chart to chart.
fn colour(index: usize) -> RGBColor {
    const COLOURS: [RGBColor; 12] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(0, 0, 128),
        RGBColor(128, 128, 0),
    ];
    COLOURS[index % COLOURS.len()]
}

/// A legend swatch: a short line in `style`.
fn swatch(style: ShapeStyle) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style)
}

/// A range with some room above its largest value, never empty.
fn upper_bound(largest: f64) -> f64 {
    if largest.is_finite() && largest > 0.0 {
        largest * 1.1
    } else {
        1.0
    }
}

/// The range of a logarithmic latency axis holding every value in `values` (ms).
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if low > high {
        return 0.1..10.0;
    }
    // Whole decades either side, so the axis labels are round numbers.
    let low = 10f64.powf(low.log10().floor());
    let high = 10f64.powf(high.log10().ceil()).max(low * 10.0);
    low..high
}

/// A latency in ms, as short as it stays exact enough to read.
fn ms_label(ms: &f64) -> String {
    if *ms >= 10.0 {
        format!("{ms:.0}")
    } else if *ms >= 1.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_goes_beside_its_json() {
        assert_eq!(
            beside(Path::new("/tmp/x/open-loop.json"), "latency"),
            Path::new("/tmp/x/open-loop-latency.svg")
        );
    }

    #[test]
    fn log_ranges_span_whole_decades() {
        assert_eq!(log_range([0.3, 42.0].into_iter()), 0.1..100.0);
        assert_eq!(log_range([5.0].into_iter()), 1.0..10.0);
        assert_eq!(log_range(std::iter::empty()), 0.1..10.0);
    }
}
