//! A load run second by second: what the requests due in each second got (stacked bars
//! by answer), and the consumers' lag on the right-hand axis, with the fault's span shaded
//! so the outage and the recovery from it read off at a glance.

use plotters::prelude::*;

use super::{draw_legend, frame, render, swatch, upper_bound, FONT};
use crate::open_loop::Second;

/// A stretch of the run to shade, in seconds from its start.
pub struct Span {
    pub from: f64,
    pub to: f64,
    pub label: String,
}

/// A kind of answer: its name, its colour, how many a second had.
type Layer = (&'static str, RGBColor, fn(&Second) -> usize);

/// The answers stacked in each second's bar, bottom up, with their colours.
const STACK: [Layer; 6] = [
    ("acknowledged (new event)", RGBColor(44, 160, 44), |s| {
        s.acknowledged
    }),
    ("2xx replay", RGBColor(152, 223, 138), |s| {
        s.ok.saturating_sub(s.acknowledged)
    }),
    ("4xx", RGBColor(255, 187, 120), |s| s.client_error),
    ("5xx", RGBColor(214, 39, 40), |s| s.server_error),
    ("connection failed", RGBColor(148, 103, 189), |s| {
        s.transport_error
    }),
    ("shed by the generator", RGBColor(127, 127, 127), |s| s.shed),
];
const LAG: RGBColor = RGBColor(0, 0, 0);

/// `seconds` from the open loop; `lag` as (seconds from the run's start, events behind).
pub fn answers_and_lag(
    title: &str,
    seconds: &[Second],
    lag: &[(f64, i64)],
    spans: &[Span],
) -> anyhow::Result<String> {
    let total = |s: &Second| STACK.iter().map(|(_, _, of)| of(s)).sum::<usize>();
    let end = lag
        .iter()
        .map(|(at, _)| *at)
        .fold(seconds.len() as f64, f64::max)
        .ceil()
        .max(1.0);
    // Room above the tallest bar and the highest lag for the legend.
    let headroom = 1.35;
    let most = headroom * upper_bound(seconds.iter().map(total).max().unwrap_or(0) as f64);
    let most_lag = headroom * upper_bound(lag.iter().map(|(_, n)| *n).max().unwrap_or(0) as f64);
    render(|area| {
        let mut chart = frame(area, title)
            .right_y_label_area_size(72)
            .build_cartesian_2d(0.0..end, 0.0..most)?
            .set_secondary_coord(0.0..end, 0.0..most_lag);
        chart
            .configure_mesh()
            .x_desc("seconds into the run (requests by due time)")
            .y_desc("requests due per second, by answer")
            .x_label_formatter(&|s| format!("{s:.0}"))
            .y_label_formatter(&|n| format!("{n:.0}"))
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("consumer lag (events)")
            .y_label_formatter(&|n| format!("{n:.0}"))
            .draw()?;
        for span in spans {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(span.from, 0.0), (span.to.max(span.from + 0.2), most)],
                RGBColor(214, 39, 40).mix(0.12).filled(),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                span.label.clone(),
                (span.from, most * 0.97),
                (FONT, 14).into_font().color(&RGBColor(160, 20, 20)),
            )))?;
        }
        for (layer, (name, fill, of)) in STACK.iter().enumerate() {
            let bars = seconds.iter().enumerate().filter_map(|(second, s)| {
                let below: usize = STACK[..layer].iter().map(|(_, _, of)| of(s)).sum();
                let height = of(s);
                let x = second as f64;
                (height > 0).then(|| {
                    Rectangle::new(
                        [
                            (x + 0.08, below as f64),
                            (x + 0.92, (below + height) as f64),
                        ],
                        fill.filled(),
                    )
                })
            });
            chart
                .draw_series(bars)?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], fill.filled()));
        }
        // A gap in the samples (the broker could not answer) stays a gap, not a line
        // across it; each sample is also a dot, so a lone one between gaps shows.
        for stretch in stretches(lag) {
            let points = stretch.iter().map(|(at, n)| (*at, *n as f64));
            chart.draw_secondary_series(LineSeries::new(points, LAG.stroke_width(2)))?;
        }
        chart
            .draw_secondary_series(
                lag.iter()
                    .map(|(at, n)| Circle::new((*at, *n as f64), 2, LAG.filled())),
            )?
            .label("consumer lag (right axis)")
            .legend(swatch(LAG.stroke_width(2)));
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// Samples further apart than this leave a gap: the samplers ask every second, and an
/// answer can take a while.
const GAP_SECS: f64 = 2.5;

/// `lag` cut where consecutive samples are more than [`GAP_SECS`] apart.
fn stretches(lag: &[(f64, i64)]) -> Vec<&[(f64, i64)]> {
    let mut stretches = Vec::new();
    let mut start = 0;
    for i in 1..=lag.len() {
        if i == lag.len() || lag[i].0 - lag[i - 1].0 > GAP_SECS {
            stretches.push(&lag[start..i]);
            start = i;
        }
    }
    stretches.retain(|stretch| !stretch.is_empty());
    stretches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_samples_split_where_the_broker_did_not_answer() {
        let lag = [(1.0, 5), (2.0, 6), (8.0, 40), (9.1, 3)];
        assert_eq!(stretches(&lag), [&lag[..2], &lag[2..]]);
        assert!(stretches(&[]).is_empty());
    }

    #[test]
    fn the_fault_is_shaded_and_every_answer_kind_stacked() {
        let calm = Second {
            ok: 10,
            acknowledged: 9,
            client_error: 1,
            ..Second::default()
        };
        let outage = Second {
            server_error: 4,
            transport_error: 2,
            shed: 3,
            ..Second::default()
        };
        let seconds = [calm.clone(), outage, calm];
        let svg = answers_and_lag(
            "consumer-kill",
            &seconds,
            &[(0.5, 0), (1.5, 40), (2.5, 0)],
            &[Span {
                from: 1.0,
                to: 1.6,
                label: "kill -9 consumer".into(),
            }],
        )
        .unwrap();
        assert!(svg.contains("kill -9 consumer"));
        for (name, _, _) in STACK {
            assert!(svg.contains(name), "{name} missing from the legend");
        }
        // Bars: second 0 and 2 have three kinds each, second 1 three; the shaded span and
        // the legend's six swatches are rectangles too, and so is the background.
        let rects = svg.matches("<rect").count();
        assert!(rects >= 3 + 3 + 3 + 1 + 6, "{rects} rectangles");
    }
}
