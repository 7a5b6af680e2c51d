//! Configuration: one struct per command, every setting a flag with an env var.
//!
//! `.env` is read before parsing (see `main.rs`), so a setting comes from, in order of
//! precedence, the command line, the environment, `.env`, then the default here.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

/// The SQLite file used when `DATABASE_URL` is not set: created and migrated on first run.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://triage.db?mode=rwc";

/// Triage: a GraphQL issue tracker service.
#[derive(Debug, Parser)]
#[command(name = "triage", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Settings for `serve`, which is also what a bare `triage` runs.
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the GraphQL API (the default).
    Serve(Box<Config>),
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Print a new random token key (PASERK `k4.local.`), for `TRIAGE_TOKEN_KEY`.
    TokenKey,
    /// Apply or inspect database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// Manage users without going through the API.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the last applied migration.
    Down,
    /// List the migrations and whether each is applied.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a user (an admin unless `--member`), reading the password from
    /// `TRIAGE_NEW_USER_PASSWORD`.
    Create(UserCreateArgs),
}

#[derive(Debug, Args)]
pub struct UserCreateArgs {
    #[arg(long)]
    pub username: String,
    #[arg(long)]
    pub email: String,
    #[arg(long, default_value = "")]
    pub first_name: String,
    #[arg(long, default_value = "")]
    pub last_name: String,
    /// The password; prefer the environment variable, which stays out of shell history.
    #[arg(long, env = "TRIAGE_NEW_USER_PASSWORD", hide_env_values = true)]
    pub password: Secret,
    /// Create an ordinary member rather than an admin.
    #[arg(long)]
    pub member: bool,
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// Database URL: `sqlite://PATH?mode=rwc` (embedded) or `postgres://USER@HOST/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: Secret,

    /// Largest number of pooled database connections; by default 4 on SQLite (one
    /// writer at a time, and each connection is a thread with its own page cache)
    /// and 16 on PostgreSQL.
    #[arg(long, env = "TRIAGE_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,

    /// PostgreSQL's `statement_timeout` for every connection: a statement running
    /// longer is cancelled by the server. `0s` turns it off.
    #[arg(long, env = "TRIAGE_DB_STATEMENT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub db_statement_timeout: Duration,
}

