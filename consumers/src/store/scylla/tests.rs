//! Tests of the CQL text and of the pure batch logic; the behaviour against a live
//! ScyllaDB is the conformance suite in `consumers/tests/store_conformance.rs`.

use std::collections::{BTreeSet, HashMap};

use partitioner::{Envelope, Event, Money, Stay};
use uuid::Uuid;

use super::batch::{Overlay, Source, Staged, Writes};
use super::cql::{self, schema, Statements, SCHEMA_KEYSPACE};
use crate::apply::{apply, Booking, Night, NightId, Position};
use crate::store::conformance::{day, envelope};
use crate::store::StoreError;

const KS: &str = "ks_under_test";

/// The word after `keyword` (case-insensitive) in each place it occurs, e.g. table names.
fn words_after(text: &str, keyword: &str) -> Vec<String> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    tokens
        .windows(2)
        .filter(|w| w[0].eq_ignore_ascii_case(keyword))
        .map(|w| w[1].trim_end_matches(['(', ';']).to_owned())
        .collect()
}

/// Tables a statement reads or writes, as `keyspace.table`.
fn tables_of(statement: &str) -> Vec<String> {
    let upper = statement.to_ascii_uppercase();
    let keyword = if upper.starts_with("SELECT") {
        "FROM"
    } else if upper.starts_with("INSERT") {
        "INTO"
    } else if upper.starts_with("UPDATE") {
        "UPDATE"
    } else {
        panic!("unexpected statement {statement}")
    };
    words_after(statement, keyword)
}

/// Tables the schema file creates, as `keyspace.table`.
fn schema_tables(keyspace: &str) -> BTreeSet<String> {
    schema(keyspace, 1)
        .iter()
        .filter(|s| s.to_ascii_uppercase().starts_with("CREATE TABLE"))
        .flat_map(|s| words_after(s, "EXISTS"))
        .collect()
}

#[test]
fn every_statement_names_the_keyspace() {
    for (name, statement) in Statements::new(KS).all() {
        let tables = tables_of(statement);
        assert!(!tables.is_empty(), "{name} names no table");
        for table in tables {
            assert!(
                table.starts_with(&format!("{KS}.")),
                "{name} uses {table} outside the keyspace"
            );
        }
    }
}

#[test]
fn the_schema_creates_every_table_the_statements_use() {
    let created = schema_tables(KS);
    assert_eq!(
        created.len(),
        6,
        "partitions, staged_effects, bookings, nights, applied_events, placement"
    );
    for (name, statement) in Statements::new(KS).all() {
        for table in tables_of(statement) {
            assert!(
                created.contains(&table),
                "{name} uses {table}, not in schema.cql"
            );
        }
    }
    // And no table in the schema is left unused.
    let used: BTreeSet<String> = Statements::new(KS)
        .all()
        .iter()
        .flat_map(|(_, s)| tables_of(s))
        .collect();
    assert_eq!(created, used);
}

#[test]
fn ownership_writes_are_conditional_and_effects_are_timestamped() {
    let st = Statements::new(KS);
    assert!(st.claim_new.ends_with("IF NOT EXISTS"));
    assert!(st.bump_epoch.ends_with("IF epoch = ?"));
    assert!(st.bump_epoch.contains("SET epoch = ?"));
    // The checkpoint moves only by the transaction that fences the batch.
    assert!(st.commit.contains("SET checkpoint = ?"));
    assert!(st.commit.ends_with("IF epoch = ?"));
    for (name, statement) in st.all() {
        let writes_partitions = statement.starts_with("UPDATE") || statement.starts_with("INSERT");
        if writes_partitions && statement.contains(".partitions ") {
            assert!(
                statement.contains(" IF "),
                "{name} writes ownership without IF"
            );
        }
    }
    // Effects are ordered by source offset, never by wall clock, and never use Paxos
    // (mixing conditional and plain writes on one row is unsafe).
    for statement in [&st.write_booking, &st.write_night, &st.write_applied] {
        assert!(statement.ends_with("USING TIMESTAMP ?"), "{statement}");
        assert!(!statement.contains(" IF "), "{statement}");
    }
    assert!(!st.stage.contains(" IF "));
    // The placement row is only ever written with Paxos, never mixed with plain writes.
    assert!(st.adopt_placement.ends_with("IF NOT EXISTS"));
    assert!(st.replace_placement.ends_with("IF EXISTS"));
}

#[test]
fn statements_bind_every_value_they_need() {
    let st = Statements::new(KS);
    let markers = |s: &str| s.matches('?').count();
    assert_eq!(markers(&st.claim_new), 1);
    assert_eq!(markers(&st.bump_epoch), 3);
    assert_eq!(markers(&st.commit), 4);
    assert_eq!(markers(&st.stage), 4);
    assert_eq!(markers(&st.write_booking), 4);
    assert_eq!(markers(&st.write_night), 8);
    assert_eq!(markers(&st.write_applied), 5);
    assert_eq!(markers(&st.read_night), 4);
    assert_eq!(markers(&st.read_placement), 1);
    assert_eq!(markers(&st.adopt_placement), 2);
    assert_eq!(markers(&st.replace_placement), 2);
}

