//! Every store backend through the one conformance suite (`consumers::store::conformance`).
//!
//! The embedded store always runs. The CQL backend runs when `SCYLLA_URI` names a cluster
//! (`host:9042`, comma-separated for several contact points): `infra/test.sh` starts Apache
//! Cassandra (`infra/cassandra.sh`, the CQL store standing in for ScyllaDB) and sets it, so
//! the suite always runs live there; a bare `cargo test` without it prints why it skipped.
//! Each check gets a keyspace of its own (replication factor `SCYLLA_REPLICATION_FACTOR`,
//! default 1), dropped at the end.

use std::cell::{Cell, RefCell};
use std::io::Write;

use consumers::store::conformance;
use consumers::store::embedded::EmbeddedStore;
use consumers::store::scylla::ScyllaStore;

#[test]
fn embedded_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = Cell::new(0);
    conformance::run_all(|| {
        n.set(n.get() + 1);
        EmbeddedStore::new(dir.path().join(n.get().to_string())).unwrap()
    });
}

#[test]
fn scylla_store_passes_the_conformance_suite() {
    let Ok(uri) = std::env::var("SCYLLA_URI") else {
        // Written to the process's stderr, not through `eprintln!`, which the test harness
        // captures and hides for a passing test: a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: ScyllaDB conformance — set SCYLLA_URI=host:9042 to run"
        );
        return;
    };
    let replication_factor = std::env::var("SCYLLA_REPLICATION_FACTOR")
        .map(|rf| rf.parse().expect("SCYLLA_REPLICATION_FACTOR is a number"))
        .unwrap_or(1);
    let run = format!(
        "conformance_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    let stores = RefCell::new(Vec::new());
    conformance::run_all(|| {
        let keyspace = format!("{run}_{}", stores.borrow().len());
        let store = ScyllaStore::install(&uri, &keyspace, replication_factor)
            .unwrap_or_else(|e| panic!("installing {keyspace} on {uri}: {e}"));
        stores.borrow_mut().push(store.clone());
        store
    });
    let stores = stores.into_inner();
    let release = stores[0].release_version().unwrap();
    for store in stores {
        store.drop_keyspace().unwrap();
    }
    // Through stderr directly, like the skip above: which server passed must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "CQL store conformance passed against {uri} (server release {release})"
    );
}
