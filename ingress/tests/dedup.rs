//! Idempotency-Key semantics and per-partner rate limits against the real server, Kafka
//! and Redis. The shared Redis is only ever written under this test's own key prefix; the
//! outage test runs a `redis-server` of its own.

mod support;

use std::time::Duration;

use partitioner::redis_target::{Limits, RedisTarget};
use redis::AsyncCommands;
use serde_json::{json, Value};
use support::own_redis::{self, OwnRedis};
use support::{Ingress, Reply, SECRET_ACME};
use uuid::Uuid;

fn booking(property: &str) -> Value {
    json!({
        "tenant_id": "acme", "property_id": property, "room_type": "DBL",
        "check_in": "2027-03-10", "check_out": "2027-03-12", "rooms": 1, "guests": 2,
        "amount_minor": 25000, "currency": "EUR"
    })
}

fn status(reply: &Reply) -> u16 {
    reply.status.as_u16()
}

fn assert_status(reply: &Reply, expected: u16) {
    assert_eq!(
        status(reply),
        expected,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
}

#[tokio::test]
async fn a_replay_gets_the_original_answer_marked_replayed() {
    let ingress = Ingress::start().await;
    let first = ingress
        .post("/v1/bookings")
        .header("idempotency-key", "replay-1")
        .json(&booking("lisbon-1"))
        .await;
    assert_status(&first, 202);
    assert_eq!(first.header("idempotent-replayed"), "");

    // The same request, serialised differently: key order and whitespace do not count.
    let reordered = r#"{ "currency": "EUR", "amount_minor": 25000, "guests": 2, "rooms": 1,
        "check_out": "2027-03-12", "check_in": "2027-03-10", "room_type": "DBL",
        "property_id": "lisbon-1", "tenant_id": "acme" }"#;
    let again = ingress
        .post("/v1/bookings")
        .header("idempotency-key", "replay-1")
        .body(reordered)
        .await;
    assert_status(&again, 202);
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.body, first.body, "the original answer, byte for byte");

    // The record is shared through Redis, written there behind the answer: another
    // replica (a fresh process cache, the same prefix) replays it too.
    let key = format!("{}:ota-1:replay-1", ingress.idem_prefix);
    let mut redis = own_redis::connect(&support::redis_url()).await;
    let mut stored: Option<String> = None;
    for _ in 0..100 {
        stored = redis.get(&key).await.unwrap();
        if stored
            .as_deref()
            .is_some_and(|s| s.contains("\"status\":202"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        stored.is_some_and(|s| s.contains("\"status\":202")),
        "{key}"
    );
    let prefix = format!("--idempotency-prefix={}", ingress.idem_prefix);
    let replica = Ingress::spawn(&ingress.topic, &[&prefix]);
    replica.wait_ready().await;
    let from_redis = replica
        .post("/v1/bookings")
        .header("idempotency-key", "replay-1")
        .json(&booking("lisbon-1"))
        .await;
    assert_status(&from_redis, 202);
    assert_eq!(from_redis.header("idempotent-replayed"), "true");
    assert_eq!(from_redis.body, first.body);
    let metrics = support::get(replica.admin, "/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains(r#"ingress_dedup_hits_total{tier="redis"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"ingress_dedup_hits_total{tier="local"}"#),
        "{text}"
    );

    replica.stop().await.expect("clean shutdown");
    ingress.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let ingress = Ingress::start().await;
    let send = |property: &'static str| {
        let call = ingress
            .post("/v1/bookings")
            .header("idempotency-key", "reuse-1");
        async move { call.json(&booking(property)).await }
    };
    assert_status(&send("lisbon-1").await, 202);
    let reused = send("porto-2").await;
    assert_status(&reused, 422);
    assert_eq!(reused.header("content-type"), "application/problem+json");
    assert_eq!(reused.json()["type"], "/problems/idempotency-key-reused");

    // Another partner's identical key is its own.
    let other = ingress
        .post("/v1/bookings")
        .header("idempotency-key", "reuse-1")
        .header("authorization", &format!("Bearer {SECRET_ACME}"))
        .json(&booking("porto-2"))
        .await;
    assert_status(&other, 202);
    assert_eq!(other.header("idempotent-replayed"), "");
    ingress.stop().await.expect("clean shutdown");
}

/// Requests that validate to the same command are the same request, however the client
/// spelled the JSON: `1` or `1.0` or `1e0`, keys in any order, `null` for an absent
/// optional field. Each resend is the replay, never a 422.
#[tokio::test]
async fn a_resend_spelled_differently_is_still_the_same_request() {
    let ingress = Ingress::start().await;
    let send = |body: String| {
        let call = ingress
            .post("/v1/bookings")
            .header("idempotency-key", "spelled-1");
        async move { call.body(body).await }
    };
    let first = send(booking("lisbon-1").to_string()).await;
    assert_status(&first, 202);
    let respellings = [
        r#"{"currency":"EUR","amount_minor":25000,"guests":2,"rooms":1.0,"check_out":"2027-03-12",
            "check_in":"2027-03-10","room_type":"DBL","property_id":"lisbon-1","tenant_id":"acme"}"#,
        r#"{"tenant_id":"acme","property_id":"lisbon-1","room_type":"DBL","check_in":"2027-03-10",
            "check_out":"2027-03-12","rooms":1e0,"guests":2.0,"amount_minor":25000,
            "currency":"EUR","guest_name":null}"#,
    ];
    for body in respellings {
        let again = send(body.to_owned()).await;
        assert_status(&again, 202);
        assert_eq!(again.header("idempotent-replayed"), "true", "{body}");
        assert_eq!(again.json()["event_id"], first.json()["event_id"]);
    }
    ingress.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_key_held_elsewhere_is_busy_and_concurrent_sends_publish_once() {
    let ingress = Ingress::start().await;
    // Another replica holds this key right now: its in-flight marker is in Redis.
    let body = booking("faro-3");
    let request: partitioner::BookingRequest = serde_json::from_value(body.clone()).unwrap();
    let booking_id = partitioner::booking_id("acme", "ota-1", "busy-1");
    let command = request.into_create(booking_id).unwrap();
    let fingerprint = ingress::dedup::RequestFingerprint::new(
        &command,
        "POST",
        "/v1/bookings",
        body.to_string().as_bytes(),
    )
    .stored();
    let key = format!("{}:ota-1:busy-1", ingress.idem_prefix);
    let marker =
        json!({"fp": fingerprint.legacy, "cmd": fingerprint.command, "token": "elsewhere"})
            .to_string();
    let mut redis = own_redis::connect(&support::redis_url()).await;
    let _: () = redis.set_ex(&key, marker, 60).await.unwrap();
    let busy = ingress
        .post("/v1/bookings")
        .header("idempotency-key", "busy-1")
        .json(&body)
        .await;
    assert_status(&busy, 409);
    assert_eq!(busy.json()["type"], "/problems/idempotency-key-in-flight");
    assert_eq!(busy.header("retry-after"), "1");

    // Eight copies at once: exactly one is published; each other copy is told the key is
    // busy or, if it came after, gets the replay. Which is which depends on timing.
    let sends = (0..8).map(|_| {
        ingress
            .post("/v1/bookings")
            .header("idempotency-key", "race-1")
            .json(&body)
    });
    let replies = futures::future::join_all(sends).await;
    let originals = replies
        .iter()
        .filter(|r| status(r) == 202 && r.header("idempotent-replayed").is_empty())
        .count();
    assert_eq!(originals, 1);
    for reply in &replies {
        match status(reply) {
            202 => {}
            409 => assert_eq!(reply.header("retry-after"), "1"),
            other => panic!("{other}: {}", String::from_utf8_lossy(&reply.body)),
        }
    }
    ingress.stop().await.expect("clean shutdown");
}

