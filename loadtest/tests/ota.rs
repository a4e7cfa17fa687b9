//! OpenTravel messages through the whole pipeline: `POST /v1/ota` (bare and in SOAP 1.1),
//! Apache Kafka, the consumer, the store and Redis. Every answer is read with Python's
//! XML parser (`infra/ota_rs.py`), not the ingress's own.
//!
//! Run with the local stack up (`infra/stack.sh up`); see `support` for the harness.

mod support;

use consumers::apply::BookingStatus;
use consumers::store::{PartitionStore, Store};
use http::StatusCode;
use loadtest::client::{Answer, PartnerClient};
use serde_json::Value;
use support::{read_all, read_rs, Pipeline, PARTNER, SECRET, TENANT};
use uuid::Uuid;

/// The sample message `name` under `loadtest/ota/`, with each `(from, to)` replaced (each
/// `from` must be in it).
fn message(name: &str, replacements: &[(&str, &str)]) -> String {
    let path = format!("{}/ota/{name}.xml", env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "{from:?} is not in {name}");
        text = text.replace(from, to);
    }
    text
}

/// `message` in a SOAP 1.1 envelope whose WS-Security `UsernameToken` carries the
/// partner's id and key.
fn in_soap(message: &str) -> String {
    // The declaration belongs to the document, which is now the envelope.
    let message = match message.find("?>") {
        Some(end) if message.starts_with("<?xml") => &message[end + 2..],
        _ => message,
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">
  <soap:Header>
    <wsse:Security>
      <wsse:UsernameToken>
        <wsse:Username>{PARTNER}</wsse:Username>
        <wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">{SECRET}</wsse:Password>
      </wsse:UsernameToken>
    </wsse:Security>
  </soap:Header>
  <soap:Body>{message}</soap:Body>
</soap:Envelope>"#
    )
}

/// How a test sends its messages.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    /// The bare message, with the bearer key.
    Plain,
    /// In SOAP, with only the `UsernameToken` as credentials.
    Soap,
}

async fn send(client: &PartnerClient, form: Form, message: &str) -> (Answer, Value) {
    let answer = match form {
        Form::Plain => client
            .post_ota(message.to_owned(), "application/xml", true, &[])
            .await
            .unwrap(),
        Form::Soap => client
            .post_ota(in_soap(message), "text/xml; charset=utf-8", false, &[])
            .await
            .unwrap(),
    };
    let rs = read_rs(&answer.raw);
    assert_eq!(rs["soap"], form == Form::Soap, "{rs}");
    (answer, rs)
}

/// A 200 `Success` without warnings or errors.
fn assert_success(answer: &Answer, rs: &Value, root: &str) {
    assert_eq!(answer.status, StatusCode::OK, "{rs}");
    assert_eq!(rs["root"], root, "{rs}");
    assert_eq!(rs["success"], true, "{rs}");
    assert_eq!(rs["errors"], serde_json::json!([]), "{rs}");
    assert_eq!(rs["warnings"], serde_json::json!([]), "{rs}");
}

