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

use crate::store::{Store, StoreError};

/// The accepted placement, read from the store once per process: it changes only by
/// `consumer accept-placement`, which runs while no consumer does.
#[derive(Default)]
pub struct AcceptedPlacement {
    map: Mutex<Option<Arc<PartitionMap>>>,
}

impl AcceptedPlacement {
    /// The accepted map, if read already.
    pub fn cached(&self) -> Option<Arc<PartitionMap>> {
        self.map.lock().expect("placement lock").clone()
    }

    /// The accepted map from `store`; when none is accepted yet, the placement of the
    /// first event of `events` that carries one is adopted (or whichever another process
    /// adopted first). `None` while no event carried a placement. Blocking: store I/O.
    pub fn load<S: Store>(
        &self,
        store: &S,
        events: &[(i64, Envelope)],
    ) -> Result<Option<Arc<PartitionMap>>, StoreError> {
        if let Some(map) = self.cached() {
            return Ok(Some(map));
        }
        let accepted = match store.accepted_placement()? {
            Some(accepted) => accepted,
            None => match events.iter().find_map(|(_, e)| e.placement.as_deref()) {
                Some(first) => store.adopt_placement(first)?,
                None => return Ok(None),
            },
        };
        let map = accepted.parse::<PartitionMap>().map_err(|problem| {
            StoreError::Corrupt(format!(
                "the accepted placement {accepted:?} is not a partition map ({problem}); \
                 set it with `consumer accept-placement`"
            ))
        })?;
        let map = Arc::new(map);
        *self.map.lock().expect("placement lock") = Some(map.clone());
        Ok(Some(map))
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

/// The first of `events`, read from `partition`, whose property `accepted` puts on another
/// partition.
pub fn first_moved(
    accepted: &PartitionMap,
    partition: i32,
    events: &[(i64, Envelope)],
) -> Option<Moved> {
    events.iter().find_map(|(offset, envelope)| {
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
        let found = first_moved(&accepted, 0, &events).unwrap();
        assert_eq!(found.offset, 13);
        assert_eq!(found.property_id, moved);
        assert_eq!(found.home, 1);
        assert_eq!(found.placement, "2");
        assert_eq!(first_moved(&accepted, 0, &events[..3]), None);
        // Once the new map is accepted nothing is.
        let two: PartitionMap = "2".parse().unwrap();
        assert_eq!(first_moved(&two, 0, &events), None);
    }

    #[test]
    fn the_first_stamped_event_sets_the_accepted_map_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::new(dir.path()).unwrap();
        let accepted = AcceptedPlacement::default();
        let unstamped = [(0, allotment("p1", None))];
        assert_eq!(accepted.load(&store, &unstamped).unwrap(), None);
        let stamped = [(1, allotment("p1", None)), (2, allotment("p1", Some("2")))];
        let map = accepted.load(&store, &stamped).unwrap().unwrap();
        assert_eq!(map.placement(), "2");
        assert_eq!(store.accepted_placement().unwrap().as_deref(), Some("2"));
        // Another process starting later reads it, whatever its events say.
        let later = AcceptedPlacement::default();
        let four = [(3, allotment("p1", Some("4")))];
        assert_eq!(later.load(&store, &four).unwrap().unwrap().placement(), "2");
    }
}
