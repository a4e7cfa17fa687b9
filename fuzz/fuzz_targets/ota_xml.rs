//! The OpenTravel XML reader (`ingress/src/ota/`): the bounded element tree, the SOAP
//! envelope, the message header, and the reservation, cancellation or allotments read off it, against
//! arbitrary bytes.
//!
//! Compiled in by path, as the signature target does, so the fuzz build needs quick-xml
//! and not the whole ingress.
//!
//! Property: nothing panics; a tree that is built keeps within its limits (nesting depth,
//! element count, value length), whatever the input declared or referenced; and a
//! reservation that is read has every value the booking needs, non-blank, with dates
//! without a time part and a total that is a whole number of minor units; a cancellation
//! names its reservation and hotel; allotments are at most 100, each over a range that
//! ends after it starts.
#![no_main]

// At the crate root, so the modules' `super::` paths find each other as in the ingress;
// what only the ingress's answers use is unused here.
#[allow(dead_code)]
#[path = "../../ingress/src/ota/amount.rs"]
mod amount;
#[allow(dead_code)]
#[path = "../../ingress/src/ota/cancel.rs"]
mod cancel;
#[allow(dead_code)]
#[path = "../../ingress/src/ota/codes.rs"]
mod codes;
#[allow(dead_code)]
#[path = "../../ingress/src/ota/inventory.rs"]
mod inventory;
#[allow(dead_code)]
#[path = "../../ingress/src/ota/message.rs"]
mod message;
#[allow(dead_code)]
#[path = "../../ingress/src/ota/read.rs"]
mod read;
#[allow(dead_code)]
#[path = "../../ingress/src/ota/reservation.rs"]
mod reservation;
#[allow(dead_code)]
#[path = "../../ingress/src/ota/soap.rs"]
mod soap;
#[allow(dead_code)]
#[path = "../../ingress/src/ota/xml.rs"]
mod xml;

use libfuzzer_sys::fuzz_target;
use xml::{parse, Element, Limits};

/// Depth and element count of `element`'s tree, checking every value's length on the way.
fn measure(element: &Element, limits: &Limits, depth: usize) -> (usize, usize) {
    assert!(element.text.len() <= limits.value_bytes);
    for (_, value) in &element.attributes {
        assert!(value.len() <= limits.value_bytes);
    }
    let mut deepest = depth;
    let mut count = 1;
    for child in &element.children {
        let (d, c) = measure(child, limits, depth + 1);
        deepest = deepest.max(d);
        count += c;
    }
    (deepest, count)
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(root) = parse(data, limits) else {
        return;
    };
    let (depth, count) = measure(&root, &limits, 1);
    assert!(depth <= limits.depth, "depth {depth}");
    assert!(count <= limits.elements, "{count} elements");
    // A bare message, or the one in a SOAP 1.1 envelope.
    let Ok(unwrapped) = soap::unwrap(&root) else {
        return;
    };
    let root = unwrapped.message;
    let Ok(header) = message::header(root) else {
        return;
    };
    match header.kind {
        message::MessageKind::Cancel => {
            if let Ok(cancellation) = cancel::read(root) {
                assert!(!cancellation.reservation_id.trim().is_empty());
                assert!(!cancellation.hotel_code.trim().is_empty());
            }
        }
        message::MessageKind::HotelInvCountNotif | message::MessageKind::HotelAvailNotif => {
            let read = if header.kind == message::MessageKind::HotelAvailNotif {
                inventory::read_avail(root)
            } else {
                inventory::read_inv_count(root)
            };
            if let Ok(allotments) = read {
                assert!(!allotments.is_empty() && allotments.len() <= inventory::MAX_RANGES);
                for allotment in allotments {
                    // Both are `YYYY-MM-DD`, so text order is date order.
                    assert!(allotment.from < allotment.to, "{allotment:?}");
                    assert!(!allotment.room_type.trim().is_empty());
                }
            }
        }
        _ => {
            if let Ok(reservation) = reservation::read(root, header.kind) {
                for value in [
                    &reservation.reservation_id,
                    &reservation.hotel_code,
                    &reservation.room_type,
                    &reservation.currency,
                ] {
                    assert!(!value.trim().is_empty());
                }
                assert!(
                    !reservation.check_in.contains('T') && !reservation.check_out.contains('T')
                );
                assert!(reservation.amount_minor >= 0);
                assert!(reservation.guests > 0);
            }
        }
    }
});
