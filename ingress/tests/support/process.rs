//! The real `ingress` binary as a child process, for what only a process can show:
//! signals (SIGHUP reloads) and surviving a broker that goes away and comes back.
//!
//! The child is killed when the handle drops, so a failed assertion never leaves it
//! running. Its output goes to a log file whose tail is printed when startup fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{get, Call, Reply};

/// A port nobody listens on right now. The kernel may hand it out again before the child
/// binds it, which on a test machine is rare enough to accept.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct IngressProcess {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl IngressProcess {
    /// Starts `ingress` with the given partners file, brokers and topic (plus `extra`
    /// flags) and waits until `/readyz` answers 200.
    pub async fn start(partners: &Path, brokers: &str, topic: &str, extra: &[&str]) -> Self {
        let mut process = IngressProcess::spawn(partners, brokers, topic, extra);
        process.wait_ready().await;
        process
    }

    pub fn spawn(partners: &Path, brokers: &str, topic: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("ingress.log");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let output = std::fs::File::create(&log).unwrap();
        let mut args = vec![
            format!("--listen={addr}"),
            format!("--admin-listen={admin}"),
            format!("--partners-file={}", partners.display()),
            format!("--kafka-brokers={brokers}"),
            format!("--bookings-topic={topic}"),
            format!("--redis-url={}", super::redis_url()),
            format!(
                "--idempotency-prefix=idem-test-{}",
                uuid::Uuid::new_v4().simple()
            ),
            // Generous, as in the in-process harness: these tests are about correctness.
            "--delivery-budget-ms=5000".to_owned(),
            "--redis-timeout-ms=2000".to_owned(),
            "--shutdown-grace-secs=2".to_owned(),
            // A replies group of its own unless the test shares one on purpose.
            format!(
                "--replies-group=ingress-test-{}",
                uuid::Uuid::new_v4().simple()
            ),
        ];
        // A flag given by the test replaces the default above: clap refuses repeats.
        let name = |arg: &str| arg.split('=').next().unwrap_or_default().to_owned();
        args.retain(|arg| !extra.iter().any(|e| name(e) == name(arg)));
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_ingress"))
            .args(&args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .expect("spawn the ingress binary");
        IngressProcess {
            addr,
            admin,
            child,
            log,
            _dir: dir,
        }
    }

    pub async fn wait_ready(&mut self) {
        for _ in 0..300 {
            if !self.is_running() {
                panic!("ingress exited during startup; log:\n{}", self.log_tail());
            }
            if self.readiness().await == Some(StatusCode::OK) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("ingress not ready after 15 s; log:\n{}", self.log_tail());
    }

    /// Everything the process has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Sends a signal by name (`HUP`, `TERM`) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn post(&self, path: &str) -> Call {
        Call::new(self.addr, Method::POST, path)
    }

    pub fn put(&self, path: &str) -> Call {
        Call::new(self.addr, Method::PUT, path)
    }

    pub fn get(&self, path: &str) -> Call {
        Call::new(self.addr, Method::GET, path)
    }

    /// The value of one series of the admin port's `/metrics`, e.g.
    /// `ingress_partners_reloads_total{result="ok"}`; `None` until it is recorded.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let reply = admin_get(self.admin, "/metrics").await?;
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    /// Waits (bounded) until `series` reaches `value`.
    pub async fn wait_metric(&self, series: &str, value: f64) {
        for _ in 0..200 {
            if self.metric(series).await == Some(value) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{series} never reached {value} (now {:?}); log:\n{}",
            self.metric(series).await,
            self.log_tail()
        );
    }

    /// `/readyz`'s status, or `None` when the admin port does not answer.
    pub async fn readiness(&self) -> Option<StatusCode> {
        admin_get(self.admin, "/readyz").await.map(|r| r.status)
    }

    /// One HTTP/1 connection kept open across requests.
    pub async fn keep_alive(&self) -> KeepAlive {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        KeepAlive {
            addr: self.addr,
            sender,
        }
    }
}

/// A GET on the admin port that tolerates a port not open yet (the child is starting).
async fn admin_get(admin: SocketAddr, path: &str) -> Option<Reply> {
    TcpStream::connect(admin).await.ok()?;
    get(admin, path).await.ok()
}

impl Drop for IngressProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A single connection: every request goes over the same socket, or fails.
pub struct KeepAlive {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl KeepAlive {
    /// Sends a request with the given headers and JSON body on this connection.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        let request = builder
            .body(Full::new(Bytes::copy_from_slice(body)))
            .unwrap();
        self.sender
            .ready()
            .await
            .expect("the kept-alive connection was closed");
        let response = self
            .sender
            .send_request(request)
            .await
            .expect("request on the kept-alive connection failed");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}
