//! The projection writes against the real Redis of `REDIS_URL`: the local stack's single
//! node, or a Redis Cluster's seeds (`infra/test.sh` runs this file on both). Values never
//! go backwards, whichever order writes arrive in, and a rebuild puts back the store's.

mod support;

use chrono::NaiveDate;
use consumers::projection::{Projections, Snapshot};
use consumers::store::embedded::EmbeddedStore;
use consumers::store::{PartitionStore, Store};
use partitioner::{keys, Envelope, Event};
use redis::AsyncCommands;
use support::{connect_redis, create_booking, envelope, redis_url, TENANT};
use uuid::Uuid;

fn night() -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 6, 1).unwrap()
}

#[tokio::test]
async fn a_late_write_never_moves_a_projection_backwards() {
    let topic = format!("projection-test-{}", Uuid::new_v4().simple());
    let property = format!("p-{}", Uuid::new_v4().simple());
    let projections = Projections::new(&redis_url(), &topic).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::new(dir.path()).unwrap();
    let mut partition = store.open(0).unwrap();

    let allot = envelope(
        &property,
        Event::SetAllotment {
            room_type: "DBL".into(),
            from: night(),
            to: night().succ_opt().unwrap(),
            units: 5,
        },
    );
    let create = envelope(&property, create_booking(night(), 1));
    let booking_id = create.event.booking_id().unwrap();
    let cancel = envelope(
        &property,
        Event::CancelBooking {
            booking_id,
            reason: None,
        },
    );
    let events: Vec<(i64, Envelope)> = vec![(0, allot), (1, create)];
    let first = partition.write_batch(&events, 1).unwrap();
    projections.write(0, None, 1, &first.applied, None).await;
    let second = partition.write_batch(&[(2, cancel)], 2).unwrap();
    projections
        .write(0, Some(1), 2, &second.applied, None)
        .await;

    let mut redis = connect_redis(&redis_url()).await.unwrap();
    let availability = keys::availability(TENANT, &property, "DBL");
    let status_key = keys::booking_status(booking_id);
    let read = |mut redis: partitioner::redis_target::RedisConnection| {
        let (availability, status_key) = (availability.clone(), status_key.clone());
        async move {
            let units: Option<u32> = redis
                .hget(&availability, night().to_string())
                .await
                .unwrap();
            let status: Option<String> = redis
                .hget(&status_key, keys::booking_field::STATUS)
                .await
                .unwrap();
            (units, status)
        }
    };
    assert_eq!(
        read(redis.clone()).await,
        (Some(5), Some("cancelled".into()))
    );

    // The first batch's write again, late (a previous owner's, or a retry): it reflects
    // older offsets than what Redis holds, so it changes nothing.
    projections.write(0, None, 1, &first.applied, None).await;
    assert_eq!(
        read(redis.clone()).await,
        (Some(5), Some("cancelled".into()))
    );
    let checkpoint: Option<i64> = redis
        .get(keys::projection_checkpoint(&topic, 0))
        .await
        .unwrap();
    assert_eq!(checkpoint, Some(2), "the checkpoint never goes back either");

    // A rebuild writes the store's state whatever Redis holds.
    let _: () = redis
        .hset(&availability, night().to_string(), 99)
        .await
        .unwrap();
    let _: () = redis
        .hset(
            &availability,
            keys::night_position(&night().to_string()),
            format!("1000@{}", keys::source(&topic, 0)),
        )
        .await
        .unwrap();
    let snapshot = Snapshot::read(&partition).unwrap();
    projections.rebuild(0, &snapshot).await.unwrap();
    assert_eq!(
        read(redis.clone()).await,
        (Some(5), Some("cancelled".into()))
    );
    let snapshot = Snapshot::read(&partition).unwrap();
    let mismatches = projections.reconcile(0, &snapshot).await.unwrap();
    assert!(mismatches.is_empty(), "{mismatches:#?}");

    // Offsets of another stream do not compare: its values replace these, whatever their
    // offsets (a topic created anew, or a property moved to another partition).
    let elsewhere = Projections::new(&redis_url(), &format!("{topic}-anew")).unwrap();
    elsewhere.write(0, None, 1, &first.applied, None).await;
    assert_eq!(
        read(redis.clone()).await,
        (Some(4), Some("confirmed".into()))
    );
}
