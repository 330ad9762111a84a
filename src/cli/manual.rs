//! `jars man`: the manual page jars(1), generated from the command line's definition (`args`)
//! so it cannot drift from `--help`: clap_mangen's title, synopsis and global options, then one
//! subsection per command with its arguments and its example; then what a technician looks up
//! without the sources at hand: ENVIRONMENT, FILES, SIGNALS and EXIT STATUS.

use std::io::Write;

use clap::CommandFactory;
use roff::{bold, italic, roman, Roff};

/// Writes jars(1) as roff.
pub fn render(out: &mut dyn Write) -> std::io::Result<()> {
    let mut cli = super::Cli::command();
    cli.build();
    let page = clap_mangen::Man::new(cli.clone());
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_description_section(out)?;
    page.render_options_section(out)?;
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for command in commands(&cli) {
        command_section(&mut roff, command);
    }
    reference(&mut roff);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "README.md in the jars sources, and docs/ beside it: api.md (the HTTP API), icecast.md, \
         operations.md, cli.md, configuration.md; SECURITY.md.",
    )]);
    roff.to_writer(out)?;
    page.render_version_section(out)
}

/// Every command a person runs (`jars user add`, not `jars user`), in the order `--help` lists
/// them; clap's own `help` is left out.
pub fn commands(cli: &clap::Command) -> Vec<&clap::Command> {
    fn walk<'a>(cmd: &'a clap::Command, out: &mut Vec<&'a clap::Command>) {
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            if sub.has_subcommands() {
                walk(sub, out);
            } else {
                out.push(sub);
            }
        }
    }
    let mut out = Vec::new();
    walk(cli, &mut out);
    out
}

/// The arguments a command declares itself: not the global options, nor `--help`.
pub fn own_arguments(command: &clap::Command) -> impl Iterator<Item = &clap::Arg> {
    command.get_arguments().filter(|a| {
        !a.is_global_set() && !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version")
    })
}

fn command_section(roff: &mut Roff, command: &clap::Command) {
    let usage = command.clone().render_usage().to_string();
    let usage = usage.trim_start_matches("Usage: ").trim();
    roff.control("SS", [usage]);
    if let Some(about) = command.get_long_about().or(command.get_about()) {
        roff.text([roman(about.to_string())]);
    }
    for arg in own_arguments(command) {
        roff.control("TP", []);
        let value = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map(|v| v.to_string())
            .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
        match arg.get_long() {
            Some(long) if arg.get_action().takes_values() => {
                roff.text([bold(format!("--{long}")), roman(" "), italic(value)])
            }
            Some(long) => roff.text([bold(format!("--{long}"))]),
            None => roff.text([italic(value)]),
        };
        if let Some(help) = arg.get_long_help().or(arg.get_help()) {
            roff.text([roman(help.to_string())]);
        }
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_string())
            .collect();
        if !values.is_empty() {
            roff.text([roman(format!(" (one of: {})", values.join(", ")))]);
        }
    }
    if let Some(example) = command.get_after_help() {
        roff.control("PP", []);
        roff.text([roman(example.to_string())]);
    }
}

/// One tagged paragraph per `(tag, text)`.
fn tagged(roff: &mut Roff, items: &[(&str, &str)]) {
    for (tag, text) in items {
        roff.control("TP", []);
        roff.text([bold(*tag)]);
        roff.text([roman(*text)]);
    }
}

/// ENVIRONMENT, FILES, SIGNALS and EXIT STATUS.
fn reference(roff: &mut Roff) {
    roff.control("SH", ["ENVIRONMENT"]);
    roff.text([roman(
        "Each beats the configuration file; a command-line option beats it.",
    )]);
    tagged(
        roff,
        &[
            ("JARS_CONFIG", "The configuration file (--config)."),
            ("JARS_DATA_DIR", "The data directory (--data-dir), default ./jars-data."),
            (
                "JARS_LISTEN",
                "Where the node listens (serve --listen); status, event list and check-config use it too.",
            ),
            (
                "JARS_DATABASE_URL",
                "The event store (--database-url): postgres://... or sqlite:PATH. DATABASE_URL is not read.",
            ),
            ("JARS_LOG_FORMAT", "text or json (--log-format)."),
            ("RUST_LOG", "The log filter; beats log_level in the configuration."),
            ("NO_COLOR", "Set: no colour in the log, even on a terminal."),
            (
                "PGPASSWORD, PGHOST, PGUSER, ...",
                "libpq's variables and ~/.pgpass, for what the PostgreSQL URL leaves out.",
            ),
        ],
    );
    roff.control("SH", ["FILES"]);
    tagged(
        roff,
        &[
            (
                "/etc/jars/jars.toml",
                "The configuration as installed (jars check-config --print-default prints every key), \
                 or the original JARS' /etc/jars/config.json.",
            ),
            ("DATA_DIR/jwt-private.pem", "The signing key, mode 0600."),
            (
                "DATA_DIR/jwt-public.pem, DATA_DIR/retired-keys/",
                "Its public half, and those of rotated keys (jars keygen --rotate).",
            ),
            ("DATA_DIR/users.toml", "Users, argon2id hashes and next_id, mode 0600."),
            (
                "DATA_DIR/jars.sqlite3",
                "The embedded store: events, bans and revocations, listener sessions.",
            ),
            ("DATA_DIR/jars.lock", "Held by jars serve while it runs."),
        ],
    );
    roff.control("SH", ["SIGNALS"]);
    tagged(
        roff,
        &[
            (
                "SIGHUP",
                "Reload the configuration, key set, Icecast settings, limits and log level; \
                 a configuration that does not validate is refused and the old one stays.",
            ),
            (
                "SIGTERM, SIGINT",
                "Stop accepting and let requests in flight finish for up to shutdown_grace (10s), \
                 then exit 0; a second signal exits at once with 130.",
            ),
        ],
    );
    roff.control("SH", ["EXIT STATUS"]);
    tagged(
        roff,
        &[
            ("0", "Success; for status, the node is ready."),
            ("1", "Failure; for status, the node is not ready."),
            (
                "64",
                "Bad configuration or arguments (EX_USAGE): nothing was bound or written.",
            ),
            (
                "69",
                "The node a command asked does not answer (EX_UNAVAILABLE).",
            ),
            ("130", "serve: a second signal cut the graceful stop short."),
        ],
    );
}
