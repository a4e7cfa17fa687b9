//! The `consumer` binary: parses configuration and runs [`consumers::run`].

use std::process::ExitCode;

use clap::Parser;
use consumers::config::{Cli, Command, StoreKind};
use consumers::store::embedded::EmbeddedStore;
use consumers::store::scylla::ScyllaStore;
use consumers::store::Store;
use tracing::{error, info};

/// Decoding, applying and projecting allocate per event on several threads; mimalloc's
/// per-thread free lists cost less than glibc's arenas (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// sysexits.h EX_CONFIG: the configuration is unusable.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match tracing_subscriber::EnvFilter::try_new(&cli.config.log_filter) {
        Ok(filter) => tracing_subscriber::fmt().with_env_filter(filter).init(),
        Err(e) => {
            eprintln!("error: invalid log filter {:?}: {e}", cli.config.log_filter);
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    match cli.command.unwrap_or(Command::Run) {
        Command::EnsureTopics(args) => match consumers::topics::ensure(&cli.config, &args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!(error = %e, "could not ensure topics");
                ExitCode::FAILURE
            }
        },
        Command::Run => run(cli.config).await,
        Command::Feed => feed(cli.config).await,
        Command::Deliver => deliver(cli.config).await,
        Command::ReplayWebhooks(args) => replayed(
            "webhook dead letters",
            "put back",
            args.dry_run,
            consumers::webhook::dead_letter::replay(&cli.config, &args).await,
        ),
        Command::Lag(args) => match consumers::lag::read(&cli.config) {
            Ok(lag) if args.one_line => {
                println!("{}", lag.one_line());
                ExitCode::SUCCESS
            }
            Ok(lag) => {
                println!("{lag}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                error!(error = %e, "could not read the group's lag");
                ExitCode::FAILURE
            }
        },
        Command::ReplayDlq(args) => replayed(
            "dead letters",
            "replayed",
            args.dry_run,
            consumers::replay::replay(&cli.config, &args).await,
        ),
        Command::AcceptGap(args) => match open_store(&cli.config).await {
            Ok(Opened::Embedded(store)) => accept_gap(&cli.config, &store, &args.partitions),
            Ok(Opened::Scylla(store)) => accept_gap(&cli.config, &store, &args.partitions),
            Err(code) => code,
        },
        Command::AcceptPlacement(args) => match open_store(&cli.config).await {
            Ok(Opened::Embedded(store)) => accept_placement(&cli.config, &store, &args.placement),
            Ok(Opened::Scylla(store)) => accept_placement(&cli.config, &store, &args.placement),
            Err(code) => code,
        },
        command @ (Command::Rebuild | Command::Reconcile) => match open_store(&cli.config).await {
            Ok(Opened::Embedded(store)) => maintain(&command, &cli.config, &store).await,
            Ok(Opened::Scylla(store)) => maintain(&command, &cli.config, &store).await,
            Err(code) => code,
        },
    }
}

/// A replay's one-line summary, or why it failed.
fn replayed(
    letters: &str,
    done: &str,
    dry_run: bool,
    outcome: Result<consumers::replay::ReplaySummary, consumers::replay::ReplayError>,
) -> ExitCode {
    match outcome {
        Ok(summary) => {
            println!(
                "read {} {letters}, selected {}, {done} {}, unroutable {}{}",
                summary.read,
                summary.selected,
                summary.replayed,
                summary.unroutable,
                if dry_run { " (dry run)" } else { "" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!(error = %e, "replay failed");
            ExitCode::FAILURE
        }
    }
}

/// `consumer feed` until SIGTERM or Ctrl-C.
async fn feed(config: consumers::Config) -> ExitCode {
    let admin = match admin_port(&config).await {
        Ok(listener) => listener,
        Err(code) => return code,
    };
    match consumers::feed::run(&config, admin, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "the feed stopped");
            ExitCode::FAILURE
        }
    }
}

