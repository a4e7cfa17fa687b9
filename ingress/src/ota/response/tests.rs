use super::*;
use crate::ota::codes::{self, OtaError};
use crate::ota::soap::unwrap;
use crate::ota::xml::{parse, Element, Limits};

fn header(kind: MessageKind, echo_token: Option<&str>) -> Header {
    Header {
        kind,
        version: "1.003".into(),
        echo_token: echo_token.map(str::to_owned),
        timestamp: None,
        retransmission: false,
    }
}

fn confirmation() -> Option<Confirmation> {
    Some(Confirmation {
        channel_id: "CH-<1>".into(),
        hotel_id: "4f7c2a1e-0000-4000-8000-000000000001".into(),
    })
}

/// The answer written and read back: the OTA message (out of its envelope when `soap`).
fn answered(kind: MessageKind, answer: &Answer, soap: bool) -> Element {
    let bytes = write(
        &header(kind, Some("e&1")),
        answer,
        "2027-03-01T09:30:01Z",
        soap,
    );
    let root = parse(&bytes, Limits::default()).unwrap();
    let unwrapped = unwrap(&root).unwrap();
    assert_eq!(unwrapped.soap, soap);
    unwrapped.message.clone()
}

#[test]
fn a_confirmed_reservation_echoes_the_request_and_gives_both_numbers() {
    let rs = answered(
        MessageKind::HotelResNotif,
        &Answer::Success {
            reservation: confirmation(),
        },
        false,
    );
    assert_eq!(rs.name, "OTA_HotelResNotifRS");
    assert_eq!(rs.namespace.as_deref(), Some(OTA_NAMESPACE));
    assert_eq!(rs.attribute("Version"), Some("1.003"));
    assert_eq!(rs.attribute("EchoToken"), Some("e&1"));
    assert_eq!(rs.attribute("ResResponseType"), Some("Committed"));
    assert!(rs.child("Success").is_some());
    let reservation = rs.find(&["HotelReservations", "HotelReservation"]).unwrap();
    let unique_id = reservation.child("UniqueID").unwrap();
    assert_eq!(
        (unique_id.attribute("Type"), unique_id.attribute("ID")),
        (Some("14"), Some("CH-<1>"))
    );
    let hotel = reservation
        .find(&["ResGlobalInfo", "HotelReservationIDs", "HotelReservationID"])
        .unwrap();
    assert_eq!(hotel.attribute("ResID_Type"), Some("14"));
    assert_eq!(
        hotel.attribute("ResID_Value"),
        Some("4f7c2a1e-0000-4000-8000-000000000001")
    );
}

#[test]
fn a_pending_answer_is_a_success_with_an_advisory_warning() {
    let warning = OtaError::new(
        codes::ADVISORY,
        codes::UNABLE_TO_PROCESS,
        "accepted; not decided within 5 s",
    );
    let rs = answered(
        MessageKind::HotelResModifyNotif,
        &Answer::Pending {
            reservation: confirmation(),
            warning,
        },
        true,
    );
    assert_eq!(rs.name, "OTA_HotelResModifyNotifRS");
    assert_eq!(rs.attribute("ResResponseType"), Some("Pending"));
    assert!(rs.child("Success").is_some());
    let warning = rs.find(&["Warnings", "Warning"]).unwrap();
    assert_eq!(warning.attribute("Type"), Some("11"));
    assert_eq!(warning.text, "accepted; not decided within 5 s");
    assert!(rs
        .find(&["HotelResModifies", "HotelResModify", "UniqueID"])
        .is_some());
}

#[test]
fn errors_name_their_type_code_and_element() {
    let errors = vec![
        OtaError::missing("HotelReservation/UniqueID/@ID"),
        OtaError::new(
            codes::BIZ_RULE,
            codes::NO_AVAILABILITY,
            "sold out on 2027-04-15",
        ),
    ];
    let rs = answered(MessageKind::Cancel, &Answer::Errors(errors), true);
    assert_eq!(rs.name, "OTA_CancelRS");
    assert_eq!(rs.attribute("Status"), Some("Unsuccessful"));
    assert!(rs.child("Success").is_none());
    let errors: Vec<_> = rs
        .child("Errors")
        .unwrap()
        .children_named("Error")
        .collect();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].attribute("Type"), Some("10"));
    assert_eq!(errors[0].attribute("Code"), Some("321"));
    assert_eq!(
        errors[0].attribute("ShortText"),
        Some("Required field missing")
    );
    assert_eq!(
        errors[0].attribute("Tag"),
        Some("HotelReservation/UniqueID/@ID")
    );
    assert_eq!(errors[1].attribute("Code"), Some("322"));
    assert_eq!(errors[1].attribute("Tag"), None);
}

#[test]
fn a_cancellation_gives_the_cancelled_booking_and_inventory_answers_stay_bare() {
    let rs = answered(
        MessageKind::Cancel,
        &Answer::Success {
            reservation: confirmation(),
        },
        false,
    );
    assert_eq!(rs.attribute("Status"), Some("Cancelled"));
    assert_eq!(
        rs.child("UniqueID").unwrap().attribute("ID"),
        Some("CH-<1>")
    );
    assert_eq!(
        rs.find(&["CancelInfoRS", "UniqueID"])
            .unwrap()
            .attribute("ID"),
        Some("4f7c2a1e-0000-4000-8000-000000000001")
    );
    let rs = answered(
        MessageKind::HotelInvCountNotif,
        &Answer::Success { reservation: None },
        false,
    );
    assert_eq!(rs.name, "OTA_HotelInvCountNotifRS");
    assert_eq!(rs.attribute("ResResponseType"), None);
    assert_eq!(rs.attribute("EchoToken"), Some("e&1"));
    assert_eq!(rs.children.len(), 1);
}
