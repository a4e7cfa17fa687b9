//! Harness for whole-pipeline tests: the real ingress and the real consumer (their `run`
//! functions, on port 0) against the running local broker and Redis, each test on topics,
//! a consumer group and a store directory of its own.
//!
//! A missing broker or Redis fails the test with the command that starts them: a skip
//! would let a green run hide that the pipeline was never exercised.

#![allow(dead_code)]

pub mod receiver;

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Parser;
use consumers::store::embedded::EmbeddedStore;
use loadtest::client::PartnerClient;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use redis::AsyncCommands;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "pipeline-test-secret";
pub const PARTNER: &str = "ota-1";
/// Another partner of the same tenant, with read and write scopes but no claim on
/// `PARTNER`'s bookings.
pub const OTHER_SECRET: &str = "pipeline-test-other-secret";
/// The hotel's own channel: `bookings:any-partner` lets it act on every partner's
/// bookings of the tenant.
pub const HOTEL_SECRET: &str = "pipeline-test-hotel-secret";
/// A third partner (bookings and inventory of `TENANT`), for a test that needs a partner (and its decisions feed)
/// no other test of its binary touches.
pub const THIRD_SECRET: &str = "pipeline-test-third-secret";
pub const PARTITIONS: i32 = 12;

pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

fn stack_missing(what: &str, error: impl std::fmt::Display) -> ! {
    panic!(
        "{what} unreachable ({error}). Start the local stack with `infra/stack.sh up`, or set \
         KAFKA_BROKERS / REDIS_URL to running servers."
    )
}

pub struct Topics {
    pub bookings: String,
    pub decisions: String,
    pub replies: String,
    pub dlq: String,
}

/// One running pipeline: ingress, one consumer, their topics and store.
pub struct Pipeline {
    pub client: PartnerClient,
    pub topics: Topics,
    pub store_dir: tempfile::TempDir,
    pub redis: partitioner::redis_target::RedisConnection,
    ingress: Option<Ingress>,
    consumer_stop: Option<oneshot::Sender<()>>,
    consumer: Option<JoinHandle<Result<(), consumers::Error>>>,
    partners: tempfile::NamedTempFile,
}

/// The ingress of a pipeline, on port 0.
struct Ingress {
    url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ingress::Error>>,
}

impl Ingress {
    async fn start(topics: &Topics, partners: &std::path::Path, extra: &[&str]) -> Ingress {
        let mut args = vec![
            "ingress".to_owned(),
            format!("--partners-file={}", partners.display()),
            format!("--kafka-brokers={}", brokers()),
            format!("--bookings-topic={}", topics.bookings),
            format!("--replies-topic={}", topics.replies),
            format!("--replies-group={}-ingress", topics.replies),
            format!("--redis-url={}", redis_url()),
            // Idempotency records of earlier runs in the shared Redis must not answer
            // this run's requests (the keys below repeat from run to run).
            format!(
                "--idempotency-prefix=idem-test-{}",
                uuid::Uuid::new_v4().simple()
            ),
            // The first record of a fresh idempotent producer waits for its producer id;
            // these tests are about correctness, not latency.
            "--delivery-budget-ms=10000".to_owned(),
        ];
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        let config = ingress::Config::try_parse_from(args).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ingress::run(config, listener, admin, async {
            let _ = stopped.await;
        }));
        wait_ready(admin_addr, &task).await;
        Ingress {
            url: format!("http://{addr}"),
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().expect("ingress shut down cleanly");
    }
}

impl Pipeline {
    pub async fn start() -> Pipeline {
        Self::start_with(&[]).await
    }

