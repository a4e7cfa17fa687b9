//! `loadtest chart`, the binary, on files shaped like the ones the scripts and
//! `bench-pipeline` write: each chart comes out as an SVG naming what it draws, and a file
//! it cannot read is an error that says where.

use std::path::Path;
use std::process::Command;

use serde_json::json;

fn chart(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .arg("chart")
        .args(args)
        .output()
        .expect("run loadtest chart")
}

fn succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "loadtest chart failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn svg(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("the chart was written");
    assert!(
        text.starts_with("<svg"),
        "not an SVG: {}",
        &text[..text.len().min(80)]
    );
    text
}

fn second(ok: u64, server_error: u64) -> serde_json::Value {
    json!({ "ok": ok, "acknowledged": ok, "client_error": 0, "server_error": server_error,
            "transport_error": 0, "shed": 0 })
}

#[test]
fn a_fault_timeline_from_a_run_and_its_lag_samples() {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("run.json");
    let lag = dir.path().join("lag.txt");
    let out = dir.path().join("charts/timeline.svg");
    let start = 1_764_830_000.0;
    std::fs::write(
        &result,
        json!({ "started_unix_secs": start, "timeline": [second(10, 0), second(0, 10), second(10, 0)] })
            .to_string(),
    )
    .unwrap();
    // A sample from before the load (the setup's) is left out; the rest line up with it.
    std::fs::write(
        &lag,
        format!(
            "{} total=3 | 1 2\n{} total=9 | 4 5\n{} total=0 | 0 0\n",
            start - 5.0,
            start + 1.5,
            start + 2.5
        ),
    )
    .unwrap();
    let from = (start + 1.0).to_string();
    let to = (start + 2.0).to_string();
    let output = chart(&[
        "timeline",
        "--result",
        result.to_str().unwrap(),
        "--lag",
        lag.to_str().unwrap(),
        "--fault-from",
        &from,
        "--fault-to",
        &to,
        "--fault-label",
        "kill -9 ingress",
        "--title",
        "ingress-kill",
        "--out",
        out.to_str().unwrap(),
    ]);
    succeeded(&output);
    let text = svg(&out);
    for expected in [
        "ingress-kill",
        "kill -9 ingress",
        "5xx",
        "consumer lag (right axis)",
    ] {
        assert!(text.contains(expected), "{expected} missing");
    }
}

#[test]
fn lag_per_partition_with_its_marks() {
    let dir = tempfile::tempdir().unwrap();
    let lag = dir.path().join("lag.txt");
    let out = dir.path().join("scale.svg");
    std::fs::write(
        &lag,
        "100.0 total=30 | 10 20\n102.0 total=10 | 0 10\n104.0 total=0 | 0 0\n",
    )
    .unwrap();
    let output = chart(&[
        "partition-lag",
        "--lag",
        lag.to_str().unwrap(),
        "--mark",
        "100.5=1 consumer",
        "--mark",
        "102.5=3 consumers",
        "--title",
        "scaling",
        "--out",
        out.to_str().unwrap(),
    ]);
    succeeded(&output);
    let text = svg(&out);
    for expected in ["1 consumer", "3 consumers", "partition 0", "partition 1"] {
        assert!(text.contains(expected), "{expected} missing");
    }
}

#[test]
fn the_peer_charts_from_a_bench_result() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench-pipeline.json");
    let at = |rate: f64, acked: f64, p99: f64| {
        json!({ "rate": rate, "connections": 128, "secs": 10.0, "scheduled": 1, "shed_by_generator": 0,
                "statuses": {}, "transport_errors": 0, "acknowledged_rate": acked,
                "latency_ms": { "count": 1000, "p50": p99 / 4.0, "p90": p99 / 2.0, "p99": p99,
                                "p999": p99 * 2.0, "max": p99 * 3.0,
                                "curve": [{ "nines": std::f64::consts::LOG10_2, "ms": p99 / 4.0 }, { "nines": 3.0, "ms": p99 * 2.0 }] } })
    };
    std::fs::write(
        &bench,
        json!({ "kafka_bridge": {
            "connections": 128,
            "ingress": { "at_rates": [at(1000.0, 1000.0, 5.0), at(2000.0, 2000.0, 6.0)] },
            "bridge": { "at_rates": [at(1000.0, 1000.0, 14.0), at(2000.0, 1500.0, 900.0)] },
        } })
        .to_string(),
    )
    .unwrap();
    let out_dir = dir.path().join("charts");
    let output = chart(&[
        "peer",
        "--bench",
        bench.to_str().unwrap(),
        "--out-dir",
        out_dir.to_str().unwrap(),
    ]);
    succeeded(&output);
    let by_rate = svg(&out_dir.join("bench-peer-latency-by-rate.svg"));
    assert!(by_rate.contains("Kafka Bridge p99") && by_rate.contains("ingress p99"));
    // The bridge kept up at 1,000/s only: the distributions are drawn there.
    let distribution = svg(&out_dir.join("bench-peer-latency-distribution.svg"));
    assert!(
        distribution.contains("at 1,000 requests/s"),
        "{distribution}"
    );
}

#[test]
fn an_unreadable_lag_file_is_an_error_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let lag = dir.path().join("lag.txt");
    std::fs::write(&lag, "100.0 total=1 | 1\nnot a sample\n").unwrap();
    let output = chart(&[
        "partition-lag",
        "--lag",
        lag.to_str().unwrap(),
        "--title",
        "t",
        "--out",
        dir.path().join("x.svg").to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 2") && stderr.contains("lag.txt"),
        "{stderr}"
    );
}
