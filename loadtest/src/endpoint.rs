//! What a load generator sends a booking create to: the ingress's partner API, or an
//! HTTP-to-Kafka bridge's producer API (the Strimzi Kafka Bridge's `POST /topics/{topic}`)
//! carrying the very record the ingress would publish for that create, so the two servers
//! are compared under the same load and the same record size on Kafka.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use partitioner::{intake, Mutation, PartitionMap, Sender};

/// The Strimzi Kafka Bridge's embedded-JSON format, for requests and answers.
pub const BRIDGE_CONTENT_TYPE: &str = "application/vnd.kafka.json.v2+json";

#[derive(Clone, Debug)]
pub enum Endpoint {
    /// `POST /v1/bookings` with the partner's bearer key and a fresh Idempotency-Key.
    Ingress { partner_key: String, bearer: String },
    /// `POST /topics/{topic}` with one record per request, keyed like the ingress's.
    KafkaBridge {
        path: String,
        /// One request body per property, built once: the bridge neither validates nor
        /// deduplicates, so repeating a record costs it exactly what a new one would.
        bodies: Arc<Vec<Bytes>>,
    },
}

impl Endpoint {
    pub fn ingress(partner_key: &str) -> Endpoint {
        Endpoint::Ingress {
            partner_key: partner_key.to_owned(),
            bearer: format!("Bearer {partner_key}"),
        }
    }

    /// The bridge producing to `topic`, records spread over `properties` properties.
    pub fn kafka_bridge(topic: &str, properties: usize) -> Endpoint {
        let bodies = (0..properties.max(1))
            .map(|property| Bytes::from(bridge_body(property)))
            .collect();
        Endpoint::KafkaBridge {
            path: format!("/topics/{topic}"),
            bodies: Arc::new(bodies),
        }
    }

    /// The create for `property`; `key` is its Idempotency-Key where the server takes one.
    pub fn create(&self, host: &str, key: &str, property: usize) -> Request<Full<Bytes>> {
        let builder = Request::builder().method(Method::POST).header("host", host);
        let request = match self {
            Endpoint::Ingress { bearer, .. } => builder
                .uri("/v1/bookings")
                .header("authorization", bearer)
                .header("content-type", "application/json")
                .header("idempotency-key", key)
                .body(Full::new(booking_body(property))),
            Endpoint::KafkaBridge { path, bodies } => builder
                .uri(path)
                .header("content-type", BRIDGE_CONTENT_TYPE)
                .body(Full::new(bodies[property % bodies.len()].clone())),
        };
        request.expect("a valid request")
    }

    /// Whether `status` means the record is acknowledged: the ingress answers 202, the
    /// bridge 200 with the records' offsets.
    pub fn acknowledged(&self, status: StatusCode) -> bool {
        match self {
            Endpoint::Ingress { .. } => status == StatusCode::ACCEPTED,
            Endpoint::KafkaBridge { .. } => status == StatusCode::OK,
        }
    }
}

/// A valid create for property `property` of tenant `bench`, as the ingress expects it.
pub fn booking_body(property: usize) -> Bytes {
    let nights = 1 + property % 3;
    let day = 1 + property % 25;
    Bytes::from(format!(
        r#"{{"tenant_id":"bench","property_id":"p{property:04}","room_type":"DBL","check_in":"2031-03-{day:02}","check_out":"2031-03-{:02}","rooms":1,"guests":2,"amount_minor":{},"currency":"EUR","guest_name":"Load Test"}}"#,
        day + nights,
        11_000 * nights
    ))
}

/// The bridge's request for `property`: one record with the key and value the ingress
/// publishes for [`booking_body`]`(property)`, made by the ingress's own request step on a
/// topic of 12 partitions.
fn bridge_body(property: usize) -> String {
    let sender = Sender {
        partner_id: "demo-ota-1",
        any_partner: false,
        idempotency_key: &format!("bridge-{property}"),
        // The ingress's own request ids are UUIDs: the same length on Kafka.
        request_id: &uuid::Uuid::new_v4().to_string(),
        received_at_ms: 1_900_000_000_000,
    };
    let map = PartitionMap::parse(12, "").expect("a plain 12-partition map");
    let prepared = intake::prepare(
        Mutation::CreateBooking,
        &sender,
        &booking_body(property),
        &map,
    )
    .expect("booking bodies are valid creates");
    let value: serde_json::Value =
        serde_json::from_slice(&prepared.envelope.to_json()).expect("envelopes are JSON");
    serde_json::json!({ "records": [{ "key": prepared.routing_key, "value": value }] }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booking_bodies_are_valid_creates() {
        for property in [0, 1, 24, 199] {
            let body: serde_json::Value = serde_json::from_slice(&booking_body(property)).unwrap();
            let check_in: chrono::NaiveDate =
                serde_json::from_value(body["check_in"].clone()).unwrap();
            let check_out: chrono::NaiveDate =
                serde_json::from_value(body["check_out"].clone()).unwrap();
            assert!(check_out > check_in, "{body}");
            assert_eq!(body["tenant_id"], "bench");
        }
    }

    #[test]
    fn the_bridge_is_asked_to_write_the_ingress_s_record() {
        let endpoint = Endpoint::kafka_bridge("bench-topic", 3);
        let request = endpoint.create("127.0.0.1:1", "unused", 4);
        assert_eq!(request.uri(), "/topics/bench-topic");
        assert_eq!(request.headers()["content-type"], BRIDGE_CONTENT_TYPE);
        let Endpoint::KafkaBridge { bodies, .. } = &endpoint else {
            unreachable!()
        };
        let body: serde_json::Value = serde_json::from_slice(&bodies[1]).unwrap();
        let record = &body["records"][0];
        assert_eq!(record["key"], "bench/p0001");
        let value: partitioner::Envelope = serde_json::from_value(record["value"].clone()).unwrap();
        assert_eq!(value.property_id, "p0001");
        assert_eq!(value.placement.as_deref(), Some("12"));
        assert!(matches!(
            value.event,
            partitioner::Event::CreateBooking { .. }
        ));
        assert!(endpoint.acknowledged(StatusCode::OK));
        assert!(!Endpoint::ingress("k").acknowledged(StatusCode::OK));
    }
}