/// `consumer deliver` until SIGTERM or Ctrl-C.
async fn deliver(config: consumers::Config) -> ExitCode {
    let admin = match admin_port(&config).await {
        Ok(listener) => listener,
        Err(code) => return code,
    };
    match consumers::webhook::run(&config, admin, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(consumers::Error::Setup(problem)) => {
            error!(problem, "cannot deliver webhooks");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            error!(error = %e, "the delivery service stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: consumers::Config) -> ExitCode {
    match open_store(&config).await {
        Ok(Opened::Embedded(store)) => serve(config, store).await,
        Ok(Opened::Scylla(store)) => serve(config, store).await,
        Err(code) => code,
    }
}

/// The store the configuration names, or the exit code that says why it is unusable.
enum Opened {
    Embedded(EmbeddedStore),
    Scylla(ScyllaStore),
}

async fn open_store(config: &consumers::Config) -> Result<Opened, ExitCode> {
    match config.store {
        StoreKind::Embedded => match EmbeddedStore::new(&config.store_dir) {
            Ok(store) => Ok(Opened::Embedded(store)),
            Err(e) => {
                error!(error = %e, dir = %config.store_dir.display(), "cannot use the store directory");
                Err(ExitCode::from(EXIT_CONFIG))
            }
        },
        StoreKind::Scylla => {
            let (uri, keyspace) = (config.scylla_uri.clone(), config.scylla_keyspace.clone());
            // Connecting blocks on the driver's own runtime.
            let connected = tokio::task::spawn_blocking(move || {
                let store = ScyllaStore::connect(&uri, &keyspace)?;
                let release = store.release_version()?;
                Ok::<_, consumers::store::StoreError>((store, release))
            })
            .await;
            match connected {
                Ok(Ok((store, release))) => {
                    info!(
                        uri = config.scylla_uri,
                        keyspace = config.scylla_keyspace,
                        release,
                        "using the CQL store"
                    );
                    Ok(Opened::Scylla(store))
                }
                Ok(Err(e)) => {
                    error!(error = %e, uri = config.scylla_uri, keyspace = config.scylla_keyspace, "cannot use the ScyllaDB store; is the cluster reachable and the schema (infra/scylla/schema.cql) installed?");
                    Err(ExitCode::FAILURE)
                }
                Err(e) => {
                    error!(error = %e, "connecting to ScyllaDB failed");
                    Err(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// `accept-gap` for each of `partitions`, printing what it found.
fn accept_gap<S: Store>(config: &consumers::Config, store: &S, partitions: &[i32]) -> ExitCode {
    use consumers::maintenance::Gap;
    for partition in partitions {
        match consumers::maintenance::accept_gap(config, store, *partition) {
            Ok(Gap::None { next, first_available }) => println!(
                "partition {partition}: no gap (the store needs offset {next}, Kafka has it from {first_available})"
            ),
            Ok(Gap::Accepted { next, first_available }) => println!(
                "partition {partition}: accepted the loss of offsets {next}..={}; it resumes at {first_available}",
                first_available - 1
            ),
            Err(e) => {
                error!(error = %e, partition, "accept-gap failed");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// `accept-placement`, printing the map replaced and the one accepted.
fn accept_placement<S: Store>(config: &consumers::Config, store: &S, placement: &str) -> ExitCode {
    match consumers::maintenance::accept_placement(config, store, placement) {
        Ok((previous, accepted)) => {
            let previous = previous.as_deref().unwrap_or("none");
            println!("accepted partition map {accepted} (was {previous}); start the consumers");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!(error = %e, "accept-placement failed");
            ExitCode::FAILURE
        }
    }
}

/// `rebuild` or `reconcile` on `store`.
async fn maintain<S: Store>(command: &Command, config: &consumers::Config, store: &S) -> ExitCode {
    if matches!(command, Command::Rebuild) {
        return match consumers::maintenance::rebuild(config, store).await {
            Ok(partitions) => {
                println!("rebuilt the projections of {partitions} partitions");
                ExitCode::SUCCESS
            }
            Err(e) => {
                error!(error = %e, "rebuild failed");
                ExitCode::FAILURE
            }
        };
    }
    match consumers::maintenance::reconcile(config, store).await {
        Ok(mismatches) if mismatches.is_empty() => {
            println!("projections match the store");
            ExitCode::SUCCESS
        }
        Ok(mismatches) => {
            for mismatch in &mismatches {
                println!("{mismatch}");
            }
            println!("{} projections disagree with the store", mismatches.len());
            ExitCode::FAILURE
        }
        Err(e) => {
            error!(error = %e, "reconcile failed");
            ExitCode::FAILURE
        }
    }
}

/// The admin port bound, with the metrics recorder behind its `/metrics`.
async fn admin_port(config: &consumers::Config) -> Result<tokio::net::TcpListener, ExitCode> {
    let admin = match tokio::net::TcpListener::bind(config.admin_addr).await {
        Ok(listener) => listener,
        Err(e) => {
            error!(error = %e, addr = %config.admin_addr, "cannot bind the admin address");
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };
    if let Err(e) = consumers::metrics::install() {
        error!(error = %e, "cannot install the metrics recorder");
        return Err(ExitCode::FAILURE);
    }
    Ok(admin)
}

async fn serve<S: Store>(config: consumers::Config, store: S) -> ExitCode {
    let admin = match admin_port(&config).await {
        Ok(listener) => listener,
        Err(code) => return code,
    };
    match consumers::run(config, store, admin, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "consumer stopped");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM (what orchestrators send) or Ctrl-C.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
