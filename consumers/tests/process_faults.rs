//! Fault tests with the real `consumer` binary: kill -9 and restart, a second process
//! joining the group, and a Redis outage. Events are produced straight to Kafka (the
//! running local broker; `infra/stack.sh up`), on topics of each test's own.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use consumers::store::embedded::EmbeddedStore;
use consumers::store::{PartitionStore, Store};
use partitioner::Decision;
use rdkafka::producer::FutureRecord;
use rdkafka::ClientConfig;
use support::process::{free_port, Setup, PARTITIONS};
use support::{brokers, create_booking, envelope, redis_url, TENANT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_restart_loses_nothing_and_applies_nothing_twice() {
    Setup::new(&redis_url())
        .await
        .kill_9_mid_stream_then_restart()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_takes_over_partitions_and_both_progress() {
    let mut setup = Setup::new(&redis_url()).await;
    setup.publish_load(0, 12, 200).await;
    let mut first = setup.spawn("first");
    setup.wait_projected(Duration::from_secs(60)).await;
    let mut second = setup.spawn("second");
    // The group rebalances: partitions move to the second process and its store files
    // are handed over by the first (file locks released on revoke).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        setup.publish_load(1, 12, 24).await;
        let (a, b) = (
            first.owned_partitions().await,
            second.owned_partitions().await,
        );
        if a > 0.0 && b > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "partitions never split: first {a}, second {b}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    setup.publish_load(1, 12, 200).await;
    setup.wait_projected(Duration::from_secs(60)).await;
    assert!(first.alive() && second.alive());
    first.stop();
    second.stop();
    setup.verify_store();
}

/// Fencing with two real processes: the first owner freezes while it holds its
/// partitions, the group gives them to a second process, and the second must not write
/// them until the first has let go (when it wakes and learns it lost them); then both
/// apply, and nothing is lost or applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_owner_keeps_its_successor_waiting_until_it_lets_go() {
    let mut setup = Setup::new(&redis_url()).await;
    setup.publish_load(0, 12, 200).await;
    let mut first = setup.spawn("first");
    setup.wait_projected(Duration::from_secs(60)).await;
    first.signal("STOP");
    setup.publish_load(1, 12, 200).await;
    let second = setup.spawn("second");

    // The group gives the frozen process's partitions to the second once its session
    // expires; the second must wait on every one of them, having applied nothing.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let owned = second.owned_partitions().await;
        let waiting = second.metric("consumer_partitions_awaiting_release").await;
        assert_eq!(
            second.metric("consumer_events_applied_total").await,
            0.0,
            "the second process wrote partitions the frozen one still held"
        );
        if owned == PARTITIONS as f64 && waiting == owned {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the group never moved the frozen process's partitions: second owns {owned}, waits on {waiting}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(second.metric("consumer_events_applied_total").await, 0.0);

    // Woken, the first process learns it lost its partitions and lets go of their state;
    // the second takes them over and the group settles with both.
    first.signal("CONT");
    setup.publish_load(2, 12, 200).await;
    setup.wait_projected(Duration::from_secs(90)).await;
    assert!(second.metric("consumer_events_applied_total").await > 0.0);
    // Decisions the frozen process could not deliver in time are not lost: sent again, or
    // published by the new owner from the store when it reads their events again.
    setup.wait_decided(Duration::from_secs(60)).await;
    let mut second = second;
    assert!(first.alive() && second.alive());
    first.stop();
    second.stop();
    setup.verify_store();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_loses_no_booking_and_projections_recover() {
    // A Redis of this test's own: stopping the shared one would break other tests.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let start_redis = |dir: &Path| {
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .spawn()
            .map(KillOnDrop)
            .expect("redis-server (infra/stack.sh up installs it)")
    };
    let mut redis = start_redis(dir.path());
    let redis_url = format!("redis://127.0.0.1:{port}/");
    let mut setup = Setup::new(&redis_url).await;
    setup.publish_load(0, 12, 100).await;
    let mut consumer = setup.spawn("outage");
    setup.wait_projected(Duration::from_secs(60)).await;

    // Redis dies and comes back empty; bookings keep flowing meanwhile.
    redis.0.kill().unwrap();
    redis.0.wait().unwrap();
    setup.publish_load(1, 12, 200).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        consumer.alive(),
        "the consumer must ride out a Redis outage"
    );
    let redis = start_redis(dir.path());
    setup.wait_projected(Duration::from_secs(60)).await;
    consumer.stop();
    setup.verify_store();

    let store_dir = setup.store_dir.path().to_str().unwrap();
    let config = consumers::Config::try_parse_from([
        "consumer",
        "--kafka-brokers",
        &brokers(),
        "--bookings-topic",
        &setup.bookings_topic(),
        "--store-dir",
        store_dir,
        "--redis-url",
        &redis_url,
    ])
    .unwrap();
    let store = EmbeddedStore::new(&config.store_dir).unwrap();
    let mismatches = consumers::maintenance::reconcile(&config, &store)
        .await
        .unwrap();
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    drop(redis);
}

/// A child process that is killed when the test ends, even by a failed assertion.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The store decides what is applied: if the group's committed offsets ever run ahead of
/// the store (committed by anything but the consumer loop), the consumer rewinds to its
/// checkpoint instead of skipping the events in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_offset_past_the_store_is_rewound_not_skipped() {
    let mut setup = Setup::new(&redis_url()).await;
    setup.publish_load(0, 12, 100).await;
    let mut consumer = setup.spawn("before");
    setup.wait_projected(Duration::from_secs(60)).await;
    consumer.stop();

    // Events the store has not seen, then a commit that claims they were consumed.
    setup.publish_load(1, 12, 100).await;
    setup.commit_group_offsets(|top| top + 1);
    setup.publish_load(2, 12, 100).await;
    let mut consumer = setup.spawn("after");
    setup.wait_projected(Duration::from_secs(60)).await;
    consumer.stop();
    setup.verify_store();
}

