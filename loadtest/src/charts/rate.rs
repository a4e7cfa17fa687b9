//! Latency against offered rate: for each server, its p50, p99 and p99.9 at each fixed
//! rate it was driven at. A rate it could not keep up with (under 99 % of the offered rate
//! acknowledged) is drawn with a cross, since its latency then describes only the requests
//! that got through.

use plotters::prelude::*;

use super::{
    colour, draw_legend, frame, log_range, ms_label, render, swatch, upper_bound, FONT, SIZE,
};
use crate::latency::Percentiles;

/// One server's runs at fixed rates.
pub struct Server<'a> {
    pub name: &'a str,
    pub points: Vec<RatePoint<'a>>,
}

pub struct RatePoint<'a> {
    /// Requests per second the generator offered.
    pub offered: f64,
    pub latency: &'a Percentiles,
    pub kept_up: bool,
}

/// A percentile to draw: its name, where it is read from, its line width.
type Drawn = (&'static str, fn(&Percentiles) -> f64, u32);

/// The percentiles drawn and how: a thicker line for the deeper one people plan by.
const PERCENTILES: [Drawn; 3] = [
    ("p50", |p| p.p50, 1),
    ("p99", |p| p.p99, 3),
    ("p99.9", |p| p.p999, 1),
];

pub fn latency_against_rate(title: &str, servers: &[Server<'_>]) -> anyhow::Result<String> {
    let all = || servers.iter().flat_map(|s| s.points.iter());
    let max_rate = upper_bound(all().map(|p| p.offered).fold(0.0, f64::max));
    let latency = log_range(all().flat_map(|p| PERCENTILES.iter().map(|(_, of, _)| of(p.latency))));
    render(|area| {
        let mut chart = frame(area, title)
            .x_label_area_size(60)
            .build_cartesian_2d(0.0..max_rate, latency.log_scale())?;
        chart
            .configure_mesh()
            .x_desc("offered rate (requests/s, open loop)")
            .y_desc("due time → acknowledgement (ms, log)")
            .y_label_formatter(&ms_label)
            .x_label_formatter(&|rate| format!("{rate:.0}"))
            .draw()?;
        for (index, server) in servers.iter().enumerate() {
            let hue = colour(index);
            for (name, of, width) in PERCENTILES {
                let style = hue.stroke_width(width);
                let line: Vec<(f64, f64)> = server
                    .points
                    .iter()
                    .map(|p| (p.offered, of(p.latency)))
                    .collect();
                let dashed = if name == "p99.9" { " (dashed)" } else { "" };
                let label = format!("{} {name}{dashed}", server.name);
                if name == "p99.9" {
                    chart.draw_series(DashedLineSeries::new(line.clone(), 6, 4, style))?;
                } else {
                    chart.draw_series(LineSeries::new(line.clone(), style))?;
                }
                chart
                    .draw_series(server.points.iter().map(|p| {
                        let at = (p.offered, of(p.latency));
                        if p.kept_up {
                            Circle::new(at, 3, hue.filled()).into_dyn()
                        } else {
                            Cross::new(at, 6, hue.stroke_width(2)).into_dyn()
                        }
                    }))?
                    .label(label)
                    .legend(swatch(style));
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        area.draw(&Text::new(
            "× = the server could not keep up (under 99 % of the offered rate acknowledged)",
            (80, SIZE.1 as i32 - 14),
            (FONT, 13).into_font().color(&BLACK.mix(0.7)),
        ))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(p50: f64, p99: f64) -> Percentiles {
        Percentiles {
            count: 1000,
            p50,
            p90: p50,
            p99,
            p999: p99 * 2.0,
            max: p99 * 3.0,
            curve: Vec::new(),
        }
    }

    #[test]
    fn every_server_and_percentile_is_drawn_and_named() {
        let (a, b, c) = (at(1.0, 4.0), at(2.0, 9.0), at(30.0, 80.0));
        let servers = [
            Server {
                name: "ingress",
                points: vec![
                    RatePoint {
                        offered: 1000.0,
                        latency: &a,
                        kept_up: true,
                    },
                    RatePoint {
                        offered: 2000.0,
                        latency: &b,
                        kept_up: true,
                    },
                ],
            },
            Server {
                name: "Kafka Bridge",
                points: vec![
                    RatePoint {
                        offered: 1000.0,
                        latency: &b,
                        kept_up: true,
                    },
                    RatePoint {
                        offered: 2000.0,
                        latency: &c,
                        kept_up: false,
                    },
                ],
            },
        ];
        let svg = latency_against_rate("ingress and bridge", &servers).unwrap();
        for name in ["ingress", "Kafka Bridge"] {
            for percentile in ["p50", "p99", "p99.9"] {
                assert!(
                    svg.contains(&format!("{name} {percentile}")),
                    "{name} {percentile} missing"
                );
            }
        }
        // A dot per point and percentile, but the bridge's 2,000/s is a cross in each.
        assert_eq!(svg.matches("<circle").count(), 3 * 3, "{svg}");
    }
}
