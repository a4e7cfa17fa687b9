//! How every part of the pipeline reaches Redis: one node, or a Redis Cluster, chosen by
//! the Redis URL setting alone. One URL (`redis://127.0.0.1:6379/`) is a single node; two
//! or more comma-separated URLs are seed nodes of a cluster
//! (`redis://10.0.0.1:6379,redis://10.0.0.2:6379`): the client learns the rest of the
//! cluster from them, follows `MOVED`/`ASK` redirects and a replica's promotion, and sends
//! each command to the master of its key's hash slot.
//!
//! Commands of the pipeline each touch one key, or keys that share a hash tag, so they run
//! unchanged on either. Every command has a hard deadline ([`Limits::deadline`], see
//! [`connection`]). Behind the `redis-client` feature, like [`crate::admin`].

mod connection;

pub use connection::{describe_metrics, RedisConnection};
use connection::{within, Client};

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::{Cmd, FromRedisValue, IntoConnectionInfo, RedisError};

/// Where Redis is: parsed from the Redis URL setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    Node(String),
    /// Seed nodes of a cluster.
    Cluster(Vec<String>),
}

impl FromStr for RedisTarget {
    type Err = RedisError;

    /// Checks every URL; contacts nothing.
    fn from_str(setting: &str) -> Result<RedisTarget, RedisError> {
        let urls: Vec<String> = setting
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect();
        for url in &urls {
            url.as_str().into_connection_info()?;
        }
        match <[String; 1]>::try_from(urls) {
            Ok([url]) => Ok(RedisTarget::Node(url)),
            Err(urls) if urls.is_empty() => Err(RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "the Redis URL setting is empty",
            ))),
            Err(urls) => Ok(RedisTarget::Cluster(urls)),
        }
    }
}

impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisTarget::Node(url) => write!(f, "{url}"),
            RedisTarget::Cluster(seeds) => write!(f, "cluster {}", seeds.join(",")),
        }
    }
}

/// How long a connection attempt and an answer may take, how many times the client
/// itself reconnects before a command fails, and the deadline of a command in all.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub connect: Duration,
    pub response: Duration,
    pub retries: usize,
    /// The longest a command may take, its retries included: past it the command fails,
    /// and the client is replaced, whatever it is still waiting for.
    pub deadline: Duration,
}

impl RedisTarget {
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisTarget::Cluster(_))
    }

    /// A connection that is made on the first command, so a process starts while Redis is
    /// away; it reconnects by itself afterwards.
    pub fn lazy(&self, limits: Limits) -> Result<RedisConnection, RedisError> {
        Ok(self.connection(self.lazy_client(limits)?, limits))
    }

    /// A connection made now: fails if Redis cannot be reached.
    pub async fn connect(&self, limits: Limits) -> Result<RedisConnection, RedisError> {
        let connecting = async {
            Ok(match self {
                RedisTarget::Node(url) => {
                    let client = redis::Client::open(url.as_str())?;
                    Client::Node(
                        ConnectionManager::new_with_config(client, node_config(limits)).await?,
                    )
                }
                RedisTarget::Cluster(seeds) => Client::Cluster(
                    cluster_client(seeds, limits)?
                        .get_async_connection_with_config(cluster_config(limits))
                        .await?,
                ),
            })
        };
        let client = within(limits.deadline, connecting).await?;
        Ok(self.connection(client, limits))
    }

    /// `client` under `limits`, replaced by a lazy one of this target when it stops
    /// answering.
    fn connection(&self, client: Client, limits: Limits) -> RedisConnection {
        let target = self.clone();
        let new_client = Box::new(move || target.lazy_client(limits));
        RedisConnection::new(self.to_string(), client, limits.deadline, new_client)
    }

    fn lazy_client(&self, limits: Limits) -> Result<Client, RedisError> {
        Ok(match self {
            RedisTarget::Node(url) => {
                let client = redis::Client::open(url.as_str())?;
                Client::Node(ConnectionManager::new_lazy_with_config(
                    client,
                    node_config(limits),
                )?)
            }
            RedisTarget::Cluster(seeds) => Client::Cluster(
                cluster_client(seeds, limits)?
                    .get_pending_async_connection_with_config(cluster_config(limits)),
            ),
        })
    }
}

fn node_config(limits: Limits) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(limits.connect))
        .set_response_timeout(Some(limits.response))
        .set_number_of_retries(limits.retries)
        .set_max_delay(limits.connect)
}

fn cluster_client(seeds: &[String], limits: Limits) -> Result<ClusterClient, RedisError> {
    ClusterClient::builder(seeds.iter().map(String::as_str))
        .retries(limits.retries as u32)
        .build()
}

fn cluster_config(limits: Limits) -> ClusterConfig {
    ClusterConfig::new()
        .set_connection_timeout(limits.connect)
        .set_response_timeout(limits.response)
}

/// Runs `commands`, each on keys of one slot, up to `in_flight` at once on the shared
/// connection, and returns their answers in order: what a pipeline does on one node, for
/// keys in any slots of a cluster.
pub async fn query_each<T: FromRedisValue>(
    redis: &RedisConnection,
    commands: impl IntoIterator<Item = Cmd>,
    in_flight: usize,
) -> Result<Vec<T>, RedisError> {
    futures::stream::iter(commands)
        .map(|command| {
            let mut redis = redis.clone();
            async move { command.query_async::<T>(&mut redis).await }
        })
        .buffered(in_flight.max(1))
        .try_collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_a_node_and_several_are_a_cluster() {
        assert_eq!(
            "redis://127.0.0.1:6379/".parse::<RedisTarget>().unwrap(),
            RedisTarget::Node("redis://127.0.0.1:6379/".into())
        );
        let cluster: RedisTarget = "redis://127.0.0.1:7001, redis://127.0.0.1:7002,"
            .parse()
            .unwrap();
        assert_eq!(
            cluster,
            RedisTarget::Cluster(vec![
                "redis://127.0.0.1:7001".into(),
                "redis://127.0.0.1:7002".into()
            ])
        );
        assert!(cluster.is_cluster());
        assert!("".parse::<RedisTarget>().is_err());
        assert!("redis://127.0.0.1:7001,not a url"
            .parse::<RedisTarget>()
            .is_err());
    }
}
