//! Creating and checking the pipeline's topics, on any Kafka-protocol broker.
//!
//! Uses the Kafka admin API (CreateTopics, Metadata, DescribeConfigs) rather than a
//! broker's own tooling, so the same command works on Apache Kafka, Redpanda or any other
//! Kafka-protocol broker. It never alters or deletes an existing topic: a topic whose partition count
//! differs is an error (the count decides where each property's events go), and a setting
//! that differs is reported with the change an operator should make.

use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigResource, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use tracing::{info, warn};

use crate::config::{Config, TopicsArgs};

const HOUR_MS: u64 = 3_600_000;
/// How long a created topic may take to show in every broker's metadata.
const VISIBLE_WITHIN: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    #[error("kafka admin request failed: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("could not create topic {topic}: {code}")]
    Create {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("could not describe topic {topic}: {code}")]
    Describe {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("topic {topic} is missing")]
    Missing { topic: String },
    #[error("topic {topic} has {actual} partitions, expected {expected}")]
    PartitionMismatch {
        topic: String,
        actual: usize,
        expected: i32,
    },
    #[error(
        "topic {topic} has {setting}={actual}, expected {expected} \
         (change it with the broker's tools, e.g. kafka-configs --alter)"
    )]
    SettingMismatch {
        topic: String,
        setting: &'static str,
        actual: String,
        expected: String,
    },
}

/// What a topic should look like.
#[derive(Clone, Debug)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication: i32,
    /// Topic-level settings, set at creation and checked afterwards.
    pub settings: Vec<(&'static str, String)>,
}

/// The pipeline's four topics. None is compacted: `bookings` is keyed by property, so
/// compaction would keep one event per property and destroy the log the consumers apply;
/// decisions, replies and dead letters are per-event records whose readers need every
/// one. Time-based retention bounds them instead; replies matter for seconds, and dead
/// letters are kept longer, since they wait for a fix and a replay.
pub fn pipeline_topics(config: &Config, args: &TopicsArgs) -> Vec<TopicSpec> {
    let min_insync = args
        .min_insync_replicas
        .unwrap_or((args.replication - 1).max(1));
    let spec = |name: &str, partitions: i32, retention_hours: u64| TopicSpec {
        name: name.to_owned(),
        partitions,
        replication: args.replication,
        settings: vec![
            ("cleanup.policy", "delete".to_owned()),
            ("retention.ms", (retention_hours * HOUR_MS).to_string()),
            // With acks=all, a write is acknowledged once this many replicas have it: the
            // producer's durability guarantee is only as strong as this setting.
            ("min.insync.replicas", min_insync.to_string()),
        ],
    };
    vec![
        spec(
            &config.bookings_topic,
            args.bookings_partitions,
            args.bookings_retention_hours,
        ),
        spec(
            &config.decisions_topic,
            args.aux_partitions,
            args.decisions_retention_hours,
        ),
        spec(
            &config.replies_topic,
            args.replies_partitions,
            args.replies_retention_hours,
        ),
        spec(
            &config.dlq_topic,
            args.aux_partitions,
            args.dlq_retention_hours,
        ),
        spec(
            &config.webhook_dlq_topic,
            args.aux_partitions,
            args.dlq_retention_hours,
        ),
    ]
}

/// Creates the pipeline's topics if missing (unless `args.check_only`), then checks the
/// partition count and settings of each, printing one line per topic.
pub async fn ensure(config: &Config, args: &TopicsArgs) -> Result<(), TopicsError> {
    let specs = pipeline_topics(config, args);
    let admin = admin_client(&config.kafka_brokers)?;
    if !args.check_only {
        create_missing(&admin, &specs).await?;
    }
    for spec in &specs {
        check(&admin, spec).await?;
    }
    Ok(())
}

/// Creates topics with broker-default settings if missing and checks their partition
/// counts: for tests and benchmarks, which use topics of their own.
pub async fn ensure_topics(
    brokers: &str,
    wanted: &[(&str, i32)],
    replication: i32,
) -> Result<(), TopicsError> {
    let specs: Vec<TopicSpec> = wanted
        .iter()
        .map(|(name, partitions)| TopicSpec {
            name: (*name).to_owned(),
            partitions: *partitions,
            replication,
            settings: Vec::new(),
        })
        .collect();
    let admin = admin_client(brokers)?;
    create_missing(&admin, &specs).await?;
    for spec in &specs {
        check_partitions(&admin, spec)?;
    }
    Ok(())
}

