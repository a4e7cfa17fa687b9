//! Whole-pipeline tests: HTTP in, Apache Kafka, the consumer, the store and Redis out.
//!
//! Run with the local stack up (`infra/stack.sh up`); see `support` for the harness.

mod support;

use std::time::Duration;

use consumers::apply::BookingStatus;
use consumers::store::{PartitionStore, Store};
use http::{Method, StatusCode};
use loadtest::client::{Answer, PartnerClient};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use serde_json::json;
use support::{read_all, Pipeline, TENANT};
use uuid::Uuid;

const NIGHT: &str = "2030-06-10";

fn stay(property: &str, check_in: &str, check_out: &str, rooms: u32) -> serde_json::Value {
    json!({"tenant_id": TENANT, "property_id": property, "room_type": "DBL",
           "check_in": check_in, "check_out": check_out, "rooms": rooms, "guests": rooms,
           "amount_minor": 20_000, "currency": "EUR"})
}

fn position(answer: &Answer) -> (i32, i64) {
    (
        answer.body["partition"].as_i64().unwrap() as i32,
        answer.body["offset"].as_i64().unwrap(),
    )
}

fn booking_id(answer: &Answer) -> Uuid {
    answer.body["booking_id"].as_str().unwrap().parse().unwrap()
}

/// `body` POSTed to `path` under `key` by `client`, waiting up to 5 s for its decision.
async fn post_waiting(
    client: &PartnerClient,
    path: &str,
    key: &str,
    body: &serde_json::Value,
) -> Answer {
    let wait = [("prefer", "wait=5")];
    client
        .send_with(Method::POST, path, key, body, &wait)
        .await
        .unwrap()
}

/// A decided rejection: 409 naming `reason`.
fn assert_rejected(answer: &Answer, reason: &str) {
    assert_eq!(answer.status, StatusCode::CONFLICT, "{:?}", answer.body);
    assert_eq!(answer.body["reason"], reason, "{:?}", answer.body);
}

