use uuid::Uuid;

use super::*;
use crate::ota::message::MessageKind;
use crate::ota::xml::{parse, Element, Limits};

fn reservation(action: Action) -> ReservationRef {
    ReservationRef {
        action,
        channel_id: "CH-1".into(),
        booking_id: Uuid::from_u128(7),
    }
}

fn status(status: &str, reason: Option<&str>) -> BookingStatus {
    BookingStatus {
        booking_id: Uuid::from_u128(7),
        status: status.into(),
        reason: reason.map(str::to_owned),
        tenant_id: "acme".into(),
        property_id: "LIS001".into(),
        room_type: "DBL".into(),
        check_in: "2027-04-14".into(),
        check_out: "2027-04-17".into(),
        rooms: 1,
    }
}

fn rejected(reason: RejectReason) -> Record {
    Record {
        outcome: Some(Outcome::Rejected),
        reason: Some(reason),
    }
}

#[test]
fn rejections_answer_their_ota_codes() {
    for (reason, code) in [
        (RejectReason::SoldOut, 322),
        (RejectReason::UnknownRoomType, 402),
        (RejectReason::BookingNotFound, 245),
        (RejectReason::PropertyMismatch, 392),
        (RejectReason::InvalidTransition, 450),
    ] {
        let Answer::Errors(errors) = rejected(reason).answer(None, 5000) else {
            panic!("{reason:?} is an error")
        };
        assert_eq!(errors[0].code.0, code, "{reason:?}");
        assert_eq!(errors[0].kind, BIZ_RULE);
        assert!(errors[0].detail.contains(reason.as_str()));
    }
}

#[test]
fn a_record_survives_its_idempotency_store() {
    let record = rejected(RejectReason::SoldOut);
    let stored = serde_json::to_vec(&record).unwrap();
    assert_eq!(Record::from_stored(&stored), record);
    assert_eq!(Record::from_stored(b"{}"), Record::default());
    // The same key's JSON 202 reads as pending rather than failing the answer.
    let accepted = br#"{"event_id":"00000000-0000-0000-0000-000000000007","status":"accepted","partition":1,"offset":2}"#;
    assert_eq!(Record::from_stored(accepted), Record::default());
}

#[test]
fn a_pending_create_or_cancel_is_resolved_by_the_booking_status() {
    let create = reservation(Action::Create);
    let pending = Record::default();
    assert_eq!(pending.clone().resolved(&create, None), pending);
    let confirmed = pending
        .clone()
        .resolved(&create, Some(&status("confirmed", None)));
    assert_eq!(confirmed.outcome, Some(Outcome::Confirmed));
    let later_cancelled = pending
        .clone()
        .resolved(&create, Some(&status("cancelled", None)));
    assert_eq!(later_cancelled.outcome, Some(Outcome::Confirmed));
    let sold_out = pending
        .clone()
        .resolved(&create, Some(&status("rejected", Some("sold_out"))));
    assert_eq!(sold_out, rejected(RejectReason::SoldOut));

    let cancel = reservation(Action::Cancel);
    let cancelled = pending
        .clone()
        .resolved(&cancel, Some(&status("cancelled", None)));
    assert_eq!(cancelled.outcome, Some(Outcome::Cancelled));
    assert_eq!(
        pending
            .clone()
            .resolved(&cancel, Some(&status("confirmed", None))),
        pending
    );
    let modify = reservation(Action::Modify);
    assert_eq!(
        pending
            .clone()
            .resolved(&modify, Some(&status("confirmed", None))),
        pending,
        "the status cannot tell which modification made it"
    );
}

fn body_of(response: Response<Full<Bytes>>) -> Element {
    use http_body_util::BodyExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let bytes = runtime
        .block_on(response.into_body().collect())
        .unwrap()
        .to_bytes();
    parse(&bytes, Limits::default()).unwrap()
}

#[test]
fn refusals_before_the_message_is_read_are_ota_error_rs() {
    let response = Form::default().refuse(&ApiError::Unauthorized, "/v1/ota", "req-1");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/xml; charset=utf-8"
    );
    assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    let root = body_of(response);
    assert_eq!(root.name, "OTA_ErrorRS");
    assert_eq!(root.attribute("ErrorCode"), Some("497"));
    assert_eq!(root.attribute("Status"), Some("NotProcessed"));
    let error = root.find(&["Errors", "Error"]).unwrap();
    assert_eq!(error.attribute("Type"), Some("4"));
}

#[test]
fn refusals_of_a_read_message_are_its_rs_in_its_form() {
    let form = Form {
        header: Some(Header {
            kind: MessageKind::Cancel,
            version: "2.1".into(),
            echo_token: Some("e-1".into()),
            timestamp: None,
            retransmission: false,
        }),
        soap: true,
    };
    let limited = ApiError::RateLimited {
        limit: 5,
        retry_after: std::time::Duration::from_secs(2),
    };
    let response = form.refuse(&limited, "/v1/ota", "req-1");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/xml; charset=utf-8"
    );
    let envelope = body_of(response);
    let rs = envelope.find(&["Body", "OTA_CancelRS"]).unwrap();
    assert_eq!(rs.attribute("EchoToken"), Some("e-1"));
    assert_eq!(rs.attribute("Status"), Some("Unsuccessful"));
    let error = rs.find(&["Errors", "Error"]).unwrap();
    assert_eq!(error.attribute("Code"), Some("450"));
}
