//! Which partition a booking event travels on.
//!
//! Consumers apply a property's events in order and keep its state in one place, so every event
//! for one property must land on one partition, every time. By default the partition is exactly
//! Kafka's keyed placement of the routing key `"{tenant_id}/{property_id}"`
//! ([`crate::hash::partition_for_key`]): without overrides the topic is laid out as any Kafka
//! client producing with that key would lay it out, so tools outside this repository can find a
//! property's partition on their own. A hot tenant whose volume would crowd out others can be
//! pinned to a contiguous range of partitions, and its properties are then spread over that
//! range with the same hash. No Kafka client knows about overrides, so the ingress sets the
//! partition on every record itself instead of leaving it to the producer's partitioner.
//!
//! Overrides confine a tenant; they do not reserve partitions. Tenants without an override
//! still hash over the whole topic, so two overrides may overlap: fencing a hot tenant off from
//! everyone else needs an operator's decision about which tenants go where, not a rule here.
//! Changing the partition count or an override moves properties to other partitions. A
//! property's state (its nights and bookings) does not move with it, so the consumers must
//! not decide its events on the new partition as if it had none: the ingress stamps every
//! event with the map that placed it (its [`Display`](fmt::Display) form, the
//! *placement*), and the consumers hold a partition that receives a property the accepted
//! placement put elsewhere, until an operator accepts the new one (docs/OPERATIONS.md,
//! "Changing the partition map").

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::num::{NonZeroU32, ParseIntError};
use std::ops::Range;
use std::str::FromStr;

use crate::hash::partition_for_key;
use crate::validate::id_problem;

/// Kafka partition ids are Java `int`s, so a topic cannot have more partitions than this.
const MAX_PARTITIONS: u32 = i32::MAX as u32;

/// The Kafka message key of a property's events, and the bytes its partition is hashed from.
///
/// Valid tenant and property ids cannot contain `/` ([`crate::validate::id_problem`]), so two
/// different pairs never produce the same key.
pub fn routing_key(tenant_id: &str, property_id: &str) -> String {
    format!("{tenant_id}/{property_id}")
}

/// Why a partition map could not be built.
///
/// Every variant is a configuration mistake found at startup, never at request time: none is
/// retryable, and the binaries report it and exit with code 64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionMapError {
    #[error("the topic must have at least one partition")]
    NoPartitions,
    #[error("{text:?} is not a partition count")]
    BadCount { text: String, source: ParseIntError },
    #[error("a kafka topic has at most {MAX_PARTITIONS} partitions, not {total}")]
    TooManyPartitions { total: u32 },
    #[error("the override list has an empty entry at position {position}")]
    EmptyEntry { position: usize },
    #[error("override {entry:?} is not of the form tenant=start..end")]
    Malformed { entry: String },
    #[error("override {entry:?} names an invalid tenant id: {problem}")]
    InvalidTenant { entry: String, problem: String },
    #[error("override {entry:?} has a bound that is not a partition number")]
    BadBound {
        entry: String,
        source: ParseIntError,
    },
    #[error("override {entry:?} has an empty range: the end must be greater than the start")]
    EmptyRange { entry: String },
    #[error("tenant {tenant:?} is overridden more than once")]
    DuplicateTenant { tenant: String },
    #[error("override {entry:?} reaches past the last of the topic's {total} partitions")]
    OutOfRange { entry: String, total: u32 },
}

/// One hot tenant pinned to the half-open partition range `start..end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantOverride {
    tenant: String,
    start: u32,
    end: u32,
}

