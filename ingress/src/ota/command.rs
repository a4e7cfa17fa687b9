//! An OTA request in the JSON API's terms: the same request types, validated by the same
//! rules into the same commands, under an idempotency key the message itself gives.
//!
//! A partner that sends no `Idempotency-Key` header is identified per reservation by the
//! channel's reservation id (`UniqueID/@ID`), which it keeps across retransmissions:
//!
//! - create: `ota:{id}`, whose booking id every later message of the reservation names;
//! - modify: `ota:{id}:modify:{LastModifyDateTime}`, or, without that attribute, a digest
//!   of the new stay, rooms, guests and total, so a retransmission is the same request and
//!   a further modification a new one;
//! - cancel: `ota:{id}:cancel`.
//!
//! A JSON field error is reported as the OTA error of the element the field came from:
//! hotel and room codes as 392 and 402, dates as 15, a stay that ends before it starts as
//! 404, a missing value as 321, anything else as 320.

use partitioner::{AllotmentRequest, BookingRequest, CancelRequest, FieldError, Invalid};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::cancel::Cancellation;
use super::codes::{self, OtaError, BIZ_RULE};
use super::inventory::Allotment;
use super::message::MessageKind;
use super::reservation::{Action, Reservation};

/// The idempotency key of a reservation message (see the module's documentation).
pub fn reservation_key(reservation: &Reservation) -> String {
    let id = &reservation.reservation_id;
    match reservation.action {
        Action::Create => create_key(id),
        Action::Cancel => format!("ota:{id}:cancel"),
        Action::Modify => match &reservation.last_modified {
            Some(at) => format!("ota:{id}:modify:{at}"),
            None => format!("ota:{id}:modify:{}", stay_digest(reservation)),
        },
    }
}

/// The idempotency key of an `OTA_CancelRQ`: the same as a cancelling notification's.
pub fn cancellation_key(cancellation: &Cancellation) -> String {
    format!("ota:{}:cancel", cancellation.reservation_id)
}

/// The booking a channel's reservation became: the id its create's key gives.
pub fn booking_id(tenant: &str, partner: &str, reservation_id: &str) -> Uuid {
    partitioner::booking_id(tenant, partner, &create_key(reservation_id))
}

fn create_key(reservation_id: &str) -> String {
    format!("ota:{reservation_id}")
}

/// The first 16 hex digits of SHA-256 over what a modification changes.
fn stay_digest(r: &Reservation) -> String {
    let text = format!(
        "{}|{}|{}|{}|{}|{}|{}",
        r.room_type, r.rooms, r.check_in, r.check_out, r.guests, r.amount_minor, r.currency
    );
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// The JSON API's booking body for `reservation`, of `tenant`.
pub fn booking_request(reservation: &Reservation, tenant: &str) -> BookingRequest {
    BookingRequest {
        tenant_id: Some(tenant.to_owned()),
        property_id: Some(reservation.hotel_code.clone()),
        room_type: Some(reservation.room_type.clone()),
        check_in: Some(reservation.check_in.clone()),
        check_out: Some(reservation.check_out.clone()),
        rooms: Some(reservation.rooms),
        guests: Some(reservation.guests),
        amount_minor: Some(reservation.amount_minor),
        currency: Some(reservation.currency.clone()),
        // A modification cannot change the name, as in the JSON API.
        guest_name: match reservation.action {
            Action::Create => reservation.guest_name.clone(),
            Action::Modify | Action::Cancel => None,
        },
        // The channel's reservation id stays on the booking it makes.
        partner_reference: match reservation.action {
            Action::Create => Some(reservation.reservation_id.clone()),
            Action::Modify | Action::Cancel => None,
        },
    }
}

/// The JSON API's cancel body for a cancelled reservation of `hotel_code`.
pub fn cancel_request(hotel_code: &str, tenant: &str) -> CancelRequest {
    CancelRequest {
        tenant_id: Some(tenant.to_owned()),
        property_id: Some(hotel_code.to_owned()),
        reason: None,
    }
}

/// The JSON API's inventory body for one allotment.
pub fn allotment_request(allotment: &Allotment, tenant: &str) -> AllotmentRequest {
    AllotmentRequest {
        tenant_id: Some(tenant.to_owned()),
        property_id: Some(allotment.hotel_code.clone()),
        room_type: Some(allotment.room_type.clone()),
        from: Some(allotment.from.clone()),
        to: Some(allotment.to.clone()),
        units: Some(allotment.units),
    }
}

/// The element a JSON field of a booking came from, under `item` (`HotelReservation` or
/// `HotelResModify`).
pub fn reservation_tag(item: &str, field: &str) -> String {
    let tail = match field {
        "property_id" => "RoomStays/RoomStay/BasicPropertyInfo/@HotelCode",
        "room_type" => "RoomStays/RoomStay/RoomTypes/RoomType/@RoomTypeCode",
        "rooms" => "RoomStays/RoomStay/RoomTypes/RoomType/@NumberOfUnits",
        "check_in" => "RoomStays/RoomStay/TimeSpan/@Start",
        "check_out" => "RoomStays/RoomStay/TimeSpan/@End",
        "guests" => "RoomStays/RoomStay/GuestCounts/GuestCount/@Count",
        "amount_minor" => "RoomStays/RoomStay/Total/@AmountAfterTax",
        "currency" => "RoomStays/RoomStay/Total/@CurrencyCode",
        "guest_name" => "ResGuests/ResGuest/Profiles/ProfileInfo/Profile/Customer/PersonName",
        "partner_reference" => "UniqueID/@ID",
        _ => return item.to_owned(),
    };
    format!("{item}/{tail}")
}

/// The element a JSON field of the `position`th allotment (from 1) of an inventory
/// message came from.
pub fn allotment_tag(kind: MessageKind, position: usize, field: &str) -> String {
    let (list, range, units) = match kind {
        MessageKind::HotelAvailNotif => {
            ("AvailStatusMessages", "AvailStatusMessage", "@BookingLimit")
        }
        _ => ("Inventories", "Inventory", "InvCounts/InvCount/@Count"),
    };
    let range = format!("{list}/{range}[{position}]");
    match field {
        "property_id" => format!("{list}/@HotelCode"),
        "room_type" => format!("{range}/StatusApplicationControl/@InvTypeCode"),
        "from" => format!("{range}/StatusApplicationControl/@Start"),
        "to" => format!("{range}/StatusApplicationControl/@End"),
        "units" => format!("{range}/{units}"),
        _ => range,
    }
}

/// Each field error of `invalid` as the OTA error of the element `tag` says it came from.
pub fn ota_errors(invalid: &Invalid, tag: impl Fn(&str) -> String) -> Vec<OtaError> {
    invalid
        .errors
        .iter()
        .map(|error| {
            let tag = tag(&error.field);
            let code = code(error);
            let kind = if code == codes::REQUIRED_FIELD {
                codes::REQUIRED_FIELD_MISSING
            } else {
                BIZ_RULE
            };
            OtaError::new(kind, code, format!("{tag}: {}", error.detail)).at(tag)
        })
        .collect()
}

fn code(error: &FieldError) -> codes::ErrorCode {
    match error.field.as_str() {
        _ if error.detail == "is required" => codes::REQUIRED_FIELD,
        "property_id" => codes::INVALID_HOTEL_CODE,
        "room_type" => codes::INVALID_ROOM_TYPE,
        "check_out" | "to" if error.detail.contains("must be after") => codes::INVALID_DATE_RANGE,
        "check_in" | "check_out" | "from" | "to" => codes::INVALID_DATE,
        _ => codes::INVALID_VALUE,
    }
}

#[cfg(test)]
mod tests;
