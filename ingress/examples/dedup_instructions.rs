//! A fixed amount of the in-process idempotency tier's work, for counting its instructions
//! per request with callgrind, which repeats to the instruction where timings on a shared
//! two-core machine do not: N fresh keys claimed and completed with a 202 (what every
//! accepted mutation does), or with `replay`, N retries of one completed key.
//!
//! ```sh
//! cargo build --release -p ingress --example dedup_instructions
//! for n in 20000 40000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/dedup_instructions $n 2>&1 | grep Collected
//! done
//! ```
//!
//! The difference of the two totals over 20,000 is the cost of one request, free of
//! start-up. Redis is left out: its round trips are measured live by `infra/bench.sh`.
//! With `fingerprint`, N fingerprints of the create (both digests a record carries), the
//! work every mutation does before it claims its key.

use std::time::Duration;

use bytes::Bytes;
use ingress::dedup::{Claim, Dedup, RequestFingerprint, StoredResponse};
use partitioner::{intake, Mutation, PartitionMap, Sender};

const CREATE: &[u8] = br#"{"tenant_id":"acme-hotels","property_id":"lisbon-baixa-01","room_type":"DBL","check_in":"2027-03-10","check_out":"2027-03-13","rooms":1,"guests":2,"amount_minor":45000,"currency":"EUR","guest_name":"Maria Albuquerque"}"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let requests: u64 = args
        .next()
        .and_then(|n| n.parse().ok())
        .expect("usage: dedup_instructions N [replay | fingerprint]");
    let mode = args.next();
    let replay = mode.as_deref() == Some("replay");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let sender = Sender {
        partner_id: "ota-booking-1",
        any_partner: false,
        idempotency_key: "7f3c9a2e-5b1d-4c8f-9e6a-2d4b8f1c3a57",
        request_id: "req-01HZY8K3M2Q4",
        received_at_ms: 1_800_000_000_000,
    };
    let map = PartitionMap::parse(12, "").expect("a plain 12-partition map");
    let prepared =
        intake::prepare(Mutation::CreateBooking, &sender, CREATE, &map).expect("a valid create");
    let fingerprint =
        RequestFingerprint::with(&prepared.fingerprint, "POST", "/v1/bookings", CREATE);
    if mode.as_deref() == Some("fingerprint") {
        for _ in 0..requests {
            std::hint::black_box(RequestFingerprint::with(
                std::hint::black_box(&prepared.fingerprint),
                "POST",
                "/v1/bookings",
                std::hint::black_box(CREATE),
            ));
        }
        return;
    }
    // The ingress's defaults: 100,000 entries, a day's TTL, a 10 s lock.
    let dedup = Dedup::new(
        "bench",
        None,
        100_000,
        Duration::from_secs(24 * 3600),
        Duration::from_secs(10),
    );
    let accepted = StoredResponse {
        status: 202,
        body: Bytes::from_static(br#"{"status":"accepted"}"#),
    };
    runtime.block_on(async {
        let fresh = |key: String| {
            let (dedup, fingerprint, accepted) = (&dedup, fingerprint.clone(), accepted.clone());
            async move {
                match dedup.claim("ota-booking-1", &key, fingerprint).await {
                    Ok(Claim::Fresh(ticket)) => dedup.complete(ticket, accepted).await,
                    _ => unreachable!("the key is new"),
                }
            }
        };
        if replay {
            fresh("retried".into()).await;
            for _ in 0..requests {
                let claim = dedup
                    .claim("ota-booking-1", "retried", fingerprint.clone())
                    .await;
                assert!(matches!(claim, Ok(Claim::Replay(_))));
            }
        } else {
            for i in 0..requests {
                fresh(format!("key-{i}")).await;
            }
        }
    });
}
