//! librdkafka's mock cluster (`rdkafka::mocking::MockCluster`), for the broker faults a
//! real broker on this machine cannot be made to produce: slow responses, retriable
//! produce errors such as `NOT_ENOUGH_REPLICAS`, leader moves and leaderless partitions,
//! one broker of several going down.
//!
//! It runs inside the test process with brokers on loopback ports, which the ingress
//! connects to like to any broker. It is a fault injector, not a stand-in for Kafka:
//! everything else is tested against Apache Kafka, and the faults of a real three-node
//! cluster (leader killed, quorum lost) run in `infra/faults.sh --cluster`. One gap matters when
//! reading the results: the mock checks producer sequence numbers only for
//! transactional producers, so it would store a retried batch twice where Kafka drops
//! the copy. The faults used here never let a batch be stored without the producer
//! hearing of it (an injected error is answered before anything is appended), so a
//! duplicate in its log would be the ingress's own.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// A mock cluster with the bookings topic already created (the ingress creates nothing).
pub struct MockKafka {
    pub cluster: MockCluster<'static, DefaultProducerContext>,
    pub topic: String,
    pub partitions: i32,
}

impl MockKafka {
    /// `brokers` brokers (ids 1..=brokers) and a topic of `partitions` partitions
    /// replicated on every broker.
    pub fn start(brokers: i32, partitions: i32) -> MockKafka {
        let cluster = MockCluster::new(brokers).expect("mock cluster");
        let topic = format!("ingress-mock-{}", uuid::Uuid::new_v4());
        cluster
            .create_topic(&topic, partitions, brokers)
            .expect("mock topic");
        MockKafka {
            cluster,
            topic,
            partitions,
        }
    }

    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Moves the leadership of every partition to `broker`, or leaves every partition
    /// without a leader (`None`), as during an election.
    pub fn set_leaders(&self, broker: Option<i32>) {
        for partition in 0..self.partitions {
            self.cluster
                .partition_leader(&self.topic, partition, broker)
                .expect("set partition leader");
        }
    }

    /// Every record of the topic, read from the beginning up to the high watermarks.
    pub async fn read_log(&self) -> Vec<LogRecord> {
        let bootstrap = self.bootstrap();
        let topic = self.topic.clone();
        let partitions = self.partitions;
        tokio::task::spawn_blocking(move || read_all(&bootstrap, &topic, partitions))
            .await
            .unwrap()
    }
}

/// Where a record sits and which event it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub partition: i32,
    pub offset: i64,
    pub event_id: String,
}

fn read_all(bootstrap: &str, topic: &str, partitions: i32) -> Vec<LogRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("ingress-mock-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let timeout = Duration::from_secs(5);
    let mut assignment = TopicPartitionList::new();
    let mut remaining = HashMap::new();
    for partition in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, timeout)
            .unwrap_or_else(|e| panic!("watermarks of {topic}/{partition}: {e}"));
        if high > low {
            remaining.insert(partition, high);
        }
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    for _ in 0..300 {
        if remaining.is_empty() {
            return records;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let envelope: serde_json::Value =
                    serde_json::from_slice(message.payload().unwrap_or_default())
                        .expect("a record the ingress wrote");
                records.push(LogRecord {
                    partition: message.partition(),
                    offset: message.offset(),
                    event_id: envelope["event_id"].as_str().unwrap_or_default().to_owned(),
                });
                let high = remaining.get(&message.partition()).copied();
                if high.is_some_and(|high| message.offset() + 1 >= high) {
                    remaining.remove(&message.partition());
                }
            }
            Some(Err(error)) => panic!("reading {topic}: {error}"),
            None => {}
        }
    }
    panic!("{topic} not read to its end within 30 s; still missing {remaining:?}");
}