#[test]
fn the_schema_file_is_rewritten_for_another_keyspace_and_replication() {
    let statements = schema("conformance_1", 1);
    let all = statements.join("\n");
    assert!(!all.contains(SCHEMA_KEYSPACE), "{all}");
    assert!(!all.contains("--"), "comments are stripped");
    assert!(statements[0].starts_with("CREATE KEYSPACE IF NOT EXISTS conformance_1"));
    assert!(statements[0].contains("'NetworkTopologyStrategy'"));
    assert!(statements[0].contains("'replication_factor': 1"));
    assert!(statements
        .iter()
        .all(|s| s.contains("IF NOT EXISTS") && !s.ends_with(';')));
    // The shipped file itself targets three replicas per data centre.
    assert!(schema(SCHEMA_KEYSPACE, 3)[0].contains("'replication_factor': 3"));
}

#[test]
fn the_tablets_option_is_left_out_for_servers_without_tablets() {
    let statements = schema(KS, 1);
    assert!(statements[0].ends_with("AND tablets = {'enabled': false}"));
    let keyspace = cql::without_tablets(&statements[0]);
    assert!(!keyspace.contains("tablets"), "{keyspace}");
    assert!(
        keyspace.ends_with("AND durable_writes = true"),
        "{keyspace}"
    );
    // Only the keyspace statement carries the option.
    for table in &statements[1..] {
        assert_eq!(&cql::without_tablets(table), table);
    }
}

#[test]
fn nights_are_partitioned_by_room_type_and_clustered_by_night() {
    let nights = schema(KS, 1)
        .into_iter()
        .find(|s| s.contains(&format!("{KS}.nights ")))
        .unwrap();
    assert!(
        nights.contains("PRIMARY KEY ((tenant_id, property_id, room_type), night)"),
        "{nights}"
    );
}

#[test]
fn write_timestamps_follow_offsets() {
    assert!(cql::write_timestamp(0) > 0);
    assert!(cql::write_timestamp(7) < cql::write_timestamp(8));
    assert_eq!(cql::write_timestamp(i64::MAX), i64::MAX);
}

fn stay(from: u32, to: u32) -> Stay {
    Stay {
        room_type: "DBL".into(),
        check_in: day(from),
        check_out: day(to),
        rooms: 1,
        guests: 1,
    }
}

#[derive(Default)]
struct Stored {
    bookings: HashMap<Uuid, Booking>,
    nights: HashMap<NightId, Night>,
    reads: std::cell::Cell<usize>,
}

impl Source for Stored {
    fn booking(&self, id: Uuid) -> Result<Option<Booking>, StoreError> {
        self.reads.set(self.reads.get() + 1);
        Ok(self.bookings.get(&id).cloned())
    }
    fn night(&self, id: &NightId) -> Result<Option<Night>, StoreError> {
        self.reads.set(self.reads.get() + 1);
        Ok(self.nights.get(id).copied())
    }
}

/// Applies `events` the way `write_batch` does and folds what it would stage.
fn run(source: &Stored, events: &[(i64, Envelope)]) -> (Writes, Vec<(i64, Staged)>) {
    let mut overlay = Overlay::new(source);
    let mut staged = Vec::new();
    for (offset, envelope) in events {
        let at = Position {
            partition: 0,
            offset: *offset,
        };
        let effects = apply(&overlay, envelope, at).unwrap();
        overlay.record(&effects);
        staged.push((*offset, Staged::new(envelope, &effects)));
    }
    let writes = Writes::fold(staged.iter().map(|(o, s)| (*o, s)));
    (writes, staged)
}

#[test]
fn a_batch_sees_its_own_effects_and_writes_each_row_once_at_its_last_offset() {
    let source = Stored::default();
    let allot = envelope(
        1,
        Event::SetAllotment {
            room_type: "DBL".into(),
            from: day(1),
            to: day(5),
            units: 1,
        },
    );
    let create = |seq| {
        envelope(
            seq,
            Event::CreateBooking {
                booking_id: Uuid::from_u128(seq),
                stay: stay(2, 4),
                price: Money {
                    amount_minor: 100,
                    currency: "EUR".into(),
                },
                guest_name: None,
                partner_reference: None,
            },
        )
    };
    let cancel = envelope(
        4,
        Event::CancelBooking {
            booking_id: Uuid::from_u128(2),
            reason: None,
        },
    );
    let events = [(10, allot), (11, create(2)), (12, create(3)), (13, cancel)];
    let (writes, staged) = run(&source, &events);
    // The second create met a sold-out night because the first one's effect was visible.
    let rejected = &writes.bookings[&Uuid::from_u128(3)].1;
    assert_eq!(rejected.status, crate::apply::BookingStatus::Rejected);
    // The cancel released it again: the night is written once, at the cancel's offset.
    let night_2 = NightId {
        tenant_id: "acme".into(),
        property_id: "p1".into(),
        room_type: "DBL".into(),
        night: day(2),
    };
    assert_eq!(
        writes.nights[&night_2],
        (
            13,
            Night {
                allotment: 1,
                sold: 0
            }
        )
    );
    assert_eq!(writes.nights.len(), 4);
    assert_eq!(writes.bookings[&Uuid::from_u128(2)].0, 13);
    assert_eq!(writes.applied.len(), 4);
    // Staged rows round-trip, and folding them in any order gives the same writes.
    let decoded: Vec<(i64, Staged)> = staged
        .iter()
        .rev()
        .map(|(o, s)| (*o, Staged::decode(&s.encode()).unwrap()))
        .collect();
    assert_eq!(Writes::fold(decoded.iter().map(|(o, s)| (*o, s))), writes);
}

