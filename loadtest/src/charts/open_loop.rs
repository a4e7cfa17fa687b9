//! `loadtest open-loop`'s own charts, beside its JSON.

use std::path::Path;

use crate::open_loop::OpenLoopResult;

/// The run's latency distribution and its timeline, as SVG beside its JSON at `json`;
/// returns their paths.
pub fn draw(result: &OpenLoopResult, json: &Path) -> anyhow::Result<Vec<String>> {
    let title = format!(
        "open loop, {:.0} requests/s for {:.0} s",
        result.rate, result.duration_secs
    );
    let latency = super::distribution::percentile_curves(
        &format!("Latency from due time: {title}"),
        &[
            ("2xx answers", &result.accepted_latency_ms),
            ("all answers", &result.all_latency_ms),
        ],
    )?;
    let timeline = super::timeline::answers_and_lag(
        &format!("Answers per second: {title}"),
        &result.timeline,
        &[],
        &[],
    )?;
    let mut written = Vec::new();
    for (suffix, svg) in [("latency", latency), ("timeline", timeline)] {
        let path = super::beside(json, suffix);
        super::write(&path, &svg)?;
        written.push(path.display().to_string());
    }
    Ok(written)
}
