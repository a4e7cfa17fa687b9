use super::*;
use crate::ota::codes::{REQUIRED_FIELD, REQUIRED_FIELD_MISSING};
use crate::ota::message::{header, OTA_NAMESPACE};
use crate::ota::xml::{parse, Limits};

const SAMPLE: &str = include_str!("../../../../loadtest/ota/OTA_HotelResNotifRQ.xml");

fn reservation_of(xml: &str) -> Result<Reservation, OtaError> {
    let root = parse(xml.as_bytes(), Limits::default()).unwrap();
    let kind = header(&root)?.kind;
    read(&root, kind)
}

/// The sample message with `from` replaced by `to` (which must be there once).
fn sample_with(from: &str, to: &str) -> String {
    assert_eq!(SAMPLE.matches(from).count(), 1, "{from:?}");
    SAMPLE.replace(from, to)
}

#[test]
fn the_sample_reservation_reads_as_one_booking() {
    let root = parse(SAMPLE.as_bytes(), Limits::default()).unwrap();
    let header = header(&root).unwrap();
    assert_eq!(header.kind, MessageKind::HotelResNotif);
    assert_eq!(header.version, "1.0");
    assert_eq!(header.echo_token.as_deref(), Some("demo-res-0001"));
    assert!(!header.retransmission);
    assert_eq!(
        read(&root, header.kind).unwrap(),
        Reservation {
            action: Action::Create,
            reservation_id: "DEMO-CH-100234".into(),
            last_modified: None,
            hotel_code: "LIS001".into(),
            room_type: "DBL".into(),
            rooms: 1,
            check_in: "2027-04-14".into(),
            check_out: "2027-04-17".into(),
            guests: 2,
            amount_minor: 38_760,
            currency: "EUR".into(),
            guest_name: Some("Marta Quintela".into()),
        }
    );
}

#[test]
fn res_status_makes_a_notification_a_modification_or_a_cancellation() {
    let modify = sample_with(r#"TimeStamp="#, r#"ResStatus="Modify" TimeStamp="#);
    assert_eq!(reservation_of(&modify).unwrap().action, Action::Modify);
    let cancel = sample_with(r#"ResStatus="Reserved""#, r#"ResStatus="Cancelled""#);
    assert_eq!(reservation_of(&cancel).unwrap().action, Action::Cancel);
    let modify_message = SAMPLE
        .replace("OTA_HotelResNotifRQ", "OTA_HotelResModifyNotifRQ")
        .replace("HotelReservations>", "HotelResModifies>")
        .replace(
            "<HotelReservation ",
            "<HotelResModify LastModifyDateTime=\"2027-03-02T10:00:00Z\" ",
        )
        .replace("</HotelReservation>", "</HotelResModify>");
    let modified = reservation_of(&modify_message).unwrap();
    assert_eq!(modified.action, Action::Modify);
    assert_eq!(
        modified.last_modified.as_deref(),
        Some("2027-03-02T10:00:00Z")
    );
}

#[test]
fn values_may_sit_in_res_global_info_and_time_spans_may_carry_times() {
    let moved = sample_with(
        r#"<Total AmountAfterTax="387.60" CurrencyCode="EUR" DecimalPlaces="2"/>"#,
        "",
    )
    .replace(
        "</HotelReservation>",
        r#"<ResGlobalInfo><Total AmountAfterTax="38760" CurrencyCode="EUR" DecimalPlaces="2"/></ResGlobalInfo></HotelReservation>"#,
    )
    .replace(r#"Start="2027-04-14""#, r#"Start="2027-04-14T15:00:00""#);
    let reservation = reservation_of(&moved).unwrap();
    assert_eq!(reservation.amount_minor, 38_760);
    assert_eq!(reservation.check_in, "2027-04-14");
}

#[test]
fn a_missing_value_is_named_by_its_path() {
    let cases = [
        (
            r#" HotelCode="LIS001""#,
            "HotelReservation/RoomStays/RoomStay/BasicPropertyInfo/@HotelCode",
        ),
        (
            r#" RoomTypeCode="DBL""#,
            "HotelReservation/RoomStays/RoomStay/RoomTypes/RoomType/@RoomTypeCode",
        ),
        (
            r#" End="2027-04-17""#,
            "HotelReservation/RoomStays/RoomStay/TimeSpan/@End",
        ),
        (r#" ID="DEMO-CH-100234""#, "HotelReservation/UniqueID/@ID"),
        (
            r#" CurrencyCode="EUR""#,
            "HotelReservation/RoomStays/RoomStay/Total/@CurrencyCode",
        ),
    ];
    for (attribute, path) in cases {
        let error = reservation_of(&sample_with(attribute, "")).unwrap_err();
        assert_eq!(
            (error.kind, error.code),
            (REQUIRED_FIELD_MISSING, REQUIRED_FIELD),
            "{path}"
        );
        assert_eq!(error.tag.as_deref(), Some(path));
    }
    let no_version = sample_with(r#" Version="1.0""#, "");
    let error = header(&parse(no_version.as_bytes(), Limits::default()).unwrap()).unwrap_err();
    assert_eq!(error.tag.as_deref(), Some("OTA_HotelResNotifRQ/@Version"));
}

#[test]
fn several_room_stays_or_reservations_are_refused_whole() {
    let two_stays = SAMPLE.replace("</RoomStay>", "</RoomStay><RoomStay/>");
    let error = reservation_of(&two_stays).unwrap_err();
    assert_eq!(
        error.tag.as_deref(),
        Some("HotelReservation/RoomStays/RoomStay")
    );
    assert!(
        error.detail.contains("one RoomStay per message"),
        "{}",
        error.detail
    );
    let two = SAMPLE.replace(
        "</HotelReservation>",
        "</HotelReservation><HotelReservation/>",
    );
    let error = reservation_of(&two).unwrap_err();
    assert_eq!(
        error.tag.as_deref(),
        Some("HotelReservations/HotelReservation")
    );
}

#[test]
fn a_bad_total_or_count_names_the_attribute() {
    let error = reservation_of(&sample_with(
        r#"AmountAfterTax="387.60""#,
        r#"AmountAfterTax="387.605""#,
    ))
    .unwrap_err();
    assert_eq!(
        error.tag.as_deref(),
        Some("HotelReservation/RoomStays/RoomStay/Total/@AmountAfterTax")
    );
    let cancelling = sample_with(
        r#"<GuestCount AgeQualifyingCode="10" Count="2"/>"#,
        r#"<GuestCount Count="-3"/><GuestCount Count="5"/>"#,
    );
    let error = reservation_of(&cancelling).unwrap_err();
    assert!(
        error.detail.contains("-3 is not a count"),
        "{}",
        error.detail
    );
    let error = reservation_of(&sample_with(r#"Count="2""#, r#"Count="two""#)).unwrap_err();
    assert_eq!(
        error.tag.as_deref(),
        Some("HotelReservation/RoomStays/RoomStay/GuestCounts/GuestCount/@Count")
    );
}

#[test]
fn only_the_five_messages_in_the_opentravel_namespace_are_taken() {
    let other = SAMPLE.replace("OTA_HotelResNotifRQ", "OTA_HotelRatePlanNotifRQ");
    let error = header(&parse(other.as_bytes(), Limits::default()).unwrap()).unwrap_err();
    assert!(error.detail.contains("not a message this endpoint takes"));
    let foreign = SAMPLE.replace(OTA_NAMESPACE, "urn:somebody-else");
    let error = header(&parse(foreign.as_bytes(), Limits::default()).unwrap()).unwrap_err();
    assert!(error.detail.contains("OpenTravel namespace"));
}
