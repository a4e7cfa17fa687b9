//! The OpenTravel code-list entries the ingress answers with: Error Warning Type (EWT),
//! the `Type` of every `Error` and `Warning`, and Error Codes (ERR), their `Code`.
//!
//! Numbers and names are the OpenTravel code lists' as channel managers publish them
//! (SiteMinder's and RateGain's EWT and ERR tables, Booking.com's ERR list of OTA 2014B);
//! only the entries below are used, and the `ShortText` sent is the list's name.

/// An Error Warning Type (EWT) entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorType(pub u16, pub &'static str);

/// EWT 3: the message was read, but a business rule was not met.
pub const BIZ_RULE: ErrorType = ErrorType(3, "Biz rule");
/// EWT 4: the credentials were missing or wrong.
pub const AUTHENTICATION: ErrorType = ErrorType(4, "Authentication");
/// EWT 6: the partner may not do this.
pub const AUTHORIZATION: ErrorType = ErrorType(6, "Authorization");
/// EWT 7: not a message this endpoint speaks.
pub const PROTOCOL_VIOLATION: ErrorType = ErrorType(7, "Protocol violation");
/// EWT 10: required by the schema or by this interface, and absent.
pub const REQUIRED_FIELD_MISSING: ErrorType = ErrorType(10, "Required field missing");
/// EWT 11: a warning that needs no action.
pub const ADVISORY: ErrorType = ErrorType(11, "Advisory");
/// EWT 12: a failure not further defined (ours, retryable).
pub const PROCESSING_EXCEPTION: ErrorType = ErrorType(12, "Processing exception");

/// An Error Codes (ERR) entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCode(pub u16, pub &'static str);

pub const INVALID_DATE: ErrorCode = ErrorCode(15, "Invalid date");
pub const INVALID_VALUE: ErrorCode = ErrorCode(320, "Invalid value");
pub const REQUIRED_FIELD: ErrorCode = ErrorCode(321, "Required field missing");
pub const NO_AVAILABILITY: ErrorCode = ErrorCode(322, "No availability");
pub const INVALID_HOTEL_CODE: ErrorCode = ErrorCode(392, "Invalid hotel code");
pub const INVALID_ROOM_TYPE: ErrorCode = ErrorCode(402, "Invalid room type");
pub const INVALID_DATE_RANGE: ErrorCode = ErrorCode(404, "Invalid start date-end date combination");
pub const SYSTEM_ERROR: ErrorCode = ErrorCode(448, "System error");
pub const UNABLE_TO_PROCESS: ErrorCode = ErrorCode(450, "Unable to process");
pub const AUTHORIZATION_ERROR: ErrorCode = ErrorCode(497, "Authorization error");
pub const INVALID_CONFIRMATION_NUMBER: ErrorCode = ErrorCode(245, "Invalid confirmation number");

/// One `Error` (or `Warning`) of an OTA response: its type, code, and a sentence naming
/// the element or attribute at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtaError {
    pub kind: ErrorType,
    pub code: ErrorCode,
    /// Where in the request, as an XPath-like path (`HotelReservation/RoomStays/...`),
    /// sent as the `Tag` attribute when known.
    pub tag: Option<String>,
    pub detail: String,
}

impl OtaError {
    pub fn new(kind: ErrorType, code: ErrorCode, detail: impl Into<String>) -> Self {
        OtaError {
            kind,
            code,
            tag: None,
            detail: detail.into(),
        }
    }

    /// `self`, naming the element or attribute at fault.
    pub fn at(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// A required element or attribute that is absent.
    pub fn missing(tag: &str) -> Self {
        OtaError::new(
            REQUIRED_FIELD_MISSING,
            REQUIRED_FIELD,
            format!("{tag} is required"),
        )
        .at(tag)
    }

    /// A present value this interface cannot take, and why.
    pub fn invalid(tag: &str, why: impl std::fmt::Display) -> Self {
        OtaError::new(BIZ_RULE, INVALID_VALUE, format!("{tag}: {why}")).at(tag)
    }
}