/// The booking id an answer gives as the hotel's confirmation number.
fn confirmation(rs: &Value) -> Uuid {
    rs["hotel_reservation_ids"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no HotelReservationID: {rs}"))
        .parse()
        .unwrap()
}

/// The outcomes the consumer published for `booking_id`, in order.
async fn outcomes(pipeline: &Pipeline, booking_id: Uuid, expected: usize) -> Vec<String> {
    read_all(&pipeline.topics.decisions, expected)
        .await
        .iter()
        .filter_map(|(_, payload)| serde_json::from_slice::<Value>(payload).ok())
        .filter(|decision| decision["booking_id"] == booking_id.to_string())
        .map(|decision| decision["outcome"].as_str().unwrap().to_owned())
        .collect()
}

/// Each message type, bare with a bearer key and in SOAP with a `UsernameToken`: the
/// inventory sets the allotments, the reservation is confirmed with the booking id as the
/// hotel's confirmation number, modified, then cancelled; the projections, the decisions
/// topic and the store agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_type_flows_through_the_pipeline_bare_and_in_soap() {
    for (form, hotel) in [(Form::Plain, "OTAPLAIN"), (Form::Soap, "OTASOAP")] {
        let mut pipeline = Pipeline::start().await;
        let client = pipeline.client.clone();
        let channel_id = format!("CH-{}", Uuid::new_v4().simple());
        let hotel_code = format!("HotelCode=\"{hotel}\"");
        let ours = [
            ("HotelCode=\"LIS001\"", hotel_code.as_str()),
            ("DEMO-CH-100234", channel_id.as_str()),
        ];

        let inventory = message("OTA_HotelInvCountNotifRQ", &ours[..1]);
        let (answer, rs) = send(&client, form, &inventory).await;
        assert_success(&answer, &rs, "OTA_HotelInvCountNotifRS");
        assert_eq!(rs["attributes"]["EchoToken"], "demo-inv-0001", "{rs}");
        let limits = message("OTA_HotelAvailNotifRQ", &ours[..1]);
        let (answer, rs) = send(&client, form, &limits).await;
        assert_success(&answer, &rs, "OTA_HotelAvailNotifRS");
        pipeline
            .remaining_becomes(hotel, "DBL", "2027-04-14", 12)
            .await;
        pipeline
            .remaining_becomes(hotel, "SGL", "2027-04-30", 4)
            .await;
        pipeline
            .remaining_becomes(hotel, "DBL", "2027-05-03", 10)
            .await;
        assert_eq!(
            pipeline.remaining(hotel, "DBL", "2027-05-04").await,
            None,
            "End is the last night"
        );

        let (answer, rs) = send(&client, form, &message("OTA_HotelResNotifRQ", &ours)).await;
        assert_success(&answer, &rs, "OTA_HotelResNotifRS");
        assert_eq!(rs["attributes"]["ResResponseType"], "Committed", "{rs}");
        assert_eq!(rs["unique_ids"][0], channel_id.as_str(), "{rs}");
        let booking_id = confirmation(&rs);
        assert_eq!(
            booking_id,
            partitioner::booking_id(TENANT, PARTNER, &format!("ota:{channel_id}"))
        );
        pipeline
            .remaining_becomes(hotel, "DBL", "2027-04-14", 11)
            .await;
        assert_eq!(
            pipeline.booking_status(booking_id).await.as_deref(),
            Some("confirmed")
        );

        let modify = message("OTA_HotelResModifyNotifRQ", &ours);
        let (answer, rs) = send(&client, form, &modify).await;
        assert_success(&answer, &rs, "OTA_HotelResModifyNotifRS");
        assert_eq!(confirmation(&rs), booking_id);
        pipeline
            .remaining_becomes(hotel, "DBL", "2027-04-14", 12)
            .await;
        pipeline
            .remaining_becomes(hotel, "DBL", "2027-04-17", 10)
            .await;

        let (answer, rs) = send(&client, form, &message("OTA_CancelRQ", &ours)).await;
        assert_success(&answer, &rs, "OTA_CancelRS");
        assert_eq!(rs["attributes"]["Status"], "Cancelled", "{rs}");
        pipeline
            .remaining_becomes(hotel, "DBL", "2027-04-17", 12)
            .await;
        assert_eq!(
            pipeline.booking_status(booking_id).await.as_deref(),
            Some("cancelled")
        );

        assert_eq!(
            outcomes(&pipeline, booking_id, 6).await,
            ["confirmed", "modified", "cancelled"],
            "{form:?}"
        );
        let store = pipeline.stop_consumer().await;
        let partition = (0..support::PARTITIONS)
            .find(|p| {
                store
                    .open(*p)
                    .unwrap()
                    .booking(booking_id)
                    .unwrap()
                    .is_some()
            })
            .expect("the booking is in the store");
        let booking = store.open(partition).unwrap().booking(booking_id).unwrap();
        let booking = booking.unwrap();
        assert_eq!(booking.status, BookingStatus::Cancelled);
        assert_eq!(
            booking.partner_reference.as_deref(),
            Some(channel_id.as_str()),
            "the channel's reservation id is kept on the booking"
        );
        assert_eq!(booking.history.len(), 3, "{form:?}");
    }
}

