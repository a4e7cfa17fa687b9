//! The latency distribution of runs, drawn as percentile curves the way HdrHistogram's
//! plots are: the x axis counts nines (50 %, 90 %, 99 %, 99.9 % …) so the tail, where
//! queueing and pauses show, gets as much room as the median.

use plotters::prelude::*;

use super::{colour, draw_legend, frame, log_range, ms_label, render, swatch};
use crate::latency::Percentiles;

/// One curve per named run, on one chart.
pub fn percentile_curves(title: &str, runs: &[(&str, &Percentiles)]) -> anyhow::Result<String> {
    let deepest = runs
        .iter()
        .flat_map(|(_, p)| p.curve.last())
        .map(|point| point.nines)
        .fold(1.0, f64::max)
        .ceil();
    let latency = log_range(
        runs.iter()
            .flat_map(|(_, p)| p.curve.iter().map(|point| point.ms)),
    );
    render(|area| {
        let mut chart = frame(area, title)
            // The last percentile label is centred on the axis's end.
            .margin_right(40)
            .build_cartesian_2d(0.0..deepest, latency.log_scale())?;
        chart
            .configure_mesh()
            .x_labels(deepest as usize + 1)
            .x_label_formatter(&percentile_label)
            .x_desc("percentile")
            .y_desc("latency (ms, log)")
            .y_label_formatter(&ms_label)
            .draw()?;
        for (index, (name, percentiles)) in runs.iter().enumerate() {
            let style = colour(index).stroke_width(2);
            let points = percentiles
                .curve
                .iter()
                .map(|point| (point.nines, point.ms));
            chart
                .draw_series(LineSeries::new(points, style))?
                .label(format!(
                    "{name}: p50 {} · p99 {} · p99.9 {} ms (n = {})",
                    ms_label(&percentiles.p50),
                    ms_label(&percentiles.p99),
                    ms_label(&percentiles.p999),
                    percentiles.count
                ))
                .legend(swatch(style));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    })
}

/// Nines as a percentile: 0 → 0 %, 1 → 90 %, 2 → 99 %, 3 → 99.9 %.
fn percentile_label(nines: &f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-nines));
    let decimals = (nines.round() as usize).saturating_sub(2);
    format!("{percent:.decimals$} %")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;

    #[test]
    fn nines_read_as_percentiles() {
        let labels: Vec<String> = [0.0, 1.0, 2.0, 3.0, 4.0]
            .iter()
            .map(percentile_label)
            .collect();
        assert_eq!(labels, ["0 %", "90 %", "99 %", "99.9 %", "99.99 %"]);
    }

    #[test]
    fn each_run_is_one_curve_named_with_its_percentiles() {
        let mut fast = Histogram::<u64>::new(3).unwrap();
        let mut slow = Histogram::<u64>::new(3).unwrap();
        for i in 1..=2000u64 {
            fast.record(500 + i).unwrap();
            slow.record(20_000 + 10 * i).unwrap();
        }
        let (fast, slow) = (Percentiles::of(&fast), Percentiles::of(&slow));
        let svg =
            percentile_curves("two runs", &[("ingress", &fast), ("Kafka Bridge", &slow)]).unwrap();
        assert!(svg.contains("ingress: p50 1.5"), "{svg}");
        assert!(svg.contains("Kafka Bridge: p50 30"), "{svg}");
        assert!(svg.contains("99.9 %"), "{svg}");
    }
}
