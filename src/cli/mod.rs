//! The `jars` command line: `serve`, `keygen`, `user`, `token`, `ticket`, `event`, `ban`,
//! `report`, `check-config`, `migrate`, `completions`, `status`, `man`; what each does (their
//! grammar is in `args`, the manual page in `manual`, what asks a running node in `node`;
//! taking access back in `ban`, `ticket_revoke` and `event_end`).
//! Every command takes `--data-dir` and `--config` (or `JARS_DATA_DIR`, `JARS_CONFIG`).

use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use crate::config::{parse_duration, Config, ConfigError, Overrides, StoreSettings, EXIT_CONFIG};
use crate::data_dir;
use crate::identity::users_file::UserEditError;
use crate::identity::{Identity, IdentityError, UsersFile};
use crate::setup::{self, SetupError};
use crate::tokens::TicketBinding;
use out::out;

mod args;
mod ban;
mod event_end;
mod events;
pub mod manual;
pub mod node;
pub mod out;
mod report;
mod ticket;
mod ticket_revoke;
pub use args::{
    BanCommand, Cli, Command, EventCommand, LogFormat, NodeAddress, PasswordSource, ReportBy,
    ReportFormat, TicketCommand, UserCommand,
};

/// Exit code when the node a command asks does not answer (sysexits' EX_UNAVAILABLE).
pub const EXIT_UNAVAILABLE: i32 = 69;

/// The commented default config: deploy/jars.toml, itself generated from the reference in
/// docs/configuration.md by scripts/sync-example-config, so the three cannot drift apart.
pub const DEFAULT_CONFIG: &str = include_str!("../../deploy/jars.toml");

/// How a command failed, and so which exit code it ends with.
#[derive(Debug)]
pub enum Failure {
    /// Bad configuration or arguments: exit 64.
    Usage(String),
    /// Anything else: exit 1.
    Runtime(String),
    /// The running node a command asks does not answer: exit 69.
    Unavailable(String),
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Usage(_) => EXIT_CONFIG,
            Failure::Runtime(_) => 1,
            Failure::Unavailable(_) => EXIT_UNAVAILABLE,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Failure::Usage(m) | Failure::Runtime(m) | Failure::Unavailable(m) => m,
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Usage(format!("config: {e}"))
    }
}

impl From<SetupError> for Failure {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Config(m) => Failure::Usage(m),
            SetupError::Runtime(m) => Failure::Runtime(m),
        }
    }
}

impl From<IdentityError> for Failure {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::NoUser => Failure::Runtime("no such user".into()),
            other => Failure::Runtime(other.to_string()),
        }
    }
}

impl From<UserEditError> for Failure {
    fn from(e: UserEditError) -> Self {
        match e {
            UserEditError::Invalid(m) => Failure::Usage(m),
            other => Failure::Runtime(other.to_string()),
        }
    }
}

impl Cli {
    /// The overrides this command line (and its environment) gives the config.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            // Where the node listens, for every command: `status` and `event list` ask there and
            // `check-config` shows it. Only `serve` has the flag; the others take the variable.
            listen: match &self.command {
                Command::Serve { listen } => listen.clone(),
                _ => std::env::var("JARS_LISTEN").ok().filter(|l| !l.is_empty()),
            },
            database_url: self.database_url.clone(),
        }
    }
}

/// Whether `command` may write into the data directory (and so says which one it used).
fn writes_data_dir(command: &Command, config: &Config) -> bool {
    match command {
        Command::User(UserCommand::List) => false,
        Command::Keygen { .. } | Command::User(_) | Command::Event(EventCommand::Create { .. }) => {
            true
        }
        Command::Migrate => matches!(config.store, StoreSettings::Sqlite { .. }),
        _ => false,
    }
}

