//! Every CQL statement of the ScyllaDB backend, and the schema it installs.
//!
//! Statements are plain text built from the keyspace name, so unit tests can check them
//! against `infra/scylla/schema.cql` without a server: each names its keyspace, each write
//! that must be fenced carries its `IF` clause, and each table it uses is in the schema.

/// The schema file shipped in `infra/`, compiled in so the backend and its tests install
/// exactly what operators apply.
pub const SCHEMA: &str = include_str!("../../../../infra/scylla/schema.cql");

/// The keyspace the schema file names; [`schema`] replaces it.
pub const SCHEMA_KEYSPACE: &str = "booking_store";

const SCHEMA_REPLICATION: &str = "'replication_factor': 3";

/// The schema's ScyllaDB-only keyspace option, last in its statement.
const SCHEMA_TABLETS: &str = "AND tablets = {'enabled': false}";

/// The schema statements for `keyspace` with `replication_factor` replicas per data
/// centre, comments stripped, in file order.
pub fn schema(keyspace: &str, replication_factor: u32) -> Vec<String> {
    let text: String = SCHEMA
        .lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.replace(SCHEMA_KEYSPACE, keyspace).replace(
                SCHEMA_REPLICATION,
                &format!("'replication_factor': {replication_factor}"),
            )
        })
        .collect()
}

/// A schema statement without ScyllaDB's `tablets` keyspace option, for servers that have
/// no tablets (Apache Cassandra, older ScyllaDB releases): they reject it as an unknown
/// property, and their keyspaces are on vnodes anyway, which is what the option asks for.
pub fn without_tablets(statement: &str) -> String {
    statement.replace(SCHEMA_TABLETS, "").trim_end().to_owned()
}

/// The statements the backend prepares, for one keyspace.
#[derive(Clone, Debug)]
pub struct Statements {
    /// Claims a partition never owned before: epoch 1.
    pub claim_new: String,
    /// Takes a partition over: epoch + 1, only if nobody bumped it since we read it.
    pub bump_epoch: String,
    /// The ownership row, read at SERIAL consistency so it sees every committed transaction.
    pub read_partition: String,
    /// Moves the checkpoint, only while the epoch is still ours: the fence of every batch.
    pub commit: String,
    pub stage: String,
    pub read_staged: String,
    pub write_booking: String,
    pub write_night: String,
    pub write_applied: String,
    pub read_booking: String,
    pub read_night: String,
    pub read_applied: String,
    /// Admin path (verification, projection rebuilds): a filtered scan, not a hot path.
    pub list_bookings: String,
    pub list_nights: String,
    pub list_partitions: String,
    /// The accepted placement, read at SERIAL consistency like ownership.
    pub read_placement: String,
    /// Accepts a placement when none is.
    pub adopt_placement: String,
    /// Replaces the accepted placement (`consumer accept-placement`).
    pub replace_placement: String,
}

/// The key of the one row of the `placement` table.
pub const PLACEMENT_SCOPE: &str = "topic";

impl Statements {
    pub fn new(ks: &str) -> Self {
        Statements {
            claim_new: format!(
                "INSERT INTO {ks}.partitions (topic_partition, epoch) VALUES (?, 1) IF NOT EXISTS"
            ),
            bump_epoch: format!(
                "UPDATE {ks}.partitions SET epoch = ? WHERE topic_partition = ? IF epoch = ?"
            ),
            read_partition: format!(
                "SELECT epoch, checkpoint, checkpoint_batch FROM {ks}.partitions \
                 WHERE topic_partition = ?"
            ),
            commit: format!(
                "UPDATE {ks}.partitions SET checkpoint = ?, checkpoint_batch = ? \
                 WHERE topic_partition = ? IF epoch = ?"
            ),
            stage: format!(
                "INSERT INTO {ks}.staged_effects \
                 (topic_partition, batch_id, source_offset, effects) VALUES (?, ?, ?, ?)"
            ),
            read_staged: format!(
                "SELECT source_offset, effects FROM {ks}.staged_effects \
                 WHERE topic_partition = ? AND batch_id = ?"
            ),
            write_booking: format!(
                "INSERT INTO {ks}.bookings (booking_id, topic_partition, booking) \
                 VALUES (?, ?, ?) USING TIMESTAMP ?"
            ),
            write_night: format!(
                "INSERT INTO {ks}.nights \
                 (tenant_id, property_id, room_type, night, topic_partition, allotment, sold) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ),
            write_applied: format!(
                "INSERT INTO {ks}.applied_events \
                 (event_id, topic_partition, source_offset, fingerprint) \
                 VALUES (?, ?, ?, ?) USING TIMESTAMP ?"
            ),
            read_booking: format!("SELECT booking FROM {ks}.bookings WHERE booking_id = ?"),
            read_night: format!(
                "SELECT allotment, sold FROM {ks}.nights \
                 WHERE tenant_id = ? AND property_id = ? AND room_type = ? AND night = ?"
            ),
            read_applied: format!(
                "SELECT source_offset, fingerprint FROM {ks}.applied_events WHERE event_id = ?"
            ),
            list_bookings: format!(
                "SELECT booking FROM {ks}.bookings WHERE topic_partition = ? ALLOW FILTERING"
            ),
            list_nights: format!(
                "SELECT tenant_id, property_id, room_type, night, allotment, sold \
                 FROM {ks}.nights WHERE topic_partition = ? ALLOW FILTERING"
            ),
            list_partitions: format!("SELECT topic_partition FROM {ks}.partitions"),
            read_placement: format!("SELECT partition_map FROM {ks}.placement WHERE scope = ?"),
            adopt_placement: format!(
                "INSERT INTO {ks}.placement (scope, partition_map) VALUES (?, ?) IF NOT EXISTS"
            ),
            replace_placement: format!(
                "UPDATE {ks}.placement SET partition_map = ? WHERE scope = ? IF EXISTS"
            ),
        }
    }

    /// Every statement with its field name, for tests and for preparing them all.
    pub fn all(&self) -> [(&'static str, &str); 18] {
        [
            ("claim_new", &self.claim_new),
            ("bump_epoch", &self.bump_epoch),
            ("read_partition", &self.read_partition),
            ("commit", &self.commit),
            ("stage", &self.stage),
            ("read_staged", &self.read_staged),
            ("write_booking", &self.write_booking),
            ("write_night", &self.write_night),
            ("write_applied", &self.write_applied),
            ("read_booking", &self.read_booking),
            ("read_night", &self.read_night),
            ("read_applied", &self.read_applied),
            ("list_bookings", &self.list_bookings),
            ("list_nights", &self.list_nights),
            ("list_partitions", &self.list_partitions),
            ("read_placement", &self.read_placement),
            ("adopt_placement", &self.adopt_placement),
            ("replace_placement", &self.replace_placement),
        ]
    }
}

/// The write timestamp of a row produced by the event at `offset`. Rows of one property
/// are only ever written by its partition's owners, so ordering cells by source offset makes
/// a late write of an older batch (a fenced owner finishing its last committed batch) lose
/// to every newer one, whatever order they reach the replicas in.
pub fn write_timestamp(offset: i64) -> i64 {
    offset.saturating_add(1)
}