/// A store without a partition's state (an empty or wrong volume) behind a group that has
/// committed offsets: the consumer rewinds to the start of the log and applies everything,
/// rather than carry on mid-stream on empty state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_store_behind_committed_offsets_is_filled_from_the_log() {
    let mut setup = Setup::new(&redis_url()).await;
    setup.publish_load(0, 12, 100).await;
    let mut consumer = setup.spawn("first");
    setup.wait_projected(Duration::from_secs(60)).await;
    consumer.stop();

    // The volume is lost; the group's committed offsets are not.
    setup.store_dir = tempfile::tempdir().unwrap();
    setup.publish_load(1, 12, 100).await;
    let mut consumer = setup.spawn("empty-store");
    setup.wait_projected(Duration::from_secs(60)).await;
    consumer.stop();
    setup.verify_store();
}

/// Events deleted by retention before they were applied: the partition that lost events
/// is held (nothing applied past the gap, the gap reported) while the process goes on with
/// its other partitions, until an operator accepts the gap with `consumer accept-gap`,
/// after which it goes on from what the log still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_deleted_before_they_were_applied_hold_their_partition_until_accepted() {
    let mut setup = Setup::new(&redis_url()).await;
    setup.publish_load(0, 12, 100).await;
    let mut consumer = setup.spawn("first");
    setup.wait_projected(Duration::from_secs(60)).await;
    consumer.stop();
    let applied = setup.produced.clone();
    let kept_before = setup.creates.len();

    // Events of one property that no consumer applies before retention deletes them (with
    // everything applied before them, which leaves no gap elsewhere).
    let night = chrono::NaiveDate::from_ymd_opt(2030, 7, 1).unwrap();
    for _ in 0..5 {
        setup.publish("p0", create_booking(night, 1)).await;
    }
    let lost = setup.creates.len();
    let gap = setup.partition_of("p0");
    setup.delete_records(|top| top + 1).await;
    setup.publish_load(2, 12, 100).await;

    let mut consumer = setup.spawn("held");
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumer.metric("consumer_partitions_held").await < 1.0 {
        assert!(consumer.alive(), "the consumer exited instead of holding");
        assert!(Instant::now() < deadline, "partition {gap} not held");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut others = setup.produced.clone();
    others.remove(&gap);
    setup
        .wait_projected_of(&others, Duration::from_secs(60))
        .await;
    assert_eq!(consumer.metric("consumer_partitions_held").await, 1.0);
    consumer.stop();
    let log = std::fs::read_to_string(setup.log_path("held")).unwrap();
    assert!(log.contains("accept-gap"), "the fix is named: {log}");
    let store = EmbeddedStore::new(setup.store_dir.path()).unwrap();
    let checkpoint = store.open(gap).unwrap().checkpoint().unwrap();
    assert_eq!(
        checkpoint,
        applied.get(&gap).copied(),
        "partition {gap} moved past its gap"
    );

    consumer_command(&setup, &["accept-gap", "--partition", &gap.to_string()]);
    let mut consumer = setup.spawn("accepted");
    setup.wait_projected(Duration::from_secs(60)).await;
    consumer.stop();
    let stored: std::collections::HashSet<uuid::Uuid> = store
        .partitions()
        .unwrap()
        .into_iter()
        .flat_map(|p| store.open(p).unwrap().bookings().unwrap())
        .map(|b| b.booking_id)
        .collect();
    let expected: std::collections::HashSet<uuid::Uuid> = setup.creates[..kept_before]
        .iter()
        .chain(&setup.creates[lost..])
        .copied()
        .collect();
    assert_eq!(stored, expected, "everything but the deleted events, once");
}

