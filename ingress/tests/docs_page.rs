//! The API reference page in a real browser: Debian's `chromium`, headless, loads `/docs`
//! from the live ingress (null sink; Redis from the local stack, like the other tests),
//! runs Swagger UI on the served `/openapi.json`, and must render every operation of that
//! document while logging nothing to its console (a blocked load, a failed request, a
//! script error or a Content-Security-Policy violation would all show there). A
//! screenshot is kept at the path the test prints.
//!
//! Without chromium the test fails, naming how to install it: a skipped browser test would
//! let the page break unseen.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::Ingress;

/// The browser: `CHROMIUM` or Debian's `chromium` on the PATH.
fn browser() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

/// Runs headless chromium on `url` with `extra` flags: console messages go to stderr,
/// and virtual time lets the page finish loading and rendering before the browser acts.
fn chromium(url: &str, extra: &[&str]) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let user_data = format!("--user-data-dir={}", profile.path().display());
    Command::new(browser())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=15000",
            &user_data,
        ])
        .args(extra)
        .arg(url)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): install Debian's chromium (`source infra/common.sh && \
                 install_chromium`, or `apt-get install chromium`), or point CHROMIUM at one",
                browser()
            )
        })
}

/// The lines chromium logs for the page's console: every `console.*` call, failed
/// resource loads and policy violations.
fn console_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| line.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect()
}

/// The rendered page, after Swagger UI ran.
fn rendered(url: &str) -> (String, Vec<String>) {
    let output = chromium(url, &["--dump-dom"]);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        console_lines(&output),
    )
}

/// The element id Swagger UI gives each operation: `operations-{tag}-{operationId}`,
/// `default` for an operation without tags.
fn operation_ids() -> Vec<String> {
    let spec: serde_json::Value = serde_json::from_str(ingress::openapi::SPEC).unwrap();
    let mut ids = Vec::new();
    for (_, item) in spec["paths"].as_object().unwrap() {
        for (_, operation) in item.as_object().unwrap() {
            let tag = operation["tags"][0].as_str().unwrap_or("default");
            let id = operation["operationId"]
                .as_str()
                .expect("every operation has an id");
            ids.push(format!("operations-{}-{id}", tag.replace(' ', "_")));
        }
    }
    ids
}

fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs-page.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_page_shows_every_operation_and_logs_nothing() {
    let ingress = Ingress::spawn(
        "no-such-topic",
        &["--sink=null", "--kafka-brokers=127.0.0.1:9"],
    );
    ingress.wait_ready().await;
    let url = format!("http://{}/docs", ingress.addr);

    let (dom, console) = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || rendered(&url))
            .await
            .unwrap()
    };
    assert!(
        console.is_empty(),
        "the page logged to its console:\n{}",
        console.join("\n")
    );
    let expected = operation_ids();
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !dom.contains(&format!("id=\"{id}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "operations of /openapi.json missing from the page: {missing:?}"
    );
    assert!(expected.len() >= 12, "{expected:?}");

    let screenshot = screenshot_path();
    let shot = format!("--screenshot={}", screenshot.display());
    let output = tokio::task::spawn_blocking(move || {
        chromium(
            &url,
            &[&shot, "--window-size=1280,2400", "--hide-scrollbars"],
        )
    })
    .await
    .unwrap();
    assert!(output.status.success());
    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    println!(
        "screenshot of the API reference page: {}",
        screenshot.display()
    );
}

/// The check above can fail: a page that logs, or loads what is not there, is caught.
#[test]
fn console_messages_and_failed_loads_are_seen() {
    let (_, console) = rendered(
        "data:text/html,<script>console.error('boom')</script>\
         <img src='data:image/png;base64,broken'>",
    );
    assert!(
        console.iter().any(|line| line.contains("boom")),
        "console.error not seen: {console:?}"
    );
}
