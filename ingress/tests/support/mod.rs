//! Test harness: the real ingress (`ingress::run` on port 0) against the real broker at
//! `KAFKA_BROKERS` (default 127.0.0.1:9092), a topic of its own per test, a plain HTTP/1
//! client and a Kafka reader that fetches one record at a known offset.
//!
//! An unreachable broker fails the test with the command that starts the local stack:
//! skipping would let a green run hide that the publish path was never exercised.

#![allow(dead_code)]

pub mod mock_kafka;
pub mod own_kafka;
pub mod own_redis;
pub mod process;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PARTITIONS: i32 = 12;
/// ota-1: every tenant, both scopes.
pub const SECRET_ALL: &str = "test-secret-all";
/// ota-2: tenant `acme` only, bookings only (write and read).
pub const SECRET_ACME: &str = "test-secret-acme";
/// ota-3: every tenant, but may only write bookings, not read them.
pub const SECRET_WRITE_ONLY: &str = "test-secret-write-only";

pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

fn unreachable(what: &str, error: impl std::fmt::Display) -> ! {
    panic!(
        "Kafka broker at {} unreachable ({what}: {error}). Start the local stack with \
         `infra/stack.sh up`, or point KAFKA_BROKERS at a running broker.",
        brokers()
    )
}

/// Fails the test, naming the command that starts the stack, unless a broker answers.
pub async fn require_broker() {
    let reachable = tokio::task::spawn_blocking(|| {
        let admin = admin_client();
        admin
            .inner()
            .fetch_metadata(None, Duration::from_secs(5))
            .map(|_| ())
    });
    if let Err(error) = reachable.await.unwrap() {
        unreachable("metadata", error);
    }
}

fn admin_client() -> AdminClient<DefaultClientContext> {
    admin_client_for(&brokers())
}

fn admin_client_for(brokers: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client")
}

/// Creates a fresh topic and waits until its metadata shows every partition.
///
/// Test topics are kept for a post-mortem; they are small, and `infra/stack.sh reset`
/// clears them.
pub async fn create_topic(partitions: i32) -> String {
    require_broker().await;
    create_topic_on(&brokers(), partitions).await
}

/// [`create_topic`] on the broker at `brokers`, which must be running.
pub async fn create_topic_on(brokers: &str, partitions: i32) -> String {
    let topic = format!("ingress-test-{}", uuid::Uuid::new_v4());
    let admin = admin_client_for(brokers);
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let new_topic = NewTopic::new(&topic, partitions, TopicReplication::Fixed(1));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .unwrap_or_else(|e| panic!("creating a topic on {brokers}: {e}"));
    for result in results {
        result.unwrap_or_else(|(name, code)| panic!("creating topic {name}: {code}"));
    }
    let name = topic.clone();
    tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            let metadata = admin
                .inner()
                .fetch_metadata(Some(&name), Duration::from_secs(5));
            if let Ok(metadata) = metadata {
                let ready = metadata.topics().iter().any(|t| {
                    t.name() == name
                        && t.error().is_none()
                        && t.partitions().len() == partitions as usize
                });
                if ready {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("topic {name} never showed {partitions} partitions");
    })
    .await
    .unwrap();
    topic
}

pub fn partners_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let json = serde_json::json!({"partners": [
        {"partner_id": "ota-1", "key_sha256": ingress::auth::sha256_hex(SECRET_ALL.as_bytes()),
         "tenants": ["*"], "scopes": ["bookings:write", "bookings:read", "inventory:write"]},
        {"partner_id": "ota-2", "key_sha256": ingress::auth::sha256_hex(SECRET_ACME.as_bytes()),
         "tenants": ["acme"], "scopes": ["bookings:write", "bookings:read"]},
        {"partner_id": "ota-3",
         "key_sha256": ingress::auth::sha256_hex(SECRET_WRITE_ONLY.as_bytes()),
         "tenants": ["*"], "scopes": ["bookings:write"]},
    ]});
    file.write_all(json.to_string().as_bytes()).unwrap();
    file
}

/// The shared Redis of the local stack (`REDIS_URL` overrides).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// One running ingress.
pub struct Ingress {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub topic: String,
    /// This ingress's idempotency key prefix: unique, so runs sharing Redis never meet.
    pub idem_prefix: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ingress::Error>>,
    _partners: tempfile::NamedTempFile,
}

impl Ingress {
    /// Starts the ingress on a new topic and waits until `/readyz` says it is ready.
    pub async fn start() -> Ingress {
        let topic = create_topic(PARTITIONS).await;
        let ingress = Ingress::spawn(&topic, &[]);
        ingress.wait_ready().await;
        ingress
    }

