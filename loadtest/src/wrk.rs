//! The external peer generator: wrk (Debian's `wrk` package) with `loadtest/wrk/booking.lua`
//! against the ingress or `loadtest/wrk/kafka-bridge.lua` against an HTTP-to-Kafka bridge,
//! so our own generator's saturation numbers can be checked against a well-known one.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::endpoint::Endpoint;
use crate::progress::Progress;

/// The scripts, embedded so the binary needs no checkout to find them.
const INGRESS_SCRIPT: &str = include_str!("../wrk/booking.lua");
const BRIDGE_SCRIPT: &str = include_str!("../wrk/kafka-bridge.lua");

#[derive(Clone, Debug, Default, Serialize)]
pub struct WrkResult {
    pub requests: u64,
    pub non_2xx: u64,
    pub socket_errors: u64,
    /// 2xx answers per second (wrk's Requests/sec less its non-2xx answers).
    pub ok_rate: f64,
    pub p99_ms: f64,
}

/// Runs wrk against `url` for `duration` with `connections` over two threads (one per
/// core, like our generator's runtime), sending `endpoint`'s creates; `run_id` keeps the
/// ingress's Idempotency-Keys apart from other runs'. Err carries why wrk could not be
/// used.
pub async fn run(
    url: &str,
    connections: usize,
    duration: Duration,
    endpoint: &Endpoint,
    run_id: &str,
) -> Result<WrkResult, String> {
    let file = |suffix: &str, text: &str| {
        let mut file = tempfile::Builder::new().suffix(suffix).tempfile()?;
        file.write_all(text.as_bytes())?;
        Ok::<_, std::io::Error>(file)
    };
    let unwritable = |e: std::io::Error| format!("cannot write the wrk script: {e}");
    // Kept alive until wrk is done: dropping one deletes its file.
    let mut files = Vec::new();
    let args = match endpoint {
        Endpoint::Ingress { partner_key, .. } => {
            files.push(file(".lua", INGRESS_SCRIPT).map_err(unwritable)?);
            vec![run_id.to_owned(), partner_key.clone()]
        }
        Endpoint::KafkaBridge { path, bodies } => {
            files.push(file(".lua", BRIDGE_SCRIPT).map_err(unwritable)?);
            let lines: Vec<&str> = bodies
                .iter()
                .map(|body| std::str::from_utf8(body).expect("bodies are JSON text"))
                .collect();
            let bodies = file(".txt", &(lines.join("\n") + "\n")).map_err(unwritable)?;
            let args = vec![path.clone(), bodies.path().display().to_string()];
            files.push(bodies);
            args
        }
    };
    let command = tokio::process::Command::new("wrk")
        .arg("-t2")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--latency")
        .arg("-s")
        .arg(files[0].path())
        .arg(url)
        .arg("--")
        .args(&args)
        .kill_on_drop(true)
        .output();
    let progress = Progress::timed(format!("wrk, {connections} connections"), duration);
    // Bounded even if wrk hangs: dropping the future kills it.
    let output = tokio::time::timeout(duration + Duration::from_secs(30), command)
        .await
        .map_err(|_| "wrk did not finish in time".to_owned())?
        .map_err(|e| format!("cannot run wrk ({e}); install it with `apt-get install wrk`"))?;
    drop(progress);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    parse(&stdout, duration).ok_or_else(|| format!("cannot read wrk's output: {stdout}"))
}

fn parse(out: &str, duration: Duration) -> Option<WrkResult> {
    let mut result = WrkResult::default();
    let mut elapsed = duration.as_secs_f64();
    for line in out.lines().map(str::trim) {
        if let Some(rest) = line.strip_suffix(" read") {
            // "123456 requests in 10.00s, 12.34MB read"
            let mut words = rest.split_whitespace();
            result.requests = words.next()?.parse().ok()?;
            elapsed = words
                .nth(2)?
                .trim_end_matches(',')
                .trim_end_matches('s')
                .parse()
                .ok()?;
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            result.non_2xx = rest.trim().parse().ok()?;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "Socket errors: connect 0, read 0, write 0, timeout 0"
            result.socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if let Some(rest) = line.strip_prefix("99%") {
            result.p99_ms = millis(rest.trim())?;
        }
    }
    (result.requests > 0).then_some(())?;
    result.ok_rate = (result.requests - result.non_2xx) as f64 / elapsed.max(1e-3);
    Some(result)
}

/// wrk's "812.00us", "1.23ms", "2.00s" as milliseconds.
fn millis(value: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (value, 1.0)
    };
    Some(number.parse::<f64>().ok()? * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let out = "Running 10s test @ http://127.0.0.1:8080/v1/bookings
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  500.00us  20.00ms   90.00%
    Req/Sec    14.00k     1.00k   16.00k    70.00%
  Latency Distribution
     50%    1.00ms
     75%    1.20ms
     90%    1.50ms
     99%  812.00us
  280000 requests in 10.00s, 40.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 1000
Requests/sec:  28000.00
Transfer/sec:      4.00MB
";
        let result = parse(out, Duration::from_secs(10)).unwrap();
        assert_eq!(result.requests, 280_000);
        assert_eq!(result.non_2xx, 1000);
        assert_eq!(result.socket_errors, 3);
        assert!((result.ok_rate - 27_900.0).abs() < 1e-6);
        assert!((result.p99_ms - 0.812).abs() < 1e-9);
    }
}
