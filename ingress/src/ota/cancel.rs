//! The reservation an `OTA_CancelRQ` cancels.
//!
//! `OTA_CancelRQ` has no element for the hotel: channel managers put it in the
//! verification's extension (`Verification/TPA_Extensions/BasicPropertyInfo/@HotelCode`,
//! as SynXis does), where it is read; a message without it is refused, since the booking
//! is found by hotel and reservation id.

use super::codes::OtaError;
use super::read::required;
use super::xml::Element;

/// A cancellation as the channel sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancellation {
    /// `UniqueID/@ID`: the channel's reservation id.
    pub reservation_id: String,
    pub hotel_code: String,
}

pub fn read(root: &Element) -> Result<Cancellation, OtaError> {
    let unique_id = super::read::only(root, "UniqueID", "OTA_CancelRQ")?;
    let reservation_id = required(unique_id, "ID", "OTA_CancelRQ/UniqueID")?;
    let path = "OTA_CancelRQ/Verification/TPA_Extensions/BasicPropertyInfo";
    let property = root
        .find(&["Verification", "TPA_Extensions", "BasicPropertyInfo"])
        .ok_or_else(|| OtaError::missing(path))?;
    Ok(Cancellation {
        reservation_id,
        hotel_code: required(property, "HotelCode", path)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ota::xml::{parse, Limits};

    fn cancellation_of(xml: &str) -> Result<Cancellation, OtaError> {
        read(&parse(xml.as_bytes(), Limits::default()).unwrap())
    }

    const SAMPLE: &str = include_str!("../../../loadtest/ota/OTA_CancelRQ.xml");

    #[test]
    fn the_reservation_and_its_hotel_are_read() {
        assert_eq!(
            cancellation_of(SAMPLE),
            Ok(Cancellation {
                reservation_id: "DEMO-CH-100234".into(),
                hotel_code: "LIS001".into(),
            })
        );
    }

    #[test]
    fn a_cancellation_without_its_hotel_or_id_is_refused_by_path() {
        let error = cancellation_of(&SAMPLE.replace(r#" HotelCode="LIS001""#, "")).unwrap_err();
        assert_eq!(
            error.tag.as_deref(),
            Some("OTA_CancelRQ/Verification/TPA_Extensions/BasicPropertyInfo/@HotelCode")
        );
        let error = cancellation_of(&SAMPLE.replace(r#" ID="DEMO-CH-100234""#, "")).unwrap_err();
        assert_eq!(error.tag.as_deref(), Some("OTA_CancelRQ/UniqueID/@ID"));
    }
}
