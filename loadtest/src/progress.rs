//! Progress of a long run on stderr: on a terminal, one bar redrawn in place (indicatif);
//! anywhere else (a CI log, a pipe), a plain line every few seconds, so a long run is never
//! silent and its log stays readable. The run's own summary follows when it ends.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// How often a bar's status is recomputed: often enough to look live, rarely enough that
/// a run at thousands of requests per second does not spend its time on it.
const BAR_EVERY: Duration = Duration::from_millis(200);

pub struct Progress {
    label: String,
    len: u64,
    unit: &'static str,
    bar: Option<ProgressBar>,
    last: Option<Instant>,
}

impl Progress {
    /// Progress towards `len` `unit`s (e.g. "requests due", "s").
    pub fn new(label: impl Into<String>, len: u64, unit: &'static str) -> Self {
        let label = label.into();
        let bar = std::io::stderr().is_terminal().then(|| {
            let template = format!("{{prefix}} [{{wide_bar}}] {{pos}}/{{len}} {unit}  {{msg}}");
            let style = ProgressStyle::with_template(&template)
                .expect("a valid template")
                .progress_chars("=> ");
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
                .with_style(style)
                .with_prefix(label.clone());
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            label,
            len,
            unit,
            bar,
            last: None,
        }
    }

    /// Moves to `position`; `status` (counts so far, say) is asked for only when shown.
    pub fn set(&mut self, position: u64, status: impl FnOnce() -> String) {
        let every = if self.bar.is_some() {
            BAR_EVERY
        } else {
            PLAIN_EVERY
        };
        if let Some(bar) = &self.bar {
            bar.set_position(position);
        }
        if self.last.is_some_and(|last| last.elapsed() < every) {
            return;
        }
        // The first call starts the clock: a plain line only once there is progress to tell.
        let first = self.last.is_none();
        self.last = Some(Instant::now());
        match &self.bar {
            Some(bar) => bar.set_message(status()),
            None if !first => {
                let status = status();
                let gap = if status.is_empty() { "" } else { "  " };
                eprintln!(
                    "{}: {position}/{} {}{gap}{status}",
                    self.label, self.len, self.unit
                );
            }
            None => {}
        }
    }

    /// Clears the bar; the summary printed next takes its place.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    /// A bar over `duration` that advances with the clock until the returned guard is
    /// dropped: for runs whose progress is their time (a saturation window, wrk, a soak).
    pub fn timed(label: impl Into<String>, duration: Duration) -> Ticking {
        let progress = Arc::new(Mutex::new(Progress::new(label, duration.as_secs(), "s")));
        let started = Instant::now();
        let ticking = progress.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                let elapsed = started.elapsed().as_secs().min(duration.as_secs());
                ticking
                    .lock()
                    .expect("not poisoned")
                    .set(elapsed, String::new);
            }
        });
        Ticking { progress, task }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// See [`Progress::timed`].
pub struct Ticking {
    progress: Arc<Mutex<Progress>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Ticking {
    fn drop(&mut self) {
        self.task.abort();
        if let Ok(mut progress) = self.progress.lock() {
            progress.finish();
        }
    }
}