/// A new partition map (here a hot-tenant override) moves a property to a partition that
/// does not have its state. Applied there, an allotment sent again would start from
/// nothing sold and sell the property's last room a second time; instead the partition
/// holds at the first event of the moved property, naming the fix, until an operator
/// accepts the new map with `consumer accept-placement`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_property_moved_by_a_new_partition_map_holds_its_partition_until_accepted() {
    let mut setup = Setup::new(&redis_url()).await;
    let old_map = setup.map.clone();
    let old = PARTITIONS.to_string();
    let night = chrono::NaiveDate::from_ymd_opt(2030, 7, 1).unwrap();
    let one_room = || partitioner::Event::SetAllotment {
        room_type: "DBL".into(),
        from: night,
        to: night + chrono::Days::new(1),
        units: 1,
    };
    setup.publish_placed(&old_map, &old, "p0", one_room()).await;
    setup
        .publish_placed(&old_map, &old, "p0", create_booking(night, 1))
        .await;
    let mut consumer = setup.spawn("before");
    setup.wait_decided(Duration::from_secs(60)).await;
    consumer.stop();
    let first = setup.creates[0];
    assert!(setup
        .decisions()
        .iter()
        .any(|d| d.booking_id == Some(first) && d.outcome == partitioner::Outcome::Confirmed));

    // The tenant pinned to one partition that is not p0's.
    let home = setup.partition_of("p0");
    let pinned = (home + 1) % PARTITIONS;
    let pin = format!("{TENANT}={pinned}..{}", pinned + 1);
    let new = format!("{PARTITIONS}:{pin}");
    let new_map = partitioner::PartitionMap::parse(PARTITIONS as u32, &pin).unwrap();
    assert_eq!(new_map.partition(TENANT, "p0") as i32, pinned);
    setup.publish_placed(&new_map, &new, "p0", one_room()).await;
    setup
        .publish_placed(&new_map, &new, "p0", create_booking(night, 1))
        .await;
    let second = setup.creates[1];

    let mut consumer = setup.spawn("held");
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumer.metric("consumer_partitions_held").await < 1.0 {
        let oversold = setup
            .decisions()
            .iter()
            .any(|d| d.booking_id == Some(second) && d.outcome == partitioner::Outcome::Confirmed);
        assert!(
            !oversold,
            "the last room was sold again on partition {pinned}"
        );
        assert!(consumer.alive(), "the consumer exited instead of holding");
        assert!(Instant::now() < deadline, "partition {pinned} not held");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    consumer.stop();
    let log = std::fs::read_to_string(setup.log_path("held")).unwrap();
    assert!(log.contains("accept-placement"), "the fix is named: {log}");
    let store = EmbeddedStore::new(setup.store_dir.path()).unwrap();
    assert_eq!(store.open(pinned).unwrap().checkpoint().unwrap(), None);

    // The operator has dealt with p0's state (here: written it off) and accepts the map.
    let accepted = consumer_command(&setup, &["accept-placement", "--placement", &new]);
    assert!(accepted.contains(&new), "{accepted}");
    let mut consumer = setup.spawn("accepted");
    setup.wait_decided(Duration::from_secs(60)).await;
    consumer.stop();
}

