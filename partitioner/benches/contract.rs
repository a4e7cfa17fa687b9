//! What the contract's hot pure functions cost per call: request validation from body bytes
//! to an envelope, partition choice, deterministic ids and the envelope's JSON codec, which
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
use partitioner::{
    BookingRequest, CancelRequest, Command, Envelope, EventMeta, Invalid, PartitionMap,
};
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

fn meta() -> EventMeta {
    EventMeta {
        event_id: booking_id(),
        partner_id: PARTNER.to_owned(),
        request_id: "req-01HZY8K3M2Q4".to_owned(),
        received_at_ms: 1_800_000_000_000,
        any_partner: false,
    }
}

/// Body bytes to envelope, as the ingress runs it: decode, validate, wrap.
fn create_envelope(body: &[u8], booking_id: Uuid) -> Result<Envelope, Invalid> {
    let request: BookingRequest = serde_json::from_slice(body).expect("the body is JSON");
    Ok(Envelope::new(request.into_create(booking_id)?, meta()))
}

fn modify_envelope(body: &[u8], booking_id: Uuid) -> Result<Envelope, Invalid> {
    let request: BookingRequest = serde_json::from_slice(body).expect("the body is JSON");
    Ok(Envelope::new(request.into_modify(booking_id)?, meta()))
}

fn cancel_envelope(body: &[u8], booking_id: Uuid) -> Result<Envelope, Invalid> {
    let request: CancelRequest = serde_json::from_slice(body).expect("the body is JSON");
    let command: Command = request.into_cancel(booking_id)?;
    Ok(Envelope::new(command, meta()))
}

type Build = fn(&[u8], Uuid) -> Result<Envelope, Invalid>;

const REQUESTS: [(&str, &[u8], Build); 3] = [
    ("create", CREATE, create_envelope),
    ("modify", MODIFY, modify_envelope),
    ("cancel", CANCEL, cancel_envelope),
];

fn validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    let id = booking_id();
    for (name, body, build) in REQUESTS {
        // Fail here, not in a number: a benchmark of a rejected request measures the wrong path.
        build(body, id).expect("the sample body is valid");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| b.iter(|| build(black_box(body), id)));
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
    let id = booking_id();
    let envelopes: Vec<(&str, Envelope)> = REQUESTS
        .iter()
        .map(|(name, body, build)| (*name, build(body, id).expect("the sample body is valid")))
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
    targets = validation, hashing, codec
}
criterion_main!(benches);
