use super::*;

// The conformance suite runs in `tests/store_conformance.rs`.

#[test]
fn a_creation_cut_short_leaves_no_partition_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::new(dir.path()).unwrap();
    // What an interrupted creation leaves: a staged file that is not a database.
    std::fs::write(dir.path().join("partition-0003.redb.new-4242"), b"redb?").unwrap();
    assert_eq!(store.partitions().unwrap(), Vec::<i32>::new());
    let mut partition = store.open(3).unwrap();
    assert_eq!(partition.checkpoint().unwrap(), None);
    partition.write_batch(&[], 0).unwrap();
    assert_eq!(store.partitions().unwrap(), [3]);
    let staged: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".new-") && !name.ends_with("-4242"))
        .collect();
    assert!(staged.is_empty(), "staged files left behind: {staged:?}");
}

/// The conformance check once is a coin toss for a race between threads; many fresh stores
/// make losing it near certain.
#[test]
fn adopters_racing_on_fresh_stores_all_learn_one_placement() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..50 {
        let store = EmbeddedStore::new(dir.path().join(round.to_string())).unwrap();
        crate::store::conformance::adopters_racing_on_a_fresh_store_all_learn_one_placement(&store);
    }
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
