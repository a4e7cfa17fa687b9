//! Webhook delivery through the whole pipeline: bookings in over HTTP, the consumer's
//! decisions on Kafka, `consumer deliver` POSTing them to a test receiver (the test's own
//! hyper server, which checks every signature itself) through its faults: 500s, 429 with
//! `Retry-After`, slowness past the timeout, its port closed, 410 Gone, a retry period
//! running out, and the delivery process killed with SIGKILL. A checker compares what the
//! receiver accepted with the decisions topic: every decision reached each of its
//! partners, in order per booking, and none reached another partner.
//!
//! Run with the local stack up (`infra/stack.sh up`); see `support` for the harness.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

use clap::Parser;
use http::{Method, StatusCode};
use loadtest::client::PartnerClient;
use redis::AsyncCommands;
use serde_json::{json, Value};
use support::receiver::{Answer, Delivery, Receiver};
use support::{Pipeline, HOTEL_SECRET, OTHER_SECRET, TENANT};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The tests share the harness's partners, whose outboxes are keyed by partner: one at
/// a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PARTNERS: [&str; 3] = [support::PARTNER, "ota-2", "hotel-desk"];
/// Each partner's webhook signing secret (32 bytes or more).
fn webhook_secret(partner: &str) -> String {
    format!("webhook-secret-of-{partner}-0123456789abcdef")
}

/// Empties the partners' outboxes, guards and leases left by earlier runs.
async fn clear_outboxes(pipeline: &mut Pipeline) {
    for partner in PARTNERS {
        let _: () = pipeline
            .redis
            .del(&[
                partitioner::keys::webhook_outbox(partner),
                partitioner::keys::webhook_through(partner),
                partitioner::keys::webhook_lease(partner),
            ])
            .await
            .unwrap();
    }
}

/// A partners file naming each of `partners`' endpoint at `receiver`.
fn endpoints_file(receiver: &Receiver, partners: &[&str]) -> tempfile::NamedTempFile {
    let entries: Vec<Value> = partners
        .iter()
        .map(|partner| {
            json!({"partner_id": partner, "webhook": {"url": receiver.url(partner),
                   "signing_secret": webhook_secret(partner), "concurrency": 4}})
        })
        .collect();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(json!({ "partners": entries }).to_string().as_bytes())
        .unwrap();
    file
}

/// The delivery service's arguments for `pipeline`: fast retries, a short timeout.
fn deliver_args(
    pipeline: &Pipeline,
    partners_file: &std::path::Path,
    retry_for_secs: u64,
) -> Vec<String> {
    [
        "consumer",
        "--kafka-brokers",
        &support::brokers(),
        "--decisions-topic",
        &pipeline.topics.decisions,
        "--webhook-group",
        &format!("{}-deliver", pipeline.topics.decisions),
        // The group may join after the first decisions are published.
        "--webhook-start",
        "earliest",
        "--webhook-dlq-topic",
        &webhook_dlq(pipeline),
        "--redis-url",
        &support::redis_url(),
        "--partners-file",
        partners_file.to_str().unwrap(),
        "--webhook-backoff-first-ms",
        "50",
        "--webhook-backoff-max-secs",
        "1",
        "--webhook-timeout-ms",
        "500",
        "--webhook-retry-for-secs",
        &retry_for_secs.to_string(),
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect()
}

fn webhook_dlq(pipeline: &Pipeline) -> String {
    format!("{}-webhook-dlq", pipeline.topics.decisions)
}

/// A running `consumer deliver`, in process.
struct Deliverer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), consumers::Error>>,
}

impl Deliverer {
    async fn start(args: Vec<String>) -> Deliverer {
        let config = consumers::Config::try_parse_from(args).unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            consumers::webhook::run(&config, admin, async {
                let _ = stopped.await;
            })
            .await
        });
        Deliverer { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .unwrap()
            .expect("the delivery service stopped cleanly");
    }
}

