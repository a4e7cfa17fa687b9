//! Latency summaries of a run: the percentiles printed in tables, and the whole percentile
//! curve, kept in the run's JSON so its distribution can be drawn again later.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Points per decade of the curve's "nines" axis (90 %, 99 %, 99.9 % …).
const POINTS_PER_DECADE: u32 = 10;
/// The curve stops at 99.999 %, or where the run's samples stop resolving quantiles.
const MAX_DECADES: f64 = 5.0;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    /// The percentile curve, for charts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve: Vec<CurvePoint>,
}

/// The latency at one quantile of a run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// The quantile as nines: `-log10(1 - q)`, so 1 is 90 %, 2 is 99 %, 3 is 99.9 %.
    pub nines: f64,
    pub ms: f64,
}

impl Percentiles {
    /// A histogram of microseconds, in milliseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: histogram.len(),
            p50: ms(histogram.value_at_quantile(0.5)),
            p90: ms(histogram.value_at_quantile(0.9)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            curve: curve(histogram),
        }
    }
}

/// The histogram's latency from the median to the deepest quantile its samples resolve:
/// with n samples, 1 - 1/n, i.e. log10(n) nines.
fn curve(histogram: &Histogram<u64>) -> Vec<CurvePoint> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let per_decade = f64::from(POINTS_PER_DECADE);
    let median = 2f64.log10();
    let deepest = (histogram.len() as f64).log10().min(MAX_DECADES);
    let first_step = (median * per_decade).ceil() as u32;
    let last_step = (deepest * per_decade).floor() as u32;
    std::iter::once(median)
        .chain((first_step..=last_step).map(|step| f64::from(step) / per_decade))
        .map(|nines| CurvePoint {
            nines,
            ms: histogram.value_at_quantile(1.0 - 10f64.powf(-nines)) as f64 / 1000.0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_rises_from_the_median_to_the_depth_the_samples_resolve() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for us in 1..=10_000u64 {
            histogram.record(us * 10).unwrap();
        }
        let summary = Percentiles::of(&histogram);
        let curve = &summary.curve;
        // 10,000 samples resolve four nines.
        assert!(
            (curve.last().unwrap().nines - 4.0).abs() < 1e-9,
            "{curve:?}"
        );
        assert!((curve[0].nines - 2f64.log10()).abs() < 1e-9, "{curve:?}");
        assert!((curve[0].ms - summary.p50).abs() < 0.1, "{curve:?}");
        assert!(curve
            .windows(2)
            .all(|w| w[0].nines < w[1].nines && w[0].ms <= w[1].ms));
        let at_two_nines = curve.iter().find(|p| (p.nines - 2.0).abs() < 1e-9).unwrap();
        assert!((at_two_nines.ms - summary.p99).abs() < 0.1);
    }

    #[test]
    fn an_empty_run_has_no_curve() {
        let histogram = Histogram::<u64>::new(3).unwrap();
        assert!(Percentiles::of(&histogram).curve.is_empty());
    }
}
