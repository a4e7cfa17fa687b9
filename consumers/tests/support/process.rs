//! The consumer process harness the fault tests share: one test's topics, store and Redis
//! ([`Setup`]), and the real `consumer` binary run against them ([`Consumer`]). Events are
//! produced straight to Kafka (the running local broker; `infra/stack.sh up`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use consumers::apply::BookingStatus;
use consumers::store::embedded::EmbeddedStore;
use consumers::store::scylla::ScyllaStore;
use consumers::store::{PartitionStore, Store};
use partitioner::{Decision, Event, PartitionMap};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use redis::AsyncCommands;
use uuid::Uuid;

use super::{brokers, create_booking, envelope, TENANT};

/// Partitions of each test's bookings topic.
pub const PARTITIONS: i32 = 6;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One test's topics, store (a directory of the embedded store, or a keyspace of the CQL
/// store of its own) and Redis.
pub struct Setup {
    pub prefix: String,
    /// The embedded store's directory; the consumers' logs go beside it in either case.
    pub store_dir: tempfile::TempDir,
    /// The CQL store's keyspace, installed for this test and dropped at its end, when the
    /// consumers keep their state there.
    pub cql: Option<(String, ScyllaStore)>,
    pub redis_url: String,
    pub map: PartitionMap,
    pub producer: FutureProducer,
    /// Highest offset produced per partition.
    pub produced: BTreeMap<i32, i64>,
    /// Booking id of every create produced.
    pub creates: Vec<Uuid>,
}