impl TenantOverride {
    /// Pins `tenant` to `partitions`; the range must not be empty. Whether it fits the topic
    /// is checked by [`PartitionMap::new`], which knows the partition count.
    pub fn new(
        tenant: impl Into<String>,
        partitions: Range<u32>,
    ) -> Result<Self, PartitionMapError> {
        let pinned = Self {
            tenant: tenant.into(),
            start: partitions.start,
            end: partitions.end,
        };
        // The tenant must be one the ingress can accept; otherwise the override could never
        // apply and a typo would go unnoticed. The same rule also keeps the tenant free of the
        // `=`, `,` and spaces the spec syntax uses, so every override prints back parseably.
        if let Some(problem) = id_problem(&pinned.tenant) {
            return Err(PartitionMapError::InvalidTenant {
                entry: pinned.to_string(),
                problem,
            });
        }
        if pinned.start >= pinned.end {
            return Err(PartitionMapError::EmptyRange {
                entry: pinned.to_string(),
            });
        }
        Ok(pinned)
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn partitions(&self) -> Range<u32> {
        self.start..self.end
    }

    fn count(&self) -> NonZeroU32 {
        // `new` rejects empty ranges, and it is the only constructor.
        NonZeroU32::new(self.end - self.start).expect("override ranges are never empty")
    }
}

impl fmt::Display for TenantOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}..{}", self.tenant, self.start, self.end)
    }
}

/// The hot-tenant overrides, parsed from a spec such as `acme=0..4,globex=4..6`.
///
/// Entries are comma-separated `tenant=start..end` with half-open ranges, whitespace around
/// any part is ignored, and an empty or blank spec means no overrides. `Display` prints the
/// canonical spec, which parses back to an equal value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides(Vec<TenantOverride>);

impl Overrides {
    /// Collects overrides, rejecting a tenant that appears twice: which of its ranges was
    /// meant cannot be guessed.
    pub fn new(
        overrides: impl IntoIterator<Item = TenantOverride>,
    ) -> Result<Self, PartitionMapError> {
        let overrides: Vec<TenantOverride> = overrides.into_iter().collect();
        let mut seen = HashSet::new();
        for pinned in &overrides {
            if !seen.insert(pinned.tenant()) {
                return Err(PartitionMapError::DuplicateTenant {
                    tenant: pinned.tenant.clone(),
                });
            }
        }
        Ok(Self(overrides))
    }

    pub fn iter(&self) -> impl Iterator<Item = &TenantOverride> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for Overrides {
    type Err = PartitionMapError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        if spec.trim().is_empty() {
            return Ok(Self::default());
        }
        let entries = spec
            .split(',')
            .enumerate()
            .map(|(index, entry)| parse_entry(index + 1, entry))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(entries)
    }
}

fn parse_entry(position: usize, entry: &str) -> Result<TenantOverride, PartitionMapError> {
    let entry = entry.trim();
    if entry.is_empty() {
        // Most likely a doubled or trailing comma. Rejecting it rather than skipping it keeps
        // a half-edited spec from starting with fewer overrides than the operator meant.
        return Err(PartitionMapError::EmptyEntry { position });
    }
    let malformed = || PartitionMapError::Malformed {
        entry: entry.to_owned(),
    };
    let (tenant, range) = entry.split_once('=').ok_or_else(malformed)?;
    let (start, end) = range.split_once("..").ok_or_else(malformed)?;
    let bound = |text: &str| {
        text.trim()
            .parse::<u32>()
            .map_err(|source| PartitionMapError::BadBound {
                entry: entry.to_owned(),
                source,
            })
    };
    TenantOverride::new(tenant.trim(), bound(start)?..bound(end)?)
}

impl fmt::Display for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, pinned) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{pinned}")?;
        }
        Ok(())
    }
}

/// Maps a property to its partition: Kafka's hash of its routing key, confined to the
/// tenant's range when the tenant has an override.
///
/// Invariant: `partition(..) < partitions() <= i32::MAX`, so a partition converts to the `i32`
/// Kafka clients use without loss.
///
/// `Display` prints the map's placement, `N` or `N:tenant=start..end,...` with the
/// overrides sorted by tenant, so the same overrides in any order print alike (maps that
/// print alike place every property alike; the converse need not hold: `12` and
/// `12:acme=0..12` differ in text only); `FromStr` parses it back.
#[derive(Debug, Clone)]
pub struct PartitionMap {
    total: NonZeroU32,
    overrides: Overrides,
    /// The same ranges as `overrides`, keyed by tenant for the lookup done on every event.
    pinned: HashMap<String, (u32, NonZeroU32)>,
    /// The `Display` form, computed once: every event carries it.
    placement: String,
}

