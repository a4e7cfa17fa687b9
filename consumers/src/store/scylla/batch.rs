//! The pure half of a ScyllaDB batch: the [`Ledger`] `apply` reads, the staged form of a
//! batch's effects, and the writes that materialize them. No I/O happens here, so the
//! logic that decides what lands in ScyllaDB is tested without a server.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use partitioner::{Envelope, Fingerprint};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::apply::{Booking, Effects, Ledger, Night, NightId};
use crate::store::StoreError;

/// Where an [`Overlay`] reads what the batch has not written yet: ScyllaDB in production.
pub trait Source {
    fn booking(&self, booking_id: Uuid) -> Result<Option<Booking>, StoreError>;
    fn night(&self, id: &NightId) -> Result<Option<Night>, StoreError>;
}

/// The state as of the events applied so far in this batch: values read from the source
/// (prefetched in bulk, or fetched on a miss) overlaid with the batch's own effects.
pub struct Overlay<'a, S: Source> {
    source: &'a S,
    bookings: RefCell<HashMap<Uuid, Option<Booking>>>,
    nights: RefCell<HashMap<NightId, Option<Night>>>,
}

impl<'a, S: Source> Overlay<'a, S> {
    pub fn new(source: &'a S) -> Self {
        Overlay {
            source,
            bookings: RefCell::default(),
            nights: RefCell::default(),
        }
    }

    /// Seeds values read ahead of time, so `apply` rarely has to wait on a read.
    pub fn prefetched(
        &mut self,
        bookings: impl IntoIterator<Item = (Uuid, Option<Booking>)>,
        nights: impl IntoIterator<Item = (NightId, Option<Night>)>,
    ) {
        self.bookings.get_mut().extend(bookings);
        self.nights.get_mut().extend(nights);
    }

    /// Makes the effects of one applied event visible to the next.
    pub fn record(&mut self, effects: &Effects) {
        if let Some(booking) = &effects.booking {
            self.bookings
                .get_mut()
                .insert(booking.booking_id, Some(booking.clone()));
        }
        for (id, night) in &effects.nights {
            self.nights.get_mut().insert(id.clone(), Some(*night));
        }
    }
}

impl<S: Source> Ledger for Overlay<'_, S> {
    type Error = StoreError;

    fn booking(&self, booking_id: Uuid) -> Result<Option<Booking>, StoreError> {
        if let Some(known) = self.bookings.borrow().get(&booking_id) {
            return Ok(known.clone());
        }
        let value = self.source.booking(booking_id)?;
        self.bookings.borrow_mut().insert(booking_id, value.clone());
        Ok(value)
    }

    fn night(&self, id: &NightId) -> Result<Option<Night>, StoreError> {
        if let Some(known) = self.nights.borrow().get(id) {
            return Ok(*known);
        }
        let value = self.source.night(id)?;
        self.nights.borrow_mut().insert(id.clone(), value);
        Ok(value)
    }
}

/// What one applied event changes, as staged in `staged_effects` before the checkpoint
/// transaction: enough to materialize it again after a crash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Staged {
    pub event_id: Uuid,
    /// The applied command's; absent in batches staged by builds that did not keep it.
    #[serde(default)]
    pub fingerprint: Option<Fingerprint>,
    pub booking: Option<Booking>,
    pub nights: Vec<StagedNight>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StagedNight {
    pub tenant_id: String,
    pub property_id: String,
    pub room_type: String,
    pub night: NaiveDate,
    pub allotment: u32,
    pub sold: u32,
}

impl Staged {
    pub fn new(envelope: &Envelope, effects: &Effects) -> Self {
        Staged {
            event_id: envelope.event_id,
            fingerprint: Some(envelope.fingerprint()),
            booking: effects.booking.clone(),
            nights: effects
                .nights
                .iter()
                .map(|(id, night)| StagedNight {
                    tenant_id: id.tenant_id.clone(),
                    property_id: id.property_id.clone(),
                    room_type: id.room_type.clone(),
                    night: id.night,
                    allotment: night.allotment,
                    sold: night.sold,
                })
                .collect(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("staged effects always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// The rows a committed batch writes, each with the offset of the last event that changed
/// it (its write timestamp): one write per row however many events touched it.
#[derive(Debug, Default, PartialEq)]
pub struct Writes {
    pub bookings: BTreeMap<Uuid, (i64, Booking)>,
    pub nights: BTreeMap<NightId, (i64, Night)>,
    /// Event id -> (offset, fingerprint of its command).
    pub applied: BTreeMap<Uuid, (i64, Option<Fingerprint>)>,
}

impl Writes {
    /// Folds staged events, in any order, into the last value of every row.
    pub fn fold<'a>(staged: impl IntoIterator<Item = (i64, &'a Staged)>) -> Self {
        let mut rows: Vec<_> = staged.into_iter().collect();
        rows.sort_by_key(|(offset, _)| *offset);
        let mut writes = Writes::default();
        for (offset, staged) in rows {
            writes
                .applied
                .insert(staged.event_id, (offset, staged.fingerprint));
            if let Some(booking) = &staged.booking {
                writes
                    .bookings
                    .insert(booking.booking_id, (offset, booking.clone()));
            }
            for night in &staged.nights {
                let id = NightId {
                    tenant_id: night.tenant_id.clone(),
                    property_id: night.property_id.clone(),
                    room_type: night.room_type.clone(),
                    night: night.night,
                };
                let value = Night {
                    allotment: night.allotment,
                    sold: night.sold,
                };
                writes.nights.insert(id, (offset, value));
            }
        }
        writes
    }
}
