//! The decisions feed through the whole pipeline: bookings in over HTTP, the consumer's
//! decisions on Kafka, `consumer feed` (its `run`, in process) appending them to each
//! partner's stream in Redis, and `GET /v1/decisions` / `POST /v1/decisions/ack` on the
//! ingress.
//!
//! Run with the local stack up (`infra/stack.sh up`); see `support` for the harness.

mod support;

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use loadtest::client::PartnerClient;
use redis::AsyncCommands;
use serde_json::{json, Value};
use support::{Pipeline, HOTEL_SECRET, OTHER_SECRET, TENANT, THIRD_SECRET};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// A running `consumer feed`.
struct Feed {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), consumers::Error>>,
}

impl Feed {
    /// Starts the feed on the pipeline's decisions topic in consumer group `group`.
    async fn start(pipeline: &Pipeline, group: &str) -> Feed {
        let config = consumers::Config::try_parse_from([
            "consumer",
            "--kafka-brokers",
            &support::brokers(),
            "--decisions-topic",
            &pipeline.topics.decisions,
            "--feed-group",
            group,
            "--redis-url",
            &support::redis_url(),
        ])
        .unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            consumers::feed::run(&config, admin, async {
                let _ = stopped.await;
            })
            .await
        });
        Feed { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().expect("the feed stopped cleanly");
    }
}

async fn get(client: &PartnerClient, path: &str) -> Value {
    let answer = client.get(path).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{path}: {:?}", answer.body);
    answer.body
}

/// Reads `client`'s feed from its acknowledged cursor until it holds `count` decisions.
async fn pending(client: &PartnerClient, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = get(client, "/v1/decisions?limit=1000").await;
        let decisions = page["decisions"].as_array().unwrap().clone();
        if decisions.len() >= count {
            assert_eq!(decisions.len(), count, "{page}");
            return decisions;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} decisions in the feed after 30 s: {page}",
            decisions.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn acknowledge(client: &PartnerClient, cursor: &str) -> (StatusCode, Value) {
    let answer = client
        .send(
            Method::POST,
            "/v1/decisions/ack",
            "unused",
            &json!({ "cursor": cursor }),
        )
        .await
        .unwrap();
    (answer.status, answer.body)
}

fn stay(property: &str) -> Value {
    json!({"tenant_id": TENANT, "property_id": property, "room_type": "DBL",
           "check_in": "2030-07-10", "check_out": "2030-07-12", "rooms": 1, "guests": 2,
           "amount_minor": 20_000, "currency": "EUR"})
}

async fn create(client: &PartnerClient, property: &str) -> String {
    let key = format!("feed-{}", Uuid::new_v4());
    let answer = client
        .send(Method::POST, "/v1/bookings", &key, &stay(property))
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
    answer.body["booking_id"].as_str().unwrap().to_owned()
}

/// The booking ids the entries' decisions name, sorted.
fn booking_ids(entries: &[Value]) -> Vec<String> {
    let ids: Vec<String> = entries
        .iter()
        .filter_map(|e| e["decision"]["booking_id"].as_str())
        .map(str::to_owned)
        .collect();
    sorted(&ids)
}

fn sorted(ids: &[String]) -> Vec<String> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids
}

fn cursors(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().to_owned())
        .collect()
}

