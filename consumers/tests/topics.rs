//! `consumer ensure-topics` against the running broker (`infra/stack.sh up`): topics are
//! created with their partition counts and settings, and `--check-only` reports a missing
//! topic or a setting that differs without changing anything.

mod support;

use std::process::{Command, Output};

use support::brokers;
use uuid::Uuid;

/// Runs `consumer ensure-topics` on the three topics named after `prefix`.
fn ensure_topics(prefix: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_consumer"))
        .arg("ensure-topics")
        .args(extra)
        .env("CONSUMER_KAFKA_BROKERS", brokers())
        .env("CONSUMER_BOOKINGS_TOPIC", format!("{prefix}-bookings"))
        .env("CONSUMER_DECISIONS_TOPIC", format!("{prefix}-decisions"))
        .env("CONSUMER_DLQ_TOPIC", format!("{prefix}-dlq"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("running the consumer binary")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn topics_are_created_with_their_settings_and_then_checked() {
    let prefix = format!("topics-{}", Uuid::new_v4().simple());

    let missing = ensure_topics(&prefix, &["--check-only"]);
    assert!(!missing.status.success(), "{}", text(&missing));
    assert!(text(&missing).contains("is missing"), "{}", text(&missing));

    let created = ensure_topics(&prefix, &["--bookings-partitions", "4"]);
    assert!(created.status.success(), "{}", text(&created));
    let report = text(&created);
    for line in [
        format!("{prefix}-bookings"),
        "partitions=4".to_owned(),
        "retention.ms=604800000".to_owned(),
        "retention.ms=2592000000".to_owned(),
        "cleanup.policy=delete".to_owned(),
        "min.insync.replicas=1".to_owned(),
    ] {
        assert!(report.contains(&line), "no {line:?} in:\n{report}");
    }

    let checked = ensure_topics(&prefix, &["--check-only", "--bookings-partitions", "4"]);
    assert!(checked.status.success(), "{}", text(&checked));

    let other_partitions = ensure_topics(&prefix, &["--check-only"]);
    assert!(!other_partitions.status.success());
    assert!(
        text(&other_partitions).contains("has 4 partitions, expected 12"),
        "{}",
        text(&other_partitions)
    );

    let other_retention = ensure_topics(
        &prefix,
        &["--bookings-partitions", "4", "--dlq-retention-hours", "1"],
    );
    assert!(!other_retention.status.success());
    assert!(
        text(&other_retention).contains("retention.ms=2592000000, expected 3600000"),
        "{}",
        text(&other_retention)
    );
}