/// A well-formed event of a newer schema version (a newer ingress, mid rolling upgrade):
/// the consumer neither guesses at it nor applies what follows it on its partition. It
/// holds that partition there (nothing dead-lettered, the store's checkpoint just before
/// it) until a consumer that knows the version takes over, and keeps applying the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_of_a_newer_schema_version_holds_its_partition() {
    let mut setup = Setup::new(&redis_url()).await;
    setup.publish_load(0, 12, 60).await;
    let mut consumer = setup.spawn("held");
    setup.wait_projected(Duration::from_secs(60)).await;
    let held = setup.partition_of("p0");
    let before = setup.produced[&held];

    let mut future = envelope(
        "p0",
        create_booking(chrono::NaiveDate::from_ymd_opt(2030, 7, 1).unwrap(), 1),
    );
    future.schema_version = partitioner::SCHEMA_VERSION + 1;
    setup.publish_payload("p0", future.to_json()).await;
    setup.publish_load(1, 12, 60).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    while consumer.metric("consumer_partitions_held").await < 1.0 {
        assert!(consumer.alive(), "the consumer exited instead of holding");
        assert!(Instant::now() < deadline, "partition {held} not held");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut others = setup.produced.clone();
    others.remove(&held);
    setup
        .wait_projected_of(&others, Duration::from_secs(60))
        .await;
    assert_eq!(
        setup.projected(held).await,
        Some(before),
        "nothing behind the event applied"
    );
    consumer.stop();
    let log = std::fs::read_to_string(setup.log_path("held")).unwrap();
    assert!(
        log.contains("does not know; holding the partition"),
        "{log}"
    );
    let store = EmbeddedStore::new(setup.store_dir.path()).unwrap();
    assert_eq!(
        store.open(held).unwrap().checkpoint().unwrap(),
        Some(before)
    );
    assert!(!log.contains("dead-letter"), "nothing dead-lettered: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_of_redelivered_events_are_published_again_unchanged() {
    let mut setup = Setup::new(&redis_url()).await;
    setup.publish_load(0, 12, 100).await;
    let mut consumer = setup.spawn("first");
    setup.wait_projected(Duration::from_secs(60)).await;
    consumer.stop();
    let first = setup.decisions();
    let events = first.len();
    assert!(events > 100, "{events} decisions");

    // The group's offsets back at the start: as after a crash between the store commit
    // and the delivery of the decisions (and the Kafka commit).
    setup.commit_group_offsets(|_| 0);
    let mut consumer = setup.spawn("redelivered");
    let deadline = Instant::now() + Duration::from_secs(60);
    let all = loop {
        let all = setup.decisions();
        if all.len() >= 2 * events {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {events} decisions published again",
            all.len() - events
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    consumer.stop();
    assert_eq!(all.len(), 2 * events, "each event decided once more");
    let mut again: Vec<&Decision> = all[events..].iter().collect();
    let mut before: Vec<&Decision> = first.iter().collect();
    again.sort_by_key(|d| (d.partition, d.offset));
    before.sort_by_key(|d| (d.partition, d.offset));
    assert_eq!(again, before, "the same decisions, from the store");
    setup.verify_store();
}

/// Runs `consumer replay-dlq` on the setup's topics; returns its stdout.
fn replay_dlq(setup: &Setup, args: &[&str]) -> String {
    let mut all = vec!["replay-dlq"];
    all.extend_from_slice(args);
    consumer_command(setup, &all)
}

/// Runs a `consumer` subcommand on the setup's topics and store; returns its stdout.
fn consumer_command(setup: &Setup, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_consumer"))
        .args(args)
        .env("CONSUMER_STORE_DIR", setup.store_dir.path())
        .env("CONSUMER_KAFKA_BROKERS", brokers())
        .env("CONSUMER_GROUP_ID", format!("{}-group", setup.prefix))
        .env("CONSUMER_BOOKINGS_TOPIC", setup.bookings_topic())
        .env("CONSUMER_DLQ_TOPIC", format!("{}-dlq", setup.prefix))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "consumer {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_dead_letter_is_applied_once_however_often_it_is_replayed() {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    use rdkafka::message::{Header, Headers, OwnedHeaders};
    use rdkafka::Message;

    let mut setup = Setup::new(&redis_url()).await;
    setup.publish_load(0, 1, 0).await;
    // A create that an older consumer could not read, as it sits in the dead-letter topic.
    let night = chrono::NaiveDate::from_ymd_opt(2030, 7, 1).unwrap();
    let envelope = envelope("p0", create_booking(night, 2));
    let booking_id = envelope
        .event
        .booking_id()
        .expect("a create names its booking");
    let partition = setup.map.partition(TENANT, "p0") as i32;
    let dlq = format!("{}-dlq", setup.prefix);
    let source = setup.bookings_topic();
    let partition_text = partition.to_string();
    let headers = [
        ("dlq-reason", "unsupported schema version 2"),
        ("dlq-source-topic", source.as_str()),
        ("dlq-source-partition", partition_text.as_str()),
        ("dlq-source-offset", "7"),
        ("request-id", "req-replay"),
    ]
    .into_iter()
    .fold(OwnedHeaders::new(), |h, (key, value)| {
        h.insert(Header {
            key,
            value: Some(value),
        })
    });
    let payload = envelope.to_json();
    setup
        .producer
        .send(
            FutureRecord::to(&dlq)
                .partition(0)
                .key("acme/p0")
                .payload(&payload)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();

    let listed = replay_dlq(&setup, &["--dry-run"]);
    assert!(listed.contains("would  dlq 0/0"), "{listed}");
    assert!(listed.contains("selected 1, replayed 0"), "{listed}");
    let unmatched = replay_dlq(&setup, &["--reason-contains", "checksum"]);
    assert!(unmatched.contains("selected 0, replayed 0"), "{unmatched}");
    for _ in 0..2 {
        let replayed = replay_dlq(&setup, &["--reason-contains", "schema version"]);
        assert!(replayed.contains("selected 1, replayed 1"), "{replayed}");
    }

    // Both copies went back to the source partition, with the original headers and where
    // they came from.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("{}-reader", setup.prefix))
        .create()
        .unwrap();
    let (_, end) = reader
        .fetch_watermarks(&source, partition, Duration::from_secs(10))
        .unwrap();
    assert_eq!(end, 3, "the allotment and two replays");
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment
        .add_partition_offset(&source, partition, rdkafka::Offset::Offset(1))
        .unwrap();
    reader.assign(&assignment).unwrap();
    for _ in 0..2 {
        let message = reader
            .poll(Duration::from_secs(10))
            .expect("a replayed event")
            .unwrap();
        assert_eq!(message.payload(), Some(payload.as_slice()));
        let headers: BTreeMap<String, String> = message
            .headers()
            .unwrap()
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned();
                (h.key.to_owned(), value)
            })
            .collect();
        assert_eq!(
            headers.get("dlq-replayed-from").map(String::as_str),
            Some("0/0")
        );
        assert_eq!(
            headers.get("request-id").map(String::as_str),
            Some("req-replay")
        );
        assert!(!headers.contains_key("dlq-reason"), "{headers:?}");
    }

    // The consumer applies the first copy and drops the second as a replay.
    setup.creates.push(booking_id);
    setup.produced.insert(partition, end - 1);
    let mut consumer = setup.spawn("replay");
    setup.wait_projected(Duration::from_secs(60)).await;
    consumer.stop();
    setup.verify_store();
}
