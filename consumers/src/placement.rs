//! Holding a partition that receives a property whose state lives on another partition.
//!
//! Every event carries the partition map that placed it (its placement, stamped by the
//! ingress), and the store keeps, for the whole topic, the map its state was built under:
//! the accepted placement, adopted from the first stamped event and replaced only by
//! `consumer accept-placement`. A change of partition count or hot-tenant override moves
//! properties, but not their nights and bookings: they stay in the old partition's file
//! (embedded store) or were written under the old partition's offsets (CQL store).
//! Deciding a moved property's events on its new partition would start from nothing:
//! allotments sent again would sell their rooms a second time, and modifies and cancels
//! would find no booking. So an event placed by another map than the accepted one is
//! applied only when the accepted map puts its property on the same partition; at the
//! first that it does not, the partition is held, applying nothing from there, until an
//! operator has dealt with the moved properties' state and accepted the new map.
//!
//! Events without a placement (from builds before it, or other producers) are taken as
//! placed by the accepted map.

use std::sync::{Arc, Mutex};

use partitioner::{Envelope, PartitionMap};

use crate::store::skip;
use crate::store::{Store, StoreError};

/// The accepted placement, read from the store once per process: it changes only by
/// `consumer accept-placement`, which runs while no consumer does.
#[derive(Default)]
pub struct AcceptedPlacement {
    map: Mutex<Option<Arc<PartitionMap>>>,
}

/// Why a partition waits at an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// The accepted map keeps the event's property on another partition.
    Moved(Moved),
    /// The partition has state, the topic has no accepted map yet, and the event carries
    /// one: which map the state was built under, only an operator can say.
    Unaccepted { offset: i64, placement: String },
}

impl Hold {
    /// The event the partition waits at.
    pub fn offset(&self) -> i64 {
        match self {
            Hold::Moved(moved) => moved.offset,
            Hold::Unaccepted { offset, .. } => *offset,
        }
    }
}

/// An event whose property the accepted map puts on another partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    pub offset: i64,
    pub tenant_id: String,
    pub property_id: String,
    /// The map that placed the event here.
    pub placement: String,
    /// Where the accepted map keeps the property's state.
    pub home: u32,
}

impl AcceptedPlacement {
    /// The accepted map, if read already.
    pub fn cached(&self) -> Option<Arc<PartitionMap>> {
        self.map.lock().expect("placement lock").clone()
    }

    /// Where, among `events` read from `partition`, the partition must wait. Events at or
    /// below its `checkpoint` are replays the store skips, so they never hold it. The
    /// accepted map is read from `store` the first time; when none is accepted yet, a
    /// partition without state (`checkpoint` is `None`) adopts the map of its first
    /// stamped event (or learns the one another process adopted first), and a partition
    /// with state waits for an operator. Blocking: store I/O until the map is known.
    pub fn check<S: Store>(
        &self,
        store: &S,
        partition: i32,
        checkpoint: Option<i64>,
        events: &[(i64, Envelope)],
    ) -> Result<Option<Hold>, StoreError> {
        let Some((offset, placement)) = first_stamped(checkpoint, events) else {
            return Ok(None);
        };
        let map = match self.cached() {
            Some(map) => map,
            None => match self.load(store, checkpoint.is_none().then_some(placement))? {
                Some(map) => map,
                None => {
                    let placement = placement.to_owned();
                    return Ok(Some(Hold::Unaccepted { offset, placement }));
                }
            },
        };
        Ok(first_moved(&map, partition, checkpoint, events).map(Hold::Moved))
    }

    /// The accepted map, adopting `adopt` when none is.
    fn load<S: Store>(
        &self,
        store: &S,
        adopt: Option<&str>,
    ) -> Result<Option<Arc<PartitionMap>>, StoreError> {
        let accepted = match (store.accepted_placement()?, adopt) {
            (Some(accepted), _) => accepted,
            (None, Some(first)) => {
                // Stored in its canonical form (events were checked to carry a valid one).
                let canonical = parse(first)?.to_string();
                store.adopt_placement(&canonical)?
            }
            (None, None) => return Ok(None),
        };
        let map = Arc::new(parse(&accepted)?);
        *self.map.lock().expect("placement lock") = Some(map.clone());
        Ok(Some(map))
    }
}

fn parse(placement: &str) -> Result<PartitionMap, StoreError> {
    placement.parse::<PartitionMap>().map_err(|problem| {
        StoreError::Corrupt(format!(
            "the placement {placement:?} is not a partition map ({problem}); \
             set the accepted one with `consumer accept-placement`"
        ))
    })
}

