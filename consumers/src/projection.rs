//! Redis projections: remaining units per night and booking status, served by the ingress.
//!
//! Redis holds derived data only. Every write carries absolute values (never increments)
//! and the batch's source offset, so replaying an event rewrites the same value, and a
//! lost Redis loses nothing the store does not have. A batch's projection writes go out in
//! one pipelined `MULTI`, so a reader never sees half a batch.

use std::collections::BTreeMap;

use partitioner::keys;
use redis::aio::ConnectionManager;
use tracing::{error, info};

use crate::apply::{Booking, Effects, Night, NightId};
use crate::metrics;

pub struct Projections {
    redis: ConnectionManager,
    topic: String,
    /// Whether the last write failed; used to log an outage once, not once per batch.
    stale: bool,
}

impl Projections {
    pub async fn connect(url: &str, topic: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        // The manager reconnects by itself after Redis restarts.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(2)));
        let redis = ConnectionManager::new_with_config(client, config).await?;
        Ok(Projections {
            redis,
            topic: topic.to_owned(),
            stale: false,
        })
    }

    /// Writes the effects of one partition's batch and its checkpoint. A failure is logged
    /// and counted but not returned: the store already holds the truth, and consumers must
    /// keep committing while Redis is away.
    pub async fn write(&mut self, partition: i32, through: i64, effects: &[Effects]) {
        let mut pipe = redis::pipe();
        pipe.atomic();
        // Only the last value of each night and booking in the batch matters.
        let mut nights: BTreeMap<&NightId, Night> = BTreeMap::new();
        let mut bookings: BTreeMap<uuid::Uuid, &Booking> = BTreeMap::new();
        for effect in effects {
            for (id, night) in &effect.nights {
                nights.insert(id, *night);
            }
            if let Some(booking) = &effect.booking {
                bookings.insert(booking.booking_id, booking);
            }
        }
        for (id, night) in nights {
            pipe.hset(
                keys::availability(&id.tenant_id, &id.property_id, &id.room_type),
                id.night.to_string(),
                night.remaining(),
            )
            .ignore();
        }
        for booking in bookings.values() {
            pipe.hset_multiple(
                keys::booking_status(booking.booking_id),
                &booking_fields(booking, partition),
            )
            .ignore();
        }
        pipe.set(keys::projection_checkpoint(&self.topic, partition), through)
            .ignore();
        match pipe.query_async::<()>(&mut self.redis).await {
            Ok(()) => {
                if self.stale {
                    info!("redis is back: projections are written again");
                    self.stale = false;
                    ::metrics::gauge!(metrics::PROJECTION_STALE).set(0.0);
                }
            }
            Err(e) => {
                ::metrics::counter!(metrics::PROJECTION_ERRORS).increment(1);
                if !self.stale {
                    error!(error = %e, partition, "redis unavailable: projections are stale until it returns and they are rebuilt");
                    self.stale = true;
                    ::metrics::gauge!(metrics::PROJECTION_STALE).set(1.0);
                }
            }
        }
    }
}

fn booking_fields(booking: &Booking, partition: i32) -> Vec<(&'static str, String)> {
    let last_offset = booking.history.last().map_or(-1, |h| h.offset);
    vec![
        ("status", booking.status.as_str().to_owned()),
        (
            "reason",
            booking
                .reason
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
        ),
        ("tenant_id", booking.tenant_id.clone()),
        ("property_id", booking.property_id.clone()),
        ("room_type", booking.stay.room_type.clone()),
        ("check_in", booking.stay.check_in.to_string()),
        ("check_out", booking.stay.check_out.to_string()),
        ("rooms", booking.stay.rooms.to_string()),
        ("partition", partition.to_string()),
        ("offset", last_offset.to_string()),
    ]
}