/// A pipeline of its own, the only one of this file running: the partners' outboxes
/// emptied, the webhook dead-letter topic made.
async fn exclusive_pipeline() -> (tokio::sync::MutexGuard<'static, ()>, Pipeline) {
    let serial = ONE_AT_A_TIME.lock().await;
    let mut pipeline = Pipeline::start().await;
    clear_outboxes(&mut pipeline).await;
    consumers::topics::ensure_topics(&support::brokers(), &[(&webhook_dlq(&pipeline), 1)], 1)
        .await
        .unwrap();
    (serial, pipeline)
}

/// Each of `partners` with its webhook secret, for a receiver.
fn secrets<'a>(partners: &[&'a str]) -> Vec<(&'a str, String)> {
    partners
        .iter()
        .map(|partner| (*partner, webhook_secret(partner)))
        .collect()
}

fn stay(property: &str) -> Value {
    json!({"tenant_id": TENANT, "property_id": property, "room_type": "DBL",
           "check_in": "2030-07-10", "check_out": "2030-07-12", "rooms": 1, "guests": 2,
           "amount_minor": 20_000, "currency": "EUR"})
}

async fn create(client: &PartnerClient, property: &str) -> String {
    let answer = client
        .send(
            Method::POST,
            "/v1/bookings",
            &format!("hook-{}", Uuid::new_v4()),
            &stay(property),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
    answer.body["booking_id"].as_str().unwrap().to_owned()
}

async fn modify(client: &PartnerClient, property: &str, booking: &str) {
    let mut body = stay(property);
    body["guests"] = json!(1);
    let path = format!("/v1/bookings/{booking}/modify");
    let key = format!("hook-{}", Uuid::new_v4());
    let answer = client.send(Method::POST, &path, &key, &body).await.unwrap();
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
}

async fn cancel(client: &PartnerClient, property: &str, booking: &str) {
    let body = json!({"tenant_id": TENANT, "property_id": property});
    let path = format!("/v1/bookings/{booking}/cancel");
    let key = format!("hook-{}", Uuid::new_v4());
    let answer = client.send(Method::POST, &path, &key, &body).await.unwrap();
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
}

/// Every decision on the topic, as JSON, in the topic's order per partition.
async fn decisions(pipeline: &Pipeline, expected: usize) -> Vec<Value> {
    support::read_all(&pipeline.topics.decisions, expected)
        .await
        .into_iter()
        .map(|(_, payload)| serde_json::from_slice(&payload).unwrap())
        .collect()
}

/// What each partner with an endpoint should receive: the delivery id of each decision
/// naming it, by booking (or event) in the order the decisions were made.
fn expected_deliveries(
    decisions: &[Value],
    partners: &[&str],
) -> HashMap<String, BTreeMap<String, Vec<(i64, String)>>> {
    let mut expected: HashMap<String, BTreeMap<String, Vec<(i64, String)>>> = HashMap::new();
    for value in decisions {
        let decision: partitioner::Decision = serde_json::from_value(value.clone()).unwrap();
        let order_key = decision.booking_id.unwrap_or(decision.event_id).to_string();
        for partner in decision.recipients().filter(|p| partners.contains(p)) {
            expected
                .entry(partner.to_owned())
                .or_default()
                .entry(order_key.clone())
                .or_default()
                .push((decision.offset, decision.delivery_id().to_string()));
        }
    }
    for bookings in expected.values_mut() {
        for sequence in bookings.values_mut() {
            sequence.sort();
        }
    }
    expected
}

/// Waits until `receiver` accepted every expected delivery, then checks: each partner
/// got exactly the decisions naming it (at least once), each booking's first in the
/// order they were made, and every signature held.
async fn check_delivered(
    receiver: &Receiver,
    decisions: &[Value],
    partners: &[&str],
    within: Duration,
) {
    let expected = expected_deliveries(decisions, partners);
    let wanted: usize = expected
        .values()
        .flat_map(|b| b.values())
        .map(Vec::len)
        .sum();
    let deadline = Instant::now() + within;
    loop {
        let accepted = receiver.accepted();
        let distinct: HashSet<(String, String)> = accepted
            .iter()
            .map(|d| (d.partner.clone(), d.delivery_id.clone()))
            .collect();
        if distinct.len() >= wanted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {wanted} decisions delivered after {within:?} ({} requests)",
            distinct.len(),
            receiver.requests()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let accepted = receiver.accepted();
    assert_eq!(
        receiver.bad_signatures(),
        0,
        "every delivery is signed with its partner's secret"
    );
    for partner in partners {
        let mine: Vec<&Delivery> = accepted.iter().filter(|d| d.partner == *partner).collect();
        let empty = BTreeMap::new();
        let bookings = expected.get(*partner).unwrap_or(&empty);
        // First receipts, per booking, in the order they arrived.
        let mut seen = HashSet::new();
        let mut arrived: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for delivery in mine {
            let names_partner = delivery.decision["partner_id"] == *partner
                || delivery.decision["owner_id"] == *partner;
            assert!(
                names_partner,
                "{partner} received a decision not for it: {}",
                delivery.decision
            );
            if seen.insert(delivery.delivery_id.clone()) {
                let decision: partitioner::Decision =
                    serde_json::from_value(delivery.decision.clone()).unwrap();
                assert_eq!(decision.delivery_id().to_string(), delivery.delivery_id);
                let key = decision.booking_id.unwrap_or(decision.event_id).to_string();
                arrived
                    .entry(key)
                    .or_default()
                    .push(delivery.delivery_id.clone());
            }
        }
        let wanted: BTreeMap<String, Vec<String>> = bookings
            .iter()
            .map(|(key, sequence)| {
                (
                    key.clone(),
                    sequence.iter().map(|(_, id)| id.clone()).collect(),
                )
            })
            .collect();
        assert_eq!(
            arrived, wanted,
            "{partner}: each booking's decisions, once each, in order"
        );
        // None was sent before the one ahead of it in its booking had been accepted.
        let first_arrival = receiver.first_arrivals();
        let mut first_accepted: HashMap<&str, Instant> = HashMap::new();
        for delivery in accepted.iter().filter(|d| d.partner == *partner) {
            first_accepted
                .entry(delivery.delivery_id.as_str())
                .or_insert(delivery.answered_at);
        }
        for sequence in wanted.values() {
            for pair in sequence.windows(2) {
                assert!(
                    first_arrival[&pair[1]] >= first_accepted[pair[0].as_str()],
                    "{partner}: {} was sent before {} ahead of it was accepted",
                    pair[1],
                    pair[0]
                );
            }
        }
    }
}

/// Bookings of two partners with webhooks (and one without), created, modified and
/// cancelled, the hotel's desk cancelling one of a partner's, while each partner's
/// endpoint misbehaves in turn: every decision reaches each of its partners, in order per
/// booking, none another partner, every one signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_reaches_its_partners_in_order_through_receiver_faults() {
    let (_serial, pipeline) = exclusive_pipeline().await;
    let with_webhooks = [support::PARTNER, "ota-2"];
    let mut receiver = Receiver::start(&secrets(&with_webhooks)).await;
    // ota-1: three 500s, a 429 asking for a second, then answers slower than the
    // delivery timeout twice. ota-2: down for the first seconds.
    receiver.script(
        support::PARTNER,
        [
            Answer::Status(500),
            Answer::Status(503),
            Answer::Status(500),
            Answer::TooMany(1),
            Answer::Slow(Duration::from_millis(800)),
            Answer::Slow(Duration::from_millis(800)),
        ],
    );
    receiver.down().await;
    let partners_file = endpoints_file(&receiver, &with_webhooks);
    let deliverer = Deliverer::start(deliver_args(&pipeline, partners_file.path(), 3_600)).await;

    let property = format!("hook-{}", Uuid::new_v4().simple());
    let (ours, theirs, desk) = (
        pipeline.client.clone(),
        pipeline.client_for(OTHER_SECRET),
        pipeline.client_for(HOTEL_SECRET),
    );
    support::allot(&ours, &property, "2030-07-01", "2030-07-31", 100).await;
    let mut made = 1;
    let mut own = Vec::new();
    for round in 0..6 {
        let booking = create(&ours, &property).await;
        modify(&ours, &property, &booking).await;
        made += 2;
        if round % 2 == 0 {
            cancel(&ours, &property, &booking).await;
            made += 1;
        }
        own.push(booking);
        create(&theirs, &property).await;
        made += 1;
    }
    // The hotel's desk cancels one of ota-1's bookings: ota-1 (the owner) hears of it.
    cancel(&desk, &property, &own[1]).await;
    made += 1;
    tokio::time::sleep(Duration::from_secs(2)).await;
    receiver.up().await;

    let decisions = decisions(&pipeline, made).await;
    assert_eq!(decisions.len(), made);
    check_delivered(
        &receiver,
        &decisions,
        &with_webhooks,
        Duration::from_secs(60),
    )
    .await;
    deliverer.stop().await;
}

/// Every webhook dead letter now on the topic: (partner, reason, delivery id).
async fn dead_letters(pipeline: &Pipeline, expected: usize) -> Vec<(String, String, String)> {
    let mut letters: Vec<(String, String, String)> =
        support::read_all(&webhook_dlq(pipeline), expected)
            .await
            .into_iter()
            .map(|(headers, _)| {
                let header = |name: &str| {
                    headers
                        .iter()
                        .find(|(key, _)| key == name)
                        .map(|(_, value)| value.clone())
                        .unwrap_or_default()
                };
                (
                    header("webhook-partner"),
                    header("dlq-reason"),
                    header("webhook-delivery-id"),
                )
            })
            .collect();
    letters.sort();
    letters
}

/// What replaying dead letters does, with `selection` as its command-line options.
async fn replay(
    pipeline: &Pipeline,
    partners_file: &std::path::Path,
    selection: &[&str],
) -> consumers::replay::ReplaySummary {
    let mut args = deliver_args(pipeline, partners_file, 3_600);
    args.push("replay-webhooks".to_owned());
    args.extend(selection.iter().map(|arg| (*arg).to_owned()));
    let cli = consumers::config::Cli::try_parse_from(args).unwrap();
    let Some(consumers::config::Command::ReplayWebhooks(selection)) = cli.command else {
        panic!("not a replay-webhooks command");
    };
    consumers::webhook::dead_letter::replay(&cli.config, &selection)
        .await
        .unwrap()
}

/// A partner answering 410 Gone gets its decisions dead-lettered at once (gone), one
/// whose endpoint fails past the retry period gets them dead-lettered as expired, and one
/// whose endpoint's host is not allowed is never contacted (host-not-allowed); each
/// letter names its partner and delivery id. Once the endpoints are back, replaying the
/// letters delivers every decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_decisions_are_dead_lettered_with_their_reason_and_replayed() {
    let (_serial, pipeline) = exclusive_pipeline().await;
    let partners = [support::PARTNER, "ota-2"];
    let receiver = Receiver::start(&secrets(&partners)).await;
    receiver.refuse(support::PARTNER, 410);
    receiver.refuse("ota-2", 500);
    // The desk's endpoint is on a host the service may not contact.
    let file = endpoints_file(&receiver, &partners);
    let mut listed: Value =
        serde_json::from_reader(std::fs::File::open(file.path()).unwrap()).unwrap();
    listed["partners"].as_array_mut().unwrap().push(json!({"partner_id": "hotel-desk",
        "webhook": {"url": "https://hooks.example.com/in", "signing_secret": webhook_secret("hotel-desk")}}));
    std::fs::write(file.path(), listed.to_string()).unwrap();
    // Retried for two seconds only.
    let deliverer = Deliverer::start(deliver_args(&pipeline, file.path(), 2)).await;

    let property = format!("hook-{}", Uuid::new_v4().simple());
    let (ours, theirs, desk) = (
        pipeline.client.clone(),
        pipeline.client_for(OTHER_SECRET),
        pipeline.client_for(HOTEL_SECRET),
    );
    support::allot(&ours, &property, "2030-07-01", "2030-07-31", 100).await;
    for client in [&ours, &ours, &theirs, &theirs, &desk] {
        create(client, &property).await;
    }
    let decisions = decisions(&pipeline, 6).await;
    let mut expected: Vec<(String, String, String)> = decisions
        .iter()
        .map(|value| {
            let decision: partitioner::Decision = serde_json::from_value(value.clone()).unwrap();
            let partner = decision.partner_id.clone().unwrap();
            let reason = match partner.as_str() {
                "ota-1" => "gone",
                "ota-2" => "expired",
                _ => "host-not-allowed",
            };
            (
                partner,
                reason.to_owned(),
                decision.delivery_id().to_string(),
            )
        })
        .collect();
    expected.sort();
    // (The read waits up to 30 s for them all.)
    assert_eq!(dead_letters(&pipeline, expected.len()).await, expected);
    assert!(receiver.accepted().is_empty());

    // Endpoints back: a dry run changes nothing, then each partner's letters go back.
    receiver.welcome_back(support::PARTNER);
    receiver.welcome_back("ota-2");
    let dry = replay(&pipeline, file.path(), &["--partner", "ota-1", "--dry-run"]).await;
    assert_eq!((dry.read, dry.selected, dry.replayed), (6, 3, 0));
    let gone = replay(&pipeline, file.path(), &["--reason-contains", "gone"]).await;
    assert_eq!((gone.selected, gone.replayed), (3, 3));
    let expired = replay(&pipeline, file.path(), &["--partner", "ota-2"]).await;
    assert_eq!((expired.selected, expired.replayed), (2, 2));
    check_delivered(&receiver, &decisions, &partners, Duration::from_secs(30)).await;
    deliverer.stop().await;
}