/// Each partner pulls its own decisions only, in order, pages through them by cursor,
/// gets back what it did not acknowledge, and its acknowledgement only moves forward. A
/// hotel's own channel cancelling a partner's booking: both hear of it. A feed writer
/// reading the whole topic again appends nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_partner_pulls_its_own_decisions_and_gets_back_what_it_did_not_acknowledge() {
    let mut pipeline = Pipeline::start().await;
    // Feeds are keyed by partner, and the harness's partners are the same in every run:
    // start from empty feeds (no other test writes them).
    for partner in [support::PARTNER, "ota-2", "hotel-desk"] {
        let _: () = pipeline
            .redis
            .del(&[
                partitioner::keys::feed(partner),
                partitioner::keys::feed_through(partner),
                partitioner::keys::feed_acknowledged(partner),
            ])
            .await
            .unwrap();
    }
    let feed = Feed::start(&pipeline, &format!("{}-feed", pipeline.topics.decisions)).await;
    let property = format!("feed-{}", Uuid::new_v4().simple());
    let ours = pipeline.client.clone();
    let theirs = pipeline.client_for(OTHER_SECRET);
    let desk = pipeline.client_for(HOTEL_SECRET);

    support::allot(&ours, &property, "2030-07-01", "2030-07-31", 10).await;
    let mut own = Vec::new();
    for _ in 0..3 {
        own.push(create(&ours, &property).await);
    }
    let other = [
        create(&theirs, &property).await,
        create(&theirs, &property).await,
    ];

    // Partner ota-1: its allotment and its three creates, and nothing of ota-2's. (Order
    // holds per booking: the decisions topic is keyed by booking, so decisions of
    // different bookings may reach the feed in another order than they were made.)
    let entries = pending(&ours, 4).await;
    let mut outcomes: Vec<&str> = entries
        .iter()
        .map(|e| e["decision"]["outcome"].as_str().unwrap())
        .collect();
    outcomes.sort_unstable();
    assert_eq!(
        outcomes,
        ["allotment_set", "confirmed", "confirmed", "confirmed"]
    );
    assert_eq!(booking_ids(&entries), sorted(&own));
    assert!(entries
        .iter()
        .all(|e| e["decision"]["partner_id"] == "ota-1"));
    assert_eq!(booking_ids(&pending(&theirs, 2).await), sorted(&other));

    // Paging by cursor covers the same decisions, in the same order.
    let all = cursors(&entries);
    let first = get(&ours, "/v1/decisions?limit=2").await;
    assert_eq!(cursors(first["decisions"].as_array().unwrap()), all[..2]);
    assert_eq!(first["next_cursor"], all[1].as_str());
    let rest = get(&ours, &format!("/v1/decisions?cursor={}&limit=10", all[1])).await;
    assert_eq!(cursors(rest["decisions"].as_array().unwrap()), all[2..]);
    assert_eq!(rest["gap"], false);

    // Nothing acknowledged: a read without a cursor starts from the beginning again.
    assert_eq!(cursors(&pending(&ours, 4).await), all);
    let (status, body) = acknowledge(&ours, &all[1]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["acknowledged"], all[1].as_str());
    assert_eq!(cursors(&pending(&ours, 2).await), all[2..]);
    // An earlier cursor changes nothing; one past the newest decision is refused.
    let (status, body) = acknowledge(&ours, &all[0]).await;
    assert_eq!(
        (status, body["acknowledged"].as_str()),
        (StatusCode::OK, Some(all[1].as_str()))
    );
    let (status, body) = acknowledge(&ours, "99999999999999-0").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let page = get(&ours, "/v1/decisions").await;
    assert_eq!(page["acknowledged"], all[1].as_str());

    // The hotel's desk cancels one of ota-1's bookings: the desk and ota-1 both hear.
    let cancel = json!({"tenant_id": TENANT, "property_id": property});
    let answer = desk
        .send(
            Method::POST,
            &format!("/v1/bookings/{}/cancel", own[0]),
            &format!("feed-cancel-{}", own[0]),
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let after = pending(&ours, 3).await;
    let cancelled = &after[2]["decision"];
    assert_eq!(cancelled["outcome"], "cancelled");
    assert_eq!(cancelled["partner_id"], "hotel-desk");
    assert_eq!(cancelled["owner_id"], "ota-1");
    let desk_entries = pending(&desk, 1).await;
    assert_eq!(desk_entries[0]["decision"]["booking_id"], own[0].as_str());
    assert_eq!(
        pending(&theirs, 2).await.len(),
        2,
        "ota-2 hears nothing of it"
    );

    // Another writer reading the whole topic again (a group of its own, from the start):
    // every decision is already in its feeds, none is appended twice.
    feed.stop().await;
    let again = Feed::start(&pipeline, &format!("{}-again", pipeline.topics.decisions)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(cursors(&pending(&ours, 3).await), cursors(&after));
    assert_eq!(pending(&theirs, 2).await.len(), 2);
    again.stop().await;
}

/// A second writer joining the group while decisions flow takes partitions from the first
/// in the middle of its batches: neither stops (an offset the first can no longer store is
/// its successor's to read again), and every decision is in its feed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_joining_mid_batch_stop_none_and_append_nothing_twice() {
    const BOOKINGS: usize = 200;
    let mut pipeline = Pipeline::start().await;
    // A partner of its own: the test above reads ota-1's, ota-2's and the desk's feeds.
    let partner = "ota-3";
    let _: () = pipeline
        .redis
        .del(&[
            partitioner::keys::feed(partner),
            partitioner::keys::feed_through(partner),
            partitioner::keys::feed_acknowledged(partner),
        ])
        .await
        .unwrap();
    let group = format!("{}-shared", pipeline.topics.decisions);
    let first = Feed::start(&pipeline, &group).await;
    let theirs = pipeline.client_for(THIRD_SECRET);
    let property = format!("feed-{}", Uuid::new_v4().simple());
    support::allot(&theirs, &property, "2030-07-01", "2030-07-31", 1000).await;
    let sending = tokio::spawn({
        let (theirs, property) = (theirs.clone(), property.clone());
        async move {
            let mut booked = Vec::new();
            for _ in 0..BOOKINGS {
                booked.push(create(&theirs, &property).await);
            }
            booked
        }
    });
    // Writers join one after the other while the decisions arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = Feed::start(&pipeline, &group).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let third = Feed::start(&pipeline, &group).await;
    let booked = sending.await.unwrap();
    // Its allotment's decision and its bookings'.
    let entries = pending(&theirs, BOOKINGS + 1).await;
    assert_eq!(booking_ids(&entries), sorted(&booked));
    for (name, feed) in [("first", &first), ("second", &second), ("third", &third)] {
        assert!(!feed.task.is_finished(), "the {name} writer stopped");
    }
    first.stop().await;
    second.stop().await;
    third.stop().await;
}
