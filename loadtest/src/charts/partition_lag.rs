//! Lag per partition over time, with the moments the consumer count changed marked: how a
//! scaling demo drains a backlog, partition by partition.

use plotters::prelude::*;

use super::lag_samples::LagSample;
use super::{colour, draw_legend, frame, render, swatch, upper_bound, FONT};

/// A moment to mark with a vertical line, in seconds since the Unix epoch.
pub struct Mark {
    pub at_unix_secs: f64,
    pub label: String,
}

/// Time runs from the first sample.
pub fn partition_lag(title: &str, samples: &[LagSample], marks: &[Mark]) -> anyhow::Result<String> {
    let start = samples.first().map_or(0.0, |s| s.at_unix_secs);
    let since = |at: f64| at - start;
    let end = upper_bound(samples.last().map_or(0.0, |s| since(s.at_unix_secs)));
    let partitions = samples
        .iter()
        .map(|s| s.partitions.len())
        .max()
        .unwrap_or(0);
    let most = upper_bound(
        samples
            .iter()
            .flat_map(|s| s.partitions.iter())
            .copied()
            .max()
            .unwrap_or(0) as f64,
    );
    render(|area| {
        let mut chart = frame(area, title)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0..end, 0.0..most)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("lag (events not yet applied)")
            .x_label_formatter(&|s| format!("{s:.0}"))
            .y_label_formatter(&|n| format!("{n:.0}"))
            .draw()?;
        for mark in marks {
            let x = since(mark.at_unix_secs);
            let style = BLACK.mix(0.6).stroke_width(1);
            chart.draw_series(DashedLineSeries::new([(x, 0.0), (x, most)], 5, 4, style))?;
            chart.draw_series(std::iter::once(Text::new(
                mark.label.clone(),
                (x, most * 0.98),
                (FONT, 14).into_font(),
            )))?;
        }
        for partition in 0..partitions {
            let style = colour(partition).stroke_width(2);
            let line = samples.iter().filter_map(|s| {
                s.partitions
                    .get(partition)
                    .map(|lag| (since(s.at_unix_secs), *lag as f64))
            });
            chart
                .draw_series(LineSeries::new(line, style))?
                .label(format!("partition {partition}"))
                .legend(swatch(style));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_partition_and_the_marks_named() {
        let sample = |at: f64, lags: [i64; 3]| LagSample {
            at_unix_secs: at,
            total: lags.iter().sum(),
            partitions: lags.to_vec(),
        };
        let samples = [
            sample(100.0, [90, 80, 70]),
            sample(102.0, [60, 50, 40]),
            sample(104.0, [0, 0, 0]),
        ];
        let marks = [Mark {
            at_unix_secs: 102.0,
            label: "3 consumers".into(),
        }];
        let svg = partition_lag("scaling", &samples, &marks).unwrap();
        assert!(svg.contains("3 consumers"));
        for partition in 0..3 {
            assert!(svg.contains(&format!("partition {partition}")));
        }
        assert!(!svg.contains("partition 3"));
    }
}
