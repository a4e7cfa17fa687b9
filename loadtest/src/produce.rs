//! `loadtest produce`: synthetic booking events straight to the bookings topic with the
//! idempotent producer (acks=all), as fast as the broker takes them. It builds consumer
//! lag for the scaling demonstration and is the raw producer baseline of
//! `bench-consumers`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use partitioner::{Command, Envelope, Event, EventMeta, Money, PartitionMap, Stay};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use uuid::Uuid;

use crate::progress::Progress;

/// Sends in flight at once: enough to keep the producer's batches full, bounded so a slow
/// broker is not buried.
const IN_FLIGHT: usize = 2000;

/// What a production run did.
#[derive(Debug)]
pub struct Produced {
    pub events: usize,
    pub elapsed: Duration,
    /// Highest offset written per partition.
    pub tops: BTreeMap<i32, i64>,
}

impl Produced {
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-6)
    }
}

/// `count` events of one tenant: an allotment per property first, then creates over
/// Zipf-skewed properties, so a few properties (and partitions) carry most of the load.
/// The same seed every time, so runs compare.
pub fn synthetic_events(tenant: &str, count: usize, properties: usize) -> Vec<Envelope> {
    let mut rng = SmallRng::seed_from_u64(7);
    let start = NaiveDate::from_ymd_opt(2030, 9, 1).expect("a valid date");
    let mut events = Vec::with_capacity(count);
    let envelope = |property: String, event: Event| {
        Envelope::new(
            Command {
                tenant_id: tenant.into(),
                property_id: property,
                event,
            },
            EventMeta {
                event_id: Uuid::new_v4(),
                partner_id: "loadtest".into(),
                request_id: "loadtest".into(),
                received_at_ms: 0,
                any_partner: false,
            },
        )
    };
    for p in 0..properties {
        let allot = Event::SetAllotment {
            room_type: "DBL".into(),
            from: start,
            to: start + Days::new(60),
            units: 500,
        };
        events.push(envelope(format!("h{p}"), allot));
    }
    while events.len() < count {
        let p = (properties as f64 * rng.random::<f64>().powi(2)) as usize;
        let check_in = start + Days::new(rng.random_range(0..55));
        let create = Event::CreateBooking {
            booking_id: Uuid::new_v4(),
            stay: Stay {
                room_type: "DBL".into(),
                check_in,
                check_out: check_in + Days::new(rng.random_range(1..=4)),
                rooms: 1,
                guests: 2,
            },
            price: Money {
                amount_minor: 10_000,
                currency: "EUR".into(),
            },
            guest_name: None,
            partner_reference: None,
        };
        events.push(envelope(format!("h{p}"), create));
    }
    events
}

/// Produces `events` to `topic`, each to its property's partition under `map` with the
/// ingress's key, and waits for every delivery.
pub async fn produce(
    brokers: &str,
    topic: &str,
    map: &PartitionMap,
    events: &[Envelope],
) -> anyhow::Result<Produced> {
    produce_waited(brokers, topic, map, events, 0).await
}

/// [`produce`], with every event marked as waited for, as a request asking `Prefer: wait`
/// marks it: the `reply-partition` header, taking turns among `reply_partitions`
/// partitions of the replies topic (none when 0).
pub async fn produce_waited(
    brokers: &str,
    topic: &str,
    map: &PartitionMap,
    events: &[Envelope],
    reply_partitions: u32,
) -> anyhow::Result<Produced> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()?;
    let payloads: Vec<(i32, String, Vec<u8>, Option<String>)> = events
        .iter()
        .enumerate()
        .map(|(n, e)| {
            let partition = map.partition(&e.tenant_id, &e.property_id) as i32;
            let key = partitioner::partition_map::routing_key(&e.tenant_id, &e.property_id);
            let reply = (reply_partitions > 0).then(|| (n as u32 % reply_partitions).to_string());
            (partition, key, e.to_json(), reply)
        })
        .collect();
    let started = Instant::now();
    let mut tops: BTreeMap<i32, i64> = BTreeMap::new();
    let mut progress = Progress::new(
        format!("producing to {topic}"),
        payloads.len() as u64,
        "events",
    );
    let mut done = 0;
    for chunk in payloads.chunks(IN_FLIGHT) {
        let sends = chunk.iter().map(|(partition, key, payload, reply)| {
            let mut record = FutureRecord::to(topic)
                .partition(*partition)
                .key(key)
                .payload(payload);
            if let Some(reply) = reply {
                record = record.headers(OwnedHeaders::new().insert(Header {
                    key: partitioner::event::headers::REPLY_PARTITION,
                    value: Some(reply.as_str()),
                }));
            }
            producer.send(record, Duration::from_secs(30))
        });
        for result in futures::future::join_all(sends).await {
            let delivery = result.map_err(|(e, _)| e)?;
            let top = tops.entry(delivery.partition).or_insert(-1);
            *top = (*top).max(delivery.offset);
        }
        done += chunk.len() as u64;
        progress.set(done, String::new);
    }
    progress.finish();
    Ok(Produced {
        events: events.len(),
        elapsed: started.elapsed(),
        tops,
    })
}
