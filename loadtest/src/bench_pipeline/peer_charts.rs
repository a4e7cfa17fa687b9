//! Stage 3's charts: the servers' latency against offered rate, and their latency
//! distributions at the fastest rate every server kept up with.

use crate::charts::distribution::percentile_curves;
use crate::charts::rate::{latency_against_rate, RatePoint, Server};
use crate::fixed_rate::FixedRateResult;
use crate::ratios::thousands;

/// Each server's runs, at the same rates in the same order; returns (file name, SVG).
pub(crate) fn draw(
    servers: &[(&str, &[FixedRateResult])],
    connections: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let lines: Vec<Server<'_>> = servers
        .iter()
        .map(|(name, runs)| Server {
            name,
            points: runs
                .iter()
                .map(|run| RatePoint {
                    offered: run.rate,
                    latency: &run.latency_ms,
                    kept_up: run.kept_up(),
                })
                .collect(),
        })
        .collect();
    let by_rate = latency_against_rate(
        &format!("Request → acknowledgement at fixed rates, {connections} connections, same Kafka"),
        &lines,
    )?;
    let mut charts = vec![("bench-peer-latency-by-rate.svg".to_owned(), by_rate)];

    let rates = servers.first().map_or(0, |(_, runs)| runs.len());
    let all_kept_up = |index: usize| {
        servers
            .iter()
            .all(|(_, runs)| runs.get(index).is_some_and(FixedRateResult::kept_up))
    };
    if let Some(index) = (0..rates).rev().find(|index| all_kept_up(*index)) {
        let rate = servers[0].1[index].rate;
        let runs: Vec<(&str, &crate::latency::Percentiles)> = servers
            .iter()
            .map(|(name, runs)| (*name, &runs[index].latency_ms))
            .collect();
        let distribution = percentile_curves(
            &format!(
                "Latency distribution at {} requests/s (the fastest rate both kept up with)",
                thousands(rate)
            ),
            &runs,
        )?;
        charts.push((
            "bench-peer-latency-distribution.svg".to_owned(),
            distribution,
        ));
    }
    Ok(charts)
}