impl PartitionMap {
    /// Builds the map for a topic of `total` partitions, checking that every override lies
    /// inside the topic.
    pub fn new(total: u32, overrides: Overrides) -> Result<Self, PartitionMapError> {
        let total = NonZeroU32::new(total).ok_or(PartitionMapError::NoPartitions)?;
        if total.get() > MAX_PARTITIONS {
            return Err(PartitionMapError::TooManyPartitions { total: total.get() });
        }
        let mut pinned = HashMap::new();
        for rule in overrides.iter() {
            // Ranges past the end are rejected rather than clamped: they mean the spec was
            // written for a bigger topic, and clamping would quietly pile the tenant onto
            // fewer partitions than the operator planned for.
            if rule.end > total.get() {
                return Err(PartitionMapError::OutOfRange {
                    entry: rule.to_string(),
                    total: total.get(),
                });
            }
            pinned.insert(rule.tenant.clone(), (rule.start, rule.count()));
        }
        let mut sorted: Vec<&TenantOverride> = overrides.iter().collect();
        sorted.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        let mut placement = total.to_string();
        for (index, rule) in sorted.iter().enumerate() {
            placement.push(if index == 0 { ':' } else { ',' });
            placement.push_str(&rule.to_string());
        }
        Ok(Self {
            total,
            overrides,
            pinned,
            placement,
        })
    }

    /// Parses `spec` as [`Overrides`] and builds the map, the usual path from configuration.
    pub fn parse(total: u32, spec: &str) -> Result<Self, PartitionMapError> {
        Self::new(total, spec.parse()?)
    }

    /// The property's partition. Deterministic: the same map always gives the same answer
    /// for the same pair, whichever process asks.
    pub fn partition(&self, tenant_id: &str, property_id: &str) -> u32 {
        let key = routing_key(tenant_id, property_id);
        match self.pinned.get(tenant_id) {
            // `start + offset < end <= total`, so the sum cannot overflow.
            Some(&(start, count)) => start + partition_for_key(key.as_bytes(), count),
            None => partition_for_key(key.as_bytes(), self.total),
        }
    }

    /// The topic's partition count.
    pub fn partitions(&self) -> u32 {
        self.total.get()
    }

    pub fn overrides(&self) -> &Overrides {
        &self.overrides
    }

    /// The canonical text of the map (see [`PartitionMap`]), as events carry it.
    pub fn placement(&self) -> &str {
        &self.placement
    }
}

impl PartialEq for PartitionMap {
    /// Maps are equal when their placements are: the same count and overrides.
    fn eq(&self, other: &Self) -> bool {
        self.placement == other.placement
    }
}

impl Eq for PartitionMap {}

impl fmt::Display for PartitionMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.placement)
    }
}

impl FromStr for PartitionMap {
    type Err = PartitionMapError;

