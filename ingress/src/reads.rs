//! The read endpoints, answered from the projections the consumers keep in Redis.
//!
//! Redis is the only source here, so when it does not answer the reply is 503 with
//! Retry-After, never a guess. A booking of another tenant, or of another partner (unless
//! the key holds `bookings:any-partner`), is reported exactly like an unknown one (404,
//! not 403), so probing ids reveals nothing. A booking
//! the consumers have not decided yet has no projection either, and is 404 until then.
//! A night with no availability projection is reported as `null`, never as 0: "nothing
//! known" and "sold out" mean different things to a partner.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use partitioner::{keys, AvailabilityQuery, FieldError, Invalid};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Partner;
use crate::problem::ApiError;
use crate::redis_link::{RedisDown, RedisLink};
use crate::response::json_response;
use crate::routes::Read;

/// What the reads need, shared by all connections.
pub struct Reads {
    /// The consumers' projections (the connection the idempotency tier shares).
    pub redis: Arc<RedisLink>,
}

/// The body of `GET /v1/bookings/{id}`.
#[derive(Debug, Serialize)]
pub struct BookingStatus {
    pub booking_id: Uuid,
    /// `confirmed`, `rejected` or `cancelled`, as the consumer decided.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub tenant_id: String,
    pub property_id: String,
    pub room_type: String,
    pub check_in: String,
    pub check_out: String,
    pub rooms: u32,
}

/// The body of `GET /v1/availability`.
#[derive(Debug, Serialize)]
pub struct Availability {
    pub tenant_id: String,
    pub property_id: String,
    pub room_type: String,
    pub from: String,
    pub to: String,
    pub nights: Vec<Night>,
}

#[derive(Debug, Serialize)]
pub struct Night {
    pub date: String,
    /// Remaining units; `None` (JSON `null`) when no projection exists for the night.
    pub remaining: Option<i64>,
}

/// Answers `read` for `partner`; `query` is the request's query string.
pub async fn read(
    state: &Reads,
    read: Read,
    partner: &Partner,
    query: Option<&str>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    match read {
        Read::Booking(id) => {
            let booking = booking(&state.redis, partner, id).await?;
            Ok(json_response(StatusCode::OK, &booking))
        }
        Read::Availability => {
            let nights = availability(&state.redis, partner, query).await?;
            Ok(json_response(StatusCode::OK, &nights))
        }
        Read::Decisions => crate::feed::read(&state.redis, partner, query).await,
    }
}

fn unavailable(error: RedisDown) -> ApiError {
    ApiError::ProjectionsUnavailable(error.to_string())
}

pub async fn booking(
    redis: &RedisLink,
    partner: &Partner,
    booking_id: Uuid,
) -> Result<BookingStatus, ApiError> {
    use keys::booking_field as field;
    let key = keys::booking_status(booking_id);
    let mut cmd = redis::cmd("HGETALL");
    cmd.arg(&key);
    let mut fields: HashMap<String, String> = redis.query(&key, &cmd).await.map_err(unavailable)?;
    let mut take = |name: &str| fields.remove(name).unwrap_or_default();
    let tenant_id = take(field::TENANT_ID);
    // A projection written before bookings recorded their owner has no `partner_id`: only
    // a `bookings:any-partner` key reads it until `consumer rebuild` rewrites it
    // (OPERATIONS, upgrades).
    let owner = take(field::PARTNER_ID);
    if tenant_id.is_empty() || !partner.may_act_on(&owner, &tenant_id) {
        return Err(ApiError::BookingNotFound);
    }
    let rooms = take(field::ROOMS);
    let rooms = rooms.parse().map_err(|_| {
        ApiError::Internal(format!(
            "booking {booking_id}: bad rooms {rooms:?} in Redis"
        ))
    })?;
    let reason = Some(take(field::REASON)).filter(|r| !r.is_empty());
    Ok(BookingStatus {
        booking_id,
        status: take(field::STATUS),
        reason,
        tenant_id,
        property_id: take(field::PROPERTY_ID),
        room_type: take(field::ROOM_TYPE),
        check_in: take(field::CHECK_IN),
        check_out: take(field::CHECK_OUT),
        rooms,
    })
}

pub async fn availability(
    redis: &RedisLink,
    partner: &Partner,
    query: Option<&str>,
) -> Result<Availability, ApiError> {
    let range = parse_query(query.unwrap_or_default())?.into_range()?;
    partner.require_tenant(&range.tenant_id)?;
    let nights: Vec<String> = range.nights().map(|night| night.to_string()).collect();
    let key = keys::availability(&range.tenant_id, &range.property_id, &range.room_type);
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(&key).arg(&nights);
    let values: Vec<Option<String>> = redis.query(&key, &cmd).await.map_err(unavailable)?;
    let nights = nights
        .into_iter()
        .zip(values)
        .map(|(date, value)| Night {
            date,
            remaining: value.and_then(|v| v.parse().ok()),
        })
        .collect();
    Ok(Availability {
        tenant_id: range.tenant_id,
        property_id: range.property_id,
        room_type: range.room_type,
        from: range.from.to_string(),
        to: range.to.to_string(),
        nights,
    })
}

/// Splits `a=1&b=2`. Values are taken literally: every valid id and date is plain ASCII
/// with nothing to percent-decode, so an encoded value fails validation as it should.
/// Unknown parameters are refused, so a typo (`form=`) is not silently ignored.
fn parse_query(query: &str) -> Result<AvailabilityQuery, Invalid> {
    let mut parsed = AvailabilityQuery::default();
    let mut errors = vec![];
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "tenant_id" => &mut parsed.tenant_id,
            "property_id" => &mut parsed.property_id,
            "room_type" => &mut parsed.room_type,
            "from" => &mut parsed.from,
            "to" => &mut parsed.to,
            _ => {
                errors.push(FieldError {
                    field: name.to_owned(),
                    detail: "unknown query parameter".to_owned(),
                });
                continue;
            }
        };
        *slot = Some(value.to_owned());
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(Invalid { errors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_read_and_unknown_ones_refused() {
        let query = parse_query(
            "tenant_id=acme&property_id=p1&room_type=DBL&from=2027-01-01&to=2027-01-03",
        )
        .unwrap();
        let range = query.into_range().unwrap();
        assert_eq!(range.nights().count(), 2);
        let invalid = parse_query("tenant_id=acme&form=2027-01-01").unwrap_err();
        assert_eq!(invalid.fields().collect::<Vec<_>>(), ["form"]);
        let missing = parse_query("").unwrap().into_range().unwrap_err();
        assert_eq!(missing.errors.len(), 5);
    }

    #[test]
    fn an_unknown_night_is_null_not_zero() {
        let night = Night {
            date: "2027-01-01".into(),
            remaining: None,
        };
        assert_eq!(
            serde_json::to_value(&night).unwrap(),
            serde_json::json!({"date": "2027-01-01", "remaining": null})
        );
    }
}