    /// Starts the ingress on `topic` with extra flags, without waiting.
    pub fn spawn(topic: &str, extra: &[&str]) -> Ingress {
        let partners = partners_file();
        let prefix = format!("idem-test-{}", uuid::Uuid::new_v4().simple());
        let mut args = vec![
            format!("--redis-url={}", redis_url()),
            // Generous, so a busy test machine does not turn Redis hits into fallbacks.
            "--redis-timeout-ms=2000".to_owned(),
            format!("--idempotency-prefix={prefix}"),
            format!("--partners-file={}", partners.path().display()),
            format!("--kafka-brokers={}", brokers()),
            format!("--bookings-topic={topic}"),
            // The first record of a fresh idempotent producer waits for its producer id;
            // a generous budget keeps that one-off cost from failing the test, which is
            // about correctness, not latency.
            "--delivery-budget-ms=10000".to_owned(),
            "--metadata-timeout-ms=5000".to_owned(),
            "--shutdown-grace-secs=5".to_owned(),
            // A replies group of its own, so test ingresses running side by side never
            // share (and rebalance) the reply partitions.
            format!(
                "--replies-group=ingress-test-{}",
                uuid::Uuid::new_v4().simple()
            ),
        ];
        // A flag given by the test replaces the default above: clap refuses repeats.
        let name = |arg: &str| arg.split('=').next().unwrap_or_default().to_owned();
        args.retain(|arg| !extra.iter().any(|e| name(e) == name(arg)));
        args.extend(extra.iter().map(|s| s.to_string()));
        args.insert(0, "ingress".to_owned());
        let idem_prefix = args
            .iter()
            .find_map(|a| a.strip_prefix("--idempotency-prefix="))
            .unwrap_or(&prefix)
            .to_owned();
        let config = ingress::Config::try_parse_from(args).expect("test config");
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let std_admin = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        std_admin.set_nonblocking(true).unwrap();
        let (addr, admin) = (
            std_listener.local_addr().unwrap(),
            std_admin.local_addr().unwrap(),
        );
        let listener = TcpListener::from_std(std_listener).unwrap();
        let admin_listener = TcpListener::from_std(std_admin).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ingress::run(config, listener, admin_listener, async {
            let _ = stopped.await;
        }));
        Ingress {
            addr,
            admin,
            topic: topic.to_owned(),
            idem_prefix,
            stop: Some(stop),
            task,
            _partners: partners,
        }
    }

    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            if self.task.is_finished() {
                panic!("ingress exited during startup");
            }
            if let Ok(response) = get(self.admin, "/readyz").await {
                if response.status == StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("ingress not ready after 10 s");
    }

    /// Triggers shutdown and returns what `run` returned.
    pub async fn stop(mut self) -> Result<(), ingress::Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("run panicked")
    }

    /// Waits for `run` to return on its own, e.g. after a failed startup.
    pub async fn exit(self) -> Result<(), ingress::Error> {
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("run did not return")
            .expect("run panicked")
    }

    pub fn post(&self, path: &str) -> Call {
        Call::new(self.addr, Method::POST, path)
    }

    pub fn put(&self, path: &str) -> Call {
        Call::new(self.addr, Method::PUT, path)
    }

    pub fn get(&self, path: &str) -> Call {
        Call::new(self.addr, Method::GET, path)
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

/// A request being built: JSON content type, ota-1's key and a fresh Idempotency-Key
/// unless the test says otherwise.
pub struct Call {
    addr: SocketAddr,
    builder: http::request::Builder,
    skip: Vec<&'static str>,
}

impl Call {
    fn new(addr: SocketAddr, method: Method, path: &str) -> Call {
        let builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string());
        Call {
            addr,
            builder,
            skip: vec![],
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Call {
        self.skip.push(name);
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn without(mut self, name: &'static str) -> Call {
        self.skip.push(name);
        self
    }

    /// Sends a request without a body (and without the JSON content type).
    pub async fn send(self) -> Reply {
        self.without("content-type")
            .without("idempotency-key")
            .body(Bytes::new())
            .await
    }

    pub async fn json(self, body: &serde_json::Value) -> Reply {
        self.body(body.to_string()).await
    }

    pub async fn body(mut self, body: impl Into<Bytes>) -> Reply {
        let defaults = [
            ("content-type", "application/json".to_owned()),
            ("authorization", format!("Bearer {SECRET_ALL}")),
            ("idempotency-key", uuid::Uuid::new_v4().to_string()),
        ];
        for (name, value) in defaults {
            if !self.skip.contains(&name) {
                self.builder = self.builder.header(name, value);
            }
        }
        let request = self.builder.body(Full::new(body.into())).unwrap();
        send(self.addr, request).await.expect("request failed")
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> hyper::Result<Reply> {
    let request = Request::get(path)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(addr, request).await
}

async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> hyper::Result<Reply> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// A record as read back from Kafka.
pub struct Record {
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the record at `partition`/`offset` of `topic`.
pub async fn read_record(topic: &str, partition: i32, offset: i64) -> Record {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", format!("ingress-test-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&topic, partition, Offset::Offset(offset))
            .unwrap();
        consumer.assign(&assignment).unwrap();
        for _ in 0..100 {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    assert_eq!(message.partition(), partition);
                    assert_eq!(message.offset(), offset);
                    let headers = message.headers().map_or(vec![], |headers| {
                        headers
                            .iter()
                            .map(|h| {
                                let value =
                                    h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                                (h.key.to_owned(), value.unwrap_or_default())
                            })
                            .collect()
                    });
                    return Record {
                        key: message.key().unwrap_or_default().to_vec(),
                        payload: message.payload().unwrap_or_default().to_vec(),
                        headers,
                    };
                }
                Some(Err(error)) => panic!("consuming {topic}/{partition}@{offset}: {error}"),
                None => {}
            }
        }
        panic!("no record at {topic}/{partition}@{offset} within 10 s");
    })
    .await
    .unwrap()
}

/// A refusal a partner can act on: 503, problem+json, Retry-After, a retryable type.
pub fn assert_unavailable(reply: &Reply) {
    let body = String::from_utf8_lossy(&reply.body);
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(reply.header("content-type"), "application/problem+json");
    assert!(!reply.header("retry-after").is_empty(), "{body}");
    let kind = reply.json()["type"].as_str().unwrap_or_default().to_owned();
    assert!(
        [
            "/problems/delivery-timeout",
            "/problems/broker-unavailable",
            "/problems/overloaded"
        ]
        .contains(&kind.as_str()),
        "{kind}"
    );
}
