//! The JSON answers every stage shares: the helpers that build them and the 202 body.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use uuid::Uuid;

/// The 202 body: where the event went, so a partner can quote it and a verifier can find it.
#[derive(Debug, Serialize)]
pub struct Accepted {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<Uuid>,
    pub event_id: Uuid,
    pub status: &'static str,
    pub partition: i32,
    pub offset: i64,
}

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    let json = serde_json::to_vec(body).expect("response bodies always serialize");
    json_bytes(status, Bytes::from(json))
}

/// A JSON response; `body` must already be JSON.
pub fn json_bytes(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_body_omits_booking_id_for_inventory() {
        let accepted = Accepted {
            booking_id: None,
            event_id: Uuid::nil(),
            status: "accepted",
            partition: 3,
            offset: 42,
        };
        let json = serde_json::to_value(&accepted).unwrap();
        assert!(json.get("booking_id").is_none());
        assert_eq!(json["partition"], 3);
        assert_eq!(json["offset"], 42);
        assert_eq!(json["status"], "accepted");
    }
}
