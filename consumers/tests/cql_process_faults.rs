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
/// is refused by the epoch check, and it lets that partition go without stopping.
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
    // it releases that partition and goes on; either way it stops cleanly when told to.
    assert!(first.alive(), "the fenced process must keep running");
    let status = first.terminate();
    let log = std::fs::read_to_string(setup.log_path("first")).unwrap_or_default();
    assert!(
        status.success(),
        "the first process exited with {status}; log:\n{log}"
    );
    second.stop();
    setup.verify_store();
}

/// Another process takes one partition's state over (a newer epoch) while the consumer
/// still believes it owns it: its next write there is refused. That partition is lost to
/// it, not the process: it releases the partition, commits nothing more of it, keeps
/// applying its other partitions, and takes the partition up again only when the group
/// next assigns it (a second process joining, here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_partition_is_released_and_the_process_goes_on() {
    use consumers::store::Store;
    let Some(uri) = cql_uri("fenced partition") else {
        return;
    };
    let mut setup = Setup::with_cql(&redis_url(), &uri).await;
    setup.publish_load(0, 12, 120).await;
    let mut first = setup.spawn("first");
    setup.wait_projected(Duration::from_secs(90)).await;

    // Take partition 0 over, as a successor would; keep the handle until the end.
    let (_, store) = setup.cql.as_ref().unwrap();
    let store = store.clone();
    let fenced = tokio::task::spawn_blocking(move || store.open(0).unwrap())
        .await
        .unwrap();
    let before = setup.produced.clone();
    setup.publish_load(1, 12, 120).await;

    // Every other partition reaches its new top; the first process stays up.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            first.alive(),
            "the process stopped because one partition was fenced"
        );
        let log = std::fs::read_to_string(setup.log_path("first")).unwrap_or_default();
        if log.contains("released partition") && log.contains("newer owner") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "partition 0 never released; log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut others = setup.produced.clone();
    others.remove(&0);
    setup
        .wait_projected_of(&others, Duration::from_secs(60))
        .await;
    assert!(first.alive());
    assert_ne!(
        before.get(&0),
        setup.produced.get(&0),
        "partition 0 had new events"
    );
    assert_eq!(
        setup.projected(0).await,
        before.get(&0).copied(),
        "nothing of partition 0 applied after the fence"
    );
    drop(fenced);

    // The next rebalance hands partition 0 out again, and it is applied.
    let mut second = setup.spawn("second");
    setup.wait_projected(Duration::from_secs(90)).await;
    assert!(first.alive() && second.alive());
    assert!(first.terminate().success(), "the first stops cleanly");
    second.stop();
    setup.verify_store();
}
