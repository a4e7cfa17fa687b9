//! An event the store keeps refusing goes to the dead-letter topic after a few tries and
//! its partition keeps flowing; an event whose store write fails transiently is retried
//! and applied; a batch whose commit went through but whose answer was lost (a CQL
//! lightweight transaction that timed out after it committed) still gets its projections.
//!
//! The real stores cannot be made to refuse one valid event deterministically, nor to lose
//! the answer of a commit, so the consumer runs (in process, against the local broker and
//! Redis) on a store that wraps the embedded one and injects those three faults for marked
//! events: a mock, used only for the fault. Everything else is real.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consumers::apply::AppliedEvent;
use consumers::store::embedded::{EmbeddedPartition, EmbeddedStore};
use consumers::store::{BatchResult, PartitionStore, Store, StoreError};
use partitioner::{Envelope, Event};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use redis::AsyncCommands;
use support::{brokers, create_booking, envelope, redis_url};
use uuid::Uuid;

/// Transient failures injected before the flaky event's write succeeds.
const FLAKY_FAILURES: usize = 2;
const TRIES: u32 = 3;

/// Store attempts per event id, and how many of them were the event on its own.
#[derive(Default)]
struct Attempts {
    any: HashMap<Uuid, usize>,
    alone: HashMap<Uuid, usize>,
    answer_lost: bool,
}

/// The events whose writes fail: every time, or the first `FLAKY_FAILURES` times; and the
/// one whose first write commits but reports an I/O error.
#[derive(Clone, Copy)]
struct Faults {
    poison: Uuid,
    flaky: Uuid,
    answer_lost: Uuid,
}

#[derive(Clone)]
struct FaultyStore {
    inner: EmbeddedStore,
    faults: Faults,
    attempts: Arc<Mutex<Attempts>>,
}

struct FaultyPartition {
    inner: EmbeddedPartition,
    faults: Faults,
    attempts: Arc<Mutex<Attempts>>,
}

impl Store for FaultyStore {
    type Partition = FaultyPartition;
    fn open(&self, partition: i32) -> Result<FaultyPartition, StoreError> {
        Ok(FaultyPartition {
            inner: self.inner.open(partition)?,
            faults: self.faults,
            attempts: self.attempts.clone(),
        })
    }

    fn peek_checkpoint(&self, partition: i32) -> Result<Option<i64>, StoreError> {
        self.inner.peek_checkpoint(partition)
    }

    fn partitions(&self) -> Result<Vec<i32>, StoreError> {
        self.inner.partitions()
    }

    fn accepted_placement(&self) -> Result<Option<String>, StoreError> {
        self.inner.accepted_placement()
    }

    fn adopt_placement(&self, placement: &str) -> Result<String, StoreError> {
        self.inner.adopt_placement(placement)
    }

    fn accept_placement(&self, placement: &str) -> Result<(), StoreError> {
        self.inner.accept_placement(placement)
    }
}

impl PartitionStore for FaultyPartition {
    fn checkpoint(&self) -> Result<Option<i64>, StoreError> {
        self.inner.checkpoint()
    }

    fn write_batch(
        &mut self,
        events: &[(i64, Envelope)],
        through: i64,
    ) -> Result<BatchResult, StoreError> {
        // Like a real store, a replay (at or below the checkpoint) never reaches the write.
        let checkpoint = self.inner.checkpoint()?;
        let Faults {
            poison,
            flaky,
            answer_lost,
        } = self.faults;
        let fresh: Vec<Uuid> = events
            .iter()
            .filter(|(offset, _)| checkpoint.is_none_or(|c| *offset > c))
            .map(|(_, event)| event.event_id)
            .filter(|id| [poison, flaky, answer_lost].contains(id))
            .collect();
        {
            let mut attempts = self.attempts.lock().unwrap();
            for id in &fresh {
                *attempts.any.entry(*id).or_default() += 1;
                if events.len() == 1 {
                    *attempts.alone.entry(*id).or_default() += 1;
                }
            }
            for id in fresh {
                if id == poison {
                    return Err(StoreError::Corrupt("injected: unstorable event".into()));
                }
                if id == flaky && attempts.any[&id] <= FLAKY_FAILURES {
                    return Err(StoreError::Io("injected: volume busy".into()));
                }
                if id == answer_lost && !attempts.answer_lost {
                    attempts.answer_lost = true;
                    self.inner.write_batch(events, through)?;
                    return Err(StoreError::Io("injected: commit outcome unknown".into()));
                }
            }
        }
        self.inner.write_batch(events, through)
    }

    fn booking(&self, id: Uuid) -> Result<Option<consumers::apply::Booking>, StoreError> {
        self.inner.booking(id)
    }

    fn applied_event(&self, event_id: Uuid) -> Result<Option<AppliedEvent>, StoreError> {
        self.inner.applied_event(event_id)
    }

    fn bookings(&self) -> Result<Vec<consumers::apply::Booking>, StoreError> {
        self.inner.bookings()
    }

    fn nights(
        &self,
    ) -> Result<Vec<(consumers::apply::NightId, consumers::apply::Night)>, StoreError> {
        self.inner.nights()
    }
}

