//! A broker outage seen from the real `ingress` binary, against an Apache Kafka node of the
//! test's own that it kills and restarts on the same data: while the broker is gone every mutation
//! is a 503 problem (never a 2xx) and `/readyz` turns 503 while `/healthz` stays 200;
//! once the broker is back the same process is ready again and answers 202, without a
//! restart. Needs the cached Kafka jars and the local stack's Redis (`infra/stack.sh up`).

mod support;

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{json, Value};
use support::own_kafka::OwnKafka;
use support::process::IngressProcess;
use support::{assert_unavailable, Reply};

fn booking() -> Value {
    json!({
        "tenant_id": "acme", "property_id": "lisbon-1", "room_type": "DBL",
        "check_in": "2027-01-10", "check_out": "2027-01-12", "rooms": 1, "guests": 2,
        "amount_minor": 25000, "currency": "EUR"
    })
}

async fn create(ingress: &IngressProcess, key: &str) -> Reply {
    ingress
        .post("/v1/bookings")
        .header("idempotency-key", key)
        .json(&booking())
        .await
}

/// Polls `/readyz` (bounded) until it answers `want`.
async fn wait_readiness(ingress: &IngressProcess, want: StatusCode) {
    for _ in 0..240 {
        if ingress.readiness().await == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "/readyz never answered {want}; log:\n{}",
        ingress.log_tail()
    );
}

#[tokio::test]
async fn a_broker_outage_is_503_and_not_ready_then_recovers_without_restart() {
    let mut kafka = OwnKafka::reserve();
    kafka.start().await;
    let topic = support::create_topic_on(&kafka.brokers(), 3).await;
    let partners = support::partners_file();
    let flags = [
        "--delivery-budget-ms=2000",
        "--broker-probe-interval-ms=500",
    ];
    let mut ingress =
        IngressProcess::start(partners.path(), &kafka.brokers(), &topic, &flags).await;
    let before = create(&ingress, "before-outage").await;
    assert_eq!(
        before.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&before.body)
    );

    kafka.kill();
    let killed = Instant::now();
    // Mutations keep arriving while readiness has not caught up yet: each must be a 503.
    let mutations = async {
        for attempt in 0..3 {
            assert_unavailable(&create(&ingress, &format!("during-outage-{attempt}")).await);
        }
    };
    let readiness = async {
        wait_readiness(&ingress, StatusCode::SERVICE_UNAVAILABLE).await;
        // Printed, never asserted: how long a load balancer would keep routing here.
        eprintln!("broker killed -> /readyz 503 after {:?}", killed.elapsed());
    };
    tokio::join!(mutations, readiness);
    let health = support::get(ingress.admin, "/healthz").await.unwrap();
    assert_eq!(
        health.status,
        StatusCode::OK,
        "liveness must not follow the broker"
    );
    assert_eq!(ingress.metric("ingress_broker_reachable").await, Some(0.0));
    // Not ready, yet still answering: a request that reaches it gets a problem, not a 2xx.
    assert_unavailable(&create(&ingress, "while-not-ready").await);

    kafka.start().await;
    let restarted = Instant::now();
    wait_readiness(&ingress, StatusCode::OK).await;
    eprintln!(
        "broker answering -> /readyz 200 after {:?}",
        restarted.elapsed()
    );
    assert_eq!(ingress.metric("ingress_broker_reachable").await, Some(1.0));
    // The producer may need a moment after the broker's metadata is back before a record
    // is acknowledged; until then only a 503 is acceptable. A partner's retry of a key
    // refused during the outage is accepted like a new request.
    let mut recovered = None;
    for _ in 0..30 {
        let reply = create(&ingress, "during-outage-0").await;
        if reply.status == StatusCode::ACCEPTED {
            recovered = Some(reply);
            break;
        }
        assert_unavailable(&reply);
    }
    eprintln!(
        "broker answering -> first 202 after {:?}",
        restarted.elapsed()
    );
    let recovered =
        recovered.unwrap_or_else(|| panic!("no 202 after recovery; log:\n{}", ingress.log_tail()));
    let booking_id = partitioner::booking_id("acme", "ota-1", "during-outage-0");
    assert_eq!(recovered.json()["booking_id"], booking_id.to_string());
    let fresh = create(&ingress, "after-outage").await;
    assert_eq!(fresh.status, StatusCode::ACCEPTED);
    assert!(
        ingress.is_running(),
        "the ingress must ride out the outage without a restart"
    );
}

/// While it starts, the ingress refuses connections instead of holding them: here startup
/// waits for a broker that is not there, as a restarted ingress waits for the broker's
/// metadata and the replies group. A socket listening through that would keep partners'
/// requests unanswered in the kernel's accept queue; a refused connection lets a client or
/// a load balancer go to another ingress at once.
#[tokio::test]
async fn a_starting_ingress_refuses_connections_until_it_is_ready() {
    let partners = support::partners_file();
    let nobody = format!("127.0.0.1:{}", support::process::free_port());
    let flags = ["--metadata-timeout-ms=4000"];
    let mut ingress = IngressProcess::spawn(partners.path(), &nobody, "bookings", &flags);
    // The admin port answers from the first moment: 503 means the API is still starting.
    let started = Instant::now();
    while ingress.readiness().await != Some(StatusCode::SERVICE_UNAVAILABLE) {
        assert!(
            ingress.is_running() && started.elapsed() < Duration::from_secs(3),
            "the admin port never answered during startup; log:\n{}",
            ingress.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected = tokio::net::TcpStream::connect(ingress.addr).await;
    assert_eq!(
        ingress.readiness().await,
        Some(StatusCode::SERVICE_UNAVAILABLE),
        "startup ended before the check; log:\n{}",
        ingress.log_tail()
    );
    let error = connected.expect_err("a connection to a starting ingress must be refused");
    assert_eq!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{error}"
    );
}