/// Runs a command other than `serve` (which `main` runs with tracing and signals).
pub async fn run(cli: Cli, config: Config) -> Result<(), Failure> {
    let writes = writes_data_dir(&cli.command, &config);
    let result = dispatch(cli, &config).await;
    // After the command, so a bad argument stays one line; stderr, as stdout is its output.
    if writes && !matches!(result, Err(Failure::Usage(_))) {
        eprintln!(
            "jars: data directory {}",
            data_dir::absolute(&config.data_dir).display()
        );
    }
    result
}

async fn dispatch(cli: Cli, config: &Config) -> Result<(), Failure> {
    match cli.command {
        Command::Serve { .. } => unreachable!("serve is run by main"),
        Command::CheckConfig { .. } => check_config(config),
        Command::Migrate => migrate(config).await,
        Command::Keygen { force, rotate } => keygen(config, force, rotate),
        Command::User(cmd) => user(config, cmd),
        Command::Token { name, lifetime } => token(config, &name, lifetime.as_deref()).await,
        Command::Ticket {
            action: Some(TicketCommand::Revoke { jti, event }),
            ..
        } => ticket_revoke::run(config, jti.as_deref(), event.as_deref()).await,
        Command::Ticket {
            event_id,
            source,
            lifetime,
            ip,
            referer,
            max_listeners,
            url,
            action: None,
        } => {
            let binding = TicketBinding {
                ip: ip.map(|ip| ip.to_string()),
                referer,
                max_listeners,
            };
            let event_id = event_id.unwrap_or_default();
            let listen = crate::rules::placement::listens_through_jars(&config.icecast.servers)
                .then(|| node::Node::new(config, url.as_deref()).map(|n| n.api))
                .transpose()?;
            ticket::run(
                config,
                &event_id,
                source,
                lifetime.as_deref(),
                binding,
                listen.as_deref(),
            )
            .await
        }
        Command::Event(EventCommand::End { event_id }) => event_end::run(config, &event_id).await,
        Command::Event(cmd) => events::run(config, cmd).await,
        Command::Report {
            event,
            from,
            to,
            by,
            format,
        } => {
            let query = report::Query::parse(event.as_deref(), from.as_deref(), to.as_deref())
                .map_err(Failure::Usage)?;
            report::run(config, query, by, format).await
        }
        Command::Ban(cmd) => ban::run(config, cmd).await,
        Command::Completions { shell } => {
            print_completions(shell);
            Ok(())
        }
        Command::Man => print_manual(),
        Command::Status { node } => {
            node::status(&node::Node::new(config, node.url.as_deref())?).await
        }
    }
}

/// Writes the completion script for `shell` to stdout; needs no config (`main` runs it first).
pub fn print_completions(shell: clap_complete::Shell) {
    use clap::CommandFactory;
    // Into memory first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "jars", &mut script);
    out::write_bytes(&script);
}

/// Writes the manual page to stdout; needs no config (`main` runs it first).
pub fn print_manual() -> Result<(), Failure> {
    let mut page = Vec::new();
    manual::render(&mut page)
        .map_err(|e| Failure::Runtime(format!("writing the manual page: {e}")))?;
    out::write_bytes(&page);
    Ok(())
}

fn check_config(config: &Config) -> Result<(), Failure> {
    out::write_bytes(config.describe().as_bytes());
    let dir = data_dir::absolute(&config.data_dir);
    let missing = if dir.exists() {
        ""
    } else {
        " (does not exist yet: `jars serve` creates it)"
    };
    out!("{:<34}{}{missing}", "data_dir (absolute)", dir.display());
    // Configured key files must load; the generated pair is created on first `serve`.
    if config.tokens.private_key.is_some() || config.tokens.public_key.is_some() {
        setup::token_service(config)?;
        out!("{:<34}loaded", "keys");
    }
    for setting in config.placeholder_secrets() {
        eprintln!(
            "jars: warning: {setting} still holds the example config's change-me… placeholder"
        );
    }
    config.refuse_placeholder_secrets()?;
    out!("configuration OK");
    Ok(())
}

