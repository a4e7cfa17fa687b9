//! What the contract's hot pure functions cost per call: the request step from body bytes
//! to a placed envelope (`intake::prepare`, as the ingress runs it), partition choice, deterministic ids and the envelope's JSON codec, which
//! every event pays twice (the ingress encodes, the consumer decodes).
//!
//! Run with `cargo bench -p partitioner --bench contract`; criterion prints the time per
//! call. Each benchmark measures for 2 s after a 0.5 s warm-up, so the file runs in well
//! under a minute. Inputs are the size of real partner requests (a create body is about
//! 250 bytes).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use partitioner::hash::murmur2;
use partitioner::partition_map::routing_key;
use partitioner::{intake, Envelope, Mutation, PartitionMap, Sender};
use uuid::Uuid;

const CREATE: &[u8] = br#"{
  "tenant_id": "acme-hotels",
  "property_id": "lisbon-baixa-01",
  "room_type": "DBL-SUPERIOR",
  "check_in": "2027-03-10",
  "check_out": "2027-03-13",
  "rooms": 1,
  "guests": 2,
  "amount_minor": 45000,
  "currency": "EUR",
  "guest_name": "Maria Fernanda Albuquerque"
}"#;

const MODIFY: &[u8] = br#"{
  "tenant_id": "acme-hotels",
  "property_id": "lisbon-baixa-01",
  "room_type": "DBL-SUPERIOR",
  "check_in": "2027-03-11",
  "check_out": "2027-03-15",
  "rooms": 2,
  "guests": 3,
  "amount_minor": 98000,
  "currency": "EUR"
}"#;

const CANCEL: &[u8] = br#"{
  "tenant_id": "acme-hotels",
  "property_id": "lisbon-baixa-01",
  "reason": "guest changed travel plans"
}"#;

const TENANT: &str = "acme-hotels";
const PROPERTY: &str = "lisbon-baixa-01";
const PARTNER: &str = "ota-booking-1";
const IDEMPOTENCY_KEY: &str = "7f3c9a2e-5b1d-4c8f-9e6a-2d4b8f1c3a57";

fn booking_id() -> Uuid {
    partitioner::booking_id(TENANT, PARTNER, IDEMPOTENCY_KEY)
}

fn sender() -> Sender<'static> {
    Sender {
        partner_id: PARTNER,
        any_partner: false,
        idempotency_key: IDEMPOTENCY_KEY,
        request_id: "req-01HZY8K3M2Q4",
        received_at_ms: 1_800_000_000_000,
    }
}

/// The request step the ingress runs: body bytes to the placed envelope.
fn prepare(mutation: Mutation, body: &[u8], map: &PartitionMap) -> Envelope {
    intake::prepare(mutation, &sender(), body, map)
        .expect("the sample body is valid")
        .envelope
}

fn requests() -> [(&'static str, &'static [u8], Mutation); 3] {
    let id = booking_id();
    [
        ("create", CREATE, Mutation::CreateBooking),
        ("modify", MODIFY, Mutation::ModifyBooking(id)),
        ("cancel", CANCEL, Mutation::CancelBooking(id)),
    ]
}

fn request_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("request step");
    let map = PartitionMap::parse(12, "").expect("a plain 12-partition map");
    for (name, body, mutation) in requests() {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| intake::prepare(mutation, &sender(), black_box(body), &map))
        });
    }
    group.finish();
}

fn hashing(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash");
    let key = routing_key(TENANT, PROPERTY);
    group.bench_function("murmur2 routing key", |b| {
        b.iter(|| murmur2(black_box(key.as_bytes())))
    });
    let map = PartitionMap::parse(12, "").expect("a plain 12-partition map");
    group.bench_function("partition, 12 partitions", |b| {
        b.iter(|| map.partition(black_box(TENANT), black_box(PROPERTY)))
    });
    // A pinned tenant adds the hash-map lookup of its range.
    let pinned = PartitionMap::parse(12, "acme-hotels=8..12").expect("a valid override");
    group.bench_function("partition, pinned tenant", |b| {
        b.iter(|| pinned.partition(black_box(TENANT), black_box(PROPERTY)))
    });
    group.bench_function("event id (UUIDv5)", |b| {
        b.iter(|| {
            partitioner::event_id(
                black_box(TENANT),
                black_box(PARTNER),
                black_box(IDEMPOTENCY_KEY),
            )
        })
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let map = PartitionMap::parse(12, "").expect("a plain 12-partition map");
    let envelopes: Vec<(&str, Envelope)> = requests()
        .into_iter()
        .map(|(name, body, mutation)| (name, prepare(mutation, body, &map)))
        .collect();

    let mut group = c.benchmark_group("envelope to_json");
    for (name, envelope) in &envelopes {
        group.throughput(Throughput::Bytes(envelope.to_json().len() as u64));
        group.bench_function(*name, |b| b.iter(|| black_box(envelope).to_json()));
    }
    group.finish();

    let mut group = c.benchmark_group("envelope from_json");
    for (name, envelope) in &envelopes {
        let bytes = envelope.to_json();
        assert_eq!(&Envelope::from_json(&bytes).expect("round trip"), envelope);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(*name, |b| b.iter(|| Envelope::from_json(black_box(&bytes))));
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = request_step, hashing, codec
}
criterion_main!(benches);
