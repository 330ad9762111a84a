//! The `jars` binary: parse the command line, load and validate the config, set up logging,
//! run the command, and turn failures into one line and an exit code (64 for bad config or
//! arguments, 1 otherwise).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use jars::cli::{self, Cli, Command, Failure};
use jars::config::{Config, EXIT_CONFIG};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "jars: {} (see jars --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    let config = match Config::load(&cli.overrides()) {
        Ok(c) => c,
        Err(e) => return fail(Failure::from(e)),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(Failure::Runtime(format!("cannot start the runtime: {e}"))),
    };
    let result = match cli.command {
        Command::Serve { .. } => {
            init_tracing();
            runtime.block_on(serve(config))
        }
        _ => runtime.block_on(cli::run(cli, config)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => fail(f),
    }
}

fn fail(f: Failure) -> ExitCode {
    eprintln!("jars: {}", f.message());
    ExitCode::from(f.exit_code() as u8)
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn serve(config: Config) -> Result<(), Failure> {
    let state = jars::server::app_state(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Failure::Runtime(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    tracing::info!(%addr, version = env!("CARGO_PKG_VERSION"), "jars serving");
    jars::http::run(listener, state, jars::shutdown::signal())
        .await
        .map_err(|e| Failure::Runtime(format!("server failed: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}