/// Creates or updates the store's schema and says what it did: a table it creates is
/// "created", not "up to date".
async fn migrate(config: &Config) -> Result<(), Failure> {
    let runtime = |e: crate::store::StoreError| Failure::Runtime(e.to_string());
    // What exists before, to tell creating from finding.
    let fresh = matches!(&config.store, StoreSettings::Sqlite { path } if !path.exists());
    let sessions_existed = match &config.store {
        StoreSettings::Sqlite { .. } => true,
        StoreSettings::Postgres(pg) => {
            crate::store::postgres::PostgresStore::table_exists(pg, "jars.listener_sessions")
                .await
                .map_err(runtime)?
        }
    };
    let report = crate::store::migrate(&config.store)
        .await
        .map_err(runtime)?;
    let sessions = crate::store::sessions::migrate(&config.store)
        .await
        .map_err(runtime)?;
    match &config.store {
        StoreSettings::Sqlite { path } if fresh => out!(
            "sqlite:{}: created the store (events, bans and revocations, listener sessions)",
            path.display()
        ),
        StoreSettings::Postgres(pg) if !sessions_existed => {
            out!("{report}");
            out!(
                "{}: created jars.listener_sessions",
                crate::config::redact_url(&pg.url)
            );
        }
        _ => {
            out!("{report}");
            out!("{sessions}");
        }
    }
    Ok(())
}

fn keygen(config: &Config, force: bool, rotate: bool) -> Result<(), Failure> {
    if config.tokens.private_key.is_some() || config.tokens.remote.is_some() {
        return Err(Failure::Usage(
            "keygen: tokens.private_key or a key URL is configured; jars only generates keys in its data_dir"
                .into(),
        ));
    }
    if rotate {
        let (retired, new) = crate::keys::rotate_pair(&config.data_dir).map_err(|e| match e {
            crate::keys::KeyError::Io { .. } => {
                Failure::Runtime(format!("{e} (nothing to rotate? run jars keygen first)"))
            }
            other => Failure::Runtime(other.to_string()),
        })?;
        out!(
            "retired key {retired} (kept in {}/ so its tokens keep verifying); new signing key {new}\n\
             send SIGHUP (systemctl reload jars) to sign with it; remove the retired file after the \
             longest token lifetime, then SIGHUP again",
            config.data_dir.join(crate::keys::RETIRED_KEYS_DIR).display()
        );
        return Ok(());
    }
    let kid = crate::keys::generate_pair(&config.data_dir, force).map_err(|e| match e {
        crate::keys::KeyError::Exists(_) => Failure::Usage(e.to_string()),
        other => Failure::Runtime(other.to_string()),
    })?;
    out!(
        "wrote {} (kid {kid}); send SIGHUP (systemctl reload jars) to sign with it",
        config
            .data_dir
            .join(crate::keys::PRIVATE_KEY_FILE)
            .display()
    );
    Ok(())
}

fn users_file(config: &Config) -> Result<UsersFile, Failure> {
    config.users_file().map(UsersFile::new).ok_or_else(|| {
        Failure::Usage(
            "user: identity.backend is myradio; manage users in MyRadio, not with jars".into(),
        )
    })
}

/// The shortest password `user add` and `user passwd` accept.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// The new password, refused when shorter than [`MIN_PASSWORD_CHARS`].
fn read_password(source: &PasswordSource) -> Result<String, Failure> {
    let pw = read_password_text(source)?;
    if pw.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Failure::Usage(format!(
            "the password is too short: at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(pw)
}

fn read_password_text(source: &PasswordSource) -> Result<String, Failure> {
    if source.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::Runtime(format!("reading the password from stdin: {e}")))?;
        let pw = line.trim_end_matches(['\n', '\r']).to_string();
        if pw.is_empty() {
            return Err(Failure::Usage(
                "--password-stdin: no password on standard input".into(),
            ));
        }
        return Ok(pw);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Usage(
            "no terminal to prompt for a password; use --password-stdin".into(),
        ));
    }
    let pw = rpassword::prompt_password("Password: ")
        .map_err(|e| Failure::Runtime(format!("reading the password: {e}")))?;
    let again = rpassword::prompt_password("Password (again): ")
        .map_err(|e| Failure::Runtime(format!("reading the password: {e}")))?;
    if pw != again {
        return Err(Failure::Usage("the passwords do not match".into()));
    }
    Ok(pw)
}