/// A channel that retransmits (timeout on its side, `RetransmissionIndicator`) gets the
/// same answer, marked as a replay, and the reservation is applied once; another
/// reservation under the same id is refused as a reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retransmission_is_answered_the_same_and_applied_once() {
    let mut pipeline = Pipeline::start().await;
    let client = pipeline.client.clone();
    let channel_id = format!("CH-{}", Uuid::new_v4().simple());
    let ours = [
        ("HotelCode=\"LIS001\"", "HotelCode=\"OTARETX\""),
        ("DEMO-CH-100234", channel_id.as_str()),
    ];
    let inventory = message("OTA_HotelInvCountNotifRQ", &ours[..1]);
    let (answer, rs) = send(&client, Form::Plain, &inventory).await;
    assert_success(&answer, &rs, "OTA_HotelInvCountNotifRS");
    let (again, rs_again) = send(&client, Form::Plain, &inventory).await;
    assert_success(&again, &rs_again, "OTA_HotelInvCountNotifRS");
    assert_eq!(again.headers["idempotent-replayed"], "true");

    let reservation = message("OTA_HotelResNotifRQ", &ours);
    let (first, rs) = send(&client, Form::Plain, &reservation).await;
    assert_success(&first, &rs, "OTA_HotelResNotifRS");
    assert!(first.headers.get("idempotent-replayed").is_none());
    let booking_id = confirmation(&rs);

    let resent = reservation.replace(
        "TimeStamp=\"2027-03-01T09:30:00Z\"",
        "TimeStamp=\"2027-03-01T09:31:00Z\" RetransmissionIndicator=\"true\"",
    );
    for form in [Form::Plain, Form::Soap] {
        let (answer, rs_resent) = send(&client, form, &resent).await;
        assert_success(&answer, &rs_resent, "OTA_HotelResNotifRS");
        assert_eq!(answer.headers["idempotent-replayed"], "true");
        assert_eq!(rs_resent["unique_ids"], rs["unique_ids"]);
        assert_eq!(
            rs_resent["hotel_reservation_ids"],
            rs["hotel_reservation_ids"]
        );
        assert_eq!(rs_resent["attributes"]["EchoToken"], "demo-res-0001");
    }
    pipeline
        .remaining_becomes("OTARETX", "DBL", "2027-04-14", 11)
        .await;

    let other_stay = reservation.replace("End=\"2027-04-17\"", "End=\"2027-04-19\"");
    let (reused, rs_reused) = send(&client, Form::Plain, &other_stay).await;
    assert_eq!(
        reused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{rs_reused}"
    );
    assert_eq!(rs_reused["errors"][0]["Code"], "320", "{rs_reused}");

    // Settle on a later event of the same partition, then count what was decided.
    let cancel = message("OTA_CancelRQ", &ours);
    let (answer, rs) = send(&client, Form::Plain, &cancel).await;
    assert_success(&answer, &rs, "OTA_CancelRS");
    assert_eq!(
        outcomes(&pipeline, booking_id, 4).await,
        ["confirmed", "cancelled"],
        "the retransmissions were applied once"
    );
    assert_eq!(
        pipeline.remaining("OTARETX", "DBL", "2027-04-19").await,
        Some(12)
    );
}

/// Invariant 2 in the channel managers' dialect: many channels racing for the last rooms
/// of a night get exactly as many `Success` answers as there are rooms, and every other
/// one `Errors` with OpenTravel's 322 (no availability); a room type with no inventory is
/// 402.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_rooms_go_to_exactly_as_many_ota_reservations() {
    const ROOMS: usize = 3;
    const RACERS: usize = 20;
    let mut pipeline = Pipeline::start().await;
    let client = pipeline.client.clone();
    let hotel = [("HotelCode=\"LIS001\"", "HotelCode=\"OTARACE\"")];
    let inventory = message(
        "OTA_HotelAvailNotifRQ",
        &[hotel[0], ("BookingLimit=\"10\"", "BookingLimit=\"3\"")],
    );
    let (answer, rs) = send(&client, Form::Plain, &inventory).await;
    assert_success(&answer, &rs, "OTA_HotelAvailNotifRS");
    pipeline
        .remaining_becomes("OTARACE", "DBL", "2027-05-01", 3)
        .await;

    let run = Uuid::new_v4().simple().to_string();
    let answers = futures::future::join_all((0..RACERS).map(|i| {
        let client = client.clone();
        let channel_id = format!("CH-{run}-{i}");
        let reservation = message(
            "OTA_HotelResNotifRQ",
            &[
                hotel[0],
                ("DEMO-CH-100234", channel_id.as_str()),
                ("Start=\"2027-04-14\"", "Start=\"2027-05-01\""),
                ("End=\"2027-04-17\"", "End=\"2027-05-02\""),
            ],
        );
        async move { send(&client, Form::Plain, &reservation).await }
    }))
    .await;
    let mut confirmed = 0;
    for (answer, rs) in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{rs}");
        if rs["success"] == true {
            confirmed += 1;
        } else {
            assert_eq!(rs["errors"][0]["Code"], "322", "{rs}");
            assert_eq!(rs["errors"][0]["Type"], "3", "{rs}");
        }
    }
    assert_eq!(confirmed, ROOMS);
    pipeline
        .remaining_becomes("OTARACE", "DBL", "2027-05-01", 0)
        .await;

    let suite = message(
        "OTA_HotelResNotifRQ",
        &[
            hotel[0],
            ("DEMO-CH-100234", &format!("CH-{run}-suite")),
            ("RoomTypeCode=\"DBL\"", "RoomTypeCode=\"SUI\""),
        ],
    );
    let (answer, rs) = send(&client, Form::Plain, &suite).await;
    assert_eq!(answer.status, StatusCode::OK, "{rs}");
    assert_eq!(rs["errors"][0]["Code"], "402", "{rs}");
}

