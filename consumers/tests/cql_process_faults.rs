//! The consumer process faults of `process_faults.rs` on the CQL store: kill -9 and
//! restart, and a frozen owner whose partitions move to a second process. The CQL backend
//! fences by epoch instead of waiting on a lock: the new owner takes a partition over at
//! once, and the old one's late writes are refused. Either way nothing acknowledged is lost
//! or applied twice, and no night is oversold.
//!
//! Needs `SCYLLA_URI` (`infra/test.sh` starts Apache Cassandra and sets it); without it each
//! test prints why it skipped. Each test installs a keyspace of its own and drops it.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::process::{Setup, PARTITIONS};
use support::redis_url;

fn cql_uri(test: &str) -> Option<String> {
    let uri = std::env::var("SCYLLA_URI").ok();
    if uri.is_none() {
        // Straight to stderr: the harness hides a passing test's captured output.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {test} on the CQL store — set SCYLLA_URI=host:9042 to run"
        );
    }
    uri
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_restart_loses_nothing_on_the_cql_store() {
    let Some(uri) = cql_uri("kill -9 and restart") else {
        return;
    };
    Setup::with_cql(&redis_url(), &uri)
        .await
        .kill_9_mid_stream_then_restart()
        .await;
}

/// The first owner freezes while it holds every partition; once its session expires the
/// group gives them to a second process, which fences it (a newer epoch per partition) and
/// applies at once. Woken, the first learns it lost them; whatever it still tries to write
/// is refused by the epoch check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_owner_is_fenced_by_its_successor_on_the_cql_store() {
    let Some(uri) = cql_uri("frozen owner") else {
        return;
    };
    let mut setup = Setup::with_cql(&redis_url(), &uri).await;
    setup.publish_load(0, 12, 200).await;
    let mut first = setup.spawn("first");
    setup.wait_projected(Duration::from_secs(90)).await;
    first.signal("STOP");
    setup.publish_load(1, 12, 200).await;
    let second = setup.spawn("second");

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let owned = second.owned_partitions().await;
        let applied = second.metric("consumer_events_applied_total").await;
        if owned == PARTITIONS as f64 && applied > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second process never took the frozen one's partitions over: owns {owned}, applied {applied}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    setup.wait_projected(Duration::from_secs(90)).await;

    first.signal("CONT");
    setup.publish_load(2, 12, 200).await;
    setup.wait_projected(Duration::from_secs(90)).await;
    setup.wait_decided(Duration::from_secs(60)).await;
    let mut second = second;
    assert!(second.alive(), "the successor must keep running");
    // A batch the first still held when it froze is refused at its commit (a newer epoch):
    // the first then stops with an error, for its orchestrator to restart it. Without one
    // in hand it lets go and stops cleanly. Any other failure is a failure.
    let status = first.terminate();
    if !status.success() {
        let log = std::fs::read_to_string(setup.log_path("first")).unwrap_or_default();
        assert!(
            log.contains("another owner has a newer epoch"),
            "the first process exited with {status} without being fenced; log:\n{log}"
        );
    }
    second.stop();
    setup.verify_store();
}
