//! Which OTA message a document is, and the attributes every message shares.

use super::codes::{OtaError, PROTOCOL_VIOLATION, UNABLE_TO_PROCESS};
use super::xml::Element;

/// The namespace of every OpenTravel message, unchanged across the yearly releases.
pub const OTA_NAMESPACE: &str = "http://www.opentravel.org/OTA/2003/05";

/// The request messages the ingress takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// `OTA_HotelResNotifRQ`: a reservation pushed by its channel; also a modification or
    /// cancellation when its `ResStatus` says so, as several channel managers send them.
    HotelResNotif,
    /// `OTA_HotelResModifyNotifRQ`: a reservation's new state.
    HotelResModifyNotif,
    /// `OTA_CancelRQ`: a reservation cancelled.
    Cancel,
    /// `OTA_HotelInvCountNotifRQ`: rooms available per room type and night.
    HotelInvCountNotif,
    /// `OTA_HotelAvailNotifRQ`: booking limits per room type and night.
    HotelAvailNotif,
}

impl MessageKind {
    /// The message whose root element is `name`.
    pub fn from_root(name: &str) -> Option<MessageKind> {
        Some(match name {
            "OTA_HotelResNotifRQ" => MessageKind::HotelResNotif,
            "OTA_HotelResModifyNotifRQ" => MessageKind::HotelResModifyNotif,
            "OTA_CancelRQ" => MessageKind::Cancel,
            "OTA_HotelInvCountNotifRQ" => MessageKind::HotelInvCountNotif,
            "OTA_HotelAvailNotifRQ" => MessageKind::HotelAvailNotif,
            _ => return None,
        })
    }

    pub fn request_name(self) -> &'static str {
        match self {
            MessageKind::HotelResNotif => "OTA_HotelResNotifRQ",
            MessageKind::HotelResModifyNotif => "OTA_HotelResModifyNotifRQ",
            MessageKind::Cancel => "OTA_CancelRQ",
            MessageKind::HotelInvCountNotif => "OTA_HotelInvCountNotifRQ",
            MessageKind::HotelAvailNotif => "OTA_HotelAvailNotifRQ",
        }
    }

    /// The root element of the answer.
    pub fn response_name(self) -> &'static str {
        match self {
            MessageKind::HotelResNotif => "OTA_HotelResNotifRS",
            MessageKind::HotelResModifyNotif => "OTA_HotelResModifyNotifRS",
            MessageKind::Cancel => "OTA_CancelRS",
            MessageKind::HotelInvCountNotif => "OTA_HotelInvCountNotifRS",
            MessageKind::HotelAvailNotif => "OTA_HotelAvailNotifRS",
        }
    }
}

/// What every message carries on its root, and its answer echoes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: MessageKind,
    /// `Version`, the only root attribute the schemas require: echoed, never checked, as
    /// channel managers send anything from `1.0` to `6.000`.
    pub version: String,
    /// `EchoToken`: the answer must carry it unchanged.
    pub echo_token: Option<String>,
    /// `TimeStamp`: when the sender made the message, kept by a retransmission.
    pub timestamp: Option<String>,
    /// `RetransmissionIndicator="true"`: the sender says it is sending again. Only a
    /// hint: a resend is recognised by its reservation's id, flagged or not.
    pub retransmission: bool,
}

/// The message `root` is, with its header; an error names what is wrong with it.
pub fn header(root: &Element) -> Result<Header, OtaError> {
    let kind = MessageKind::from_root(&root.name).ok_or_else(|| {
        OtaError::new(
            PROTOCOL_VIOLATION,
            UNABLE_TO_PROCESS,
            format!(
                "<{}> is not a message this endpoint takes (OTA_HotelResNotifRQ, \
                 OTA_HotelResModifyNotifRQ, OTA_CancelRQ, OTA_HotelInvCountNotifRQ, \
                 OTA_HotelAvailNotifRQ)",
                root.name
            ),
        )
        .at(root.name.as_str())
    })?;
    if root.namespace.as_deref() != Some(OTA_NAMESPACE) {
        return Err(OtaError::new(
            PROTOCOL_VIOLATION,
            UNABLE_TO_PROCESS,
            format!(
                "<{}> must be in the OpenTravel namespace {OTA_NAMESPACE}",
                root.name
            ),
        )
        .at(root.name.as_str()));
    }
    let version = root
        .attribute("Version")
        .ok_or_else(|| OtaError::missing(&format!("{}/@Version", root.name)))?;
    Ok(Header {
        kind,
        version: version.to_owned(),
        echo_token: root.attribute("EchoToken").map(str::to_owned),
        timestamp: root.attribute("TimeStamp").map(str::to_owned),
        retransmission: root
            .attribute("RetransmissionIndicator")
            .is_some_and(|v| v.trim() == "true" || v.trim() == "1"),
    })
}
