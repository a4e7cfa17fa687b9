//! One `HotelReservation` (or `HotelResModify`) read off its message, in the terms of the
//! JSON API's booking: hotel, room type, stay, rooms, guests, total, guest name, and the
//! channel's own reservation id.
//!
//! One reservation of one room stay per message: a message with several
//! `HotelReservation`s or `RoomStay`s is refused with an OTA error naming the element, so
//! a message is always one booking, accepted or refused whole, under one idempotency key.
//! Where the schemas allow a value in two places (`Total`, `TimeSpan`, `GuestCounts` and
//! `BasicPropertyInfo` in the `RoomStay` or in `ResGlobalInfo`), the room stay's wins.

use super::amount;
use super::codes::OtaError;
use super::message::MessageKind;
use super::read::{date, integer, only, required};
use super::xml::Element;

/// What the message asks for its reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Create,
    Modify,
    Cancel,
}

/// A reservation as the channel sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub action: Action,
    /// `UniqueID/@ID`: the channel's reservation id, which names the booking.
    pub reservation_id: String,
    /// `LastModifyDateTime`, which tells one modification of a reservation from the next.
    pub last_modified: Option<String>,
    pub hotel_code: String,
    pub room_type: String,
    pub rooms: i64,
    pub check_in: String,
    pub check_out: String,
    pub guests: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub guest_name: Option<String>,
}

/// The single reservation of a `OTA_HotelResNotifRQ` or `OTA_HotelResModifyNotifRQ`.
pub fn read(root: &Element, kind: MessageKind) -> Result<Reservation, OtaError> {
    let (list, item) = match kind {
        MessageKind::HotelResModifyNotif => ("HotelResModifies", "HotelResModify"),
        _ => ("HotelReservations", "HotelReservation"),
    };
    let reservations = root.child(list).ok_or_else(|| OtaError::missing(list))?;
    let reservation = only(reservations, item, list)?;
    let at = |path: &str| format!("{item}/{path}");

    let action = action(root, reservation, kind);
    let unique_id = reservation
        .child("UniqueID")
        .ok_or_else(|| OtaError::missing(&at("UniqueID")))?;
    let reservation_id = required(unique_id, "ID", &at("UniqueID"))?;

    let stays = reservation
        .child("RoomStays")
        .ok_or_else(|| OtaError::missing(&at("RoomStays")))?;
    let stay = only(stays, "RoomStay", &at("RoomStays"))?;
    let stay_at = |path: &str| at(&format!("RoomStays/RoomStay/{path}"));
    let global = reservation.child("ResGlobalInfo");
    // The room stay's own element, else the reservation-wide one.
    let either = |name: &str| {
        stay.child(name)
            .or_else(|| global.and_then(|g| g.child(name)))
    };

    let property = either("BasicPropertyInfo")
        .ok_or_else(|| OtaError::missing(&stay_at("BasicPropertyInfo")))?;
    let hotel_code = required(property, "HotelCode", &stay_at("BasicPropertyInfo"))?;

    let room = stay
        .find(&["RoomTypes", "RoomType"])
        .ok_or_else(|| OtaError::missing(&stay_at("RoomTypes/RoomType")))?;
    let room_type = required(room, "RoomTypeCode", &stay_at("RoomTypes/RoomType"))?;
    let rooms = match room.attribute("NumberOfUnits") {
        Some(units) => integer(units, &stay_at("RoomTypes/RoomType/@NumberOfUnits"))?,
        None => 1,
    };

    let span = either("TimeSpan").ok_or_else(|| OtaError::missing(&stay_at("TimeSpan")))?;
    let check_in = date(span, "Start", &stay_at("TimeSpan"))?;
    let check_out = date(span, "End", &stay_at("TimeSpan"))?;

    let counts = either("GuestCounts").ok_or_else(|| OtaError::missing(&stay_at("GuestCounts")))?;
    let mut guests = 0i64;
    for count in counts.children_named("GuestCount") {
        let count_at = stay_at("GuestCounts/GuestCount/@Count");
        let n = integer(
            &required(count, "Count", &stay_at("GuestCounts/GuestCount"))?,
            &count_at,
        )?;
        // OTA's Count is 1 to 999: a zero or negative count would cancel others out.
        if n < 1 {
            return Err(OtaError::invalid(
                &count_at,
                format!("{n} is not a count of guests"),
            ));
        }
        guests = guests.saturating_add(n);
    }
    if guests == 0 {
        return Err(OtaError::missing(&stay_at("GuestCounts/GuestCount")));
    }

    let total = either("Total").ok_or_else(|| OtaError::missing(&stay_at("Total")))?;
    let total_at = stay_at("Total");
    let amount = required(total, "AmountAfterTax", &total_at)?;
    let currency = required(total, "CurrencyCode", &total_at)?;
    let amount_minor = amount::minor_units(&amount, &currency, total.attribute("DecimalPlaces"))
        .map_err(|why| OtaError::invalid(&format!("{total_at}/@AmountAfterTax"), why))?;

    Ok(Reservation {
        action,
        reservation_id,
        last_modified: reservation
            .attribute("LastModifyDateTime")
            .map(str::to_owned),
        hotel_code,
        room_type,
        rooms,
        check_in,
        check_out,
        guests,
        amount_minor,
        currency,
        guest_name: guest_name(reservation),
    })
}

/// Create, modify or cancel: the message kind, then `ResStatus` on the root (`Modify`,
/// `Cancel`, as SiteMinder sends all three as `OTA_HotelResNotifRQ`), then on the
/// reservation (`Cancelled`, `Cancel`).
fn action(root: &Element, reservation: &Element, kind: MessageKind) -> Action {
    let status = |e: &Element| {
        e.attribute("ResStatus")
            .map(str::trim)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let on_reservation = status(reservation);
    if on_reservation == "cancelled" || on_reservation == "cancel" {
        return Action::Cancel;
    }
    match (kind, status(root).as_str()) {
        (_, "cancel") => Action::Cancel,
        (MessageKind::HotelResModifyNotif, _) | (_, "modify") => Action::Modify,
        _ if on_reservation == "modify" => Action::Modify,
        _ => Action::Create,
    }
}

/// The primary guest's name (or the first guest's): given names, then surname.
fn guest_name(reservation: &Element) -> Option<String> {
    let guests = reservation.child("ResGuests")?;
    let guest = guests
        .children_named("ResGuest")
        .find(|g| g.attribute("PrimaryIndicator") == Some("true"))
        .or_else(|| guests.child("ResGuest"))?;
    let person = guest.find(&[
        "Profiles",
        "ProfileInfo",
        "Profile",
        "Customer",
        "PersonName",
    ])?;
    let parts: Vec<&str> = person
        .children_named("GivenName")
        .chain(person.children_named("Surname"))
        .map(|part| part.text.trim())
        .filter(|part| !part.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

// By path, so it resolves the same when the fuzz target compiles this file by path.
#[cfg(test)]
#[path = "reservation/tests.rs"]
mod tests;
