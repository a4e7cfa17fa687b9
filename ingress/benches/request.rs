//! What the ingress's pure per-request work costs: the idempotency fingerprint alone, then
//! everything a mutation computes between reading its body and handing the event to the
//! producer (decode, booking id, validation, fingerprint, event id, partition, envelope and
//! its JSON), for a create, a modify and a cancel.
//!
//! Run with `cargo bench -p ingress --bench request`. The second group runs what
//! `ingress::mutate::mutate` computes without I/O: the contract's request step
//! (`partitioner::intake::prepare`), the fingerprints and the envelope's JSON, leaving out
//! authentication, the dedup tiers and the publish; it is the CPU floor of one request.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ingress::dedup::RequestFingerprint;
use partitioner::{intake, Mutation, PartitionMap, Sender};
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

struct Case {
    name: &'static str,
    mutation: Mutation,
    body: &'static [u8],
}

fn cases() -> [Case; 3] {
    let id = Uuid::from_u128(0x5628_7654_0a0a_554b_96c2_038e_c2af_81ed);
    [
        Case {
            name: "create",
            mutation: Mutation::CreateBooking,
            body: CREATE,
        },
        Case {
            name: "modify",
            mutation: Mutation::ModifyBooking(id),
            body: MODIFY,
        },
        Case {
            name: "cancel",
            mutation: Mutation::CancelBooking(id),
            body: CANCEL,
        },
    ]
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

/// The request path of a sample request.
fn path(case: &Case) -> &'static str {
    match case.mutation {
        Mutation::ModifyBooking(_) => "/v1/bookings/56287654-0a0a-554b-96c2-038ec2af81ed/modify",
        Mutation::CancelBooking(_) => "/v1/bookings/56287654-0a0a-554b-96c2-038ec2af81ed/cancel",
        Mutation::CreateBooking | Mutation::SetInventory => "/v1/bookings",
    }
}

/// What the ingress computes between reading the body and publishing: the request step,
/// the fingerprints the dedup tiers store, and the payload the producer sends.
fn prepare(case: &Case, map: &PartitionMap) -> (i32, String, Vec<u8>, RequestFingerprint) {
    let prepared =
        intake::prepare(case.mutation, &sender(), case.body, map).expect("the sample is valid");
    let fingerprint =
        RequestFingerprint::with(&prepared.fingerprint, "POST", path(case), case.body);
    let payload = prepared.envelope.to_json();
    (
        prepared.partition,
        prepared.routing_key,
        payload,
        fingerprint,
    )
}

fn fingerprints(c: &mut Criterion) {
    let mut group = c.benchmark_group("fingerprint");
    for case in cases() {
        let command =
            intake::command(case.mutation, &sender(), case.body).expect("the sample body is valid");
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