/// The offset and placement of the first event after `checkpoint` that carries one.
fn first_stamped(checkpoint: Option<i64>, events: &[(i64, Envelope)]) -> Option<(i64, &str)> {
    events
        .iter()
        .filter(|(offset, _)| skip::is_new(checkpoint, *offset))
        .find_map(|(offset, e)| e.placement.as_deref().map(|p| (*offset, p)))
}

/// The first of `events` after `checkpoint`, read from `partition`, whose property
/// `accepted` puts on another partition.
pub fn first_moved(
    accepted: &PartitionMap,
    partition: i32,
    checkpoint: Option<i64>,
    events: &[(i64, Envelope)],
) -> Option<Moved> {
    events
        .iter()
        .filter(|(offset, _)| skip::is_new(checkpoint, *offset))
        .find_map(|(offset, envelope)| {
            let placement = envelope.placement.as_deref()?;
            if placement == accepted.placement() {
                return None;
            }
            let home = accepted.partition(&envelope.tenant_id, &envelope.property_id);
            (i64::from(home) != i64::from(partition)).then(|| Moved {
                offset: *offset,
                tenant_id: envelope.tenant_id.clone(),
                property_id: envelope.property_id.clone(),
                placement: placement.to_owned(),
                home,
            })
        })
}

#[cfg(test)]
mod tests {
    use partitioner::Event;

    use super::*;
    use crate::store::conformance::{day, envelope};
    use crate::store::embedded::EmbeddedStore;

    fn allotment(property: &str, placement: Option<&str>) -> Envelope {
        let mut event = envelope(
            1,
            Event::SetAllotment {
                room_type: "DBL".into(),
                from: day(1),
                to: day(2),
                units: 1,
            },
        );
        event.property_id = property.into();
        event.placement = placement.map(str::to_owned);
        event
    }

    /// A property, named `prefix` and a number, that the three-partition map puts on
    /// partition `before` and the two-partition map on partition 0. (Counts that divide
    /// one another would tie the two answers together.)
    fn property(prefix: &str, before: u32) -> String {
        let three: PartitionMap = "3".parse().unwrap();
        let two: PartitionMap = "2".parse().unwrap();
        (0..1000)
            .map(|n| format!("{prefix}{n}"))
            .find(|p| three.partition("acme", p) == before && two.partition("acme", p) == 0)
            .expect("one in six names qualifies")
    }

    #[test]
    fn only_a_property_the_accepted_map_keeps_elsewhere_is_moved() {
        let accepted: PartitionMap = "3".parse().unwrap();
        let moved = property("moved-", 1);
        let stays = property("stays-", 0);
        // All read from partition 0.
        let events = [
            (10, allotment(&moved, None)),
            (11, allotment(&stays, Some("3"))),
            (12, allotment(&stays, Some("2"))),
            (13, allotment(&moved, Some("2"))),
            (14, allotment(&stays, Some("2"))),
        ];
        let found = first_moved(&accepted, 0, None, &events).unwrap();
        assert_eq!(found.offset, 13);
        assert_eq!(found.property_id, moved);
        assert_eq!(found.home, 1);
        assert_eq!(found.placement, "2");
        assert_eq!(first_moved(&accepted, 0, None, &events[..3]), None);
        // Replays at or below the checkpoint are skipped by the store: they hold nothing.
        assert_eq!(first_moved(&accepted, 0, Some(13), &events), None);
        // Once the new map is accepted nothing is.
        let two: PartitionMap = "2".parse().unwrap();
        assert_eq!(first_moved(&two, 0, None, &events), None);
    }

    #[test]
    fn only_a_partition_without_state_adopts_the_first_map() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::new(dir.path()).unwrap();
        let unstamped = [(0, allotment("p1", None))];
        let stamped = [(1, allotment("p1", None)), (2, allotment("p1", Some("2")))];
        // A partition with state does not guess which map built it.
        let accepted = AcceptedPlacement::default();
        assert_eq!(accepted.check(&store, 0, None, &unstamped).unwrap(), None);
        let unaccepted = Hold::Unaccepted {
            offset: 2,
            placement: "2".into(),
        };
        let held = accepted.check(&store, 0, Some(0), &stamped).unwrap();
        assert_eq!(held, Some(unaccepted));
        assert_eq!(store.accepted_placement().unwrap(), None);
        // A partition without state adopts it.
        assert_eq!(accepted.check(&store, 0, None, &stamped).unwrap(), None);
        assert_eq!(accepted.cached().unwrap().placement(), "2");
        assert_eq!(store.accepted_placement().unwrap().as_deref(), Some("2"));
        // Another process starting later reads it, whatever its events say.
        let later = AcceptedPlacement::default();
        let four = [(3, allotment("p1", Some("4")))];
        later.check(&store, 0, Some(2), &four).unwrap();
        assert_eq!(later.cached().unwrap().placement(), "2");
    }
}
