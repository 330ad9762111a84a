//! The command line's grammar: every command, argument and flag `jars` takes, with its help
//! text and an example, as clap derives them.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

/// The help heading of the options every command takes.
const GLOBAL: &str = "Global options";

#[derive(Debug, Parser)]
#[command(
    name = "jars",
    version,
    about = "Decides who may broadcast to, and listen to, a radio station's live events."
)]
pub struct Cli {
    /// Data directory: keys, users file, SQLite store, e.g. /var/lib/jars [default: ./jars-data]
    #[arg(
        long,
        global = true,
        env = "JARS_DATA_DIR",
        value_name = "DIR",
        help_heading = GLOBAL
    )]
    pub data_dir: Option<PathBuf>,
    /// Config file: jars TOML, or the original JARS config.json, e.g. /etc/jars/jars.toml
    #[arg(
        long,
        global = true,
        env = "JARS_CONFIG",
        value_name = "FILE",
        help_heading = GLOBAL
    )]
    pub config: Option<PathBuf>,
    /// Event store URL (postgres://… or sqlite:PATH); beats [store] url, e.g.
    /// postgres://jars@db.example/radio
    #[arg(
        long,
        global = true,
        env = "JARS_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL",
        help_heading = GLOBAL
    )]
    pub database_url: Option<String>,
    /// Log format of `serve`, e.g. json
    #[arg(
        long,
        global = true,
        env = "JARS_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        help_heading = GLOBAL
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How `serve` writes its log lines (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon
    #[command(
        after_help = "Example: jars --config /etc/jars/jars.toml serve --listen 127.0.0.1:8888"
    )]
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8888 [default: 127.0.0.1:8888; 0.0.0.0:8888 with
        /// the original config.json]
        #[arg(long, env = "JARS_LISTEN", value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Write a new RS256 key pair into the data directory
    #[command(after_help = "Example: jars --data-dir /var/lib/jars keygen --rotate")]
    Keygen {
        /// Replace an existing key pair (tokens signed with it stop verifying)
        #[arg(long, conflicts_with = "rotate")]
        force: bool,
        /// Retire the current key (tokens it signed keep verifying) and sign with a new one
        /// after the next SIGHUP
        #[arg(long)]
        rotate: bool,
    },
    /// Manage the users file
    #[command(subcommand)]
    User(UserCommand),
    /// Mint a token for an existing user (a member id with the myradio backend)
    #[command(after_help = "Example: jars token alice --lifetime 1h")]
    Token {
        /// The user's name (with the myradio backend: the member id), e.g. alice
        name: String,
        /// Token lifetime, e.g. 1h [default: tokens.lifetime]
        #[arg(long, value_name = "DURATION")]
        lifetime: Option<String>,
    },
    /// Mint a listener ticket (or with --source a guest's source ticket) for an event
    /// (operator tool); `jars ticket revoke` takes tickets back
    #[command(
        after_help = "Example: jars ticket 5e0b9230-086c-406f-a26c-13ff3a8d3880 --lifetime 2h --max-listeners 2",
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true
    )]
    Ticket {
        /// The event's id, as `jars event create` prints it (a v4 UUID), e.g.
        /// 5e0b9230-086c-406f-a26c-13ff3a8d3880
        #[arg(required = true)]
        event_id: Option<String>,
        /// A source ticket: a guest DJ's password for this event only, as its owner's
        #[arg(long, conflicts_with_all = ["ip", "referer", "max_listeners"])]
        source: bool,
        #[command(subcommand)]
        action: Option<TicketCommand>,
        /// Ticket lifetime, e.g. 2h [default: icecast.ticket_lifetime, capped by the event's life]
        #[arg(long, value_name = "DURATION")]
        lifetime: Option<String>,
        /// Bind the ticket to this listener address, e.g. 203.0.113.7
        #[arg(long, value_name = "ADDR")]
        ip: Option<std::net::IpAddr>,
        /// Only valid when the player page's Referer starts with this, e.g. https://radio.example/
        #[arg(long, value_name = "URL")]
        referer: Option<String>,
        /// At most this many simultaneous listeners on the ticket, e.g. 2
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        max_listeners: Option<u32>,
        /// With several Icecast servers (a public_url in [[icecast.servers]]) the listening URL
        /// is jars' /listen at this base URL, e.g. https://radio.example [default: the config's
        /// listen]
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Create, list and end events
    #[command(subcommand)]
    Event(EventCommand),
    /// Ban addresses or members from listening and broadcasting
    #[command(subcommand)]
    Ban(BanCommand),
    /// Load and validate the configuration, print what it resolved to
    #[command(after_help = "Example: jars --config /etc/jars/jars.toml check-config")]
    CheckConfig {
        /// Print the commented default jars.toml instead (every key, with its default)
        #[arg(long)]
        print_default: bool,
    },
    /// Create or update the event store's schema (PostgreSQL: jars.events and jars' own
    /// columns), then exit; idempotent
    #[command(after_help = "Example: jars --database-url postgres://jars@db/radio migrate")]
    Migrate,
    /// Listening report from the stored listener sessions: per event or per day, sessions,
    /// unique listeners, hours, mean session, peak listeners, first start, last end
    #[command(
        after_help = "Example: jars report --from 2026-11-01 --to 2026-11-30 --by day --format csv"
    )]
    Report {
        /// Only this event's sessions, e.g. 5e0b9230-086c-406f-a26c-13ff3a8d3880
        #[arg(long, value_name = "ID")]
        event: Option<String>,
        /// Sessions that started on or after this UTC date or time, e.g. 2026-11-01
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// Sessions that started on or before this UTC date (before this RFC 3339 time), e.g. 2026-11-30
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// One row per event (a static mount by its name), per UTC day, or per Icecast server
        #[arg(long, value_enum, default_value_t = ReportBy::Event)]
        by: ReportBy,
        /// Output format
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// Print a shell completion script to stdout
    #[command(after_help = "Example: jars completions bash > /etc/bash_completion.d/jars")]
    Completions {
        /// The shell to complete in, e.g. bash
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print what a running node reports: readiness, live mounts, listeners, key set age.
    /// Exits 0 when ready, 1 when not ready, 69 when no node answers
    #[command(after_help = "Example: jars --config /etc/jars/jars.toml status")]
    Status {
        #[command(flatten)]
        node: NodeAddress,
    },
    /// Print the manual page (roff) to stdout
    #[command(after_help = "Example: jars man | gzip > /usr/share/man/man1/jars.1.gz")]
    Man,
}

/// Where a running `jars serve` answers, for the commands that ask it.
#[derive(Debug, ClapArgs)]
pub struct NodeAddress {
    /// The node's base URL, e.g. http://127.0.0.1:8888 [default: from the config's listen, and
    /// metrics_listen for /metrics]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// How `jars report` groups sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportBy {
    Event,
    Day,
    /// Per Icecast server (`server:port`): where the station was listened to
    Server,
}

/// How `jars report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns, for people.
    Table,
    /// Comma-separated, with a header line.
    Csv,
    /// One JSON array of objects.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (prompts for the password unless --password-stdin)
    #[command(after_help = "Example: jars user add alice --admin")]
    Add {
        /// The user's name: 1-64 of letters, digits, . _ - @ (e.g. alice)
        name: String,
        /// Give the user the admin access level
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Change a user's password
    #[command(after_help = "Example: jars user passwd alice")]
    Passwd {
        /// The user's name, e.g. alice
        name: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Remove a user (their tokens stop working at once)
    #[command(after_help = "Example: jars user remove alice")]
    Remove {
        /// The user's name, e.g. alice
        name: String,
    },
    /// Give a user the admin access level
    #[command(after_help = "Example: jars user promote alice")]
    Promote {
        /// The user's name, e.g. alice
        name: String,
    },
    /// Withdraw a user's admin access level (their tokens lose it at once)
    #[command(after_help = "Example: jars user demote alice")]
    Demote {
        /// The user's name, e.g. alice
        name: String,
    },
    /// List users
    #[command(after_help = "Example: jars --data-dir /var/lib/jars user list")]
    List,
}

#[derive(Debug, ClapArgs)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub(super) password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Create an event owned by a user; prints its id
    #[command(
        after_help = "Example: jars event create --owner alice --title 'Drive time' --private"
    )]
    Create {
        /// The owner's user name (with the myradio backend: member id), e.g. alice
        #[arg(long, value_name = "NAME")]
        owner: String,
        /// The event's title, 1 to 255 characters, e.g. 'Drive time'
        #[arg(long)]
        title: String,
        /// What the event is, up to 255 characters, e.g. 'Weekday news and music'
        #[arg(long, default_value = "")]
        description: String,
        /// Only the owner, admins and holders of a listener ticket may see it and listen
        #[arg(long)]
        private: bool,
        /// At most this many listeners at once over every server and node, e.g. 500
        /// (change it later with `jars event max-listeners`)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(i32::MAX)))]
        max_listeners: Option<u32>,
    },
    /// Set or remove an event's own listener cap; listeners already in stay
    #[command(
        after_help = "Example: jars event max-listeners 5e0b9230-086c-406f-a26c-13ff3a8d3880 500"
    )]
    MaxListeners {
        /// The event's id (a v4 UUID), e.g. 5e0b9230-086c-406f-a26c-13ff3a8d3880
        event_id: String,
        /// The most listeners at once over every server and node, or `none`, e.g. 500
        #[arg(value_name = "N|none")]
        max: String,
    },
    /// End an event now: it expires, and its source and listeners are dropped
    #[command(after_help = "Example: jars event end 5e0b9230-086c-406f-a26c-13ff3a8d3880")]
    End {
        /// The event's id (a v4 UUID), e.g. 5e0b9230-086c-406f-a26c-13ff3a8d3880
        event_id: String,
    },
    /// List unexpired events (all of them with --all): owner, whether live and the listeners
    /// now, as the running node reports them (unknown when it does not answer)
    #[command(after_help = "Example: jars event list --all")]
    List {
        /// Include expired events
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        node: NodeAddress,
    },
}

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// Revoke one ticket by its id, or every ticket of an event issued until now; listeners
    /// and sources holding them are dropped
    #[command(
        after_help = "Example: jars ticket revoke --event 5e0b9230-086c-406f-a26c-13ff3a8d3880"
    )]
    Revoke {
        /// The ticket's id (its `jti` claim), e.g. 0b7e5c2a-3f0e-4f7c-9f43-5d1f2e8a9c10
        #[arg(required_unless_present = "event", conflicts_with = "event")]
        jti: Option<String>,
        /// Revoke every ticket of this event issued until now, e.g.
        /// 5e0b9230-086c-406f-a26c-13ff3a8d3880
        #[arg(long, value_name = "EVENT_ID")]
        event: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BanCommand {
    /// Ban an address, CIDR range or member; their live sessions are dropped
    #[command(
        after_help = "Example: jars ban add --ip 203.0.113.0/24 --for 24h --reason 'stream ripping'"
    )]
    Add {
        /// An address or CIDR range, e.g. 203.0.113.7 or 203.0.113.0/24
        #[arg(
            long,
            value_name = "ADDR_OR_CIDR",
            required_unless_present = "member",
            conflicts_with = "member"
        )]
        ip: Option<String>,
        /// A member's user name or numeric id, e.g. alice
        #[arg(long, value_name = "NAME_OR_ID")]
        member: Option<String>,
        /// Only from this event, e.g. 5e0b9230-086c-406f-a26c-13ff3a8d3880 [default: every
        /// mount]
        #[arg(long, value_name = "EVENT_ID")]
        event: Option<String>,
        /// How long the ban lasts, e.g. 24h [default: until removed]
        #[arg(long = "for", value_name = "DURATION")]
        length: Option<String>,
        /// Why, up to 255 characters, e.g. 'stream ripping'
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// List the bans in force
    #[command(after_help = "Example: jars ban list")]
    List,
    /// Lift a ban by its id, as `jars ban list` shows it
    #[command(after_help = "Example: jars ban remove 3")]
    Remove {
        /// The ban's id, e.g. 3
        id: i64,
    },
}