/// Invariants 1, 2 and 5: a 202 names where the event is in Kafka; inventory and bookings
/// of a property share its partition; the consumer applies them in order into the store
/// and Redis, and publishes its decisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_flows_from_http_to_store_redis_and_decisions() {
    let mut pipeline = Pipeline::start().await;
    let allotment =
        support::allot(&pipeline.client, "lisbon-1", "2030-06-09", "2030-06-13", 2).await;

    let created = pipeline
        .client
        .send(
            Method::POST,
            "/v1/bookings",
            "create-1",
            &stay("lisbon-1", "2030-06-10", "2030-06-12", 1),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:?}", created.body);
    let id = booking_id(&created);
    let (partition, offset) = position(&created);
    assert_eq!(
        position(&allotment).0,
        partition,
        "inventory shares the property's partition"
    );
    pipeline.settled(partition, offset).await;
    assert_eq!(
        pipeline.booking_status(id).await.as_deref(),
        Some("confirmed")
    );
    assert_eq!(pipeline.remaining("lisbon-1", "DBL", NIGHT).await, Some(1));
    assert_eq!(
        pipeline.remaining("lisbon-1", "DBL", "2030-06-09").await,
        Some(2)
    );

    let modified = pipeline
        .client
        .send(
            Method::POST,
            &format!("/v1/bookings/{id}/modify"),
            "modify-1",
            &stay("lisbon-1", "2030-06-11", "2030-06-13", 2),
        )
        .await
        .unwrap();
    assert_eq!(modified.status, StatusCode::ACCEPTED, "{:?}", modified.body);
    assert_eq!(position(&modified).0, partition);
    pipeline.settled(partition, position(&modified).1).await;
    assert_eq!(
        pipeline.remaining("lisbon-1", "DBL", NIGHT).await,
        Some(2),
        "night released"
    );
    assert_eq!(
        pipeline.remaining("lisbon-1", "DBL", "2030-06-12").await,
        Some(0)
    );

    let cancelled = pipeline
        .client
        .send(
            Method::POST,
            &format!("/v1/bookings/{id}/cancel"),
            "cancel-1",
            &json!({"tenant_id": TENANT, "property_id": "lisbon-1"}),
        )
        .await
        .unwrap();
    assert_eq!(
        cancelled.status,
        StatusCode::ACCEPTED,
        "{:?}",
        cancelled.body
    );
    pipeline.settled(partition, position(&cancelled).1).await;
    assert_eq!(
        pipeline.booking_status(id).await.as_deref(),
        Some("cancelled")
    );
    assert_eq!(
        pipeline.remaining("lisbon-1", "DBL", "2030-06-12").await,
        Some(2)
    );

    let decisions = read_all(&pipeline.topics.decisions, 4).await;
    let outcomes: Vec<String> = decisions
        .iter()
        .filter_map(|(_, payload)| serde_json::from_slice::<serde_json::Value>(payload).ok())
        .filter(|d| d["booking_id"] == id.to_string())
        .map(|d| d["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outcomes, ["confirmed", "modified", "cancelled"]);

    let store = pipeline.stop_consumer().await;
    let state = store.open(partition).unwrap();
    let booking = state.booking(id).unwrap().expect("booking in the store");
    assert_eq!(booking.status, BookingStatus::Cancelled);
    let offsets: Vec<i64> = booking.history.iter().map(|h| h.offset).collect();
    assert_eq!(
        offsets,
        [offset, position(&modified).1, position(&cancelled).1]
    );
    assert_eq!(state.checkpoint().unwrap(), Some(position(&cancelled).1));
}

/// Invariant 2: many partners racing for the last rooms of a night: exactly as many win as
/// there are rooms, decided in partition order without locks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_rooms_go_to_exactly_as_many_bookings() {
    const ROOMS: u32 = 3;
    const RACERS: usize = 40;
    let mut pipeline = Pipeline::start().await;
    support::allot(&pipeline.client, "porto-9", NIGHT, "2030-06-11", ROOMS).await;
    let body = stay("porto-9", NIGHT, "2030-06-11", 1);
    let answers = futures::future::join_all((0..RACERS).map(|i| {
        let (client, body) = (pipeline.client.clone(), body.clone());
        async move {
            client
                .send(Method::POST, "/v1/bookings", &format!("race-{i}"), &body)
                .await
                .unwrap()
        }
    }))
    .await;
    assert!(answers.iter().all(|a| a.status == StatusCode::ACCEPTED));
    let partition = position(&answers[0]).0;
    let last = answers.iter().map(|a| position(a).1).max().unwrap();
    pipeline.settled(partition, last).await;

    let mut confirmed = 0;
    for answer in &answers {
        match pipeline.booking_status(booking_id(answer)).await.as_deref() {
            Some("confirmed") => confirmed += 1,
            Some("rejected") => {}
            other => panic!("unexpected status {other:?}"),
        }
    }
    assert_eq!(confirmed, ROOMS);
    assert_eq!(pipeline.remaining("porto-9", "DBL", NIGHT).await, Some(0));

    let store = pipeline.stop_consumer().await;
    let nights = store.open(partition).unwrap().nights().unwrap();
    let night = nights
        .iter()
        .find(|(id, _)| id.property_id == "porto-9")
        .unwrap()
        .1;
    assert_eq!((night.allotment, night.sold), (ROOMS, ROOMS));
}

/// `Prefer: wait`: a partner can hold out for the real consumer's decision: 201 while
/// rooms are left, then 409 `sold_out` once they are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_partner_gets_the_consumers_decision() {
    let mut pipeline = Pipeline::start().await;
    let allotment = support::allot(&pipeline.client, "faro-3", NIGHT, "2030-06-11", 1).await;
    // Once the consumer has applied the allotment it is assigned and caught up, so the
    // waits below cover deciding one event, not the consumer's startup.
    let (partition, offset) = position(&allotment);
    pipeline.settled(partition, offset).await;
    let body = stay("faro-3", NIGHT, "2030-06-11", 1);

    let first = post_waiting(&pipeline.client, "/v1/bookings", "wait-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.headers["preference-applied"], "wait=5");
    assert_eq!(first.body["outcome"], "confirmed");

    let second = post_waiting(&pipeline.client, "/v1/bookings", "wait-2", &body).await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{:?}", second.body);
    assert_eq!(second.headers["preference-applied"], "wait=5");
    assert_eq!(second.body["type"], "/problems/booking-rejected");
    assert_eq!(second.body["reason"], "sold_out");
}

