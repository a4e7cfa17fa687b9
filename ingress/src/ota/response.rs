//! The `…RS` answering an OTA request: `Success` (with the hotel's confirmation number,
//! or a `Warning` while the decision is pending) or `Errors`, echoing the request's
//! `Version` and `EchoToken`, in a SOAP 1.1 envelope when the request came in one.
//!
//! quick-xml writes it, so every value is escaped on the way out. Confirmation numbers
//! follow the Unique ID Type list: the channel's reservation id is echoed as `UniqueID
//! Type="14"` (Reservation), and the booking id the pipeline gave it is the hotel's
//! confirmation number, `HotelReservationID ResID_Type="14"`.

use std::io;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use super::codes::OtaError;
use super::message::{Header, MessageKind, OTA_NAMESPACE};
use super::soap::SOAP_NAMESPACE;

/// The Unique ID Type (UIT) of a reservation number.
const RESERVATION_ID_TYPE: &str = "14";

/// How a request was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Done: the booking confirmed (or modified, cancelled, the inventory set).
    Success { reservation: Option<Confirmation> },
    /// Accepted and durable, but not decided within the wait: `Success` with the advisory
    /// warning saying so, `ResResponseType="Pending"`; the partner reads the outcome later.
    Pending {
        reservation: Option<Confirmation>,
        warning: OtaError,
    },
    /// Refused, each error naming its element.
    Errors(Vec<OtaError>),
}

/// The two numbers of a reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    /// The channel's own reservation id, as it sent it.
    pub channel_id: String,
    /// The hotel's confirmation number: the booking id.
    pub hotel_id: String,
}

/// The answer to the request `header` describes, as bytes; in an envelope when `soap`.
pub fn write(header: &Header, answer: &Answer, timestamp: &str, soap: bool) -> Vec<u8> {
    document(soap, |w| message(w, header, answer, timestamp))
}

/// `OTA_ErrorRS`, OpenTravel's answer to a request that is not (or not yet known to be)
/// one of the messages taken: the body is not XML, its root is another message, or it
/// was refused before it was read. `Status="NotProcessed"`: nothing of it was done.
pub fn write_error(error: &OtaError, timestamp: &str, soap: bool) -> Vec<u8> {
    document(soap, |w| {
        let code = error.code.0.to_string();
        w.create_element("OTA_ErrorRS")
            .with_attribute(("xmlns", OTA_NAMESPACE))
            .with_attribute(("Version", "1.0"))
            .with_attribute(("TimeStamp", timestamp))
            .with_attribute(("ErrorCode", code.as_str()))
            .with_attribute(("ErrorMessage", error.detail.as_str()))
            .with_attribute(("Status", "NotProcessed"))
            .write_inner_content(|w| {
                w.create_element("Errors")
                    .write_inner_content(|w| problem(w, "Error", error))?;
                Ok(())
            })?;
        Ok(())
    })
}

/// An XML document holding what `body` writes, in a SOAP 1.1 envelope when `soap`.
fn document(soap: bool, body: impl Fn(&mut Writer<Vec<u8>>) -> io::Result<()>) -> Vec<u8> {
    let mut writer = Writer::new(Vec::with_capacity(1024));
    let written: io::Result<()> = (|| {
        writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        if soap {
            writer
                .create_element("soap:Envelope")
                .with_attribute(("xmlns:soap", SOAP_NAMESPACE))
                .write_inner_content(|w| {
                    w.create_element("soap:Header").write_empty()?;
                    w.create_element("soap:Body").write_inner_content(&body)?;
                    Ok(())
                })?;
        } else {
            body(&mut writer)?;
        }
        Ok(())
    })();
    written.expect("writing to memory cannot fail");
    writer.into_inner()
}

