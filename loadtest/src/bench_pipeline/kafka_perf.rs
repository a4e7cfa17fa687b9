//! Kafka's own producer benchmark (`kafka-producer-perf-test`, the Java client) as a second
//! raw baseline beside our rdkafka producer: what the broker takes from the client its
//! developers tune against, with the same durability (acks=all, idempotence) and linger.

use std::path::Path;

use anyhow::Context;

/// Sends `records` records of `record_size` bytes to `topic` as fast as the broker takes
/// them, through `kafka_sh tool kafka-producer-perf-test`; returns records per second.
pub(super) async fn producer_perf_test(
    kafka_sh: &Path,
    brokers: &str,
    topic: &str,
    records: usize,
    record_size: usize,
) -> anyhow::Result<f64> {
    let output = tokio::process::Command::new("bash")
        .arg(kafka_sh)
        .args(["tool", "kafka-producer-perf-test", "--topic", topic])
        .args(["--num-records", &records.to_string()])
        .args(["--record-size", &record_size.to_string()])
        .args(["--throughput", "-1", "--producer-props"])
        .arg(format!("bootstrap.servers={brokers}"))
        .args(["acks=all", "enable.idempotence=true", "linger.ms=5"])
        .output()
        .await
        .with_context(|| format!("running {}", kafka_sh.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "kafka-producer-perf-test failed: {}{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    records_per_sec(&stdout).with_context(|| format!("no summary line in: {stdout}"))
}

/// The rate of the summary line, e.g. "30000 records sent, 41493.8 records/sec (15.83
/// MB/sec), …" (the lines before it are progress reports of the same shape, without "sent").
fn records_per_sec(output: &str) -> Option<f64> {
    let summary = output.lines().rev().find(|l| l.contains("records sent"))?;
    let (_, after) = summary.split_once("records sent, ")?;
    after.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_gives_the_rate() {
        let output = "150001 records sent, 29994.2 records/sec (11.44 MB/sec), 95.1 ms avg latency, 420.0 ms max latency.\n\
                      300000 records sent, 41493.8 records/sec (15.83 MB/sec), 70.35 ms avg latency, 420.00 ms max latency, 61 ms 50th, 180 ms 95th, 245 ms 99th, 300 ms 99.9th.\n";
        assert_eq!(records_per_sec(output), Some(41493.8));
        assert_eq!(records_per_sec("nothing here"), None);
    }
}
