//! An Apache Kafka node owned by one test, on ports of its own with its data in a temporary
//! directory, so the test may kill it and start it again on the same data (the shared
//! stack's broker must never be stopped). It runs through `infra/kafka.sh run-node`, from
//! the same cached jars as the stack (`infra/stack.sh up` resolves them). The process is
//! killed when the handle drops, even if an assertion fails.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

use super::process::free_port;

pub struct OwnKafka {
    pub port: u16,
    controller_port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnKafka {
    /// Reserves a port and a data directory without starting the broker yet.
    pub fn reserve() -> OwnKafka {
        OwnKafka {
            port: free_port(),
            controller_port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        }
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts (or restarts, on the same data) the broker and waits until it answers a
    /// metadata request.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("kafka.log"))
            .unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/kafka.sh");
        // The script execs the JVM, so the child is the broker itself and kill() is a crash.
        let child = Command::new("bash")
            .arg(script)
            .arg("run-node")
            .arg(self.dir.path().join("node"))
            .args([self.port.to_string(), self.controller_port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {script} ({e})"));
        self.child = Some(child);
        let brokers = self.brokers();
        let answered = tokio::task::spawn_blocking(move || {
            let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .create()
                .expect("admin client");
            (0..120).any(|_| {
                let answered = admin
                    .inner()
                    .fetch_metadata(None, Duration::from_millis(500))
                    .is_ok();
                if !answered {
                    std::thread::sleep(Duration::from_millis(250));
                }
                answered
            })
        })
        .await
        .unwrap();
        assert!(
            answered,
            "own Kafka on port {} never answered; log in {}",
            self.port,
            self.dir.path().display()
        );
    }

    /// Kills the broker (no clean shutdown, as in a crash) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnKafka {
    fn drop(&mut self) {
        self.kill();
    }
}
