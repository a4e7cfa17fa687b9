//! Redis for tests: a client for the shared stack's Redis, and a private `redis-server`
//! a test may stop and restart at will (the shared one must never be stopped).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use partitioner::redis_target::{Limits, RedisConnection, RedisTarget};

/// A connection to the Redis at `url` (a node, or a cluster's seeds), failing the test with
/// the command that starts the local stack when there is none.
pub async fn connect(url: &str) -> RedisConnection {
    let target: RedisTarget = url.parse().expect("redis url");
    let limits = Limits {
        connect: Duration::from_secs(2),
        response: Duration::from_secs(5),
        retries: 1,
        deadline: Duration::from_secs(10),
    };
    match target.connect(limits).await {
        Ok(connection) => connection,
        Err(error) => panic!(
            "Redis at {url} unreachable ({error}). Start the local stack with \
             `infra/stack.sh up`, or point REDIS_URL at a running Redis."
        ),
    }
}

/// A `redis-server` owned by one test, on a port of its own, with no persistence: a
/// restart comes back empty, as a Redis that lost its data would.
pub struct OwnRedis {
    pub port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    /// Reserves a free port without starting the server yet.
    pub fn reserve() -> OwnRedis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        OwnRedis { port, child: None }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts (or restarts) the server and waits until it answers PING.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); install Debian's redis-server")
            });
        self.child = Some(child);
        let client = redis::Client::open(self.url()).unwrap();
        for _ in 0..100 {
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await {
                let pong: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut connection).await;
                if pong.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("own redis-server on port {} never answered", self.port);
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers, as with
    /// a Redis that hangs or a network that blackholes packets.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("not running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    /// Kills the server and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