/// Everything `triage serve` needs.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "TRIAGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseConfig,

    /// PASERK `k4.local.` key that seals access tokens. Unset with SQLite: generated on
    /// first run and kept beside the database file. Required with PostgreSQL.
    #[arg(long, env = "TRIAGE_TOKEN_KEY", hide_env_values = true)]
    pub token_key: Option<Secret>,

    /// Lifetime of an access token.
    #[arg(long, env = "TRIAGE_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub access_token_ttl: Duration,

    /// Lifetime of a refresh token.
    #[arg(long, env = "TRIAGE_REFRESH_TOKEN_TTL", default_value = "30d", value_parser = humantime::parse_duration)]
    pub refresh_token_ttl: Duration,

    /// Issuer (`iss`) and audience (`aud`) written into and required of access tokens.
    #[arg(long, env = "TRIAGE_TOKEN_ISSUER", default_value = "triage")]
    pub token_issuer: String,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "TRIAGE_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Deepest accepted field nesting (introspection's `ofType` chain does not count).
    #[arg(long, env = "TRIAGE_MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,

    /// Most nodes one request may return in the worst case: every field counts once
    /// per time it can be resolved, and a connection's children `first`/`last` times
    /// (20 when absent). Refused with `QUERY_TOO_COMPLEX`.
    #[arg(long, env = "TRIAGE_MAX_NODES", default_value_t = 10_000)]
    pub max_nodes: u64,

    /// Most mutation root fields (aliases included) in one request, batch included.
    #[arg(long, env = "TRIAGE_MAX_ROOT_FIELDS", default_value_t = 20)]
    pub max_root_fields: u64,

    /// Whether the schema can be introspected (`__schema`, `__type`), and unknown
    /// fields get "Did you mean ...?" suggestions.
    #[arg(long, env = "TRIAGE_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,

    /// Rate limits: `on`, or `off` (for benchmarks only).
    #[arg(long, env = "TRIAGE_RATE_LIMIT", default_value = "on")]
    pub rate_limit: Switch,

    /// Points per hour of a signed-in caller: a query costs its nodes / 100 (at least
    /// one), a mutation five per root field.
    #[arg(long, env = "TRIAGE_RATE_LIMIT_POINTS", default_value_t = 20_000)]
    pub rate_limit_points: u64,

    /// Points per hour of an anonymous caller, counted by client address.
    #[arg(long, env = "TRIAGE_RATE_LIMIT_ANONYMOUS_POINTS", default_value_t = 2_000)]
    pub rate_limit_anonymous_points: u64,

    /// Proxies whose `X-Forwarded-For` names the client: comma-separated addresses
    /// or CIDR blocks (`10.0.0.0/8`). Empty: the peer address is the client.
    #[arg(long, env = "TRIAGE_TRUSTED_PROXIES", default_value = "", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// How long a client has to send a request's headers.
    #[arg(long, env = "TRIAGE_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// How long a request's body may take to arrive, and then the request to wait for
    /// a place and run its operations; an operation still running then is cancelled
    /// and its transaction rolled back (one that has begun to commit gets as long
    /// again to finish, and is answered with what it did).
    #[arg(long, env = "TRIAGE_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Most GraphQL requests served at once; more wait their turn.
    #[arg(long, env = "TRIAGE_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,

    /// Most queries running at once; more wait their turn before they start, so a
    /// query waiting for a database connection holds its place in a queue rather
    /// than an execution half built (tens of KiB each). By default eight a CPU core:
    /// enough to keep the cores and the database busy while queries wait on it.
    #[arg(long, env = "TRIAGE_MAX_CONCURRENT_QUERIES")]
    pub max_concurrent_queries: Option<usize>,

    /// How long a WebSocket has to send `connection_init` (else closed with 4408).
    #[arg(long, env = "TRIAGE_WS_INIT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub ws_init_timeout: Duration,

    /// Most subscriptions open at once on one WebSocket.
    #[arg(long, env = "TRIAGE_WS_MAX_SUBSCRIPTIONS", default_value_t = 100)]
    pub ws_max_subscriptions: usize,

    /// Most operations accepted in one batched request.
    #[arg(long, env = "TRIAGE_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,

    /// Origins allowed to call the API from a browser (CORS): a comma-separated list
    /// of `https://app.example.com` origins, or `*` for any. Empty: none.
    #[arg(long, env = "TRIAGE_CORS_ORIGINS", default_value = "", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Parsed documents kept, so a repeated query skips the parser; as many
    /// automatic persisted query (Apollo APQ) hashes are kept too.
    #[arg(long, env = "TRIAGE_APQ_CACHE_SIZE", default_value_t = 1000)]
    pub apq_cache_size: usize,

    /// Bytes each of those two caches may hold (a parsed document counts as eight
    /// times its text).
    #[arg(long, env = "TRIAGE_DOCUMENT_CACHE_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub document_cache_bytes: usize,

    /// Answer the queries a plan covers (an issue, a page of issues and their
    /// people) without async-graphql's executor: the same bytes, in a fraction of the
    /// CPU. `false` sends every operation through the executor.
    #[arg(long, env = "TRIAGE_DIRECT_ANSWERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub direct_answers: bool,

    /// Changes a subscriber may fall behind before its subscription is closed.
    #[arg(long, env = "TRIAGE_SUBSCRIPTION_BUFFER", default_value_t = 256)]
    pub subscription_buffer: usize,

    /// Login attempts for one account from one client address, within
    /// TRIAGE_LOGIN_WINDOW, before further ones are refused (`RATE_LIMITED`) without
    /// hashing; a successful login clears the count.
    #[arg(long, env = "TRIAGE_LOGIN_MAX_FAILURES", default_value_t = 10)]
    pub login_max_failures: u32,

    /// Login attempts for one account from all addresses together, within
    /// TRIAGE_LOGIN_WINDOW, before further ones are refused: looser than the
    /// per-address limit, so one address cannot lock the owner out.
    #[arg(long, env = "TRIAGE_LOGIN_MAX_ACCOUNT_FAILURES", default_value_t = 100)]
    pub login_max_account_failures: u32,

    /// The window login attempts are counted in.
    #[arg(long, env = "TRIAGE_LOGIN_WINDOW", default_value = "15m", value_parser = humantime::parse_duration)]
    pub login_window: Duration,

    /// Most password hashes computed at once (each a thread, and 7 MiB); further
    /// logins wait their turn. By default half the CPU cores, at least one.
    #[arg(long, env = "TRIAGE_MAX_CONCURRENT_HASHES")]
    pub max_concurrent_hashes: Option<usize>,

    /// How long a login (or any password check or hash) waits for a hashing thread;
    /// past it, it is answered at once with `RATE_LIMITED` and `retryAfter`, so a
    /// login storm is shed rather than queued for seconds.
    #[arg(long, env = "TRIAGE_LOGIN_QUEUE_TIMEOUT", default_value = "250ms", value_parser = humantime::parse_duration)]
    pub login_queue_timeout: Duration,

    /// How long after an assignment the assignee is emailed (humantime: `12m`, `3s`).
    #[arg(long, env = "TRIAGE_ASSIGNMENT_DELAY", default_value = "12m", value_parser = humantime::parse_duration)]
    pub assignment_delay: Duration,

    /// The key of the project `createIssue` files into when it names none, and which
    /// new accounts join as MEMBER under open registration; made (PUBLIC, "General")
    /// at start-up if it does not exist.
    #[arg(long, env = "TRIAGE_DEFAULT_PROJECT", default_value = "TRIAGE")]
    pub default_project: String,

    /// Who may create an account through the API: `open` (anyone, with `register`;
    /// new accounts join the default project), `invite` (only with an invitation,
    /// through `acceptInvitation`) or `closed` (nobody: only `triage user create`).
    #[arg(long, env = "TRIAGE_REGISTRATION", default_value = "open")]
    pub registration: Registration,

    /// How long a deleted issue stays in the trash, restorable, before it is purged.
    #[arg(long, env = "TRIAGE_TRASH_RETENTION", default_value = "30d", value_parser = humantime::parse_duration)]
    pub trash_retention: Duration,

    /// How often every user gets a digest of their assigned issues (`24h`, `10h`, `10s`).
    #[arg(long, env = "TRIAGE_DIGEST_EVERY", default_value = "24h", value_parser = humantime::parse_duration)]
    pub digest_every: Duration,

    /// A cron line (with seconds, UTC) for the digest, used instead of the interval.
    #[arg(long, env = "TRIAGE_DIGEST_CRON")]
    pub digest_cron: Option<String>,

    /// Send a digest to users with nothing assigned, too.
    #[arg(long, env = "TRIAGE_DIGEST_INCLUDE_EMPTY", default_value_t = false, action = clap::ArgAction::Set)]
    pub digest_include_empty: bool,

    /// SMTP server: `smtp://HOST:PORT`, `smtps://USER:PASS@HOST`, or
    /// `smtp://HOST?tls=required` for STARTTLS. Unset: emails are written to TRIAGE_MAIL_DIR.
    #[arg(long, env = "TRIAGE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,

    /// Where emails are written as `.eml` files when no SMTP server is set.
    #[arg(long, env = "TRIAGE_MAIL_DIR", default_value = "./mail")]
    pub mail_dir: PathBuf,

    /// The sender of every email.
    #[arg(long, env = "TRIAGE_MAIL_FROM", default_value = "Triage <triage@localhost>")]
    pub mail_from: String,

    /// Attempts per email before it is marked failed.
    #[arg(long, env = "TRIAGE_MAIL_MAX_ATTEMPTS", default_value_t = 8)]
    pub mail_max_attempts: u32,

    /// Delay before the first retry of a failed email; each further one doubles.
    #[arg(long, env = "TRIAGE_MAIL_RETRY_BASE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub mail_retry_base: Duration,

    /// Connect and send timeout for SMTP.
    #[arg(long, env = "TRIAGE_MAIL_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub mail_timeout: Duration,

    /// Most emails sent at once (and pooled SMTP connections).
    #[arg(long, env = "TRIAGE_MAIL_CONCURRENCY", default_value_t = 16)]
    pub mail_concurrency: usize,

    /// Base URL of the web app, for links in emails.
    #[arg(long, env = "TRIAGE_PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    pub public_url: String,

    /// Longest time the notice dispatcher goes without re-reading the outbox.
    #[arg(long, env = "TRIAGE_NOTICE_SWEEP", default_value = "30s", value_parser = humantime::parse_duration)]
    pub notice_sweep: Duration,

    /// Log filter, in `tracing` env-filter syntax.
    #[arg(long, env = "TRIAGE_LOG", default_value = "info")]
    pub log: String,

    /// Log line format: `text` (for people; coloured only on a terminal, and never
    /// with `NO_COLOR` set) or `json` (one object a line, for log collectors).
    #[arg(long, env = "TRIAGE_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