fn message(
    w: &mut Writer<Vec<u8>>,
    header: &Header,
    answer: &Answer,
    timestamp: &str,
) -> io::Result<()> {
    let mut root = w
        .create_element(header.kind.response_name())
        .with_attribute(("xmlns", OTA_NAMESPACE))
        .with_attribute(("Version", header.version.as_str()))
        .with_attribute(("TimeStamp", timestamp));
    if let Some(token) = &header.echo_token {
        root = root.with_attribute(("EchoToken", token.as_str()));
    }
    if let Some(status) = status(header.kind, answer) {
        // OTA_CancelRS requires Status; the reservation answers carry ResResponseType.
        let name = if header.kind == MessageKind::Cancel {
            "Status"
        } else {
            "ResResponseType"
        };
        root = root.with_attribute((name, status));
    }
    root.write_inner_content(|w| {
        match answer {
            Answer::Success { reservation } => {
                w.create_element("Success").write_empty()?;
                confirmation(w, header.kind, reservation.as_ref())?;
            }
            Answer::Pending {
                reservation,
                warning,
            } => {
                w.create_element("Success").write_empty()?;
                w.create_element("Warnings")
                    .write_inner_content(|w| problem(w, "Warning", warning))?;
                confirmation(w, header.kind, reservation.as_ref())?;
            }
            Answer::Errors(errors) => {
                w.create_element("Errors").write_inner_content(|w| {
                    for error in errors {
                        problem(w, "Error", error)?;
                    }
                    Ok(())
                })?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// The root's status attribute, where the message has one.
fn status(kind: MessageKind, answer: &Answer) -> Option<&'static str> {
    match (kind, answer) {
        (MessageKind::Cancel, Answer::Success { .. }) => Some("Cancelled"),
        (MessageKind::Cancel, Answer::Pending { .. }) => Some("Pending"),
        (MessageKind::Cancel, Answer::Errors(_)) => Some("Unsuccessful"),
        (MessageKind::HotelResNotif | MessageKind::HotelResModifyNotif, Answer::Success { .. }) => {
            Some("Committed")
        }
        (MessageKind::HotelResNotif | MessageKind::HotelResModifyNotif, Answer::Pending { .. }) => {
            Some("Pending")
        }
        _ => None,
    }
}

/// One `Error` or `Warning`: its type, code, short text, the element at fault, and the
/// sentence as its text.
fn problem(w: &mut Writer<Vec<u8>>, name: &str, error: &OtaError) -> io::Result<()> {
    let kind = error.kind.0.to_string();
    let code = error.code.0.to_string();
    let mut element = w
        .create_element(name)
        .with_attribute(("Type", kind.as_str()))
        .with_attribute(("Code", code.as_str()))
        .with_attribute(("ShortText", error.code.1));
    if let Some(tag) = &error.tag {
        element = element.with_attribute(("Tag", tag.as_str()));
    }
    element.write_text_content(BytesText::new(&error.detail))?;
    Ok(())
}

/// The reservation's numbers, in the shape of the message answered.
fn confirmation(
    w: &mut Writer<Vec<u8>>,
    kind: MessageKind,
    reservation: Option<&Confirmation>,
) -> io::Result<()> {
    let Some(reservation) = reservation else {
        return Ok(());
    };
    let unique_id = |w: &mut Writer<Vec<u8>>, id: &str| {
        w.create_element("UniqueID")
            .with_attribute(("Type", RESERVATION_ID_TYPE))
            .with_attribute(("ID", id))
            .write_empty()
            .map(|_| ())
    };
    match kind {
        MessageKind::Cancel => {
            unique_id(w, &reservation.channel_id)?;
            w.create_element("CancelInfoRS")
                .write_inner_content(|w| unique_id(w, &reservation.hotel_id))?;
        }
        MessageKind::HotelResNotif | MessageKind::HotelResModifyNotif => {
            let (list, item) = if kind == MessageKind::HotelResModifyNotif {
                ("HotelResModifies", "HotelResModify")
            } else {
                ("HotelReservations", "HotelReservation")
            };
            within(w, &[list, item], |w| {
                unique_id(w, &reservation.channel_id)?;
                within(w, &["ResGlobalInfo", "HotelReservationIDs"], |w| {
                    w.create_element("HotelReservationID")
                        .with_attribute(("ResID_Type", RESERVATION_ID_TYPE))
                        .with_attribute(("ResID_Value", reservation.hotel_id.as_str()))
                        .write_empty()
                        .map(|_| ())
                })
            })?;
        }
        // Inventory answers carry no reservation.
        MessageKind::HotelInvCountNotif | MessageKind::HotelAvailNotif => {}
    }
    Ok(())
}

/// Writes what `inner` writes inside the elements of `path`, outermost first.
fn within(
    w: &mut Writer<Vec<u8>>,
    path: &[&str],
    inner: impl FnOnce(&mut Writer<Vec<u8>>) -> io::Result<()>,
) -> io::Result<()> {
    for name in path {
        w.write_event(Event::Start(BytesStart::new(*name)))?;
    }
    inner(w)?;
    for name in path.iter().rev() {
        w.write_event(Event::End(BytesEnd::new(*name)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
