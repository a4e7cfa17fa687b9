//! Allotments read off `OTA_HotelInvCountNotifRQ` and `OTA_HotelAvailNotifRQ`: how many
//! rooms of a type the hotel sells on each night of a date range, as `PUT /v1/inventory`
//! sets them.
//!
//! The pipeline keeps an allotment per night and counts what it sold against it, so an
//! inventory message must say the allotment, not what is left of it:
//! `InvCount CountType="1"` (the physical rooms to sell) or `AvailStatusMessage
//! BookingLimit` (the units that can be sold, `BookingLimitMessageType` absent or
//! `SetLimit`). `CountType="2"` (rooms still available) would be the allotment minus what
//! this pipeline sold, counted twice, so it is refused with an error saying which to send.
//! OTA's `StatusApplicationControl` `End` is the last night, included; the allotment's
//! range ends the day after. At most [`MAX_RANGES`] ranges per message.

use chrono::NaiveDate;

use super::codes::{OtaError, BIZ_RULE, INVALID_DATE};
use super::read::{integer, required};
use super::xml::Element;

/// Most ranges (`Inventory` or `AvailStatusMessage` elements) one message may carry.
pub const MAX_RANGES: usize = 100;

/// One room type's allotment over `[from, to)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allotment {
    pub hotel_code: String,
    pub room_type: String,
    pub from: String,
    /// The day after the last night.
    pub to: String,
    pub units: i64,
}

/// The allotments of an `OTA_HotelInvCountNotifRQ`.
pub fn read_inv_count(root: &Element) -> Result<Vec<Allotment>, OtaError> {
    let list = root
        .child("Inventories")
        .ok_or_else(|| OtaError::missing("Inventories"))?;
    let hotel_code = required(list, "HotelCode", "Inventories")?;
    ranges(list, "Inventory", "Inventories")?
        .map(|(n, inventory)| {
            let at = format!("Inventories/Inventory[{n}]");
            let count = inventory
                .find(&["InvCounts", "InvCount"])
                .ok_or_else(|| OtaError::missing(&format!("{at}/InvCounts/InvCount")))?;
            let count_at = format!("{at}/InvCounts/InvCount");
            let count_type = required(count, "CountType", &count_at)?;
            if count_type != "1" {
                return Err(OtaError::invalid(
                    &format!("{count_at}/@CountType"),
                    format!(
                        "CountType {count_type} is not taken: send the rooms to sell as \
                         CountType 1 (physical); the pipeline counts what it sells itself"
                    ),
                ));
            }
            let units = integer(
                &required(count, "Count", &count_at)?,
                &format!("{count_at}/@Count"),
            )?;
            allotment(&hotel_code, inventory, &at, units)
        })
        .collect()
}

/// The allotments of an `OTA_HotelAvailNotifRQ`.
pub fn read_avail(root: &Element) -> Result<Vec<Allotment>, OtaError> {
    let list = root
        .child("AvailStatusMessages")
        .ok_or_else(|| OtaError::missing("AvailStatusMessages"))?;
    let hotel_code = required(list, "HotelCode", "AvailStatusMessages")?;
    ranges(list, "AvailStatusMessage", "AvailStatusMessages")?
        .map(|(n, message)| {
            let at = format!("AvailStatusMessages/AvailStatusMessage[{n}]");
            if let Some(kind) = message.attribute("BookingLimitMessageType") {
                if kind != "SetLimit" {
                    return Err(OtaError::invalid(
                        &format!("{at}/@BookingLimitMessageType"),
                        format!("{kind} is not taken: only SetLimit sets an allotment"),
                    ));
                }
            }
            let limit = required(message, "BookingLimit", &at)?;
            let units = integer(&limit, &format!("{at}/@BookingLimit"))?;
            allotment(&hotel_code, message, &at, units)
        })
        .collect()
}

/// The numbered `name` children of `list` (from 1, as XPath counts), one at least and at
/// most [`MAX_RANGES`].
fn ranges<'a>(
    list: &'a Element,
    name: &'a str,
    path: &str,
) -> Result<impl Iterator<Item = (usize, &'a Element)>, OtaError> {
    let count = list.children_named(name).count();
    if count == 0 {
        return Err(OtaError::missing(&format!("{path}/{name}")));
    }
    if count > MAX_RANGES {
        return Err(OtaError::invalid(
            &format!("{path}/{name}"),
            format!("{count} ranges in one message; at most {MAX_RANGES} are taken"),
        ));
    }
    Ok(list
        .children_named(name)
        .enumerate()
        .map(|(i, e)| (i + 1, e)))
}

/// The allotment of `units` over the `StatusApplicationControl` of `range`.
fn allotment(
    hotel_code: &str,
    range: &Element,
    at: &str,
    units: i64,
) -> Result<Allotment, OtaError> {
    let control_at = format!("{at}/StatusApplicationControl");
    let control = range
        .child("StatusApplicationControl")
        .ok_or_else(|| OtaError::missing(&control_at))?;
    let room_type = required(control, "InvTypeCode", &control_at)?;
    let from = night(control, "Start", &control_at)?;
    let last = night(control, "End", &control_at)?;
    if last < from {
        return Err(OtaError::new(
            BIZ_RULE,
            super::codes::INVALID_DATE_RANGE,
            format!("{control_at}: End {last} is before Start {from}"),
        )
        .at(control_at.as_str()));
    }
    let to = last.succ_opt().ok_or_else(|| {
        OtaError::new(
            BIZ_RULE,
            INVALID_DATE,
            format!("{control_at}/@End: no day follows {last}"),
        )
    })?;
    Ok(Allotment {
        hotel_code: hotel_code.to_owned(),
        room_type,
        from: from.to_string(),
        to: to.to_string(),
        units,
    })
}

/// A night, `YYYY-MM-DD` (a time part, which OTA allows, is dropped).
fn night(control: &Element, name: &str, path: &str) -> Result<NaiveDate, OtaError> {
    let value = super::read::date(control, name, path)?;
    NaiveDate::parse_from_str(&value, "%Y-%m-%d")
        .ok()
        .filter(|_| value.len() == 10)
        .ok_or_else(|| {
            OtaError::new(
                BIZ_RULE,
                INVALID_DATE,
                format!("{path}/@{name}: {value:?} is not a date"),
            )
            .at(format!("{path}/@{name}"))
        })
}

// By path, so it resolves the same when the fuzz target compiles this file by path.
#[cfg(test)]
#[path = "inventory/tests.rs"]
mod tests;