fn admin_client(brokers: &str) -> Result<AdminClient<DefaultClientContext>, TopicsError> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // Checking a topic must never create it with the broker's defaults.
        .set("allow.auto.create.topics", "false")
        .create()?)
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}

async fn create_missing(
    admin: &AdminClient<DefaultClientContext>,
    specs: &[TopicSpec],
) -> Result<(), TopicsError> {
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .map(|spec| {
            spec.settings.iter().fold(
                NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(spec.replication),
                ),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let mut created = Vec::new();
    for result in admin.create_topics(&new_topics, &options()).await? {
        match result {
            Ok(topic) => {
                info!(topic, "created topic");
                created.push(topic);
            }
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => info!(topic, "topic exists"),
            Err((topic, code)) => return Err(TopicsError::Create { topic, code }),
        }
    }
    for topic in created {
        await_visible(admin, &topic).await?;
    }
    Ok(())
}

/// Waits until a just-created topic shows in the metadata the broker answers with.
///
/// CreateTopics returns once the controller has recorded the topic; each broker learns of
/// it from the metadata log a moment later, and until then answers Metadata without it. A
/// check, a producer or a consumer group started at once would see no such topic.
async fn await_visible(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<(), TopicsError> {
    let deadline = tokio::time::Instant::now() + VISIBLE_WITHIN;
    while partition_count(admin, topic)? == 0 {
        if tokio::time::Instant::now() >= deadline {
            return Err(TopicsError::Missing {
                topic: topic.to_owned(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn check(
    admin: &AdminClient<DefaultClientContext>,
    spec: &TopicSpec,
) -> Result<(), TopicsError> {
    let partitions = check_partitions(admin, spec)?;
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic(&spec.name)], &options())
        .await?;
    let resource = match described.into_iter().next() {
        Some(Ok(resource)) => resource,
        Some(Err(code)) => {
            return Err(TopicsError::Describe {
                topic: spec.name.clone(),
                code,
            })
        }
        None => ConfigResource {
            specifier: rdkafka::admin::OwnedResourceSpecifier::Topic(spec.name.clone()),
            entries: Vec::new(),
        },
    };
    let mut shown = Vec::with_capacity(spec.settings.len());
    let mut defaulted = Vec::new();
    for (setting, expected) in &spec.settings {
        match resource
            .get(setting)
            .and_then(|entry| entry.value.as_deref())
        {
            Some(actual) if actual == expected => shown.push(format!("{setting}={actual}")),
            Some(actual) => {
                return Err(TopicsError::SettingMismatch {
                    topic: spec.name.clone(),
                    setting,
                    actual: actual.to_owned(),
                    expected: expected.clone(),
                })
            }
            // Some brokers describe only settings given explicitly; a topic created
            // before a setting was managed then runs on the broker's default.
            None => {
                defaulted.push(*setting);
                shown.push(format!("{setting}=(broker default)"));
            }
        }
    }
    if !defaulted.is_empty() {
        warn!(topic = %spec.name, settings = ?defaulted,
            "the broker reports no value for these settings: its defaults apply");
    }
    println!(
        "{:<24} partitions={:<3} {}",
        spec.name,
        partitions,
        shown.join(" ")
    );
    Ok(())
}

fn check_partitions(
    admin: &AdminClient<DefaultClientContext>,
    spec: &TopicSpec,
) -> Result<usize, TopicsError> {
    let actual = partition_count(admin, &spec.name)?;
    if actual == 0 {
        return Err(TopicsError::Missing {
            topic: spec.name.clone(),
        });
    }
    if actual != spec.partitions as usize {
        return Err(TopicsError::PartitionMismatch {
            topic: spec.name.clone(),
            actual,
            expected: spec.partitions,
        });
    }
    Ok(actual)
}

fn partition_count(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<usize, TopicsError> {
    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len()))
}
