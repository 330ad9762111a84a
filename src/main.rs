//! The `jars` binary: parse the command line, load and validate the config, set up logging,
//! run the command, and turn failures into one line (clap's whole message for bad arguments) and
//! an exit code (64 for bad config or arguments, 69 when a node asked does not answer, 1
//! otherwise).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use jars::cli::{self, Cli, Command, Failure, LogFormat};
use jars::config::{Config, Overrides, EXIT_CONFIG};
use jars::shutdown::{self, Request, Signals};
use tokio::net::TcpListener;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter};

/// mimalloc: a callback allocates a few dozen small blocks (hyper, axum, the decoded fields),
/// and glibc's malloc and free were ~15% of a callback's instructions (callgrind, see
/// docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code when a second signal cuts the graceful shutdown short (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    // Before anything signs or verifies a token: RS256 verification by `ring`.
    jars::crypto::install();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's whole message: which argument, the usage line, "did you mean".
            if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                eprintln!("error: a command is missing\n");
            }
            let _ = e.print();
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    if let Command::CheckConfig {
        print_default: true,
    } = cli.command
    {
        // Before loading: the default is what to start from when the config is broken.
        cli::out::write_bytes(cli::DEFAULT_CONFIG.as_bytes());
        return ExitCode::SUCCESS;
    }
    if let Command::Completions { shell } = cli.command {
        // A script for the shell, not for a deployment: no config to load or get wrong.
        cli::print_completions(shell);
        return ExitCode::SUCCESS;
    }
    if let Command::Man = cli.command {
        // Generated from the command line's definition: no config either.
        return match cli::print_manual() {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => fail(f),
        };
    }
    let overrides = cli.overrides();
    let config = match Config::load(&overrides) {
        Ok(c) => c,
        Err(e) => return fail(Failure::from(e)),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(Failure::Runtime(format!("cannot start the runtime: {e}"))),
    };
    let result = match cli.command {
        Command::Serve { .. } => {
            let log = init_tracing(cli.log_format, &config.log_level);
            runtime.block_on(serve(config, overrides, log))
        }
        _ => runtime.block_on(cli::run(cli, config)),
    };
    // Background tasks (key refresh, pools) must not hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => fail(f),
    }
}

fn fail(f: Failure) -> ExitCode {
    eprintln!("jars: {}", f.message());
    ExitCode::from(f.exit_code() as u8)
}

type LogHandle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// Colour codes only for a person at a terminal: not in a file, a pipe or the journal
/// (`JOURNAL_STREAM`), and never when `NO_COLOR` is set to anything (no-color.org).
fn log_colour() -> bool {
    use std::io::IsTerminal;
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    std::io::stderr().is_terminal() && !set("JOURNAL_STREAM") && !set("NO_COLOR")
}

/// Logging to stderr; `RUST_LOG` wins over `log_level` (and over its reloads).
fn init_tracing(format: LogFormat, level: &str) -> LogHandle {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(log_colour())
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
    handle
}

/// The listener systemd passed (socket activation), else `addr` bound here.
async fn listener(addr: std::net::SocketAddr) -> Result<TcpListener, Failure> {
    let mut fds = listenfd::ListenFd::from_env();
    if let Ok(Some(std)) = fds.take_tcp_listener(0) {
        std.set_nonblocking(true)
            .map_err(|e| Failure::Runtime(format!("systemd socket: {e}")))?;
        let l = TcpListener::from_std(std)
            .map_err(|e| Failure::Runtime(format!("systemd socket: {e}")))?;
        tracing::info!("using the listening socket passed by systemd");
        return Ok(l);
    }
    TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::Runtime(format!("cannot listen on {addr}: {e}")))
}

async fn serve(config: Config, overrides: Overrides, log: LogHandle) -> Result<(), Failure> {
    let placeholders = config.placeholder_secrets();
    if !placeholders.is_empty() {
        tracing::warn!(
            settings = placeholders.join(", "),
            "secrets still hold the example config's change-me… placeholder; replace them \
             (jars refuses them when listening beyond loopback)"
        );
    }
    let mut signals = Signals::install()
        .map_err(|e| Failure::Runtime(format!("cannot install signal handlers: {e}")))?;
    // Bound first, so a port in use fails before keys or a store are created; nothing is
    // accepted until the state below is ready.
    let main_listener = listener(config.listen).await?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| Failure::Runtime(format!("cannot listen on {addr}: {e}")))?,
        ),
        None => None,
    };
    // The address really listened on: a socket systemd passed may be wider than `listen`.
    let addr = main_listener
        .local_addr()
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    config.refuse_placeholder_secrets_on(addr)?;
    // Held until serve returns: a second serve on this data dir is refused.
    let _lock = if jars::data_dir::used_by_serve(&config) {
        Some(jars::data_dir::lock(&config.data_dir).map_err(Failure::Runtime)?)
    } else {
        None
    };
    let state = jars::setup::app_state(&config).await?;
    if let jars::config::StoreSettings::Sqlite { path } = &config.store {
        // libpq's and sqlx's variable, not jars': easy to set and believe in use.
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        if set("DATABASE_URL") && !set("JARS_DATABASE_URL") {
            tracing::warn!(
                store = %path.display(),
                "DATABASE_URL is set but jars reads JARS_DATABASE_URL (or [store] url): \
                 using the SQLite store"
            );
        }
    }
    let data_dir = jars::data_dir::absolute(&config.data_dir);
    tracing::info!(
        %addr,
        data_dir = %data_dir.display(),
        version = env!("CARGO_PKG_VERSION"),
        "jars serving"
    );

    let (trigger, down) = shutdown::latch();
    let listeners = jars::http::Listeners {
        main: main_listener,
        metrics: metrics_listener,
    };
    let server = tokio::spawn(jars::http::run(listeners, state.clone(), down.wait()));

    let mut running = config;
    let set_level = |level: &str| -> Result<(), String> {
        if std::env::var_os("RUST_LOG").is_some() {
            return Ok(()); // RUST_LOG wins, as at start-up
        }
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        log.reload(filter).map_err(|e| e.to_string())
    };
    // Serve until the first SIGTERM/SIGINT, reloading on SIGHUP.
    while let Request::Reload = signals.next().await {
        match jars::setup::reload(&state, &running, &overrides, &set_level) {
            Ok(new) => running = new,
            Err(e) => tracing::error!(
                error = %e,
                "reload rejected; the previous configuration stays in force"
            ),
        }
    }
    tracing::info!(
        grace = ?running.shutdown_grace,
        "shutting down: no new connections, finishing in-flight requests"
    );
    trigger.trip();
    tokio::select! {
        // `run` has logged a server's failure.
        _ = server => tracing::info!("stopped"),
        _ = tokio::time::sleep(running.shutdown_grace) => {
            tracing::warn!("grace period over: closing the remaining connections");
        }
        _ = signals.next() => {
            tracing::warn!("second signal: exiting at once");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    }
    // Listener sessions still queued are written before the process ends (bounded: a store
    // that does not answer loses them, as it would have anyway).
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.hooks.sessions.flush(),
    )
    .await;
    Ok(())
}
