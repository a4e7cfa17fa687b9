//! What the consumer integration tests share: where the local stack is, and event builders.

#![allow(dead_code)]

pub mod process;

use std::time::Duration;

use chrono::{Days, NaiveDate};
use partitioner::redis_target::{Limits, RedisConnection, RedisTarget};
use partitioner::{Command, Envelope, Event, EventMeta, Money, Stay};
use uuid::Uuid;

/// The tenant of every event these tests publish.
pub const TENANT: &str = "acme";

/// The broker of the local stack (`infra/stack.sh up`), or `KAFKA_BROKERS`.
pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// The Redis of the local stack, or `REDIS_URL` (a node's URL, or a cluster's seeds).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// A connection to the Redis at `url`, node or cluster.
pub async fn connect_redis(url: &str) -> redis::RedisResult<RedisConnection> {
    let limits = Limits {
        connect: Duration::from_secs(2),
        response: Duration::from_secs(5),
        retries: 1,
        deadline: Duration::from_secs(10),
    };
    url.parse::<RedisTarget>()?.connect(limits).await
}

/// `event` for `property` of [`TENANT`], from partner ota-1, with a fresh event id.
pub fn envelope(property: &str, event: Event) -> Envelope {
    Envelope::new(
        Command {
            tenant_id: TENANT.into(),
            property_id: property.into(),
            event,
        },
        EventMeta {
            event_id: Uuid::new_v4(),
            partner_id: "ota-1".into(),
            request_id: "test".into(),
            received_at_ms: 0,
            any_partner: false,
        },
    )
}

/// A create of a new booking: one DBL room, one guest, `nights` from `check_in`.
pub fn create_booking(check_in: NaiveDate, nights: u64) -> Event {
    Event::CreateBooking {
        booking_id: Uuid::new_v4(),
        stay: Stay {
            room_type: "DBL".into(),
            check_in,
            check_out: check_in + Days::new(nights),
            rooms: 1,
            guests: 1,
        },
        price: Money {
            amount_minor: 100,
            currency: "EUR".into(),
        },
        guest_name: None,
        partner_reference: None,
    }
}
