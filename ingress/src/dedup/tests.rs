//! The claim protocol on the local tier alone (the Redis tier is exercised against a real
//! server in `tests/dedup.rs`).

use super::*;

fn dedup() -> Dedup {
    Dedup::new(
        "idem",
        None,
        1_000,
        Duration::from_secs(60),
        Duration::from_secs(10),
    )
}

fn accepted(body: &'static str) -> StoredResponse {
    StoredResponse {
        status: 202,
        body: Bytes::from_static(body.as_bytes()),
    }
}

async fn fresh(dedup: &Dedup, key: &str, fp: &str) -> Ticket {
    match dedup
        .claim("ota-1", key, RequestFingerprint::named(fp))
        .await
    {
        Ok(Claim::Fresh(ticket)) => ticket,
        Ok(Claim::Replay(response)) => panic!("replayed {response:?}"),
        Err(error) => panic!("{error:?}"),
    }
}

#[tokio::test]
async fn a_completed_request_is_replayed_and_a_changed_one_refused() {
    let dedup = dedup();
    let ticket = fresh(&dedup, "k1", "fp-a").await;
    dedup.complete(ticket, accepted("first")).await;

    match dedup
        .claim("ota-1", "k1", RequestFingerprint::named("fp-a"))
        .await
    {
        Ok(Claim::Replay(response)) => assert_eq!(response, accepted("first")),
        _ => panic!("expected a replay"),
    }
    let reused = dedup
        .claim("ota-1", "k1", RequestFingerprint::named("fp-b"))
        .await;
    assert!(matches!(reused, Err(ApiError::IdempotencyKeyReused)));
    // Keys are per partner: another partner's identical key is unrelated.
    let other = dedup
        .claim("ota-2", "k1", RequestFingerprint::named("fp-b"))
        .await;
    assert!(matches!(other, Ok(Claim::Fresh(_))));
}

#[tokio::test]
async fn a_key_in_flight_is_busy_until_released() {
    let dedup = dedup();
    let ticket = fresh(&dedup, "k2", "fp-a").await;
    let busy = dedup
        .claim("ota-1", "k2", RequestFingerprint::named("fp-a"))
        .await;
    assert!(matches!(busy, Err(ApiError::IdempotencyKeyInFlight)));
    let reused = dedup
        .claim("ota-1", "k2", RequestFingerprint::named("fp-b"))
        .await;
    assert!(matches!(reused, Err(ApiError::IdempotencyKeyReused)));

    dedup.release(ticket).await;
    let ticket = fresh(&dedup, "k2", "fp-a").await;
    // A failed answer is not stored: it releases the key instead.
    let failed = StoredResponse {
        status: 503,
        body: Bytes::new(),
    };
    dedup.complete(ticket, failed).await;
    fresh(&dedup, "k2", "fp-a").await;
}

#[tokio::test]
async fn an_abandoned_marker_expires_after_the_lock_time() {
    let dedup = Dedup::new("idem", None, 1_000, Duration::from_secs(60), Duration::ZERO);
    let _abandoned = fresh(&dedup, "k3", "fp-a").await;
    fresh(&dedup, "k3", "fp-a").await;
}

#[tokio::test]
async fn a_late_completion_leaves_a_later_claim_of_its_key_alone() {
    let dedup = Dedup::new(
        "idem",
        None,
        1_000,
        Duration::from_secs(60),
        Duration::from_millis(50),
    );
    let late = fresh(&dedup, "k5", "fp-a").await;
    // The first marker outlives the lock time, so a retry claims the key anew.
    tokio::time::sleep(Duration::from_millis(80)).await;
    let later = fresh(&dedup, "k5", "fp-a").await;
    dedup.complete(late, accepted("late")).await;
    // The key is the later request's until it answers; then its answer is replayed.
    let busy = dedup
        .claim("ota-1", "k5", RequestFingerprint::named("fp-a"))
        .await;
    assert!(matches!(busy, Err(ApiError::IdempotencyKeyInFlight)));
    dedup.complete(later, accepted("later")).await;
    match dedup
        .claim("ota-1", "k5", RequestFingerprint::named("fp-a"))
        .await
    {
        Ok(Claim::Replay(response)) => assert_eq!(response, accepted("later")),
        _ => panic!("expected the later request's answer"),
    }
}

#[tokio::test]
async fn a_dropped_ticket_releases_its_claim() {
    let dedup = dedup();
    drop(fresh(&dedup, "k4", "fp-a").await);
    // The release runs on a spawned task: give it turns until it has run.
    for _ in 0..1_000 {
        match dedup
            .claim("ota-1", "k4", RequestFingerprint::named("fp-a"))
            .await
        {
            Ok(Claim::Fresh(_)) => return,
            Err(ApiError::IdempotencyKeyInFlight) => tokio::task::yield_now().await,
            _ => panic!("unexpected claim result"),
        }
    }
    panic!("the dropped ticket never released its claim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_claims_of_one_key_let_exactly_one_through() {
    const RACERS: usize = 8;
    let dedup = Arc::new(dedup());
    for round in 0..500 {
        let key = format!("race-{round}");
        let start = Arc::new(std::sync::Barrier::new(RACERS));
        // Each racer is an OS thread released by one barrier, so the claims meet in the
        // lock-free part of the cache if anything lets them; the tickets are held until
        // every claim is counted, so no release lets a late racer in.
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let (dedup, key, start) = (dedup.clone(), key.clone(), start.clone());
                let runtime = tokio::runtime::Handle::current();
                std::thread::spawn(move || {
                    start.wait();
                    runtime.block_on(dedup.claim("ota-1", &key, RequestFingerprint::named("fp")))
                })
            })
            .collect();
        let claims: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let won = claims
            .iter()
            .filter(|claim| matches!(claim, Ok(Claim::Fresh(_))))
            .count();
        assert_eq!(won, 1, "round {round}: {won} claims won one key");
        assert!(claims.iter().all(|claim| matches!(
            claim,
            Ok(Claim::Fresh(_)) | Err(ApiError::IdempotencyKeyInFlight)
        )));
    }
}