/// Completed records are written behind the answers: a burst larger than the writer's
/// queue (requests then write their own) and a flush leave every one of them in Redis.
#[tokio::test]
async fn every_completed_record_reaches_redis_behind_its_answer() {
    const KEYS: usize = 10_000;
    let prefix = format!("idem-behind-{}", Uuid::new_v4().simple());
    let link = ingress::redis_link::RedisLink::new(&support::redis_url(), Duration::from_secs(2))
        .map(std::sync::Arc::new)
        .unwrap();
    let dedup = ingress::dedup::Dedup::new(
        &prefix,
        Some(link),
        100_000,
        Duration::from_secs(60),
        Duration::from_secs(10),
    );
    let answer = |key: usize| ingress::dedup::StoredResponse {
        status: 202,
        body: bytes::Bytes::from(format!(r#"{{"status":"accepted","n":{key}}}"#)),
    };
    let command = partitioner::Fingerprint::from_slice(&[7; 32]).unwrap();
    let mut tickets = Vec::with_capacity(KEYS);
    for key in 0..KEYS {
        let fingerprint =
            ingress::dedup::RequestFingerprint::with(&command, "POST", "/v1/bookings", b"{}");
        match dedup.claim("ota-1", &key.to_string(), fingerprint).await {
            Ok(ingress::dedup::Claim::Fresh(ticket)) => tickets.push(ticket),
            _ => panic!("key {key} is new"),
        }
    }
    // On this one-thread runtime the writer cannot run while the completions below only
    // queue, so the queue fills and the later completions write their own records.
    for (key, ticket) in tickets.into_iter().enumerate() {
        dedup.complete(ticket, answer(key)).await;
    }
    dedup.flush().await;

    let mut redis = own_redis::connect(&support::redis_url()).await;
    for key in 0..KEYS {
        let stored: Option<String> = redis.get(format!("{prefix}:ota-1:{key}")).await.unwrap();
        let stored = stored.unwrap_or_else(|| panic!("no record for key {key}"));
        let record: Value = serde_json::from_str(&stored).unwrap();
        let body = answer(key).body;
        assert_eq!(record["status"], 202, "key {key}: {stored}");
        assert_eq!(record["body"].as_str().map(str::as_bytes), Some(&body[..]));
    }
}

#[tokio::test]
async fn a_partner_over_its_rate_limit_gets_429_with_ratelimit_headers() {
    let topic = support::create_topic(support::PARTITIONS).await;
    // One token a second, two in the bucket: requests sent back to back run dry at once.
    let ingress = Ingress::spawn(&topic, &["--rate-limit-per-sec=1", "--rate-limit-burst=2"]);
    ingress.wait_ready().await;
    let mut limited = None;
    for _ in 0..10 {
        // An invalid body is refused after the rate limit, without touching Kafka.
        let reply = ingress.post("/v1/bookings").json(&json!({})).await;
        if status(&reply) == 429 {
            limited = Some(reply);
            break;
        }
        assert_status(&reply, 422);
        // Answers that passed the limiter say what is left, too.
        assert_eq!(reply.header("ratelimit-limit"), "2");
        let remaining: u32 = reply.header("ratelimit-remaining").parse().unwrap();
        assert!(remaining <= 1, "{remaining}");
    }
    let reply = limited.expect("no 429 within 10 requests at 1 request/s");
    assert_eq!(reply.json()["type"], "/problems/rate-limited");
    assert_eq!(reply.header("ratelimit-limit"), "2");
    assert_eq!(reply.header("ratelimit-remaining"), "0");
    let retry_after: u64 = reply.header("retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(reply.header("ratelimit-reset"), reply.header("retry-after"));

    // Buckets are per partner: ota-2 still has its own.
    let other = ingress
        .post("/v1/bookings")
        .header("authorization", &format!("Bearer {SECRET_ACME}"))
        .json(&json!({}))
        .await;
    assert_status(&other, 422);
    let metrics = support::get(ingress.admin, "/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("ingress_rate_limited_total"), "{text}");
    ingress.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_shared_rate_limit_holds_across_replicas() {
    let topic = support::create_topic(support::PARTITIONS).await;
    // Two replicas sharing one bucket per partner in Redis: three tokens, one a second.
    let prefix = format!(
        "--idempotency-prefix=shared-limit-{}",
        Uuid::new_v4().simple()
    );
    let flags = [
        "--rate-limit-per-sec=1",
        "--rate-limit-burst=3",
        "--rate-limit-shared",
        prefix.as_str(),
    ];
    let (first, second) = (
        Ingress::spawn(&topic, &flags),
        Ingress::spawn(&topic, &flags),
    );
    first.wait_ready().await;
    second.wait_ready().await;
    let mut statuses = Vec::new();
    for replica in [&first, &second, &first, &second, &first, &second] {
        let reply = replica.post("/v1/bookings").json(&json!({})).await;
        statuses.push(status(&reply));
    }
    // Each replica alone would let all six through (three each); together, three.
    assert_eq!(statuses[..3], [422, 422, 422], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    first.stop().await.expect("clean shutdown");
    second.stop().await.expect("clean shutdown");
}

/// Sends `booking` under fresh keys until one's record shows up in `redis`, proving the
/// ingress talks to it again; the first sends after a restart may still fall back.
async fn until_shared(ingress: &Ingress, redis_url: &str, property: &str) -> String {
    for attempt in 0..50 {
        let key = format!("recover-{property}-{attempt}");
        let reply = ingress
            .post("/v1/bookings")
            .header("idempotency-key", &key)
            .json(&booking(property))
            .await;
        assert_status(&reply, 202);
        let mut redis = own_redis::connect(redis_url).await;
        let stored: Option<String> = redis
            .get(format!("{}:ota-1:{key}", ingress.idem_prefix))
            .await
            .unwrap();
        if stored.is_some() {
            return key;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the ingress never wrote an idempotency record to {redis_url}");
}

#[tokio::test]
async fn without_redis_mutations_go_on_and_redis_is_used_again_when_back() {
    let topic = support::create_topic(support::PARTITIONS).await;
    let mut redis = OwnRedis::reserve();
    // Nothing listens on the port yet: startup must not wait for Redis.
    let ingress = Ingress::spawn(
        &topic,
        &[
            &format!("--redis-url={}", redis.url()),
            "--redis-timeout-ms=500",
        ],
    );
    ingress.wait_ready().await;
    let send = |key: &'static str| {
        let call = ingress.post("/v1/bookings").header("idempotency-key", key);
        async move { call.json(&booking("down-1")).await }
    };
    let first = send("down-a").await;
    assert_status(&first, 202);
    // The local tier alone still recognises the retry.
    let again = send("down-a").await;
    assert_status(&again, 202);
    assert_eq!(again.header("idempotent-replayed"), "true");
    let metrics = support::get(ingress.admin, "/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("ingress_dedup_fallback_total"), "{text}");

    redis.start().await;
    until_shared(&ingress, &redis.url(), "up-1").await;

    redis.stop();
    assert_status(&send("down-b").await, 202);
    // Reads have no other source: 503, never a guess.
    let read = ingress
        .get(&format!("/v1/bookings/{}", uuid::Uuid::new_v4()))
        .send()
        .await;
    assert_status(&read, 503);
    assert_eq!(read.json()["type"], "/problems/projections-unavailable");
    assert_eq!(read.header("retry-after"), "1");
    let nights = "/v1/availability?tenant_id=acme&property_id=p1&room_type=DBL\
                  &from=2027-01-01&to=2027-01-02";
    assert_status(&ingress.get(nights).send().await, 503);

    // Back on the same port, empty: the same ingress, never restarted, uses it again.
    redis.start().await;
    until_shared(&ingress, &redis.url(), "up-2").await;
    assert_status(&ingress.get(nights).send().await, 200);
    ingress.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_malformed_redis_url_is_a_configuration_error() {
    let topic = support::create_topic(support::PARTITIONS).await;
    let error = Ingress::spawn(&topic, &["--redis-url=not a url"])
        .exit()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("redis url"), "{error}");
    assert_eq!(error.exit_code(), 64);
}

/// A Redis that stops answering costs a command its deadline, whatever the client still
/// waits for, and the connection answers again once Redis does (the client that missed
/// the deadline is replaced by a new one). Without the deadline the command below waited
/// for the frozen server and succeeded only when it was let run again.
#[tokio::test]
async fn a_command_to_a_frozen_redis_fails_at_its_deadline_and_the_connection_recovers() {
    let mut own = OwnRedis::reserve();
    own.start().await;
    let limits = Limits {
        connect: Duration::from_secs(1),
        // Longer than the freeze below: only the deadline can end the command earlier.
        response: Duration::from_secs(30),
        retries: 0,
        deadline: Duration::from_millis(500),
    };
    let target: RedisTarget = own.url().parse().unwrap();
    let mut connection = target.connect(limits).await.unwrap();
    let _: () = connection.set("k", "v").await.unwrap();

    own.pause();
    // Bounds the test: the server runs again after a while whatever happens.
    let own = std::sync::Arc::new(own);
    let thaw = {
        let own = own.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            own.resume();
        })
    };
    let frozen: redis::RedisResult<Option<String>> = connection.get("k").await;
    let error = frozen.expect_err("a frozen Redis answered");
    assert!(error.to_string().contains("deadline"), "{error}");
    thaw.await.unwrap();

    let mut answer = Err(error);
    for _ in 0..20 {
        answer = connection.get::<_, Option<String>>("k").await;
        if answer.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer.unwrap().as_deref(), Some("v"));
}
