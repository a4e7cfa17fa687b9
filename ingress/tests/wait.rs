//! `Prefer: wait=N`: the real server holding a mutation's answer until its decision
//! arrives on its reply partition. The consumer is stood in for by an echo that reads
//! each event from the test's bookings topic and sends the decision its property name
//! asks for to the replies partition the event's `reply-partition` header names, on the
//! test's own replies topic, as a real consumer does (the real consumer's copy is
//! checked end to end in `loadtest/tests/pipeline.rs`). Needs the local stack
//! (`infra/stack.sh up`).

mod support;

use std::time::Duration;

use partitioner::{Decision, Envelope, Event, Outcome, RejectReason};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use support::process::IngressProcess;
use support::{Ingress, Reply, PARTITIONS};
use tokio::task::JoinHandle;

/// Properties whose events the echo never decides, so their waits run out.
const SILENT: &str = "silent-1";
/// Properties whose bookings the echo rejects as sold out.
const FULL: &str = "full-1";
/// Properties on which the echo plays a reused idempotency key: every event after the
/// property's first is preceded by a late copy of the first one's "confirmed" (a decision
/// the outbox sent again) under the same event id, then rejected as a reuse.
const REUSED: &str = "reused-1";

fn booking(property: &str) -> Value {
    json!({
        "tenant_id": "acme", "property_id": property, "room_type": "DBL",
        "check_in": "2027-03-10", "check_out": "2027-03-12", "rooms": 1, "guests": 2,
        "amount_minor": 25000, "currency": "EUR", "guest_name": "Ada Lovelace"
    })
}

/// Partitions of each test's replies topic.
const REPLY_PARTITIONS: i32 = 4;

/// An ingress on a fresh bookings topic reading a fresh replies topic, with the echo
/// answering on it.
async fn start() -> (Ingress, JoinHandle<()>) {
    let bookings = support::create_topic(PARTITIONS).await;
    let replies = support::create_topic(REPLY_PARTITIONS).await;
    let echo = tokio::spawn(echo(bookings.clone(), replies.clone()));
    let ingress = Ingress::spawn(&bookings, &[&format!("--replies-topic={replies}")]);
    ingress.wait_ready().await;
    (ingress, echo)
}

/// The replies partition `message`'s sender named, which it must have: the echo is only
/// ever asked to decide events of waiting requests or of none.
fn reply_partition(message: &impl Message) -> Option<i32> {
    let value = message
        .headers()?
        .iter()
        .find(|h| h.key == partitioner::event::headers::REPLY_PARTITION)?
        .value?;
    Some(std::str::from_utf8(value).unwrap().parse().unwrap())
}