    /// A pipeline whose ingress gets `ingress_args` besides the harness's own.
    pub async fn start_with(ingress_args: &[&str]) -> Pipeline {
        let redis = loadtest::redis_conn::connect(&redis_url())
            .await
            .unwrap_or_else(|e| stack_missing("redis", e));
        let prefix = format!("pipeline-test-{}", uuid::Uuid::new_v4().simple());
        let topics = Topics {
            bookings: format!("{prefix}-bookings"),
            decisions: format!("{prefix}-decisions"),
            replies: format!("{prefix}-replies"),
            dlq: format!("{prefix}-dlq"),
        };
        // Test topics are kept for a post-mortem; they are small, and `infra/stack.sh reset`
        // clears them.
        consumers::topics::ensure_topics(
            &brokers(),
            &[
                (&topics.bookings, PARTITIONS),
                (&topics.decisions, 3),
                (&topics.replies, 3),
                (&topics.dlq, 3),
            ],
            1,
        )
        .await
        .unwrap_or_else(|e| stack_missing("kafka", e));

        let store_dir = tempfile::tempdir().unwrap();
        let (consumer_stop, stopped) = oneshot::channel::<()>();
        let consumer_config = consumers::Config::try_parse_from([
            "consumer",
            "--kafka-brokers",
            &brokers(),
            "--group-id",
            &format!("{prefix}-group"),
            "--bookings-topic",
            &topics.bookings,
            "--decisions-topic",
            &topics.decisions,
            "--replies-topic",
            &topics.replies,
            "--dlq-topic",
            &topics.dlq,
            "--store-dir",
            store_dir.path().to_str().unwrap(),
            "--redis-url",
            &redis_url(),
            "--admin-addr",
            "127.0.0.1:0",
            "--fetch-wait-max-ms",
            "50",
            "--stats-interval-ms",
            "1000",
        ])
        .unwrap();
        let store = EmbeddedStore::new(store_dir.path()).unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let consumer = tokio::spawn(consumers::run(consumer_config, store, admin, async {
            let _ = stopped.await;
        }));

        let partners = partners_file();
        let ingress = Ingress::start(&topics, partners.path(), ingress_args).await;

        Pipeline {
            client: PartnerClient::new(&ingress.url, SECRET),
            topics,
            store_dir,
            redis,
            ingress: Some(ingress),
            consumer_stop: Some(consumer_stop),
            consumer: Some(consumer),
            partners,
        }
    }

    /// A client of the running ingress for another partner of the partners file.
    pub fn client_for(&self, secret: &str) -> PartnerClient {
        let ingress = self.ingress.as_ref().expect("the ingress runs");
        PartnerClient::new(&ingress.url, secret)
    }

    /// Replaces the ingress with a fresh one that shares no idempotency record with it
    /// (an empty local tier, another Redis prefix): what a partner meets once every cache
    /// has forgotten its keys, after the TTL or a loss of Redis.
    pub async fn restart_ingress_forgetting_keys(&mut self) {
        if let Some(old) = self.ingress.take() {
            old.stop().await;
        }
        let ingress = Ingress::start(&self.topics, self.partners.path(), &[]).await;
        self.client = PartnerClient::new(&ingress.url, SECRET);
        self.ingress = Some(ingress);
    }