impl Config {
    /// Rejects settings out of any sensible range (which would also overflow the
    /// date arithmetic they feed).
    pub fn validate(&self) -> anyhow::Result<()> {
        const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
        let spans = [
            ("TRIAGE_ACCESS_TOKEN_TTL", self.access_token_ttl, Duration::from_secs(1)),
            ("TRIAGE_REFRESH_TOKEN_TTL", self.refresh_token_ttl, Duration::from_secs(1)),
            ("TRIAGE_ASSIGNMENT_DELAY", self.assignment_delay, Duration::ZERO),
            ("TRIAGE_DIGEST_EVERY", self.digest_every, Duration::from_secs(1)),
            ("TRIAGE_MAIL_RETRY_BASE", self.mail_retry_base, Duration::ZERO),
            ("TRIAGE_MAIL_TIMEOUT", self.mail_timeout, Duration::from_millis(1)),
            ("TRIAGE_NOTICE_SWEEP", self.notice_sweep, Duration::from_millis(10)),
            ("TRIAGE_HEADER_TIMEOUT", self.header_timeout, Duration::from_millis(100)),
            ("TRIAGE_REQUEST_TIMEOUT", self.request_timeout, Duration::from_millis(100)),
            ("TRIAGE_WS_INIT_TIMEOUT", self.ws_init_timeout, Duration::from_millis(100)),
            ("TRIAGE_LOGIN_WINDOW", self.login_window, Duration::from_secs(1)),
            ("TRIAGE_TRASH_RETENTION", self.trash_retention, Duration::from_secs(1)),
            ("TRIAGE_LOGIN_QUEUE_TIMEOUT", self.login_queue_timeout, Duration::ZERO),
        ];
        for (name, value, least) in spans {
            anyhow::ensure!(
                (least..=CENTURY).contains(&value),
                "{name} must be between {} and 100 years",
                humantime::format_duration(least)
            );
        }
        anyhow::ensure!(self.login_max_failures >= 1, "TRIAGE_LOGIN_MAX_FAILURES must be at least 1");
        anyhow::ensure!(
            self.login_max_account_failures >= 1,
            "TRIAGE_LOGIN_MAX_ACCOUNT_FAILURES must be at least 1"
        );
        anyhow::ensure!(self.mail_concurrency >= 1, "TRIAGE_MAIL_CONCURRENCY must be at least 1");
        anyhow::ensure!(
            (1..=1_000_000).contains(&self.subscription_buffer),
            "TRIAGE_SUBSCRIPTION_BUFFER must be between 1 and 1000000"
        );
        anyhow::ensure!(
            self.max_concurrent_requests >= 1,
            "TRIAGE_MAX_CONCURRENT_REQUESTS must be at least 1"
        );
        anyhow::ensure!(
            self.max_concurrent_queries != Some(0),
            "TRIAGE_MAX_CONCURRENT_QUERIES must be at least 1"
        );
        anyhow::ensure!(self.max_nodes >= 1, "TRIAGE_MAX_NODES must be at least 1");
        anyhow::ensure!(self.max_root_fields >= 1, "TRIAGE_MAX_ROOT_FIELDS must be at least 1");
        Ok(())
    }

