//! Processes a benchmark starts and stops itself: the ingress, the consumer and the bare
//! hyper baseline, each on a loopback port given by the caller, logging to a file, and
//! stopped with SIGTERM (then SIGKILL) by their own PID, never by name.

use std::path::Path;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::time::Instant;

pub struct Child {
    name: String,
    process: tokio::process::Child,
    pid: u32,
}

impl Child {
    /// Starts `program` with `args` and extra `env`, appending its output to
    /// `logs/NAME.log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(&str, String)],
        logs: &Path,
    ) -> anyhow::Result<Child> {
        std::fs::create_dir_all(logs)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join(format!("{name}.log")))?;
        let process = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", program.display()))?;
        let pid = process
            .id()
            .ok_or_else(|| anyhow::anyhow!("{name} exited at once"))?;
        Ok(Child {
            name: name.to_owned(),
            process,
            pid,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits until `ready` says yes, failing if the process exits or `timeout` passes.
    pub async fn wait_until<F, Fut>(&mut self, timeout: Duration, ready: F) -> anyhow::Result<()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.process.try_wait()? {
                anyhow::bail!("{} exited during startup ({status})", self.name);
            }
            if ready().await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("{} not ready within {timeout:?}", self.name)
    }

    /// SIGTERM, up to 15 s to drain and exit, then SIGKILL.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if self.process.try_wait()?.is_none() {
            // The PID is our own child's and not yet reaped, so it cannot be recycled.
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(15), self.process.wait())
                .await
                .is_err()
            {
                self.process.kill().await?;
            }
        }
        Ok(())
    }
}

/// Whether something accepts connections at `addr`.
pub async fn listening(addr: &str) -> bool {
    TcpStream::connect(addr).await.is_ok()
}

/// Whether `GET http://addr/readyz` answers 200.
pub async fn ready(addr: &str) -> bool {
    use http_body_util::Empty;
    let Ok(stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let io = hyper_util::rt::TokioIo::new(stream);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(io).await else {
        return false;
    };
    tokio::spawn(conn);
    let request = http::Request::get("/readyz")
        .header("host", addr)
        .body(Empty::<bytes::Bytes>::new())
        .expect("a valid request");
    matches!(sender.send_request(request).await, Ok(r) if r.status() == http::StatusCode::OK)
}

/// The resident set size of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat`, in seconds
/// (assuming the usual 100 clock ticks per second).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are fixed.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_rss_and_cpu() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(cpu_secs(pid).is_some());
        assert_eq!(parse_vm_rss("Name:\tx\nVmRSS:\t  12345 kB\n"), Some(12345));
    }
}