    /// Waits until the consumer has processed `partition` through `offset`, as its Redis
    /// projection checkpoint shows.
    pub async fn settled(&mut self, partition: i32, offset: i64) {
        let key = partitioner::keys::projection_checkpoint(&self.topics.bookings, partition);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let through: Option<i64> = self.redis.get(&key).await.unwrap();
            if through.is_some_and(|t| t >= offset) {
                return;
            }
            if let Some(consumer) = &self.consumer {
                assert!(!consumer.is_finished(), "the consumer stopped");
            }
            assert!(
                Instant::now() < deadline,
                "partition {partition} not processed through offset {offset} within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn booking_status(&mut self, booking_id: uuid::Uuid) -> Option<String> {
        self.redis
            .hget(partitioner::keys::booking_status(booking_id), "status")
            .await
            .unwrap()
    }

    pub async fn remaining(&mut self, property: &str, room_type: &str, night: &str) -> Option<u32> {
        self.redis
            .hget(
                partitioner::keys::availability(TENANT, property, room_type),
                night,
            )
            .await
            .unwrap()
    }

    /// Waits until the projection of `night` shows `expected` rooms left: for answers
    /// that say a decision was made but not where its event is.
    pub async fn remaining_becomes(
        &mut self,
        property: &str,
        room_type: &str,
        night: &str,
        expected: u32,
    ) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let remaining = self.remaining(property, room_type, night).await;
            if remaining == Some(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{property} {room_type} {night}: {remaining:?} rooms left after 30 s, not {expected}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the consumer gracefully so its store files can be opened.
    pub async fn stop_consumer(&mut self) -> EmbeddedStore {
        if let Some(stop) = self.consumer_stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.consumer.take() {
            task.await.unwrap().expect("consumer shut down cleanly");
        }
        EmbeddedStore::new(self.store_dir.path()).unwrap()
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if let Some(ingress) = self.ingress.take() {
            let _ = ingress.stop.send(());
        }
        if let Some(stop) = self.consumer_stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The tenant every pipeline test books for; topics are per test, so it can be shared.
pub const TENANT: &str = "acme";

/// Puts `units` DBL rooms of `TENANT`'s `property` on sale for the nights `from` to `to`.
pub async fn allot(
    client: &PartnerClient,
    property: &str,
    from: &str,
    to: &str,
    units: u32,
) -> loadtest::client::Answer {
    let body = serde_json::json!({"tenant_id": TENANT, "property_id": property,
                                  "room_type": "DBL", "from": from, "to": to, "units": units});
    let key = format!("allot-{}", uuid::Uuid::new_v4());
    let answer = client
        .send(http::Method::PUT, "/v1/inventory", &key, &body)
        .await
        .unwrap();
    assert_eq!(
        answer.status,
        http::StatusCode::ACCEPTED,
        "{:?}",
        answer.body
    );
    answer
}
/// The OpenTravel hotel codes `PARTNER` sends for `TENANT`, one per OTA test so their
/// projections in the shared Redis never meet.
pub const OTA_HOTELS: &[&str] = &["OTAPLAIN", "OTASOAP", "OTARETX", "OTARACE", "OTAPEND"];

/// An OpenTravel answer as Python's own XML parser reads it (`infra/ota_rs.py`): the
/// message's root, attributes, success, warnings, errors and reservation ids.
pub fn read_rs(raw: &[u8]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/ota_rs.py");
    let mut python = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    python.stdin.take().unwrap().write_all(raw).unwrap();
    let output = python.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "python could not read the answer ({}): {}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(raw)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn partners_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let ota_hotels: std::collections::HashMap<_, _> =
        OTA_HOTELS.iter().map(|hotel| (*hotel, TENANT)).collect();
    let json = serde_json::json!({"partners": [
        {"partner_id": PARTNER, "key_sha256": ingress::auth::sha256_hex(SECRET.as_bytes()),
         "tenants": ["*"], "scopes": ["bookings:write", "bookings:read", "inventory:write"],
         "ota_hotels": ota_hotels},
        {"partner_id": "ota-2", "key_sha256": ingress::auth::sha256_hex(OTHER_SECRET.as_bytes()),
         "tenants": [TENANT], "scopes": ["bookings:write", "bookings:read"]},
        {"partner_id": "ota-3", "key_sha256": ingress::auth::sha256_hex(THIRD_SECRET.as_bytes()),
         "tenants": [TENANT], "scopes": ["bookings:write", "bookings:read", "inventory:write"]},
        {"partner_id": "hotel-desk", "key_sha256": ingress::auth::sha256_hex(HOTEL_SECRET.as_bytes()),
         "tenants": [TENANT], "scopes": ["bookings:write", "bookings:read", "bookings:any-partner"]},
    ]});
    file.write_all(json.to_string().as_bytes()).unwrap();
    file
}

async fn wait_ready(admin: std::net::SocketAddr, task: &JoinHandle<Result<(), ingress::Error>>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(!task.is_finished(), "ingress exited during startup");
        if let Ok(mut stream) = tokio::net::TcpStream::connect(admin).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = stream
                .write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await;
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer).await;
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "ingress not ready within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A record's headers and payload.
pub type Record = (Vec<(String, String)>, Vec<u8>);

/// Reads every record of a small topic from the start until `expected` arrived.
pub async fn read_all(topic: &str, expected: usize) -> Vec<Record> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let metadata = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        for partition in metadata.topics()[0].partitions() {
            assignment
                .add_partition_offset(&topic, partition.id(), Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let mut records = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while records.len() < expected && std::time::Instant::now() < deadline {
            let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            if !seen.insert((message.partition(), message.offset())) {
                continue;
            }
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            records.push((headers, message.payload().unwrap_or_default().to_vec()));
        }
        assert!(
            records.len() >= expected,
            "only {} of {expected} records on {topic}",
            records.len()
        );
        records
    })
    .await
    .unwrap()
}