    /// The file an embedded database lives in, when the URL names one.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.database.sqlite_path()
    }

    /// Queries run at once: as configured, or eight a CPU core.
    pub fn concurrent_queries(&self) -> usize {
        self.max_concurrent_queries.unwrap_or(8 * cores())
    }

    /// Password hashes computed at once: as configured, or half the CPU cores.
    pub fn concurrent_hashes(&self) -> usize {
        self.max_concurrent_hashes.unwrap_or(cores() / 2).max(1)
    }
}

/// The CPU cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl DatabaseConfig {
    /// The pool size: as configured, or the default for the database.
    pub fn max_connections(&self) -> u32 {
        let default = if self.is_sqlite() { 4 } else { 16 };
        self.db_max_connections.unwrap_or(default).max(1)
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.expose().starts_with("sqlite:")
    }

    /// The file an SQLite URL names; `None` for PostgreSQL and in-memory databases.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.database_url.expose().strip_prefix("sqlite:")?;
        let rest = rest.trim_start_matches("//");
        let path = rest.split('?').next().unwrap_or_default();
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }
}

/// A setting that is `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// Who may create an account through the API (`TRIAGE_REGISTRATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Registration {
    /// Anyone, with `register`.
    Open,
    /// Only someone invited to a project, with `acceptInvitation`.
    Invite,
    /// Nobody: accounts are made with `triage user create`.
    Closed,
}