    /// Parses a placement, `N` or `N:overrides`.
    fn from_str(placement: &str) -> Result<Self, Self::Err> {
        let (total, spec) = placement.split_once(':').unwrap_or((placement, ""));
        let total = total
            .trim()
            .parse::<u32>()
            .map_err(|source| PartitionMapError::BadCount {
                text: total.to_owned(),
                source,
            })?;
        Self::parse(total, spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use PartitionMapError as E;

    #[test]
    fn routing_key_joins_tenant_and_property() {
        assert_eq!(routing_key("acme", "lisbon-1"), "acme/lisbon-1");
    }

    // The expected partitions in the next two tests come from the same JDK harness as the
    // high-byte vectors in `crate::hash` (Kafka's `BuiltInPartitioner.partitionForKey`, copied
    // verbatim, run on the routing keys): Java says "acme/p1" -> 4 of 12 and 0 of 4,
    // "acme/p2" -> 6 of 12 and 2 of 4, "acme/hotel-42" -> 3 of 12 and 3 of 4,
    // "globex/p1" -> 2 of 12 and 0 of 2, "initech/lisbon-01" -> 8 of 12.

    #[test]
    fn without_overrides_places_like_a_kafka_client() {
        let map = PartitionMap::parse(12, "").unwrap();
        assert_eq!(map.partitions(), 12);
        assert!(map.overrides().is_empty());
        assert_eq!(map.partition("acme", "p1"), 4);
        assert_eq!(map.partition("acme", "p2"), 6);
        assert_eq!(map.partition("acme", "hotel-42"), 3);
        assert_eq!(map.partition("globex", "p1"), 2);
        assert_eq!(map.partition("initech", "lisbon-01"), 8);
    }

    #[test]
    fn overridden_tenants_hash_within_their_range() {
        let map = PartitionMap::parse(12, "acme=0..4,globex=4..6").unwrap();
        assert_eq!(map.partition("acme", "p1"), 0);
        assert_eq!(map.partition("acme", "p2"), 2);
        assert_eq!(map.partition("acme", "hotel-42"), 3);
        assert_eq!(map.partition("globex", "p1"), 4);
        // Tenants without an override are untouched by the others' overrides.
        assert_eq!(map.partition("initech", "lisbon-01"), 8);

        let shifted = PartitionMap::parse(12, "acme=4..8").unwrap();
        assert_eq!(shifted.partition("acme", "p1"), 4);
        assert_eq!(shifted.partition("acme", "p2"), 6);
        assert_eq!(shifted.partition("acme", "hotel-42"), 7);
    }

    #[test]
    fn parse_ignores_whitespace_and_prints_canonically() {
        let overrides: Overrides = " acme = 0 .. 4 ,globex=4..6 ".parse().unwrap();
        assert_eq!(overrides.to_string(), "acme=0..4,globex=4..6");
        let tenants: Vec<_> = overrides
            .iter()
            .map(|o| (o.tenant(), o.partitions()))
            .collect();
        assert_eq!(tenants, [("acme", 0..4), ("globex", 4..6)]);
        assert_eq!("".parse::<Overrides>().unwrap(), Overrides::default());
        assert_eq!("  ".parse::<Overrides>().unwrap(), Overrides::default());
    }

    /// Messages follow the house style: lowercase, no trailing period.
    fn assert_house_style(error: &PartitionMapError) {
        let message = error.to_string();
        assert!(message.starts_with(char::is_lowercase), "{message}");
        assert!(!message.ends_with('.'), "{message}");
    }

    #[test]
    fn parse_rejects_garbage_naming_the_entry() {
        let cases = [
            ("acme", "Malformed"),
            ("acme=4", "Malformed"),
            ("acme=", "Malformed"),
            ("acme=0-4", "Malformed"),
            ("=0..4", "InvalidTenant"),
            ("acme corp=0..4", "InvalidTenant"),
            ("acme/x=0..4", "InvalidTenant"),
            ("acme:x=1..2", "InvalidTenant"),
            ("acme=a..4", "BadBound"),
            ("acme=-1..4", "BadBound"),
            ("acme=..4", "BadBound"),
            ("acme=0..4..6", "BadBound"),
            ("acme=0..=4", "BadBound"),
            ("acme=0..99999999999", "BadBound"),
            ("acme=4..4", "EmptyRange"),
            ("acme=5..4", "EmptyRange"),
        ];
        for (spec, variant) in cases {
            let error = spec.parse::<Overrides>().unwrap_err();
            assert!(
                format!("{error:?}").starts_with(variant),
                "{spec:?}: {error:?}"
            );
            assert!(error.to_string().contains(spec), "{error}");
            assert_house_style(&error);
        }

        // A bad entry among good ones is still found, and named by its position when it
        // has no text of its own.
        let cases = [
            ("acme=0..4,", E::EmptyEntry { position: 2 }),
            (",acme=0..4", E::EmptyEntry { position: 1 }),
            ("a=0..4,,b=1..2", E::EmptyEntry { position: 2 }),
            ("a=0..4,a=4..6", E::DuplicateTenant { tenant: "a".into() }),
        ];
        for (spec, expected) in cases {
            assert_house_style(&expected);
            assert_eq!(spec.parse::<Overrides>(), Err(expected), "{spec:?}");
        }
    }

    #[test]
    fn construction_checks_the_topic() {
        let mut cases = vec![
            (0, "", E::NoPartitions),
            (u32::MAX, "", E::TooManyPartitions { total: u32::MAX }),
            // A spec error surfaces unchanged.
            (
                12,
                "a=9..1",
                E::EmptyRange {
                    entry: "a=9..1".into(),
                },
            ),
        ];
        for spec in ["acme=8..13", "acme=12..13", "a=0..4,acme=0..99"] {
            let entry = spec.rsplit(',').next().unwrap().into();
            cases.push((12, spec, E::OutOfRange { entry, total: 12 }));
        }
        for (total, spec, expected) in cases {
            assert_house_style(&expected);
            assert_eq!(PartitionMap::parse(total, spec).unwrap_err(), expected);
        }
        // The largest Kafka topic and the last partition are usable, and overlapping
        // overrides are allowed.
        assert!(PartitionMap::parse(MAX_PARTITIONS, "").is_ok());
        assert!(PartitionMap::parse(12, "acme=8..12").is_ok());
        assert!(PartitionMap::parse(12, "acme=0..4,globex=2..6").is_ok());
    }

    /// Tenants with overrides start with a-m and tenants without start with n-z, so a test can
    /// pick a tenant that is certainly not overridden.
    const PINNED_TENANT: &str = "[a-m][a-z0-9_.-]{0,7}";
    const FREE_TENANT: &str = "[n-z][a-z0-9_.-]{0,7}";
    const PROPERTY: &str = "[A-Za-z0-9_.-]{1,16}";

    /// A topic of 1 to 64 partitions with up to four overrides that fit it.
    fn map_strategy() -> impl Strategy<Value = PartitionMap> {
        (1..=64u32).prop_flat_map(|total| {
            proptest::collection::btree_map(PINNED_TENANT, (any::<u32>(), any::<u32>()), 0..=4)
                .prop_map(move |tenants| {
                    let overrides = tenants.into_iter().map(|(tenant, (a, b))| {
                        let start = a % total;
                        let count = 1 + b % (total - start);
                        TenantOverride::new(tenant, start..start + count).unwrap()
                    });
                    PartitionMap::new(total, Overrides::new(overrides).unwrap()).unwrap()
                })
        })
    }

    proptest! {
        #[test]
        fn partition_is_below_the_total(
            map in map_strategy(),
            tenant in prop_oneof![PINNED_TENANT, FREE_TENANT],
            property in PROPERTY,
        ) {
            prop_assert!(map.partition(&tenant, &property) < map.partitions());
        }

        #[test]
        fn overridden_tenants_stay_in_their_range(
            map in map_strategy(),
            properties in proptest::collection::vec(PROPERTY, 1..8),
        ) {
            for pinned in map.overrides().iter() {
                let range = pinned.partitions();
                let count = NonZeroU32::new(range.end - range.start).unwrap();
                for property in &properties {
                    let partition = map.partition(pinned.tenant(), property);
                    prop_assert!(range.contains(&partition));
                    let key = routing_key(pinned.tenant(), property);
                    prop_assert_eq!(
                        partition,
                        range.start + partition_for_key(key.as_bytes(), count)
                    );
                }
            }
        }

        #[test]
        fn other_tenants_use_plain_kafka_hashing(
            map in map_strategy(),
            tenant in FREE_TENANT,
            property in PROPERTY,
        ) {
            let key = routing_key(&tenant, &property);
            let total = NonZeroU32::new(map.partitions()).unwrap();
            prop_assert_eq!(
                map.partition(&tenant, &property),
                partition_for_key(key.as_bytes(), total)
            );
        }

        /// A map rebuilt from its printed spec, as another process would build it from the same
        /// configuration, sends every property to the same partition as the original.
        #[test]
        fn placement_is_deterministic_across_rebuilds(
            map in map_strategy(),
            tenant in prop_oneof![PINNED_TENANT, FREE_TENANT],
            properties in proptest::collection::vec(PROPERTY, 1..8),
        ) {
            let spec = map.overrides().to_string();
            let rebuilt = PartitionMap::parse(map.partitions(), &spec).unwrap();
            let pinned = map.overrides().iter().map(TenantOverride::tenant);
            for tenant in pinned.chain([tenant.as_str()]) {
                for property in &properties {
                    let first = map.partition(tenant, property);
                    prop_assert_eq!(first, map.partition(tenant, property));
                    prop_assert_eq!(first, rebuilt.partition(tenant, property));
                }
            }
        }

        #[test]
        fn overrides_round_trip_through_their_spec(map in map_strategy()) {
            let spec = map.overrides().to_string();
            prop_assert_eq!(&spec.parse::<Overrides>().unwrap(), map.overrides());
        }

        /// Arbitrary text never panics the parser, and whatever it accepts prints back to a
        /// spec that parses to the same overrides.
        #[test]
        fn parse_is_total_and_accepted_specs_round_trip(
            spec in prop_oneof!["[a-c=.,0-9 ]{0,24}", any::<String>()],
        ) {
            if let Ok(overrides) = spec.parse::<Overrides>() {
                prop_assert_eq!(overrides.to_string().parse::<Overrides>(), Ok(overrides));
            }
        }

        #[test]
        fn empty_and_reversed_ranges_are_rejected(
            tenant in PINNED_TENANT,
            start in any::<u32>(),
            below in any::<u32>(),
        ) {
            // Any end in `0..=start`; computed in u64 so that `start + 1` cannot overflow.
            let end = (u64::from(below) % (u64::from(start) + 1)) as u32;
            let spec = format!("{tenant}={start}..{end}");
            prop_assert_eq!(spec.parse::<Overrides>(), Err(E::EmptyRange { entry: spec.clone() }));
        }

        #[test]
        fn ranges_past_the_end_are_rejected(
            tenant in PINNED_TENANT,
            total in 1..=64u32,
            start in 0..64u32,
            past in 1..64u32,
        ) {
            // Past the topic's end and past the start, so only the bounds check can fail.
            let end = total.max(start) + past;
            let spec = format!("{tenant}={start}..{end}");
            prop_assert_eq!(
                PartitionMap::parse(total, &spec).unwrap_err(),
                E::OutOfRange { entry: spec.clone(), total }
            );
        }
    }

    #[test]
    fn a_placement_prints_canonically_and_parses_back() {
        let plain = PartitionMap::parse(12, "").unwrap();
        assert_eq!(plain.placement(), "12");
        let pinned = PartitionMap::parse(12, " globex=4..6, acme=0..4").unwrap();
        assert_eq!(pinned.to_string(), "12:acme=0..4,globex=4..6");
        // The same overrides in another order place every property alike.
        assert_eq!(
            pinned,
            PartitionMap::parse(12, "acme=0..4,globex=4..6").unwrap()
        );
        assert_ne!(pinned, plain);
        for map in [plain, pinned] {
            assert_eq!(map.placement().parse::<PartitionMap>().unwrap(), map);
        }
        assert!(matches!(
            "twelve".parse::<PartitionMap>(),
            Err(E::BadCount { .. })
        ));
        assert!(matches!(
            "4:acme=0..8".parse::<PartitionMap>(),
            Err(E::OutOfRange { .. })
        ));
    }
}