/// Not a test of its own: the delivery service in a process of its own, for the SIGKILL
/// test below, which starts this test binary with `--ignored --exact deliverer_process`
/// and the service's arguments in `WEBHOOK_DELIVERER_ARGS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "started as a child process by the SIGKILL test"]
async fn deliverer_process() {
    let args: Vec<String> = serde_json::from_str(
        &std::env::var("WEBHOOK_DELIVERER_ARGS").expect("started by the SIGKILL test"),
    )
    .unwrap();
    let config = consumers::Config::try_parse_from(args).unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    consumers::webhook::run(&config, admin, std::future::pending())
        .await
        .unwrap();
}

fn deliverer_process_start(args: &[String]) -> tokio::process::Child {
    deliverer_process_with(args, &[])
}

/// [`deliverer_process_start`] with more environment (`SSL_CERT_FILE`).
fn deliverer_process_with(args: &[String], env: &[(&str, &str)]) -> tokio::process::Child {
    tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "deliverer_process", "--nocapture"])
        .env(
            "WEBHOOK_DELIVERER_ARGS",
            serde_json::to_string(args).unwrap(),
        )
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The process delivering for both partners killed with SIGKILL while bookings flow and
/// deliveries are in flight, a second one beside it: the second takes the partners over
/// once the first's leases lapse and the intake's partitions once the group notices, and
/// every decision is still delivered, in order per booking; those in flight at the kill
/// may come twice, under the same delivery id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_process_killed_with_sigkill_loses_no_decision() {
    let (_serial, pipeline) = exclusive_pipeline().await;
    let partners = [support::PARTNER, "ota-2"];
    let receiver = Receiver::start(&secrets(&partners)).await;
    // Slow answers keep deliveries in flight when the process dies.
    let slow = std::iter::repeat_n(Answer::Slow(Duration::from_millis(100)), 1_000);
    receiver.script(support::PARTNER, slow.clone());
    receiver.script("ota-2", slow);
    let file = endpoints_file(&receiver, &partners);
    let args = deliver_args(&pipeline, file.path(), 3_600);
    let mut first = deliverer_process_start(&args);

    let property = format!("hook-{}", Uuid::new_v4().simple());
    let (ours, theirs) = (pipeline.client.clone(), pipeline.client_for(OTHER_SECRET));
    support::allot(&ours, &property, "2030-07-01", "2030-07-31", 1_000).await;
    const BOOKINGS: usize = 40;
    let sending = tokio::spawn({
        let property = property.clone();
        async move {
            for round in 0..BOOKINGS {
                let client = if round % 2 == 0 { &ours } else { &theirs };
                let booking = create(client, &property).await;
                modify(client, &property, &booking).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    // Kill it once it has delivered some and while more keep coming.
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.accepted().len() < 10 {
        assert!(
            Instant::now() < deadline,
            "nothing delivered before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The first holds both partners' leases now. A second process joins (the intake's
    // partitions are shared out again), then the first dies: the second takes its
    // partners over once their leases lapse.
    let mut second = deliverer_process_start(&args);
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let at_kill = receiver.accepted().len();
    sending.await.unwrap();
    let made = 1 + BOOKINGS * 2;
    let decisions = decisions(&pipeline, made).await;
    assert_eq!(decisions.len(), made);
    assert!(at_kill < made, "the kill came after every delivery");
    check_delivered(&receiver, &decisions, &partners, Duration::from_secs(90)).await;
    second.start_kill().unwrap();
    second.wait().await.unwrap();
}

async fn outbox_len(pipeline: &Pipeline, outbox: &str) -> usize {
    let mut redis = pipeline.redis.clone();
    redis::cmd("XLEN")
        .arg(outbox)
        .query_async(&mut redis)
        .await
        .unwrap()
}

/// Over https: the endpoint's certificate is checked against the system's trust store (here
/// made to hold only the receiver's own certificate, through `SSL_CERT_FILE`), and every
/// decision arrives as over http. The same endpoint is refused while the store does not
/// trust it: nothing is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_over_https_check_the_endpoints_certificate() {
    let (_serial, pipeline) = exclusive_pipeline().await;
    let partners = [support::PARTNER];
    let receiver = Receiver::start_tls(&secrets(&partners)).await;
    assert!(receiver
        .url(support::PARTNER)
        .starts_with("https://localhost:"));
    let file = endpoints_file(&receiver, &partners);
    let args = deliver_args(&pipeline, file.path(), 3_600);
    let dir = tempfile::tempdir().unwrap();
    let (trusted, stranger) = (
        dir.path().join("trusted.pem"),
        dir.path().join("stranger.pem"),
    );
    std::fs::write(&trusted, receiver.certificate_pem()).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(&stranger, other.cert.pem()).unwrap();

    // Trusting another certificate: the handshake fails, nothing is accepted.
    let mut distrustful =
        deliverer_process_with(&args, &[("SSL_CERT_FILE", stranger.to_str().unwrap())]);
    let property = format!("hook-{}", Uuid::new_v4().simple());
    let ours = pipeline.client.clone();
    support::allot(&ours, &property, "2030-07-01", "2030-07-31", 100).await;
    for _ in 0..3 {
        create(&ours, &property).await;
    }
    // All four taken into the outbox, and tried: still there, none received.
    let outbox = partitioner::keys::webhook_outbox(support::PARTNER);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let taken_in = outbox_len(&pipeline, &outbox).await;
        if taken_in == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{taken_in} of 4 decisions taken in after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.requests(),
        0,
        "no request reaches an endpoint whose certificate is not trusted"
    );
    assert_eq!(outbox_len(&pipeline, &outbox).await, 4);
    distrustful.start_kill().unwrap();
    distrustful.wait().await.unwrap();

    // Trusting the receiver's: every decision arrives (the next holder waits out the lease).
    let mut trusting =
        deliverer_process_with(&args, &[("SSL_CERT_FILE", trusted.to_str().unwrap())]);
    let decisions = decisions(&pipeline, 4).await;
    check_delivered(&receiver, &decisions, &partners, Duration::from_secs(60)).await;
    trusting.start_kill().unwrap();
    trusting.wait().await.unwrap();
}
