//! The connection every part of the pipeline holds: the `redis` crate's client for a node
//! or a cluster, every command under a hard deadline, and the client replaced by a new one
//! when it has stopped answering.
//!
//! After a cluster's master and its replica were both gone, the crate's cluster client
//! (1.8.1) was seen leaving every later command waiting, for good, although the nodes were
//! back; a new client answered at once. So a command that misses its deadline fails, and
//! once no command has had an answer for [`SILENCE_BEFORE_REPLACING`] the client is
//! replaced (a busy process whose commands miss the deadline now and then keeps its own).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

/// Makes a new client that connects on its first command.
pub(super) type NewClient = Box<dyn Fn() -> Result<Client, RedisError> + Send + Sync>;

/// `future`, or an I/O error once `deadline` has passed.
pub(super) async fn within<T>(
    deadline: Duration,
    future: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    tokio::time::timeout(deadline, future)
        .await
        .unwrap_or_else(|_| Err(missed(deadline)))
}

fn missed(deadline: Duration) -> RedisError {
    RedisError::from((
        redis::ErrorKind::Io,
        "timed out",
        format!("no answer from Redis within the deadline of {deadline:?}"),
    ))
}

#[derive(Clone)]
pub(super) enum Client {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Client {
    fn get_db(&self) -> i64 {
        match self {
            Client::Node(connection) => connection.get_db(),
            Client::Cluster(connection) => connection.get_db(),
        }
    }
}

/// A connection to either kind of Redis; cheap to clone (clones share it), and usable
/// wherever the `redis` crate takes a connection (commands, pipelines, scripts).
#[derive(Clone)]
pub struct RedisConnection {
    shared: Arc<Shared>,
}

struct Shared {
    /// Where Redis is, for the log.
    target: String,
    deadline: Duration,
    new_client: NewClient,
    /// The client in use, and how many clients were replaced before it, so that of
    /// several commands missing their deadline on one client only the first replaces it.
    client: RwLock<(u64, Client)>,
    /// When a command last had an answer (a value or an error from Redis), in
    /// milliseconds since `epoch`.
    answered_ms: AtomicU64,
    epoch: Instant,
    /// When a replacement was last logged: while Redis blackholes commands, a client is
    /// replaced every second or so, and one line per [`REPLACEMENTS_LOGGED_EVERY`] says so.
    logged: Mutex<Option<Instant>>,
}

/// Round trips to Redis: commands, or pipelines of commands, sent by this process (a
/// script's own commands run inside Redis and are not counted).
pub const ROUND_TRIPS_TOTAL: &str = "redis_round_trips_total";
/// Clients replaced after they stopped answering.
pub const CLIENTS_REPLACED_TOTAL: &str = "redis_clients_replaced_total";

/// Describes this module's metrics, for the binaries' Prometheus recorders.
pub fn describe_metrics() {
    metrics::describe_counter!(
        ROUND_TRIPS_TOTAL,
        "Round trips to Redis (commands or pipelines sent; a script counts once)"
    );
    metrics::describe_counter!(
        CLIENTS_REPLACED_TOTAL,
        "Redis clients replaced after a command missed its deadline and none had answered for a second"
    );
}

const REPLACEMENTS_LOGGED_EVERY: Duration = Duration::from_secs(10);
/// How long no command may have had an answer before a missed deadline replaces the client.
const SILENCE_BEFORE_REPLACING: Duration = Duration::from_secs(1);

impl RedisConnection {
    pub(super) fn new(
        target: String,
        client: Client,
        deadline: Duration,
        new_client: NewClient,
    ) -> RedisConnection {
        RedisConnection {
            shared: Arc::new(Shared {
                target,
                deadline,
                new_client,
                client: RwLock::new((0, client)),
                answered_ms: AtomicU64::new(0),
                epoch: Instant::now(),
                logged: Mutex::new(None),
            }),
        }
    }

    fn current(&self) -> (u64, Client) {
        self.shared
            .client
            .read()
            .expect("redis client lock poisoned")
            .clone()
    }

    /// Replaces client `generation`, which let a command miss its deadline, by a new one
    /// that connects on its next command.
    fn replace(&self, generation: u64) {
        let fresh = match (self.shared.new_client)() {
            Ok(fresh) => fresh,
            // The target was checked when this connection was made: cannot happen.
            Err(error) => return tracing::error!(%error, "cannot make a new redis client"),
        };
        {
            let mut client = self
                .shared
                .client
                .write()
                .expect("redis client lock poisoned");
            if client.0 != generation {
                return;
            }
            *client = (generation + 1, fresh);
        }
        metrics::counter!(CLIENTS_REPLACED_TOTAL).increment(1);
        let mut logged = self.shared.logged.lock().expect("redis log lock poisoned");
        if logged.is_none_or(|at| at.elapsed() >= REPLACEMENTS_LOGGED_EVERY) {
            *logged = Some(Instant::now());
            tracing::warn!(
                target = %self.shared.target,
                deadline = ?self.shared.deadline,
                replaced = generation + 1,
                "a redis command missed its deadline: reconnecting with a new client"
            );
        }
    }

    /// Runs `request` on the current client within the deadline, replacing the client
    /// when it is missed and no command has had an answer for [`SILENCE_BEFORE_REPLACING`]
    /// (a busy process whose commands miss the deadline now and then keeps its client).
    fn bounded<'a, T: Send + 'a>(
        &'a self,
        request: impl FnOnce(Client) -> RedisFuture<'a, T> + Send + 'a,
    ) -> RedisFuture<'a, T> {
        let (generation, client) = self.current();
        let deadline = self.shared.deadline;
        metrics::counter!(ROUND_TRIPS_TOTAL).increment(1);
        Box::pin(async move {
            let answer = tokio::time::timeout(deadline, request(client)).await;
            let shared = &self.shared;
            let now_ms = shared.epoch.elapsed().as_millis() as u64;
            match answer {
                // An error from Redis (refused, MOVED, ...) is an answer too: the client works.
                Ok(answer) => {
                    shared.answered_ms.store(now_ms, Ordering::Relaxed);
                    answer
                }
                Err(_) => {
                    let silent_ms =
                        now_ms.saturating_sub(shared.answered_ms.load(Ordering::Relaxed));
                    if silent_ms >= SILENCE_BEFORE_REPLACING.as_millis() as u64 {
                        self.replace(generation);
                    }
                    Err(missed(deadline))
                }
            }
        })
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.bounded(move |client| {
            Box::pin(async move {
                match client {
                    Client::Node(mut connection) => connection.req_packed_command(cmd).await,
                    Client::Cluster(mut connection) => connection.req_packed_command(cmd).await,
                }
            })
        })
    }

    /// On a cluster, every command of the pipeline must be for one hash slot.
    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.bounded(move |client| {
            Box::pin(async move {
                match client {
                    Client::Node(mut connection) => {
                        connection
                            .req_packed_commands(pipeline, offset, count)
                            .await
                    }
                    Client::Cluster(mut connection) => {
                        connection
                            .req_packed_commands(pipeline, offset, count)
                            .await
                    }
                }
            })
        })
    }

    fn get_db(&self) -> i64 {
        self.current().1.get_db()
    }
}