impl Setup {
    /// Consumers on the embedded store.
    pub async fn new(redis_url: &str) -> Setup {
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
            cql: None,
        }
    }

    /// Consumers on the CQL store at `uri` (`SCYLLA_URI`), in a keyspace of this test's own.
    pub async fn with_cql(redis_url: &str, uri: &str) -> Setup {
        let mut setup = Setup::new(redis_url).await;
        let (uri, keyspace) = (uri.to_owned(), setup.prefix.replace('-', "_"));
        let store = tokio::task::spawn_blocking(move || {
            let store = ScyllaStore::install(&uri, &keyspace, 1)
                .unwrap_or_else(|e| panic!("installing {keyspace} on {uri}: {e}"));
            (uri, store)
        })
        .await
        .unwrap();
        setup.cql = Some(store);
        setup
    }

    pub fn bookings_topic(&self) -> String {
        format!("{}-bookings", self.prefix)
    }

    /// `next(top)` on every partition produced to, where `top` is its highest offset.
    fn offsets(&self, next: impl Fn(i64) -> i64) -> rdkafka::TopicPartitionList {
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
        offsets
    }

    /// Commits, for the consumers' group, `next(top)` on every partition produced to (`top`
    /// is its highest offset): what a consumer would find after a crash or a foreign commit.
    pub fn commit_group_offsets(&self, next: impl Fn(i64) -> i64) {
        use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
        let foreign: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", format!("{}-group", self.prefix))
            .create()
            .unwrap();
        foreign
            .commit(&self.offsets(next), CommitMode::Sync)
            .unwrap();
    }

    /// Deletes, on every partition produced to, the records before `next(top)` (`top` is
    /// its highest offset), as retention would: Kafka's log start moves there.
    pub async fn delete_records(&self, next: impl Fn(i64) -> i64) {
        use rdkafka::admin::{AdminClient, AdminOptions};
        use rdkafka::client::DefaultClientContext;
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .create()
            .unwrap();
        let deleted = admin
            .delete_records(&self.offsets(next), &AdminOptions::new())
            .await
            .unwrap();
        for element in deleted.elements() {
            assert!(element.error().is_ok(), "{element:?}");
        }
    }

    /// Waits until every create produced has a decision on the decisions topic.
    pub async fn wait_decided(&self, within: Duration) {
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
    pub fn decisions(&self) -> Vec<Decision> {
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

    pub async fn publish(&mut self, property: &str, event: Event) {
        let envelope = envelope(property, event);
        if let Event::CreateBooking { booking_id, .. } = &envelope.event {
            self.creates.push(*booking_id);
        }
        self.publish_payload(property, envelope.to_json()).await;
    }

    /// The partition `property`'s events go to.
    pub fn partition_of(&self, property: &str) -> i32 {
        self.map.partition(TENANT, property) as i32
    }

    /// The projection checkpoint of `partition` in Redis.
    pub async fn projected(&self, partition: i32) -> Option<i64> {
        let mut redis = super::connect_redis(&self.redis_url).await.unwrap();
        let key = partitioner::keys::projection_checkpoint(&self.bookings_topic(), partition);
        redis.get(key).await.unwrap()
    }

    /// `event` for `property` as an ingress placing events by `map` would publish it:
    /// stamped with the map's placement `placement`, on the partition `map` gives it.
    pub async fn publish_placed(
        &mut self,
        map: &PartitionMap,
        placement: &str,
        property: &str,
        event: Event,
    ) {
        let envelope = envelope(property, event);
        if let Event::CreateBooking { booking_id, .. } = &envelope.event {
            self.creates.push(*booking_id);
        }
        let mut stamped: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        stamped["placement"] = placement.into();
        let partition = map.partition(TENANT, property) as i32;
        let payload = serde_json::to_vec(&stamped).unwrap();
        self.publish_to(partition, property, payload).await;
    }

    /// `payload` as it is, on `property`'s partition.
    pub async fn publish_payload(&mut self, property: &str, payload: Vec<u8>) {
        self.publish_to(self.partition_of(property), property, payload)
            .await;
    }

    /// `payload` as it is, on `partition`, keyed as `property`'s events are.
    async fn publish_to(&mut self, partition: i32, property: &str, payload: Vec<u8>) {
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
    pub async fn publish_load(&mut self, round: usize, properties: usize, creates: usize) {
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

    /// Where the consumer spawned as `name` logs.
    pub fn log_path(&self, name: &str) -> std::path::PathBuf {
        self.store_dir.path().with_extension(format!("{name}.log"))
    }

    pub fn spawn(&self, name: &str) -> Consumer {
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(self.log_path(name)).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_consumer"))
            .env("CONSUMER_KAFKA_BROKERS", brokers())
            .env("CONSUMER_GROUP_ID", format!("{}-group", self.prefix))
            .env("CONSUMER_BOOKINGS_TOPIC", self.bookings_topic())
            .env(
                "CONSUMER_DECISIONS_TOPIC",
                format!("{}-decisions", self.prefix),
            )
            .env("CONSUMER_DLQ_TOPIC", format!("{}-dlq", self.prefix))
            .envs(self.store_env())
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
    /// Events before, during and after a consumer killed without warning mid-stream, then
    /// a restarted one: every event applied exactly once, nothing oversold.
    pub async fn kill_9_mid_stream_then_restart(mut self) {
        self.publish_load(0, 12, 300).await;
        let mut first = self.spawn("first");
        // Let it get some way in, then kill it without warning, mid-stream.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        self.publish_load(1, 12, 300).await;
        first.kill9();
        self.publish_load(2, 12, 300).await;
        let mut second = self.spawn("restarted");
        self.wait_projected(Duration::from_secs(90)).await;
        second.stop();
        self.verify_store();
    }

    /// The settings that put a consumer on this test's store.
    fn store_env(&self) -> Vec<(&'static str, String)> {
        match &self.cql {
            None => vec![(
                "CONSUMER_STORE_DIR",
                self.store_dir.path().display().to_string(),
            )],
            Some((uri, store)) => vec![
                ("CONSUMER_STORE", "scylla".to_owned()),
                ("CONSUMER_SCYLLA_URI", uri.clone()),
                ("CONSUMER_SCYLLA_KEYSPACE", store.keyspace().to_owned()),
            ],
        }
    }

    pub async fn wait_projected(&self, within: Duration) {
        self.wait_projected_of(&self.produced, within).await;
    }

    /// Waits until the projections of each partition in `tops` reach its offset there.
    pub async fn wait_projected_of(&self, tops: &BTreeMap<i32, i64>, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            // Reconnect each round: the Redis under test may be (re)starting.
            let mut redis = super::connect_redis(&self.redis_url).await.ok();
            let mut behind = Vec::new();
            for (partition, top) in tops {
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
    pub fn verify_store(&self) {
        match &self.cql {
            None => self.verify(&EmbeddedStore::new(self.store_dir.path()).unwrap()),
            Some((_, store)) => self.verify(store),
        }
    }

    fn verify<S: Store>(&self, store: &S) {
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

pub struct Consumer {
    child: Child,
    admin: SocketAddr,
}

impl Consumer {
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(&mut self) {
        let status = self.terminate();
        assert!(status.success(), "consumer exited with {status}");
    }

    /// SIGTERM unless it has exited already, then its exit status (at most 30 s on).
    pub fn terminate(&mut self) -> ExitStatus {
        if let Some(status) = self.child.try_wait().unwrap() {
            return status;
        }
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "consumer did not stop within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub async fn owned_partitions(&self) -> f64 {
        self.metric("consumer_owned_partitions").await
    }

    /// The sum of every series of metric `name` on the admin port (0 if absent, or if the
    /// process does not answer).
    pub async fn metric(&self, name: &str) -> f64 {
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
    pub fn signal(&self, signal: &str) {
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

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some((_, store)) = self.cql.take() {
            // Best effort: a failed test still leaves the server clean for the next.
            let _ = std::thread::spawn(move || store.drop_keyspace()).join();
        }
    }
}