/// An ingress that may not wait (`INGRESS_MAX_WAIT_MS=0`) answers every reservation
/// pending: `Success`, an advisory `Warning` and both ids, the booking durable. Once the
/// consumer has decided, a retransmission answers the decision (confirmed, no
/// availability, cancelled), looked up in the projections; a modification stays pending,
/// since the booking's status cannot tell which modification made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_answer_becomes_the_decision_on_retransmission() {
    let mut pipeline = Pipeline::start_with(&["--max-wait-ms=0"]).await;
    let client = pipeline.client.clone();
    let run = Uuid::new_v4().simple().to_string();
    let hotel = ("HotelCode=\"LIS001\"", "HotelCode=\"OTAPEND\"");
    let one_room = message(
        "OTA_HotelAvailNotifRQ",
        &[hotel, ("BookingLimit=\"10\"", "BookingLimit=\"1\"")],
    );
    let (answer, rs) = send(&client, Form::Plain, &one_room).await;
    assert_success(&answer, &rs, "OTA_HotelAvailNotifRS");
    pipeline
        .remaining_becomes("OTAPEND", "DBL", "2027-05-01", 1)
        .await;
    let reservation = |suffix: &str| {
        message(
            "OTA_HotelResNotifRQ",
            &[
                hotel,
                ("DEMO-CH-100234", &format!("CH-{run}-{suffix}")),
                ("Start=\"2027-04-14\"", "Start=\"2027-05-01\""),
                ("End=\"2027-04-17\"", "End=\"2027-05-02\""),
            ],
        )
    };

    let assert_pending = |answer: &Answer, rs: &Value, status_attribute: &str| {
        assert_eq!(answer.status, StatusCode::OK, "{rs}");
        assert_eq!(rs["success"], true, "{rs}");
        assert_eq!(rs["warnings"][0]["Type"], "11", "{rs}");
        assert_eq!(rs["attributes"][status_attribute], "Pending", "{rs}");
    };
    let (first, rs_first) = send(&client, Form::Plain, &reservation("first")).await;
    assert_pending(&first, &rs_first, "ResResponseType");
    let winner = confirmation(&rs_first);
    pipeline
        .remaining_becomes("OTAPEND", "DBL", "2027-05-01", 0)
        .await;
    let (second, rs_second) = send(&client, Form::Plain, &reservation("second")).await;
    assert_pending(&second, &rs_second, "ResResponseType");
    let loser = confirmation(&rs_second);

    let (again, rs) = send(&client, Form::Soap, &reservation("first")).await;
    assert_success(&again, &rs, "OTA_HotelResNotifRS");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(rs["attributes"]["ResResponseType"], "Committed", "{rs}");
    assert_eq!(confirmation(&rs), winner);
    // The loser's decision may trail its acceptance: retransmit until it is known.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let rs = loop {
        let (again, rs) = send(&client, Form::Plain, &reservation("second")).await;
        assert_eq!(again.status, StatusCode::OK, "{rs}");
        if rs["errors"].as_array().is_some_and(|e| !e.is_empty()) {
            break rs;
        }
        assert!(std::time::Instant::now() < deadline, "still pending: {rs}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(rs["errors"][0]["Code"], "322", "{rs}");
    assert_eq!(
        pipeline.booking_status(loser).await.as_deref(),
        Some("rejected")
    );

    let modify = message(
        "OTA_HotelResModifyNotifRQ",
        &[
            hotel,
            ("DEMO-CH-100234", &format!("CH-{run}-first")),
            ("Start=\"2027-04-15\"", "Start=\"2027-05-01\""),
            ("End=\"2027-04-18\"", "End=\"2027-05-02\""),
            ("NumberOfUnits=\"2\"", "NumberOfUnits=\"1\""),
        ],
    );
    let (answer, rs) = send(&client, Form::Plain, &modify).await;
    assert_pending(&answer, &rs, "ResResponseType");
    let (answer, rs) = send(&client, Form::Plain, &modify).await;
    assert_pending(&answer, &rs, "ResResponseType");
    assert_eq!(answer.headers["idempotent-replayed"], "true");

    let cancel = message(
        "OTA_CancelRQ",
        &[hotel, ("DEMO-CH-100234", &format!("CH-{run}-first"))],
    );
    let (answer, rs) = send(&client, Form::Plain, &cancel).await;
    assert_pending(&answer, &rs, "Status");
    pipeline
        .remaining_becomes("OTAPEND", "DBL", "2027-05-01", 1)
        .await;
    let (answer, rs) = send(&client, Form::Plain, &cancel).await;
    assert_success(&answer, &rs, "OTA_CancelRS");
    assert_eq!(rs["attributes"]["Status"], "Cancelled", "{rs}");
}