fn create(property: &str) -> Envelope {
    let night = chrono::NaiveDate::from_ymd_opt(2030, 7, 1).unwrap();
    envelope(property, create_booking(night, 1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unstorable_event_is_dead_lettered_after_its_tries_and_the_partition_flows_on() {
    let prefix = format!("poison-{}", Uuid::new_v4().simple());
    let (topic, dlq) = (format!("{prefix}-bookings"), format!("{prefix}-dlq"));
    consumers::topics::ensure_topics(
        &brokers(),
        &[(&topic, 1), (&format!("{prefix}-decisions"), 1), (&dlq, 1)],
        1,
    )
    .await
    .unwrap_or_else(|e| panic!("kafka unreachable ({e}); start it with `infra/stack.sh up`"));

    // One partition: allotments, bookings, the poison event, more bookings, a flaky one.
    let night = chrono::NaiveDate::from_ymd_opt(2030, 7, 1).unwrap();
    let mut events = Vec::new();
    for property in ["p", "q"] {
        events.push(envelope(
            property,
            Event::SetAllotment {
                room_type: "DBL".into(),
                from: night,
                to: night + chrono::Days::new(1),
                units: 100,
            },
        ));
    }
    events.extend((0..20).map(|_| create("p")));
    let poison = create("p");
    events.push(poison.clone());
    events.extend((0..20).map(|_| create("p")));
    let flaky = create("q");
    events.push(flaky.clone());
    events.extend((0..5).map(|_| create("p")));
    let answer_lost = create("q");
    events.push(answer_lost.clone());
    events.extend((0..5).map(|_| create("p")));

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let mut poison_offset = None;
    let mut top = -1;
    for event in &events {
        let payload = event.to_json();
        let record = FutureRecord::to(&topic)
            .partition(0)
            .key("acme/p")
            .payload(&payload);
        let delivery = producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        if event.event_id == poison.event_id {
            poison_offset = Some(delivery.offset);
        }
        top = delivery.offset;
    }

    let store_dir = tempfile::tempdir().unwrap();
    let attempts = Arc::new(Mutex::new(Attempts::default()));
    let store = FaultyStore {
        inner: EmbeddedStore::new(store_dir.path()).unwrap(),
        faults: Faults {
            poison: poison.event_id,
            flaky: flaky.event_id,
            answer_lost: answer_lost.event_id,
        },
        attempts: attempts.clone(),
    };
    let config = consumers::Config::try_parse_from([
        "consumer",
        "--kafka-brokers",
        &brokers(),
        "--group-id",
        &format!("{prefix}-group"),
        "--bookings-topic",
        &topic,
        "--decisions-topic",
        &format!("{prefix}-decisions"),
        "--dlq-topic",
        &dlq,
        "--store-dir",
        store_dir.path().to_str().unwrap(),
        "--redis-url",
        &redis_url(),
        "--admin-addr",
        "127.0.0.1:0",
        "--max-batch",
        "100",
        "--poison-tries",
        &TRIES.to_string(),
        "--fetch-wait-max-ms",
        "50",
        "--stats-interval-ms",
        "1000",
    ])
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let consumer = tokio::spawn(consumers::run(config, store, admin, async {
        let _ = stopped.await;
    }));

    // Everything is through once the partition's projections reach the last offset.
    let mut redis = support::connect_redis(&redis_url()).await.unwrap();
    let key = partitioner::keys::projection_checkpoint(&topic, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let through: Option<i64> = redis.get(&key).await.unwrap();
        if through == Some(top) {
            break;
        }
        assert!(!consumer.is_finished(), "the consumer stopped");
        assert!(
            Instant::now() < deadline,
            "projected through {through:?}, produced {top}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    consumer.await.unwrap().unwrap();

    // The poison event was tried alone exactly TRIES times; the flaky one until it stored.
    {
        let attempts = attempts.lock().unwrap();
        assert_eq!(
            attempts.alone.get(&poison.event_id),
            Some(&(TRIES as usize))
        );
        assert_eq!(attempts.any[&flaky.event_id], FLAKY_FAILURES + 1);
    }

    // Every other event is in the store, the poison one is not, and the checkpoint is past
    // everything.
    let state = EmbeddedStore::new(store_dir.path())
        .unwrap()
        .open(0)
        .unwrap();
    assert_eq!(state.checkpoint().unwrap(), Some(top));
    let stored: Vec<Uuid> = state
        .bookings()
        .unwrap()
        .iter()
        .map(|b| b.booking_id)
        .collect();
    for event in &events {
        let Some(booking_id) = event.event.booking_id() else {
            continue;
        };
        assert_eq!(
            stored.contains(&booking_id),
            event.event_id != poison.event_id,
            "booking of event {} stored or lost wrongly",
            event.event_id
        );
    }
    // Every stored booking is projected, those of the batch whose commit answer was lost
    // (and that the retry then found already committed) included.
    for booking_id in &stored {
        let key = partitioner::keys::booking_status(*booking_id);
        let status: Option<String> = redis.hget(&key, "status").await.unwrap();
        assert!(status.is_some(), "{key} was never projected");
    }

    // The dead-letter topic holds the poison event, as it was read, with why and where from.
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("{prefix}-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let (_, high) = reader
        .fetch_watermarks(&dlq, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!(high, 1, "exactly one dead letter");
    reader.subscribe(&[&dlq]).unwrap();
    let letter = tokio::time::timeout(Duration::from_secs(30), reader.recv())
        .await
        .expect("the dead letter is readable")
        .unwrap();
    assert_eq!(letter.payload(), Some(poison.to_json().as_slice()));
    let headers: HashMap<String, String> = letter
        .headers()
        .expect("dead letters carry headers")
        .iter()
        .map(|h| {
            let value = String::from_utf8(h.value.unwrap_or_default().to_vec()).unwrap();
            (h.key.to_owned(), value)
        })
        .collect();
    assert_eq!(headers["dlq-source-topic"], topic);
    assert_eq!(headers["dlq-source-partition"], "0");
    assert_eq!(
        headers["dlq-source-offset"],
        poison_offset.unwrap().to_string()
    );
    assert!(
        headers["dlq-reason"].contains(&format!("not storable after {TRIES} tries")),
        "{headers:?}"
    );
}
