//! An OpenTravel message of a known partner, as the commands it asks for: the hotel's
//! tenant from the partner's `ota_hotels`, the values read by [`crate::ota`] and
//! validated by the JSON API's own rules, under the idempotency key the message gives.

use partitioner::{Command, Invalid};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::{Partner, Scope};
use crate::ota::codes::{OtaError, AUTHORIZATION, INVALID_HOTEL_CODE};
use crate::ota::command::{self, ota_errors};
use crate::ota::message::{Header, MessageKind};
use crate::ota::reservation::{self, Action};
use crate::ota::xml::Element;
use crate::ota::{cancel, inventory};

/// What a message asks for.
#[derive(Debug)]
pub struct Translated {
    /// The key a retransmission repeats, used when no `Idempotency-Key` header is sent.
    pub key: String,
    /// One per reservation message; one per range of an inventory message.
    pub commands: Vec<Command>,
    /// The reservation a reservation message concerns.
    pub reservation: Option<ReservationRef>,
}

/// A reservation's two names and what the message does to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationRef {
    pub action: Action,
    /// The channel's reservation id (`UniqueID/@ID`).
    pub channel_id: String,
    /// The booking it became: the hotel's confirmation number.
    pub booking_id: Uuid,
}

/// Why a message is refused: each error names its element.
#[derive(Debug)]
pub enum Refused {
    /// A value is missing or wrong (400).
    Invalid(Vec<OtaError>),
    /// A hotel the partner does not serve (403).
    Forbidden(OtaError),
}

impl From<OtaError> for Refused {
    fn from(error: OtaError) -> Self {
        Refused::Invalid(vec![error])
    }
}

/// The scope a message needs, as its JSON route would.
pub fn scope(kind: MessageKind) -> Scope {
    match kind {
        MessageKind::HotelInvCountNotif | MessageKind::HotelAvailNotif => Scope::InventoryWrite,
        _ => Scope::BookingsWrite,
    }
}

/// The commands `message` (described by `header`) asks of `partner`.
pub fn translate(
    header: &Header,
    message: &Element,
    partner: &Partner,
) -> Result<Translated, Refused> {
    let kind = header.kind;
    match kind {
        MessageKind::HotelResNotif | MessageKind::HotelResModifyNotif => {
            let item = if kind == MessageKind::HotelResModifyNotif {
                "HotelResModify"
            } else {
                "HotelReservation"
            };
            let read = reservation::read(message, kind)?;
            let tenant = tenant(
                partner,
                &read.hotel_code,
                &command::reservation_tag(item, "property_id"),
            )?;
            let booking_id = command::booking_id(tenant, &partner.partner_id, &read.reservation_id);
            let command = match read.action {
                Action::Create => command::booking_request(&read, tenant).into_create(booking_id),
                Action::Modify => command::booking_request(&read, tenant).into_modify(booking_id),
                Action::Cancel => {
                    command::cancel_request(&read.hotel_code, tenant).into_cancel(booking_id)
                }
            }
            .map_err(|invalid| refusal(&invalid, |field| command::reservation_tag(item, field)))?;
            let key = command::reservation_key(&read);
            Ok(Translated {
                key: checked_key(key, &format!("{item}/UniqueID/@ID"))?,
                commands: vec![command],
                reservation: Some(ReservationRef {
                    action: read.action,
                    channel_id: read.reservation_id,
                    booking_id,
                }),
            })
        }
        MessageKind::Cancel => {
            let read = cancel::read(message)?;
            let tag = "OTA_CancelRQ/Verification/TPA_Extensions/BasicPropertyInfo/@HotelCode";
            let tenant = tenant(partner, &read.hotel_code, tag)?;
            let booking_id = command::booking_id(tenant, &partner.partner_id, &read.reservation_id);
            let command = command::cancel_request(&read.hotel_code, tenant)
                .into_cancel(booking_id)
                .map_err(|invalid| refusal(&invalid, |_| tag.to_owned()))?;
            Ok(Translated {
                key: checked_key(
                    command::cancellation_key(&read),
                    "OTA_CancelRQ/UniqueID/@ID",
                )?,
                commands: vec![command],
                reservation: Some(ReservationRef {
                    action: Action::Cancel,
                    channel_id: read.reservation_id,
                    booking_id,
                }),
            })
        }
        MessageKind::HotelInvCountNotif | MessageKind::HotelAvailNotif => {
            let allotments = if kind == MessageKind::HotelAvailNotif {
                inventory::read_avail(message)?
            } else {
                inventory::read_inv_count(message)?
            };
            let mut commands = Vec::with_capacity(allotments.len());
            for (index, allotment) in allotments.iter().enumerate() {
                let tag = |field: &str| command::allotment_tag(kind, index + 1, field);
                let tenant = tenant(partner, &allotment.hotel_code, &tag("property_id"))?;
                let command = command::allotment_request(allotment, tenant)
                    .into_allotment()
                    .map_err(|invalid| refusal(&invalid, tag))?;
                commands.push(command);
            }
            Ok(Translated {
                key: inventory_key(header, &commands)?,
                commands,
                reservation: None,
            })
        }
    }
}

/// The tenant of `hotel_code` for `partner`: a code its `ota_hotels` does not list is
/// refused as OpenTravel partners refuse an unknown hotel (authorization, 392).
fn tenant<'p>(partner: &'p Partner, hotel_code: &str, tag: &str) -> Result<&'p str, Refused> {
    partner.ota_tenant(hotel_code).ok_or_else(|| {
        Refused::Forbidden(
            OtaError::new(
                AUTHORIZATION,
                INVALID_HOTEL_CODE,
                format!("{tag}: hotel {hotel_code:?} is not one this partner's key may send for"),
            )
            .at(tag),
        )
    })
}

fn refusal(invalid: &Invalid, tag: impl Fn(&str) -> String) -> Refused {
    Refused::Invalid(ota_errors(invalid, tag))
}

/// `key` if it is one the idempotency records can hold; else an error on the element
/// it came from (the reservation id is too long or not printable ASCII).
fn checked_key(key: String, tag: &str) -> Result<String, Refused> {
    match partitioner::validate::idempotency_key_problem(&key) {
        None => Ok(key),
        Some(problem) => Err(OtaError::invalid(
            tag,
            format!("makes the idempotency key {key:?}, which {problem}"),
        )
        .into()),
    }
}

/// An inventory message's key: a digest of its `EchoToken`, `TimeStamp` and
/// allotments. Setting an allotment has no id of its own, so the same ranges sent again
/// later (after another value in between) must not be taken for a retransmission: the
/// message has to carry an `EchoToken` or a `TimeStamp`, which a retransmission keeps
/// and a new message changes.
fn inventory_key(header: &Header, commands: &[Command]) -> Result<String, Refused> {
    if header.echo_token.is_none() && header.timestamp.is_none() {
        return Err(
            OtaError::missing(&format!("{}/@TimeStamp", header.kind.request_name())).into(),
        );
    }
    let mut hasher = Sha256::new();
    for part in [&header.echo_token, &header.timestamp] {
        hasher.update(part.as_deref().unwrap_or_default().as_bytes());
        hasher.update(b"\n");
    }
    for command in commands {
        hasher.update(command.fingerprint().to_string().as_bytes());
    }
    Ok(format!(
        "ota:inventory:{}",
        hex::encode(&hasher.finalize()[..16])
    ))
}

#[cfg(test)]
#[path = "translate/tests.rs"]
mod tests;