#[test]
fn the_overlay_reads_each_missing_row_once() {
    let mut source = Stored::default();
    let id = NightId {
        tenant_id: "acme".into(),
        property_id: "p1".into(),
        room_type: "DBL".into(),
        night: day(2),
    };
    source.nights.insert(
        id.clone(),
        Night {
            allotment: 3,
            sold: 1,
        },
    );
    let overlay = Overlay::new(&source);
    use crate::apply::Ledger;
    assert_eq!(overlay.night(&id).unwrap().unwrap().sold, 1);
    assert_eq!(overlay.night(&id).unwrap().unwrap().sold, 1);
    assert!(overlay.booking(Uuid::from_u128(9)).unwrap().is_none());
    assert!(overlay.booking(Uuid::from_u128(9)).unwrap().is_none());
    assert_eq!(source.reads.get(), 2);
}

/// The bridge is called from every context the pipeline and tests have: no runtime, a
/// multi-thread runtime's worker (`open` runs in async code), inside `block_in_place`
/// (`write_batch`), and a current-thread runtime, whose only thread cannot be handed over.
#[test]
fn the_bridge_blocks_from_any_calling_context() {
    let bridge = super::db::Bridge::new().unwrap();
    let work = || async {
        tokio::task::yield_now().await;
        7
    };
    assert_eq!(bridge.block_on(work()), 7);

    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    multi.block_on(async {
        let bridge = std::sync::Arc::new(super::db::Bridge::new().unwrap());
        let b = bridge.clone();
        let on_worker = tokio::spawn(async move { b.block_on(work()) });
        assert_eq!(on_worker.await.unwrap(), 7);
        let b = bridge.clone();
        let nested =
            tokio::spawn(async move { tokio::task::block_in_place(|| b.block_on(work())) });
        assert_eq!(nested.await.unwrap(), 7);
        // Dropped inside async code: must not panic.
        drop(bridge);
    });

    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    current.block_on(async { assert_eq!(bridge.block_on(work()), 7) });
}

/// CQL's reserved words cannot name a table or column unquoted; the schema quotes nothing.
#[test]
fn no_table_or_column_is_a_reserved_word() {
    const RESERVED: &[&str] = &[
        "add",
        "allow",
        "alter",
        "and",
        "apply",
        "asc",
        "authorize",
        "batch",
        "begin",
        "by",
        "columnfamily",
        "create",
        "delete",
        "desc",
        "describe",
        "drop",
        "entries",
        "execute",
        "from",
        "full",
        "grant",
        "if",
        "in",
        "index",
        "infinity",
        "insert",
        "into",
        "is",
        "keyspace",
        "limit",
        "materialized",
        "modify",
        "nan",
        "norecursive",
        "not",
        "null",
        "of",
        "offset",
        "on",
        "or",
        "order",
        "primary",
        "rename",
        "replace",
        "revoke",
        "schema",
        "select",
        "set",
        "table",
        "to",
        "token",
        "truncate",
        "unlogged",
        "update",
        "use",
        "using",
        "view",
        "where",
        "with",
    ];
    let mut identifiers = Vec::new();
    for statement in schema(KS, 1) {
        if !statement.starts_with("CREATE TABLE") {
            continue;
        }
        let table = words_after(&statement, "EXISTS").remove(0);
        identifiers.push(table.rsplit('.').next().unwrap().to_owned());
        let body = &statement[statement.find('(').unwrap() + 1..];
        for line in body.lines().map(str::trim) {
            let first = line.split_whitespace().next().unwrap_or("");
            if !first.is_empty() && first != "PRIMARY" && first != ")" {
                identifiers.push(first.to_owned());
            }
        }
    }
    assert!(
        identifiers.contains(&"source_offset".to_owned()),
        "{identifiers:?}"
    );
    for identifier in identifiers {
        assert!(
            !RESERVED.contains(&identifier.to_ascii_lowercase().as_str()),
            "{identifier} is reserved"
        );
    }
}