/// How log lines are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `tracing`'s human-readable lines: time, level, spans with their fields, message.
    Text,
    /// One JSON object a line: `timestamp`, `level`, `target`, `message` and the
    /// event's fields at the top level, and `spans`, outermost first, each with its
    /// `name` and fields (the request's carries `request_id`).
    Json,
}

/// A value that must never reach a log: `Debug` prints a placeholder, and there is no
/// `Display`, so it cannot be formatted into a message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(url: &str) -> DatabaseConfig {
        DatabaseConfig {
            database_url: Secret::new(url),
            db_max_connections: Some(1),
            db_statement_timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn sqlite_path_is_read_from_the_url() {
        assert_eq!(database(DEFAULT_DATABASE_URL).sqlite_path(), Some(PathBuf::from("triage.db")));
        assert_eq!(
            database("sqlite:///var/lib/triage/t.db").sqlite_path(),
            Some(PathBuf::from("/var/lib/triage/t.db"))
        );
        assert_eq!(database("sqlite::memory:").sqlite_path(), None);
        assert_eq!(database("postgres://localhost/triage").sqlite_path(), None);
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("k4.local.hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }

    #[test]
    fn digest_intervals_are_humantime() {
        for (text, seconds) in [("10s", 10), ("10h", 36_000), ("24h", 86_400)] {
            let cli = Cli::try_parse_from(["triage", "--digest-every", text]).map_err(|e| e.to_string());
            assert_eq!(cli.map(|cli| cli.serve.digest_every), Ok(Duration::from_secs(seconds)), "{text}");
        }
    }

    #[test]
    fn the_log_format_is_text_unless_json_is_asked_for() {
        let format = |args: &[&str]| Cli::try_parse_from(args).map(|cli| cli.serve.log_format).ok();
        assert_eq!(format(&["triage"]), Some(LogFormat::Text));
        assert_eq!(format(&["triage", "--log-format", "json"]), Some(LogFormat::Json));
        assert_eq!(format(&["triage", "--log-format", "xml"]), None);
    }

    #[test]
    fn cli_parses_with_defaults() {
        let cli = Cli::try_parse_from(["triage"]).map_err(|e| e.to_string());
        assert!(cli.is_ok(), "{cli:?}");
    }
}
