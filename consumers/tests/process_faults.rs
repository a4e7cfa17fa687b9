//! Fault tests with the real `consumer` binary: kill -9 and restart, a second process
//! joining the group, and a Redis outage. Events are produced straight to Kafka (the
//! running local broker; `infra/stack.sh up`), on topics of each test's own.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use consumers::apply::BookingStatus;
use consumers::store::embedded::EmbeddedStore;
use consumers::store::{PartitionStore, Store};
use partitioner::{Decision, Event, PartitionMap};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use redis::AsyncCommands;
use support::{brokers, create_booking, envelope, redis_url, TENANT};
use uuid::Uuid;

const PARTITIONS: i32 = 6;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One test's topics, store directory and Redis.
struct Setup {
    prefix: String,
    store_dir: tempfile::TempDir,
    redis_url: String,
    map: PartitionMap,
    producer: FutureProducer,
    /// Highest offset produced per partition.
    produced: BTreeMap<i32, i64>,
    /// Booking id of every create produced.
    creates: Vec<Uuid>,
}

impl Setup {
    async fn new(redis_url: &str) -> Setup {
        let prefix = format!("faults-{}", Uuid::new_v4().simple());
        consumers::topics::ensure_topics(
            &brokers(),
            &[
                (&format!("{prefix}-bookings"), PARTITIONS),
                (&format!("{prefix}-decisions"), 1),
                (&format!("{prefix}-dlq"), 1),
            ],
            1,
        )
        .await
        .unwrap_or_else(|e| panic!("kafka unreachable ({e}); start it with `infra/stack.sh up`"));
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create()
            .unwrap();
        Setup {
            prefix,
            store_dir: tempfile::tempdir().unwrap(),
            redis_url: redis_url.to_owned(),
            map: PartitionMap::parse(PARTITIONS as u32, "").unwrap(),
            producer,
            produced: BTreeMap::new(),
            creates: Vec::new(),
        }
    }

    fn bookings_topic(&self) -> String {
        format!("{}-bookings", self.prefix)
    }

    /// Commits, for the consumers' group, `next(top)` on every partition produced to (`top`
    /// is its highest offset): what a consumer would find after a crash or a foreign commit.
    fn commit_group_offsets(&self, next: impl Fn(i64) -> i64) {
        use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
        let foreign: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", format!("{}-group", self.prefix))
            .create()
            .unwrap();
        let mut offsets = rdkafka::TopicPartitionList::new();
        for (partition, top) in &self.produced {
            offsets
                .add_partition_offset(
                    &self.bookings_topic(),
                    *partition,
                    rdkafka::Offset::Offset(next(*top)),
                )
                .unwrap();
        }
        foreign.commit(&offsets, CommitMode::Sync).unwrap();
    }

    /// Waits until every create produced has a decision on the decisions topic.
    async fn wait_decided(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let decided: std::collections::HashSet<Uuid> = self
                .decisions()
                .iter()
                .filter_map(|d| d.booking_id)
                .collect();
            let missing = self
                .creates
                .iter()
                .filter(|id| !decided.contains(id))
                .count();
            if missing == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{missing} of {} creates have no decision",
                self.creates.len()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Every decision published so far, in order.
    fn decisions(&self) -> Vec<Decision> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::Message;
        let topic = format!("{}-decisions", self.prefix);
        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", format!("{}-decisions-reader", self.prefix))
            .create()
            .unwrap();
        let (_, end) = reader
            .fetch_watermarks(&topic, 0, Duration::from_secs(10))
            .unwrap();
        let mut assignment = rdkafka::TopicPartitionList::new();
        assignment
            .add_partition_offset(&topic, 0, rdkafka::Offset::Beginning)
            .unwrap();
        reader.assign(&assignment).unwrap();
        let mut decisions = Vec::new();
        while (decisions.len() as i64) < end {
            let message = reader
                .poll(Duration::from_secs(10))
                .expect("every decision up to the end is readable")
                .unwrap();
            decisions.push(serde_json::from_slice(message.payload().unwrap()).unwrap());
        }
        decisions
    }

    async fn publish(&mut self, property: &str, event: Event) {
        let envelope = envelope(property, event);
        if let Event::CreateBooking { booking_id, .. } = &envelope.event {
            self.creates.push(*booking_id);
        }
        let partition = self.map.partition(TENANT, property) as i32;
        let payload = envelope.to_json();
        let key = format!("{TENANT}/{property}");
        let topic = self.bookings_topic();
        let record = FutureRecord::to(&topic)
            .partition(partition)
            .key(&key)
            .payload(&payload);
        let (partition, offset) = self
            .producer
            .send(record, Duration::from_secs(10))
            .await
            .map(|d| (d.partition, d.offset))
            .map_err(|(e, _)| e)
            .unwrap();
        let top = self.produced.entry(partition).or_insert(-1);
        *top = (*top).max(offset);
    }

    /// Allotments for `properties`, then `creates` bookings spread over them.
    async fn publish_load(&mut self, round: usize, properties: usize, creates: usize) {
        let night = chrono::NaiveDate::from_ymd_opt(2030, 7, 1).unwrap();
        if round == 0 {
            for p in 0..properties {
                let event = Event::SetAllotment {
                    room_type: "DBL".into(),
                    from: night,
                    to: night + chrono::Days::new(5),
                    units: 40,
                };
                self.publish(&format!("p{p}"), event).await;
            }
        }
        for i in 0..creates {
            let check_in = night + chrono::Days::new((i % 3) as u64);
            let event = create_booking(check_in, 2);
            self.publish(&format!("p{}", i % properties), event).await;
        }
    }