/// Invariant 3: a request resent with the same Idempotency-Key names the same booking and
/// is applied once. (The ingress usually answers the resend from its idempotency record;
/// an event that does reach Kafka twice is dropped by the consumer, as
/// `consumers/src/store/conformance.rs` checks.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_request_is_applied_once() {
    let mut pipeline = Pipeline::start().await;
    support::allot(&pipeline.client, "faro-2", NIGHT, "2030-06-11", 5).await;
    let body = stay("faro-2", NIGHT, "2030-06-11", 2);
    let first = pipeline
        .client
        .send(Method::POST, "/v1/bookings", "same-key", &body)
        .await
        .unwrap();
    let again = pipeline
        .client
        .send(Method::POST, "/v1/bookings", "same-key", &body)
        .await
        .unwrap();
    assert_eq!(booking_id(&first), booking_id(&again));
    assert_eq!(first.body["event_id"], again.body["event_id"]);
    let (partition, offset) = position(&again);
    pipeline.settled(partition, offset).await;
    assert_eq!(
        pipeline.remaining("faro-2", "DBL", NIGHT).await,
        Some(3),
        "two rooms taken once"
    );

    let store = pipeline.stop_consumer().await;
    let booking = store
        .open(partition)
        .unwrap()
        .booking(booking_id(&first))
        .unwrap()
        .unwrap();
    assert_eq!(booking.history.len(), 1);
}

/// A booking belongs to the partner that created it. Another partner of the same tenant
/// can neither cancel, modify nor read it: each is answered exactly like an unknown
/// booking, so ids are not confirmed to outsiders. The hotel's own channel
/// (`bookings:any-partner`) may act on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_partner_cannot_touch_a_booking() {
    let mut pipeline = Pipeline::start().await;
    let allotment = support::allot(&pipeline.client, "braga-1", NIGHT, "2030-06-13", 5).await;
    let (partition, offset) = position(&allotment);
    pipeline.settled(partition, offset).await;
    let created = post_waiting(
        &pipeline.client,
        "/v1/bookings",
        "owned-1",
        &stay("braga-1", NIGHT, "2030-06-11", 1),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = booking_id(&created);

    let other = pipeline.client_for(support::OTHER_SECRET);
    let cancel = post_waiting(
        &other,
        &format!("/v1/bookings/{id}/cancel"),
        "foreign-cancel",
        &json!({"tenant_id": TENANT, "property_id": "braga-1"}),
    )
    .await;
    assert_rejected(&cancel, "booking_not_found");
    let modify = post_waiting(
        &other,
        &format!("/v1/bookings/{id}/modify"),
        "foreign-modify",
        &stay("braga-1", NIGHT, "2030-06-12", 1),
    )
    .await;
    assert_rejected(&modify, "booking_not_found");
    let read = other.get(&format!("/v1/bookings/{id}")).await.unwrap();
    assert_eq!(read.status, StatusCode::NOT_FOUND, "{:?}", read.body);
    let unknown = other
        .get(&format!("/v1/bookings/{}", Uuid::new_v4()))
        .await
        .unwrap();
    assert_eq!(
        read.body["type"], unknown.body["type"],
        "same answer as an unknown id"
    );

    let own = pipeline
        .client
        .get(&format!("/v1/bookings/{id}"))
        .await
        .unwrap();
    assert_eq!(own.status, StatusCode::OK, "{:?}", own.body);
    assert_eq!(own.body["status"], "confirmed");
    assert_eq!(
        own.body["check_out"], "2030-06-11",
        "the foreign modify changed nothing"
    );

    let hotel = pipeline.client_for(support::HOTEL_SECRET);
    let cancel = post_waiting(
        &hotel,
        &format!("/v1/bookings/{id}/cancel"),
        "desk-cancel",
        &json!({"tenant_id": TENANT, "property_id": "braga-1"}),
    )
    .await;
    assert_eq!(cancel.status, StatusCode::OK, "{:?}", cancel.body);
    assert_eq!(cancel.body["outcome"], "cancelled");
    let read = hotel.get(&format!("/v1/bookings/{id}")).await.unwrap();
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
}

