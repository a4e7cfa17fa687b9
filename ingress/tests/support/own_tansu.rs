//! A tansu broker owned by one test, on a port of its own with its data in a temporary
//! directory, so the test may kill it and start it again on the same data (the shared
//! stack's broker must never be stopped). `tansu` must be on PATH (`infra/stack.sh up`
//! installs it). The process is killed when the handle drops, even if an assertion fails.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

use super::process::free_port;

pub struct OwnTansu {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnTansu {
    /// Reserves a port and a data directory without starting the broker yet.
    pub fn reserve() -> OwnTansu {
        OwnTansu {
            port: free_port(),
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
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .unwrap();
        // tansu resolves the SQLite path against its working directory, as in stack.sh.
        let child = Command::new("tansu")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run tansu ({e}); `infra/stack.sh up` installs it"));
        self.child = Some(child);
        let brokers = self.brokers();
        let answered = tokio::task::spawn_blocking(move || {
            let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .create()
                .expect("admin client");
            (0..60).any(|_| {
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
        assert!(answered, "own tansu on port {} never answered", self.port);
    }

    /// Kills the broker (no clean shutdown, as in a crash) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnTansu {
    fn drop(&mut self) {
        self.kill();
    }
}