fn user(config: &Config, cmd: UserCommand) -> Result<(), Failure> {
    let file = users_file(config)?;
    match cmd {
        UserCommand::Add {
            name,
            admin,
            password,
        } => {
            let pw = read_password(&password)?;
            // Tokens are stamped on the system clock too; older ones cannot be this user's.
            let u = file.add(&name, &pw, admin, chrono::Utc::now().timestamp())?;
            out!(
                "added {} (id {}{})",
                u.name,
                u.id,
                if u.admin { ", admin" } else { "" }
            );
        }
        UserCommand::Passwd { name, password } => {
            let pw = read_password(&password)?;
            file.set_password(&name, &pw)?;
            out!("password of {name} changed");
        }
        UserCommand::Remove { name } => {
            let u = file.remove(&name)?;
            out!("removed {} (id {})", u.name, u.id);
        }
        UserCommand::Promote { name } => {
            file.set_admin(&name, true)?;
            out!("{name} is an admin");
        }
        UserCommand::Demote { name } => {
            file.set_admin(&name, false)?;
            out!("{name} is no longer an admin");
        }
        UserCommand::List => {
            data_dir::existing_users_file(config).map_err(Failure::Runtime)?;
            // Read before the header, so a broken file prints only its error.
            let users = file.users()?;
            out!("{:>6}  {:<24} ACCESS", "ID", "NAME");
            for u in users.iter() {
                let access = if u.admin { "admin" } else { "user" };
                out!("{:>6}  {:<24} {access}", u.id, u.name);
            }
        }
    }
    Ok(())
}

async fn token(config: &Config, name: &str, lifetime: Option<&str>) -> Result<(), Failure> {
    let lifetime: Option<Duration> = lifetime
        .map(|l| parse_duration("--lifetime", l))
        .transpose()?;
    if lifetime.is_some_and(|l| l.is_zero()) {
        return Err(Failure::Usage(
            "--lifetime: must be longer than zero".into(),
        ));
    }
    data_dir::existing_users_file(config).map_err(Failure::Runtime)?;
    data_dir::existing_signing_key(config).map_err(Failure::Runtime)?;
    let identity = Identity::from_settings(&config.identity)?;
    let member = identity.member(name).await.map_err(|e| match e {
        IdentityError::NoUser => Failure::Runtime(format!("no user named \"{name}\"")),
        other => other.into(),
    })?;
    let tokens = setup::token_service(config)?;
    let (token, _) = tokens
        .issue(member.id, member.access_level, lifetime)
        .map_err(|e| Failure::Runtime(format!("cannot mint a token: {e}")))?;
    out!("{token}");
    Ok(())
}

/// The event id an operator typed (a v4 UUID, with or without a leading `/`).
fn event_id(text: &str) -> Result<uuid::Uuid, Failure> {
    uuid::Uuid::try_parse(text.trim_start_matches('/'))
        .ok()
        .filter(|u| u.get_version_num() == 4)
        .ok_or_else(|| Failure::Usage(format!("\"{text}\" is not an event id (a v4 UUID)")))
}

/// Opens the configured store with its sanctions' side, which must exist already.
async fn sanctions_store(config: &Config) -> Result<crate::store::Opened, Failure> {
    data_dir::existing_store(config).map_err(Failure::Runtime)?;
    crate::store::open_with_sanctions(&config.store)
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))
}

/// Who the CLI's bans and revocations are recorded as made by: the operator, not a member.
const OPERATOR: i64 = 0;
