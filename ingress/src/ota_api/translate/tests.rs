use super::*;
use crate::auth::{sha256_hex, Partners};
use crate::ota::message::header;
use crate::ota::xml::{parse, Limits};

const RESERVATION: &str = include_str!("../../../../loadtest/ota/OTA_HotelResNotifRQ.xml");
const CANCEL: &str = include_str!("../../../../loadtest/ota/OTA_CancelRQ.xml");
const INV_COUNT: &str = include_str!("../../../../loadtest/ota/OTA_HotelInvCountNotifRQ.xml");

fn partners() -> Partners {
    let json = format!(
        r#"{{"partners": [{{"partner_id": "cm-1", "key_sha256": "{}",
            "tenants": ["acme"], "scopes": ["bookings:write", "inventory:write"],
            "ota_hotels": {{"LIS001": "acme"}}}}]}}"#,
        sha256_hex(b"key-of-cm-1-000000000000000000000")
    );
    Partners::parse(json.as_bytes(), "p.json").unwrap()
}

fn translated(xml: &str) -> Result<Translated, Refused> {
    let partners = partners();
    let partner = partners
        .authenticate_username("cm-1", "key-of-cm-1-000000000000000000000")
        .unwrap();
    let root = parse(xml.as_bytes(), Limits::default()).unwrap();
    translate(&header(&root).unwrap(), &root, partner)
}

#[test]
fn a_reservation_becomes_a_create_of_the_hotels_tenant() {
    let translated = translated(RESERVATION).unwrap();
    assert_eq!(translated.key, "ota:DEMO-CH-100234");
    let [command] = translated.commands.as_slice() else {
        panic!("one command")
    };
    assert_eq!(command.tenant_id, "acme");
    assert_eq!(command.property_id, "LIS001");
    assert_eq!(command.event.kind(), "create_booking");
    let reservation = translated.reservation.unwrap();
    assert_eq!(reservation.action, Action::Create);
    assert_eq!(reservation.channel_id, "DEMO-CH-100234");
    assert_eq!(
        reservation.booking_id,
        command::booking_id("acme", "cm-1", "DEMO-CH-100234")
    );
    assert_eq!(command.event.booking_id(), Some(reservation.booking_id));
}

#[test]
fn a_cancellation_names_the_booking_its_create_made() {
    let created = translated(RESERVATION).unwrap().reservation.unwrap();
    let translated = translated(CANCEL).unwrap();
    assert_eq!(translated.key, "ota:DEMO-CH-100234:cancel");
    assert_eq!(translated.commands[0].event.kind(), "cancel_booking");
    assert_eq!(
        translated.reservation.unwrap().booking_id,
        created.booking_id
    );
}

#[test]
fn a_hotel_the_partner_does_not_serve_is_forbidden_as_392() {
    let other = RESERVATION.replace("HotelCode=\"LIS001\"", "HotelCode=\"OPO002\"");
    match translated(&other) {
        Err(Refused::Forbidden(error)) => {
            assert_eq!(error.code, crate::ota::codes::INVALID_HOTEL_CODE);
            assert_eq!(error.kind, AUTHORIZATION);
            assert!(error.tag.unwrap().ends_with("BasicPropertyInfo/@HotelCode"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn field_errors_name_their_element() {
    let bad = RESERVATION.replace("RoomTypeCode=\"DBL\"", "RoomTypeCode=\"D B L\"");
    match translated(&bad) {
        Err(Refused::Invalid(errors)) => {
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].code, crate::ota::codes::INVALID_ROOM_TYPE);
            assert_eq!(
                errors[0].tag.as_deref(),
                Some("HotelReservation/RoomStays/RoomStay/RoomTypes/RoomType/@RoomTypeCode")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_overlong_reservation_id_is_refused_on_its_element() {
    let long = "X".repeat(300);
    let bad = RESERVATION.replace("DEMO-CH-100234", &long);
    match translated(&bad) {
        Err(Refused::Invalid(errors)) => {
            assert_eq!(
                errors[0].tag.as_deref(),
                Some("HotelReservation/UniqueID/@ID")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn inventory_ranges_share_one_key_that_the_message_changes() {
    let one = translated(INV_COUNT).unwrap();
    assert!(one.commands.len() > 1, "the sample has several ranges");
    assert!(one.reservation.is_none());
    assert!(one.key.starts_with("ota:inventory:"));
    assert_eq!(
        translated(INV_COUNT).unwrap().key,
        one.key,
        "a resend keeps it"
    );
    let echo = INV_COUNT
        .find("EchoToken=\"")
        .expect("the sample has an EchoToken");
    let resent_later = format!(
        "{}EchoToken=\"another-{}",
        &INV_COUNT[..echo],
        &INV_COUNT[echo + 11..]
    );
    assert_ne!(translated(&resent_later).unwrap().key, one.key);
}

#[test]
fn inventory_without_echo_token_or_timestamp_is_refused() {
    let root_end = INV_COUNT.find("<Inventories").unwrap();
    let bare = format!(
        "<OTA_HotelInvCountNotifRQ xmlns=\"http://www.opentravel.org/OTA/2003/05\" Version=\"1.0\">{}",
        &INV_COUNT[root_end..]
    );
    match translated(&bare) {
        Err(Refused::Invalid(errors)) => {
            assert_eq!(
                errors[0].tag.as_deref(),
                Some("OTA_HotelInvCountNotifRQ/@TimeStamp")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn scopes_follow_the_json_routes() {
    assert_eq!(scope(MessageKind::HotelResNotif), Scope::BookingsWrite);
    assert_eq!(scope(MessageKind::Cancel), Scope::BookingsWrite);
    assert_eq!(scope(MessageKind::HotelAvailNotif), Scope::InventoryWrite);
    assert_eq!(
        scope(MessageKind::HotelInvCountNotif),
        Scope::InventoryWrite
    );
}
