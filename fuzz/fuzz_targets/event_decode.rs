//! The consumers' event decoder (`Envelope::from_json`, called by
//! `consumers/src/batch.rs` on every payload read from the `bookings` topic) against
//! arbitrary bytes.
//!
//! Property: decoding never panics; whatever it accepts carries this build's schema
//! version, encodes back to bytes that decode to the same envelope (so a dead-lettered and
//! replayed event, or one re-published by a later version, means the same), and encoding
//! is stable: a second round trip gives the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use partitioner::{Envelope, Event, SCHEMA_VERSION};

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::from_json(data) else {
        return;
    };
    assert_eq!(envelope.schema_version, SCHEMA_VERSION);
    let encoded = envelope.to_json();
    let again = Envelope::from_json(&encoded).expect("an encoded envelope decodes");
    assert_eq!(again, envelope);
    assert_eq!(again.to_json(), encoded, "encoding is not stable");
    // The event's own accessors are total on anything the decoder lets through.
    let _ = envelope.event.kind();
    if let Event::CreateBooking { stay, .. } | Event::ModifyBooking { stay, .. } = &envelope.event {
        // A decoded stay may be empty or reversed (events are trusted facts, validated by
        // the ingress), but walking its nights must end, and stay within its dates.
        for night in stay.nights().take(1_000) {
            assert!(night >= stay.check_in && night < stay.check_out);
        }
    }
});
