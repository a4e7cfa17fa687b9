//! The post-run verifier: checks the store against what the ingress acknowledged.
//!
//! It reads every partition of the store (the embedded store's consumers must be stopped,
//! as each file is locked by its owner; a CQL store can be read while they run) and checks the invariants a partner relies on: every
//! acknowledged event was applied exactly once, refused requests left no trace, and no night
//! is sold beyond its allotment.

use consumers::apply::{BookingStatus, NightId};
use consumers::store::{PartitionStore, Store};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use uuid::Uuid;

use crate::record::{EventKind, RunRecord};

/// One line of the verdict table.
#[derive(Debug, serde::Serialize)]
pub struct Check {
    pub name: &'static str,
    pub checked: usize,
    pub failures: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct Verdict {
    pub checks: Vec<Check>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.failures.is_empty())
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<52} {:>9} {:>9}",
            "store check", "checked", "failures"
        )?;
        for check in &self.checks {
            writeln!(
                f,
                "{:<52} {:>9} {:>9}",
                check.name,
                check.checked,
                check.failures.len()
            )?;
            for failure in check.failures.iter().take(5) {
                writeln!(f, "    {failure}")?;
            }
        }
        write!(
            f,
            "verdict: {}",
            if self.passed() { "PASS" } else { "FAIL" }
        )
    }
}

pub fn verify<S: Store>(
    store: &S,
    run: &RunRecord,
) -> Result<Verdict, consumers::store::StoreError> {
    // Booking id -> (partition, booking) for every copy found, across all partitions.
    let mut bookings: HashMap<Uuid, Vec<(i32, consumers::apply::Booking)>> = HashMap::new();
    let mut nights: BTreeMap<NightId, consumers::apply::Night> = BTreeMap::new();
    for partition in store.partitions()? {
        let state = store.open(partition)?;
        for booking in state.bookings()? {
            if booking.tenant_id == run.tenant_id {
                bookings
                    .entry(booking.booking_id)
                    .or_default()
                    .push((partition, booking));
            }
        }
        nights.extend(
            state
                .nights()?
                .into_iter()
                .filter(|(id, _)| id.tenant_id == run.tenant_id),
        );
    }

    let mut present = Check {
        name: "acknowledged events in the store (none lost)",
        checked: 0,
        failures: Vec::new(),
    };
    let mut once = Check {
        name: "acknowledged events applied once (none doubled)",
        checked: 0,
        failures: Vec::new(),
    };
    for event in run.acked.iter().filter(|e| e.kind != EventKind::Allotment) {
        present.checked += 1;
        once.checked += 1;
        let booking_id = event
            .booking_id
            .expect("booking events carry their booking id");
        let copies = bookings.get(&booking_id).map_or(&[][..], Vec::as_slice);
        let applied = copies
            .iter()
            .flat_map(|(_, b)| &b.history)
            .filter(|h| h.event_id == event.event_id)
            .count();
        let where_acked = copies.iter().all(|(p, _)| *p == event.partition);
        let failure = || {
            format!(
                "{:?} {} of booking {booking_id}: {} copies, applied {applied} times",
                event.kind,
                event.event_id,
                copies.len()
            )
        };
        if applied == 0 {
            present.failures.push(failure());
        } else if copies.len() != 1 || applied != 1 || !where_acked {
            once.failures.push(failure());
        }
    }

    let mut refused = Check {
        name: "refused requests left no booking",
        checked: run.refused_booking_ids.len(),
        failures: Vec::new(),
    };
    for id in &run.refused_booking_ids {
        if bookings.contains_key(id) {
            refused
                .failures
                .push(format!("refused booking {id} exists"));
        }
    }

    let mut oversold = Check {
        name: "no night sold beyond its allotment",
        checked: nights.len(),
        failures: Vec::new(),
    };
    let mut conserved = Check {
        name: "sold units equal confirmed bookings' rooms",
        checked: nights.len(),
        failures: Vec::new(),
    };
    let mut expected: BTreeMap<NightId, u32> = BTreeMap::new();
    for (_, booking) in bookings.values().flatten() {
        if booking.status == BookingStatus::Confirmed {
            for night in booking.stay.nights() {
                let id = NightId {
                    tenant_id: booking.tenant_id.clone(),
                    property_id: booking.property_id.clone(),
                    room_type: booking.stay.room_type.clone(),
                    night,
                };
                *expected.entry(id).or_default() += u32::from(booking.stay.rooms);
            }
        }
    }
    for (id, night) in &nights {
        if night.sold > night.allotment {
            oversold.failures.push(format!("{id:?}: {night:?}"));
        }
        let want = expected.get(id).copied().unwrap_or(0);
        if night.sold != want {
            conserved.failures.push(format!(
                "{id:?}: sold {} but bookings hold {want}",
                night.sold
            ));
        }
    }

    let mut checks = vec![present, once, refused, oversold, conserved];
    if let Some(contention) = &run.contention {
        let id = NightId {
            tenant_id: run.tenant_id.clone(),
            property_id: contention.property_id.clone(),
            room_type: contention.room_type.clone(),
            night: contention.night,
        };
        let sold = nights.get(&id).map_or(0, |n| n.sold);
        checks.push(Check {
            name: "contended night sold exactly to its allotment",
            checked: 1,
            failures: if sold == contention.rooms {
                Vec::new()
            } else {
                vec![format!("sold {sold} of {} rooms", contention.rooms)]
            },
        });
    }
    Ok(Verdict { checks })
}