    fn spawn(&self, name: &str) -> Consumer {
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log =
            std::fs::File::create(self.store_dir.path().with_extension(format!("{name}.log")))
                .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_consumer"))
            .env("CONSUMER_KAFKA_BROKERS", brokers())
            .env("CONSUMER_GROUP_ID", format!("{}-group", self.prefix))
            .env("CONSUMER_BOOKINGS_TOPIC", self.bookings_topic())
            .env(
                "CONSUMER_DECISIONS_TOPIC",
                format!("{}-decisions", self.prefix),
            )
            .env("CONSUMER_DLQ_TOPIC", format!("{}-dlq", self.prefix))
            .env("CONSUMER_STORE_DIR", self.store_dir.path())
            .env("CONSUMER_REDIS_URL", &self.redis_url)
            .env("CONSUMER_ADMIN_ADDR", admin.to_string())
            .env("CONSUMER_MAX_BATCH", "100")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Consumer { child, admin }
    }

    /// Waits until every partition's projections reflect everything produced.
    async fn wait_projected(&self, within: Duration) {
        let client = redis::Client::open(self.redis_url.as_str()).unwrap();
        let deadline = Instant::now() + within;
        loop {
            // Reconnect each round: the Redis under test may be (re)starting.
            let mut redis = client.get_multiplexed_async_connection().await.ok();
            let mut behind = Vec::new();
            for (partition, top) in &self.produced {
                let key =
                    partitioner::keys::projection_checkpoint(&self.bookings_topic(), *partition);
                let through: Option<i64> = match redis.as_mut() {
                    Some(redis) => redis.get(key).await.unwrap_or(None),
                    None => None,
                };
                if through.is_none_or(|t| t < *top) {
                    behind.push((*partition, through, *top));
                }
            }
            if behind.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "partitions behind (partition, projected, produced): {behind:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// With every consumer stopped: each create is in the store exactly once, applied once,
    /// and no night is oversold.
    fn verify_store(&self) {
        let store = EmbeddedStore::new(self.store_dir.path()).unwrap();
        let mut found: BTreeMap<Uuid, usize> = BTreeMap::new();
        for partition in store.partitions().unwrap() {
            let state = store.open(partition).unwrap();
            assert_eq!(
                state.checkpoint().unwrap(),
                self.produced.get(&partition).copied()
            );
            for booking in state.bookings().unwrap() {
                assert_eq!(
                    booking.history.len(),
                    1,
                    "applied more than once: {booking:?}"
                );
                *found.entry(booking.booking_id).or_default() += 1;
            }
            let mut sold: BTreeMap<_, u32> = BTreeMap::new();
            for booking in state.bookings().unwrap() {
                if booking.status == BookingStatus::Confirmed {
                    for night in booking.stay.nights() {
                        *sold
                            .entry((booking.property_id.clone(), night))
                            .or_default() += 1;
                    }
                }
            }
            for (id, night) in state.nights().unwrap() {
                assert!(night.sold <= night.allotment, "oversold {id:?}");
                assert_eq!(
                    night.sold,
                    sold.get(&(id.property_id.clone(), id.night))
                        .copied()
                        .unwrap_or(0)
                );
            }
        }
        for id in &self.creates {
            assert_eq!(found.get(id), Some(&1), "booking {id} lost or duplicated");
        }
        assert_eq!(found.len(), self.creates.len());
    }
}

struct Consumer {
    child: Child,
    admin: SocketAddr,
}

impl Consumer {
    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit.
    fn stop(&mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "consumer exited with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "consumer did not stop within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    async fn owned_partitions(&self) -> f64 {
        self.metric("consumer_owned_partitions").await
    }

    /// The sum of every series of metric `name` on the admin port (0 if absent, or if the
    /// process does not answer).
    async fn metric(&self, name: &str) -> f64 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut stream) = tokio::net::TcpStream::connect(self.admin).await else {
            return 0.0;
        };
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text).await;
        text.lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(name)?;
                let value = match rest.strip_prefix('{') {
                    Some(labelled) => labelled.split_once("} ")?.1,
                    None => rest.strip_prefix(' ')?,
                };
                value.trim().parse::<f64>().ok()
            })
            .sum()
    }

    /// Pauses (SIGSTOP) or resumes (SIGCONT) the process: a consumer that stops
    /// responding while it holds partitions, as in a frozen VM or a process stuck on I/O.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_restart_loses_nothing_and_applies_nothing_twice() {
    let mut setup = Setup::new(&redis_url()).await;
    setup.publish_load(0, 12, 300).await;
    let mut first = setup.spawn("first");
    // Let it get some way in, then kill it without warning, mid-stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    setup.publish_load(1, 12, 300).await;
    first.kill9();
    setup.publish_load(2, 12, 300).await;
    let mut second = setup.spawn("restarted");
    setup.wait_projected(Duration::from_secs(60)).await;
    second.stop();
    setup.verify_store();
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

    let config = consumers::Config {
        kafka_brokers: brokers(),
        group_id: String::new(),
        bookings_topic: setup.bookings_topic(),
        decisions_topic: String::new(),
        dlq_topic: String::new(),
        store: consumers::config::StoreKind::Embedded,
        scylla_uri: String::new(),
        scylla_keyspace: String::new(),
        store_dir: setup.store_dir.path().to_owned(),
        redis_url: redis_url.clone(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        max_batch: 1,
        poison_tries: 3,
        decisions_linger_ms: 10,
        stall_after_secs: 120,
        session_timeout_ms: 10_000,
        fetch_wait_max_ms: 50,
        stats_interval_ms: 1000,
        log_filter: String::new(),
    };
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
    let output = Command::new(env!("CARGO_BIN_EXE_consumer"))
        .arg("replay-dlq")
        .args(args)
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
        "replay-dlq {args:?} failed: {stdout}{}",
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
