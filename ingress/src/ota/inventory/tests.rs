use super::*;
use crate::ota::xml::{parse, Limits};

const INV_COUNT: &str = include_str!("../../../../loadtest/ota/OTA_HotelInvCountNotifRQ.xml");
const AVAIL: &str = include_str!("../../../../loadtest/ota/OTA_HotelAvailNotifRQ.xml");

fn root(xml: &str) -> Element {
    parse(xml.as_bytes(), Limits::default()).unwrap()
}

fn allotment(room_type: &str, from: &str, to: &str, units: i64) -> Allotment {
    Allotment {
        hotel_code: "LIS001".into(),
        room_type: room_type.into(),
        from: from.into(),
        to: to.into(),
        units,
    }
}

#[test]
fn inventory_counts_become_allotments_ending_the_day_after_the_last_night() {
    assert_eq!(
        read_inv_count(&root(INV_COUNT)),
        Ok(vec![
            allotment("DBL", "2027-04-01", "2027-05-01", 12),
            allotment("SGL", "2027-04-01", "2027-05-01", 4),
        ])
    );
    assert_eq!(
        read_avail(&root(AVAIL)),
        Ok(vec![allotment("DBL", "2027-05-01", "2027-05-04", 10)])
    );
}

#[test]
fn counts_of_what_is_left_are_refused_with_what_to_send_instead() {
    let available = INV_COUNT.replacen(r#"CountType="1""#, r#"CountType="2""#, 1);
    let error = read_inv_count(&root(&available)).unwrap_err();
    assert_eq!(
        error.tag.as_deref(),
        Some("Inventories/Inventory[1]/InvCounts/InvCount/@CountType")
    );
    assert!(error.detail.contains("CountType 1"), "{}", error.detail);
    let adjust = AVAIL.replace("SetLimit", "AdjustLimit");
    let error = read_avail(&root(&adjust)).unwrap_err();
    assert!(error.detail.contains("only SetLimit"), "{}", error.detail);
}

#[test]
fn bad_ranges_are_named_by_their_position() {
    let backwards = INV_COUNT.replacen(r#"End="2027-04-30""#, r#"End="2027-03-30""#, 1);
    let error = read_inv_count(&root(&backwards)).unwrap_err();
    assert_eq!(error.code, crate::ota::codes::INVALID_DATE_RANGE);
    let not_a_date = AVAIL.replace(r#"Start="2027-05-01""#, r#"Start="2027-5-1""#);
    let error = read_avail(&root(&not_a_date)).unwrap_err();
    assert_eq!(error.code, INVALID_DATE);
    assert_eq!(
        error.tag.as_deref(),
        Some("AvailStatusMessages/AvailStatusMessage[1]/StatusApplicationControl/@Start")
    );
    let no_room = INV_COUNT.replacen(r#" InvTypeCode="SGL""#, "", 1);
    let error = read_inv_count(&root(&no_room)).unwrap_err();
    assert_eq!(
        error.tag.as_deref(),
        Some("Inventories/Inventory[2]/StatusApplicationControl/@InvTypeCode")
    );
    let many = INV_COUNT.replace(
        "</Inventories>",
        &format!("{}</Inventories>", "<Inventory/>".repeat(MAX_RANGES)),
    );
    assert!(read_inv_count(&root(&many))
        .unwrap_err()
        .detail
        .contains("at most 100"));
}