/// An Idempotency-Key every cache has forgotten, reused for another request: the event
/// reaches the consumer with the id of the first one. It is not the first one, so it is
/// rejected as `idempotency_key_reused`, never answered with the first one's decision;
/// a true resend of the first request is still answered with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_key_reused_for_another_request_is_never_confirmed() {
    let mut pipeline = Pipeline::start().await;
    let allotment = support::allot(&pipeline.client, "braga-2", NIGHT, "2030-06-20", 5).await;
    let (partition, offset) = position(&allotment);
    pipeline.settled(partition, offset).await;
    let first_stay = stay("braga-2", NIGHT, "2030-06-11", 1);
    let first = post_waiting(&pipeline.client, "/v1/bookings", "reused-key", &first_stay).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let id = booking_id(&first);

    pipeline.restart_ingress_forgetting_keys().await;
    let other_dates = post_waiting(
        &pipeline.client,
        "/v1/bookings",
        "reused-key",
        &stay("braga-2", "2030-06-15", "2030-06-18", 2),
    )
    .await;
    assert_rejected(&other_dates, "idempotency_key_reused");
    pipeline.restart_ingress_forgetting_keys().await;
    let cancel = post_waiting(
        &pipeline.client,
        &format!("/v1/bookings/{id}/cancel"),
        "reused-key",
        &json!({"tenant_id": TENANT, "property_id": "braga-2"}),
    )
    .await;
    assert_rejected(&cancel, "idempotency_key_reused");
    assert_eq!(
        pipeline.remaining("braga-2", "DBL", "2030-06-16").await,
        Some(5),
        "the reused request's nights were never booked"
    );

    pipeline.restart_ingress_forgetting_keys().await;
    let resent = post_waiting(&pipeline.client, "/v1/bookings", "reused-key", &first_stay).await;
    assert_eq!(resent.status, StatusCode::CREATED, "{:?}", resent.body);
    assert_eq!(booking_id(&resent), id);
    let read = pipeline
        .client
        .get(&format!("/v1/bookings/{id}"))
        .await
        .unwrap();
    assert_eq!(read.body["status"], "confirmed");
    assert_eq!(read.body["check_out"], "2030-06-11");
}

/// Invariant 7: an event the consumer cannot decode, or that fails the validation the
/// ingress would have applied (here an id with `/`, which no key of the store or of Redis
/// can hold), goes to the dead-letter topic with its reason and source, and the events
/// behind it on the partition are still applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_event_is_dead_lettered_without_blocking_its_partition() {
    let mut pipeline = Pipeline::start().await;
    let allotment = support::allot(&pipeline.client, "braga-4", NIGHT, "2030-06-11", 1).await;
    let (partition, _) = position(&allotment);

    let malformed = b"{\"schema_version\": 1, \"event\": ".to_vec();
    let night: chrono::NaiveDate = NIGHT.parse().unwrap();
    let allot_slash = partitioner::Event::SetAllotment {
        room_type: "DBL".into(),
        from: night,
        to: night.succ_opt().unwrap(),
        units: 3,
    };
    let mut invalid = envelope_for("braga-4", allot_slash);
    invalid.property_id = "braga/4".into();
    let invalid = invalid.to_json();
    produce(&pipeline, partition, &[&malformed, &invalid]);

    let created = pipeline
        .client
        .send(
            Method::POST,
            "/v1/bookings",
            "after-poison",
            &stay("braga-4", NIGHT, "2030-06-11", 1),
        )
        .await
        .unwrap();
    pipeline.settled(partition, position(&created).1).await;
    assert_eq!(
        pipeline
            .booking_status(booking_id(&created))
            .await
            .as_deref(),
        Some("confirmed")
    );

    let dead = read_all(&pipeline.topics.dlq, 2).await;
    let mut payloads: Vec<&Vec<u8>> = dead.iter().map(|(_, payload)| payload).collect();
    payloads.sort();
    let mut expected = [&malformed, &invalid];
    expected.sort();
    assert_eq!(payloads, expected);
    let (headers, _) = dead
        .iter()
        .find(|(_, payload)| payload == &invalid)
        .unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("dlq-source-partition"), Some(partition.to_string()));
    assert_eq!(
        header("dlq-source-topic"),
        Some(pipeline.topics.bookings.clone())
    );
    let reason = header("dlq-reason").unwrap();
    assert!(reason.contains("property_id"), "{reason}");
}

fn envelope_for(property: &str, event: partitioner::Event) -> partitioner::Envelope {
    partitioner::Envelope::new(
        partitioner::Command {
            tenant_id: TENANT.into(),
            property_id: property.into(),
            event,
        },
        partitioner::EventMeta {
            event_id: Uuid::new_v4(),
            partner_id: "ota-1".into(),
            request_id: "r".into(),
            received_at_ms: 0,
            any_partner: false,
        },
    )
}

/// Produces `payloads`, in order, straight to the bookings topic's `partition`.
fn produce(pipeline: &Pipeline, partition: i32, payloads: &[&Vec<u8>]) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", support::brokers())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for payload in payloads {
        producer
            .send(
                BaseRecord::to(&pipeline.topics.bookings)
                    .partition(partition)
                    .key("acme/braga")
                    .payload(*payload),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}
