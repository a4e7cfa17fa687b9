use super::*;

#[test]
fn passes_the_store_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::cell::Cell::new(0);
    crate::store::conformance::run_all(|| {
        n.set(n.get() + 1);
        EmbeddedStore::new(dir.path().join(n.get().to_string())).unwrap()
    });
}

#[test]
fn night_keys_round_trip() {
    let id = NightId {
        tenant_id: "acme".into(),
        property_id: "p-1.x".into(),
        room_type: "DBL_SEA".into(),
        night: "2027-02-28".parse().unwrap(),
    };
    assert_eq!(parse_night_key(&night_key(&id)).unwrap(), id);
    assert!(parse_night_key("a/b/c").is_err());
}

#[test]
fn lists_the_partitions_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::new(dir.path()).unwrap();
    drop(store.open(7).unwrap());
    drop(store.open(2).unwrap());
    assert_eq!(store.partitions().unwrap(), [2, 7]);
}

#[test]
fn each_owner_takes_a_new_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::new(dir.path()).unwrap();
    let first = store.open(0).unwrap().epoch;
    let second = store.open(0).unwrap().epoch;
    assert_eq!(second, first + 1);
}
