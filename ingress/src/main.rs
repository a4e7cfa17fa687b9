//! The `ingress` binary: configuration, logging, metrics and signals around
//! [`ingress::run`].

#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use futures::stream::{BoxStream, StreamExt};
use ingress::{Config, LogFormat};
use tokio::net::TcpListener;
use tracing_subscriber::filter::ParseError;
use tracing_subscriber::EnvFilter;

/// Every request allocates and frees small buffers on two threads; mimalloc's per-thread
/// free lists cost a fraction of glibc's arenas here (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `EX_USAGE`: the configuration is wrong and restarting will not help.
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let config = match Config::try_parse() {
        Ok(config) => config,
        Err(error) if !error.use_stderr() => {
            // --help and --version are answers, not failures.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(error) = init_tracing(&config.log_filter, config.log_format) {
        eprintln!("error: invalid log filter {:?}: {error}", config.log_filter);
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = error
                .downcast_ref::<ingress::Error>()
                .map_or(1, |e| e.exit_code());
            tracing::error!(error = format!("{error:#}"), "ingress failed");
            ExitCode::from(code)
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    ingress::metrics::install().context("installing the metrics recorder")?;
    let api = ingress::ApiSocket::bind(config.listen)
        .with_context(|| format!("binding {}", config.listen))?;
    let admin = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("binding admin {}", config.admin_listen))?;
    ingress::run_with_reload(config, api, admin, shutdown_signal(), reload_signals()).await?;
    Ok(())
}

/// One item per SIGHUP: the conventional "re-read your configuration" signal, used here
/// to reload the partners file (key rotation) without a restart. Registered before
/// startup, so a SIGHUP that arrives early no longer kills the process, as it would by
/// default.
fn reload_signals() -> BoxStream<'static, ()> {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(hangup) => futures::stream::unfold(hangup, |mut hangup| async move {
            hangup.recv().await.map(|()| {
                tracing::info!("SIGHUP received: reloading the partners file");
                ((), hangup)
            })
        })
        .boxed(),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; partners reload needs a restart");
            futures::stream::pending().boxed()
        }
    }
}

/// Resolves on SIGTERM (how orchestrators stop a pod) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the ingress");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

fn init_tracing(filter: &str, format: LogFormat) -> Result<(), ParseError> {
    // Colour codes only for a person at a terminal, never into a log collector's file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(filter)?)
        .with_ansi(std::io::stdout().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}
