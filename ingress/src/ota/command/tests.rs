use partitioner::Event;

use super::*;
use crate::ota::codes::{
    INVALID_DATE, INVALID_DATE_RANGE, INVALID_HOTEL_CODE, REQUIRED_FIELD, REQUIRED_FIELD_MISSING,
};
use crate::ota::message::MessageKind;
use crate::ota::reservation::read;
use crate::ota::xml::{parse, Limits};

/// The sample reservation (`loadtest/ota/`), as `action`.
fn reservation(action: Action) -> Reservation {
    let sample = include_str!("../../../../loadtest/ota/OTA_HotelResNotifRQ.xml");
    let root = parse(sample.as_bytes(), Limits::default()).unwrap();
    Reservation {
        action,
        ..read(&root, MessageKind::HotelResNotif).unwrap()
    }
}

#[test]
fn a_reservation_validates_into_the_same_command_as_its_json_twin() {
    let id = booking_id("acme", "ota-1", "DEMO-CH-100234");
    assert_eq!(
        id,
        partitioner::booking_id("acme", "ota-1", "ota:DEMO-CH-100234")
    );
    let command = booking_request(&reservation(Action::Create), "acme")
        .into_create(id)
        .unwrap();
    assert_eq!(
        (command.tenant_id.as_str(), command.property_id.as_str()),
        ("acme", "LIS001")
    );
    let Event::CreateBooking {
        stay,
        price,
        guest_name,
        ..
    } = command.event
    else {
        panic!("not a create: {:?}", command.event);
    };
    assert_eq!((stay.rooms, stay.guests), (1, 2));
    assert_eq!(price.amount_minor, 38_760);
    assert_eq!(guest_name.as_deref(), Some("Marta Quintela"));
    // A modification carries no name: the JSON API refuses to change it.
    let modify = booking_request(&reservation(Action::Modify), "acme");
    assert!(modify.guest_name.is_none());
    assert!(modify.into_modify(id).is_ok());
    assert!(cancel_request("LIS001", "acme").into_cancel(id).is_ok());
}

#[test]
fn each_message_of_a_reservation_has_its_own_stable_key() {
    let create = reservation(Action::Create);
    assert_eq!(reservation_key(&create), "ota:DEMO-CH-100234");
    assert_eq!(
        reservation_key(&reservation(Action::Cancel)),
        "ota:DEMO-CH-100234:cancel"
    );
    let cancellation = Cancellation {
        reservation_id: "DEMO-CH-100234".into(),
        hotel_code: "LIS001".into(),
    };
    assert_eq!(cancellation_key(&cancellation), "ota:DEMO-CH-100234:cancel");

    let stamped = Reservation {
        last_modified: Some("2027-03-02T10:00:00Z".into()),
        ..reservation(Action::Modify)
    };
    assert_eq!(
        reservation_key(&stamped),
        "ota:DEMO-CH-100234:modify:2027-03-02T10:00:00Z"
    );
    // Without a stamp: the same modification twice is one key, another stay another.
    let first = reservation_key(&reservation(Action::Modify));
    assert_eq!(first, reservation_key(&reservation(Action::Modify)));
    let longer = Reservation {
        check_out: "2027-04-18".into(),
        ..reservation(Action::Modify)
    };
    assert_ne!(first, reservation_key(&longer));
    assert!(
        first.starts_with("ota:DEMO-CH-100234:modify:")
            && first.len() == "ota:DEMO-CH-100234:modify:".len() + 16
    );
}

#[test]
fn field_errors_become_ota_errors_on_the_elements_they_came_from() {
    let bad = Reservation {
        hotel_code: "LIS 001".into(),
        check_in: "2027-04-20".into(),
        ..reservation(Action::Create)
    };
    let invalid = booking_request(&bad, "acme")
        .into_create(Uuid::nil())
        .unwrap_err();
    let errors = ota_errors(&invalid, |field| reservation_tag("HotelReservation", field));
    let found = |code| {
        errors
            .iter()
            .find(|e| e.code == code)
            .unwrap_or_else(|| panic!("{errors:?}"))
    };
    assert_eq!(
        found(INVALID_HOTEL_CODE).tag.as_deref(),
        Some("HotelReservation/RoomStays/RoomStay/BasicPropertyInfo/@HotelCode")
    );
    assert_eq!(
        found(INVALID_DATE_RANGE).tag.as_deref(),
        Some("HotelReservation/RoomStays/RoomStay/TimeSpan/@End")
    );

    let allotment = Allotment {
        hotel_code: "LIS001".into(),
        room_type: "DBL".into(),
        from: "2027-13-01".into(),
        to: "2027-04-01".into(),
        units: 3,
    };
    let invalid = allotment_request(&allotment, "acme")
        .into_allotment()
        .unwrap_err();
    let errors = ota_errors(&invalid, |field| {
        allotment_tag(MessageKind::HotelInvCountNotif, 1, field)
    });
    assert_eq!(errors[0].code, INVALID_DATE);
    assert_eq!(
        errors[0].tag.as_deref(),
        Some("Inventories/Inventory[1]/StatusApplicationControl/@Start")
    );

    let missing = Invalid {
        errors: vec![FieldError {
            field: "currency".into(),
            detail: "is required".into(),
        }],
    };
    let errors = ota_errors(&missing, |field| reservation_tag("HotelResModify", field));
    assert_eq!(
        (errors[0].kind, errors[0].code),
        (REQUIRED_FIELD_MISSING, REQUIRED_FIELD)
    );
    assert_eq!(
        errors[0].tag.as_deref(),
        Some("HotelResModify/RoomStays/RoomStay/Total/@CurrencyCode")
    );
    assert_eq!(
        allotment_tag(MessageKind::HotelAvailNotif, 2, "units"),
        "AvailStatusMessages/AvailStatusMessage[2]/@BookingLimit"
    );
    assert_eq!(
        allotment_tag(MessageKind::HotelInvCountNotif, 1, "property_id"),
        "Inventories/@HotelCode"
    );
}
