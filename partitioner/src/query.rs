//! Queries of the read API, validated with the same rules as the requests that write the
//! data they read.

use chrono::NaiveDate;

use crate::validate::{Checker, Invalid};

/// Longest date range one availability query may ask for, in nights: two months, enough
/// for any booking screen, small enough that one answer is one bounded `HMGET`.
pub const MAX_AVAILABILITY_NIGHTS: i64 = 62;

/// `GET /v1/availability?tenant_id&property_id&room_type&from&to`, as received.
#[derive(Clone, Debug, Default)]
pub struct AvailabilityQuery {
    pub tenant_id: Option<String>,
    pub property_id: Option<String>,
    pub room_type: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A validated availability query: the nights in `[from, to)` of one room type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvailabilityRange {
    pub tenant_id: String,
    pub property_id: String,
    pub room_type: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl AvailabilityQuery {
    pub fn into_range(self) -> Result<AvailabilityRange, Invalid> {
        let mut check = Checker::default();
        let tenant_id = check.id("tenant_id", &self.tenant_id);
        let property_id = check.id("property_id", &self.property_id);
        let room_type = check.id("room_type", &self.room_type);
        let range = check.date_range(
            ("from", &self.from),
            ("to", &self.to),
            MAX_AVAILABILITY_NIGHTS,
        );
        check.finish()?;
        let (from, to) = range.unwrap();
        Ok(AvailabilityRange {
            tenant_id: tenant_id.unwrap(),
            property_id: property_id.unwrap(),
            room_type: room_type.unwrap(),
            from,
            to,
        })
    }
}

impl AvailabilityRange {
    /// Every night of the range, in order.
    pub fn nights(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.from.iter_days().take_while(|night| *night < self.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(from: &str, to: &str) -> AvailabilityQuery {
        AvailabilityQuery {
            tenant_id: Some("acme".into()),
            property_id: Some("lisbon-1".into()),
            room_type: Some("DBL".into()),
            from: Some(from.into()),
            to: Some(to.into()),
        }
    }

    #[test]
    fn a_good_range_lists_its_nights() {
        let range = query("2027-02-27", "2027-03-02").into_range().unwrap();
        let nights: Vec<String> = range.nights().map(|n| n.to_string()).collect();
        assert_eq!(nights, ["2027-02-27", "2027-02-28", "2027-03-01"]);
    }

    #[test]
    fn bad_queries_name_every_field() {
        let invalid = AvailabilityQuery::default().into_range().unwrap_err();
        let fields: Vec<&str> = invalid.fields().collect();
        assert_eq!(
            fields,
            ["tenant_id", "property_id", "room_type", "from", "to"]
        );

        let too_long = query("2027-01-01", "2027-03-05").into_range().unwrap_err();
        assert_eq!(too_long.fields().collect::<Vec<_>>(), ["to"]);
        let backwards = query("2027-01-05", "2027-01-05").into_range().unwrap_err();
        assert_eq!(backwards.fields().collect::<Vec<_>>(), ["to"]);
        assert!(query("2027-01-01", "2027-03-04").into_range().is_ok());
    }
}
