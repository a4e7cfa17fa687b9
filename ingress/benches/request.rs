//! What the ingress's pure per-request work costs: the idempotency fingerprint alone, then
//! everything a mutation computes between reading its body and handing the event to the
//! producer (decode, booking id, validation, fingerprint, event id, partition, envelope and
//! its JSON), for a create, a modify and a cancel.
//!
//! Run with `cargo bench -p ingress --bench request`. The second group repeats the steps of
//! `ingress::mutate::mutate` in the same order, leaving out what needs I/O or a clock
//! (authentication, the dedup tiers, the publish); it is the CPU floor of one request.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ingress::dedup::RequestFingerprint;
use partitioner::partition_map::routing_key;
use partitioner::{BookingRequest, CancelRequest, Command, Envelope, EventMeta, PartitionMap};
use serde::de::DeserializeOwned;
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
const PARTNER: &str = "ota-booking-1";
const IDEMPOTENCY_KEY: &str = "7f3c9a2e-5b1d-4c8f-9e6a-2d4b8f1c3a57";

#[derive(Clone, Copy)]
enum Kind {
    Create,
    Modify,
    Cancel,
}

struct Case {
    name: &'static str,
    kind: Kind,
    body: &'static [u8],
}

fn cases() -> [Case; 3] {
    [
        Case {
            name: "create",
            kind: Kind::Create,
            body: CREATE,
        },
        Case {
            name: "modify",
            kind: Kind::Modify,
            body: MODIFY,
        },
        Case {
            name: "cancel",
            kind: Kind::Cancel,
            body: CANCEL,
        },
    ]
}

/// The ingress's decode: serde with the path of the first bad field kept for the answer.
fn decode<T: DeserializeOwned>(body: &[u8]) -> T {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).expect("the sample body decodes")
}

/// The validated command of a sample request, as the ingress builds it.
fn command(case: &Case) -> Command {
    let booking_id = Uuid::from_u128(0x5628_7654_0a0a_554b_96c2_038e_c2af_81ed);
    match case.kind {
        Kind::Create => {
            let request: BookingRequest = decode(case.body);
            let tenant = request.tenant_id.as_deref().unwrap_or_default();
            let booking_id = partitioner::booking_id(tenant, PARTNER, IDEMPOTENCY_KEY);
            request.into_create(booking_id)
        }
        Kind::Modify => decode::<BookingRequest>(case.body).into_modify(booking_id),
        Kind::Cancel => decode::<CancelRequest>(case.body).into_cancel(booking_id),
    }
    .expect("the sample body is valid")
}

/// The request path of a sample request.
fn path(case: &Case) -> &'static str {
    match case.kind {
        Kind::Create => "/v1/bookings",
        Kind::Modify => "/v1/bookings/56287654-0a0a-554b-96c2-038ec2af81ed/modify",
        Kind::Cancel => "/v1/bookings/56287654-0a0a-554b-96c2-038ec2af81ed/cancel",
    }
}

/// What the ingress hands the producer: partition, key, payload; and the fingerprint the
/// dedup tiers store.
fn prepare(case: &Case, map: &PartitionMap) -> (i32, String, Vec<u8>, String) {
    let command = command(case);
    let fingerprint = RequestFingerprint::new(&command, "POST", path(case), case.body).command;
    let event_id = partitioner::event_id(&command.tenant_id, PARTNER, IDEMPOTENCY_KEY);
    let partition = map.partition(&command.tenant_id, &command.property_id) as i32;
    let key = routing_key(&command.tenant_id, &command.property_id);
    let meta = EventMeta {
        event_id,
        partner_id: PARTNER.to_owned(),
        request_id: "req-01HZY8K3M2Q4".to_owned(),
        received_at_ms: 1_800_000_000_000,
        any_partner: false,
    };
    let payload = Envelope::new(command, meta).to_json();
    (partition, key, payload, fingerprint)
}

fn fingerprints(c: &mut Criterion) {
    let mut group = c.benchmark_group("fingerprint");
    for case in cases() {
        let command = command(&case);
        group.throughput(Throughput::Bytes(case.body.len() as u64));
        group.bench_function(case.name, |b| {
            b.iter(|| {
                RequestFingerprint::new(
                    black_box(&command),
                    "POST",
                    path(&case),
                    black_box(case.body),
                )
            })
        });
    }
    group.finish();
}

fn request_path(c: &mut Criterion) {
    let map = PartitionMap::parse(12, "").expect("a plain 12-partition map");
    let mut group = c.benchmark_group("request before publish");
    for case in cases() {
        group.throughput(Throughput::Bytes(case.body.len() as u64));
        group.bench_function(case.name, |b| {
            b.iter(|| prepare(black_box(&case), black_box(&map)))
        });
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
    targets = fingerprints, request_path
}
criterion_main!(benches);