/// Sends a decision for every event of `bookings` whose sender waits to the replies
/// partition it named: confirmed, modified or cancelled as the event asks, rejected as
/// sold out on [`FULL`], none at all on [`SILENT`].
async fn echo(bookings: String, replies: String) {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", support::brokers())
        .set("group.id", format!("wait-echo-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("echo consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(&bookings, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", support::brokers())
        .create()
        .expect("echo producer");
    loop {
        let message = consumer
            .recv()
            .await
            .expect("echo reads the bookings topic");
        let envelope = Envelope::from_json(message.payload().unwrap()).unwrap();
        let Some(reply_partition) = reply_partition(&message) else {
            continue;
        };
        if envelope.property_id == SILENT {
            continue;
        }
        let reused = envelope.property_id == REUSED && message.offset() > 0;
        if reused {
            let first = message.offset() - 1;
            let late = json!({
                "event_id": envelope.event_id, "booking_id": envelope.event.booking_id(),
                "tenant_id": envelope.tenant_id, "property_id": envelope.property_id,
                "event_type": envelope.event.kind(), "outcome": "confirmed",
                "partition": message.partition(), "offset": first, "record_offset": first,
            });
            let key = envelope.event_id.to_string();
            let payload = serde_json::to_vec(&late).unwrap();
            let record = FutureRecord::to(&replies)
                .partition(reply_partition)
                .key(&key)
                .payload(&payload);
            producer
                .send(record, Duration::from_secs(10))
                .await
                .expect("echo publishes the late decision");
        }
        let (outcome, reason) = match (&envelope.event, envelope.property_id.as_str()) {
            _ if reused => (Outcome::Rejected, Some(RejectReason::IdempotencyKeyReused)),
            (_, FULL) => (Outcome::Rejected, Some(RejectReason::SoldOut)),
            (Event::CreateBooking { .. }, _) => (Outcome::Confirmed, None),
            (Event::ModifyBooking { .. }, _) => (Outcome::Modified, None),
            (Event::CancelBooking { .. }, _) => (Outcome::Cancelled, None),
            (Event::SetAllotment { .. }, _) => (Outcome::AllotmentSet, None),
        };
        let decision = Decision {
            event_id: envelope.event_id,
            booking_id: envelope.event.booking_id(),
            tenant_id: envelope.tenant_id.clone(),
            property_id: envelope.property_id.clone(),
            event_type: envelope.event.kind().to_owned(),
            outcome,
            reason,
            partition: message.partition(),
            offset: message.offset(),
            record_offset: Some(message.offset()),
            partner_id: Some(envelope.partner_id.clone()),
            owner_id: None,
        };
        let payload = serde_json::to_vec(&decision).unwrap();
        let key = decision.event_id.to_string();
        let record = FutureRecord::to(&replies)
            .partition(reply_partition)
            .key(&key)
            .payload(&payload);
        producer
            .send(record, Duration::from_secs(10))
            .await
            .expect("echo publishes the decision");
    }
}

fn assert_status(reply: &Reply, status: u16) -> Value {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

#[tokio::test]
async fn a_waiting_partner_gets_the_decision() {
    let (ingress, echo) = start().await;

    let created = ingress
        .post("/v1/bookings")
        .header("prefer", "wait=5")
        .header("idempotency-key", "wait-create-1")
        .json(&booking("lisbon-1"))
        .await;
    let body = assert_status(&created, 201);
    assert_eq!(created.header("preference-applied"), "wait=5");
    assert_eq!(body["status"], "confirmed");
    assert_eq!(body["outcome"], "confirmed");
    let booking_id = partitioner::booking_id("acme", "ota-1", "wait-create-1");
    assert_eq!(body["booking_id"], booking_id.to_string());
    assert_eq!(body["event_id"], booking_id.to_string());

    // The idempotency record is the 202: a replay answers at once with where the event went.
    let replay = ingress
        .post("/v1/bookings")
        .header("prefer", "wait=5")
        .header("idempotency-key", "wait-create-1")
        .json(&booking("lisbon-1"))
        .await;
    let replayed = assert_status(&replay, 202);
    assert_eq!(replay.header("idempotent-replayed"), "true");
    assert_eq!(replay.header("preference-applied"), "");
    assert_eq!(replayed["event_id"], body["event_id"]);
    assert_eq!(replayed["offset"], body["offset"]);

    let mut change = booking("lisbon-1");
    change.as_object_mut().unwrap().remove("guest_name");
    let modified = ingress
        .post(&format!("/v1/bookings/{booking_id}/modify"))
        // Beyond the ceiling: clamped, and the answer says what was applied.
        .header("prefer", "respond-async, wait=60")
        .json(&change)
        .await;
    assert_eq!(assert_status(&modified, 200)["outcome"], "modified");
    assert_eq!(modified.header("preference-applied"), "wait=5");

    let cancelled = ingress
        .post(&format!("/v1/bookings/{booking_id}/cancel"))
        .header("prefer", "wait=3")
        .json(&json!({"tenant_id": "acme", "property_id": "lisbon-1"}))
        .await;
    assert_eq!(assert_status(&cancelled, 200)["outcome"], "cancelled");
    assert_eq!(cancelled.header("preference-applied"), "wait=3");

    echo.abort();
    ingress.stop().await.unwrap();
}

#[tokio::test]
async fn a_rejected_booking_is_a_conflict_naming_the_reason() {
    let (ingress, echo) = start().await;
    let rejected = ingress
        .post("/v1/bookings")
        .header("prefer", "wait=5")
        .json(&booking(FULL))
        .await;
    let problem = assert_status(&rejected, 409);
    assert_eq!(rejected.header("content-type"), "application/problem+json");
    assert_eq!(rejected.header("preference-applied"), "wait=5");
    assert_eq!(rejected.header("retry-after"), "", "a rejection is final");
    assert_eq!(problem["type"], "/problems/booking-rejected");
    assert_eq!(problem["reason"], "sold_out");
    assert!(problem["detail"].as_str().unwrap().contains("sold_out"));
    echo.abort();
    ingress.stop().await.unwrap();
}

/// A decision names the copy of the event it answers: a waiting request takes only the
/// one for the record it published, never a late decision on an earlier copy under the
/// same event id (which a reused Idempotency-Key shares).
#[tokio::test]
async fn a_waiting_partner_gets_the_decision_on_its_own_copy_only() {
    let (ingress, echo) = start().await;
    // The property's first event, so the next one on its partition has an earlier copy.
    let first = ingress.post("/v1/bookings").json(&booking(REUSED)).await;
    assert_eq!(assert_status(&first, 202)["offset"], 0);

    let reused = ingress
        .post("/v1/bookings")
        .header("prefer", "wait=5")
        .json(&booking(REUSED))
        .await;
    let problem = assert_status(&reused, 409);
    assert_eq!(problem["reason"], "idempotency_key_reused");
    echo.abort();
    ingress.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_decision_in_time_or_a_wait_preference_the_answer_is_202() {
    let (ingress, echo) = start().await;

    let timed_out = ingress
        .post("/v1/bookings")
        .header("prefer", "wait=1")
        .json(&booking(SILENT))
        .await;
    assert_eq!(assert_status(&timed_out, 202)["status"], "accepted");
    assert_eq!(timed_out.header("preference-applied"), "");

    // The echo decides this one, but nobody asked to wait for it.
    let plain = ingress.post("/v1/bookings").json(&booking("porto-1")).await;
    assert_eq!(assert_status(&plain, 202)["status"], "accepted");
    assert_eq!(plain.header("preference-applied"), "");

    // Inventory never waits, whatever it asks.
    let inventory = ingress
        .put("/v1/inventory")
        .header("prefer", "wait=5")
        .json(
            &json!({"tenant_id": "acme", "property_id": "porto-1", "room_type": "DBL",
                      "from": "2027-03-01", "to": "2027-04-01", "units": 10}),
        )
        .await;
    assert_status(&inventory, 202);
    assert_eq!(inventory.header("preference-applied"), "");

    echo.abort();
    ingress.stop().await.unwrap();
}

#[tokio::test]
async fn a_missing_replies_topic_leaves_requests_unharmed() {
    let bookings = support::create_topic(PARTITIONS).await;
    let missing = format!("ingress-test-missing-{}", uuid::Uuid::new_v4());
    let ingress = Ingress::spawn(&bookings, &[&format!("--replies-topic={missing}")]);
    ingress.wait_ready().await;

    let plain = ingress.post("/v1/bookings").json(&booking("porto-1")).await;
    assert_status(&plain, 202);
    let waited = ingress
        .post("/v1/bookings")
        .header("prefer", "wait=1")
        .json(&booking("porto-1"))
        .await;
    assert_status(&waited, 202);
    assert_eq!(waited.header("preference-applied"), "");
    ingress.stop().await.unwrap();
}

/// The decisions fan-in, removed: three ingress processes share one replies group, so
/// each reads the replies of its own waiting requests and none of the others', where
/// each used to read every decision. When one stops, the others take its partitions over
/// and their waits go on being answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_of_three_ingresses_reads_only_the_decisions_it_waits_for() {
    const REPLIES: i32 = 6;
    const WAITS_EACH: usize = 20;
    let bookings = support::create_topic(PARTITIONS).await;
    let replies = support::create_topic(REPLIES).await;
    let echo = tokio::spawn(echo(bookings.clone(), replies.clone()));
    let partners = support::partners_file();
    let shared = [
        format!("--replies-topic={replies}"),
        format!(
            "--replies-group=ingress-test-{}",
            uuid::Uuid::new_v4().simple()
        ),
    ];
    let flags: Vec<&str> = shared.iter().map(String::as_str).collect();
    let mut ingresses = Vec::new();
    for _ in 0..3 {
        let brokers = support::brokers();
        ingresses.push(IngressProcess::start(partners.path(), &brokers, &bookings, &flags).await);
    }
    // The group settles with two partitions each (cooperative rebalancing takes rounds),
    // and the partitions that moved as members joined are let go by their first reader
    // once no wait can still name them.
    for ingress in &ingresses {
        ingress.wait_metric("ingress_reply_partitions", 2.0).await;
        ingress
            .wait_metric("ingress_reply_partitions_read", 2.0)
            .await;
    }

    for round in 0..WAITS_EACH {
        for (n, ingress) in ingresses.iter().enumerate() {
            let created = ingress
                .post("/v1/bookings")
                .header("prefer", "wait=5")
                .header("idempotency-key", &format!("fan-in-{n}-{round}"))
                .json(&booking(&format!("fan-in-{n}")))
                .await;
            assert_eq!(assert_status(&created, 201)["outcome"], "confirmed");
        }
    }
    // A plain request's decision goes to no ingress at all.
    assert_status(
        &ingresses[0]
            .post("/v1/bookings")
            .json(&booking("plain-1"))
            .await,
        202,
    );
    let mut read = Vec::new();
    for ingress in &ingresses {
        read.push(
            ingress
                .metric("ingress_decisions_read_total")
                .await
                .unwrap_or(0.0),
        );
    }
    println!(
        "decisions read per ingress: {read:?}, for {} accepted events of which {WAITS_EACH} \
         waited for on each ingress (a reader of every decision reads them all on each)",
        3 * WAITS_EACH + 1
    );
    assert_eq!(
        read,
        vec![WAITS_EACH as f64; 3],
        "each reads its own replies only"
    );

    // One stops (SIGTERM, as an orchestrator stops it) and leaves the group: the two
    // left share its partitions and keep answering.
    let mut leaving = ingresses.pop().unwrap();
    leaving.signal("TERM");
    for _ in 0..100 {
        if !leaving.is_running() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!leaving.is_running(), "the ingress did not stop on SIGTERM");
    for ingress in &ingresses {
        ingress.wait_metric("ingress_reply_partitions", 3.0).await;
    }
    for (n, ingress) in ingresses.iter().enumerate() {
        let created = ingress
            .post("/v1/bookings")
            .header("prefer", "wait=5")
            .json(&booking(&format!("after-{n}")))
            .await;
        assert_eq!(assert_status(&created, 201)["outcome"], "confirmed");
    }
    echo.abort();
}
