//! Wiring: config -> database -> migrations -> application state (`app.rs`) -> jobs
//! -> schema -> router -> serve.
//!
//! [`Application::build`] binds the listener first, so a test can ask for port 0 and
//! read the port back, and gets the very router, database and services `main` runs.
//! [`Application::build_with`] lets a test put its own clock and an in-memory outbox
//! in ([`Overrides`]); nothing else differs.

use std::{future::Future, net::SocketAddr, sync::Arc, sync::atomic::Ordering, time::Duration};

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait as _};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use tokio::net::TcpListener;

use crate::{
    app::AppState,
    auth::{PasswordHasher, TokenKeys},
    clock::{Clock, Timer},
    config::Switch,
    config::{Config, DatabaseConfig},
    domain::{self, logins::LoginLimits, notices::Outbox, values::ProjectKey},
    events::EventBus,
    graphql::{Admission, AdmissionLimits, Budgets, Documents, Gate, build_schemas, sdl},
    http::{HttpState, Metrics, TrustedProxies, router},
    jobs::{DigestSchedule, Dispatcher, DispatcherConfig, Jobs, JobsConfig},
    mail::{MailConfig, Mailer, MemoryMail, Postman, Templates},
};

/// What a test puts in place of the real thing; `main` runs with the defaults. Not
/// settings: nothing from flags or the environment reaches them.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The clock the jobs read and notices are scheduled by: the system's by default,
    /// a [`crate::clock::ManualClock`] in tests.
    pub clock: Clock,
    /// When set, emails are kept here instead of going over SMTP or into files.
    pub mail: Option<MemoryMail>,
}

/// The PostgreSQL channel issue events travel on between replicas.
const EVENT_CHANNEL: &str = "triage_issue_events";

/// A built, bound, not yet serving Triage.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    stopping: tokio::sync::watch::Sender<bool>,
    operations: tokio_util::task::TaskTracker,
    router: axum::Router,
    services: Arc<AppState>,
    jobs: Jobs,
    header_timeout: Duration,
    /// SQLite's connection for writes, kept while the server runs.
    _writer: Option<domain::KeptWriter>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Overrides::default()).await
    }

    /// Like [`Self::build`], with a test's clock and mail.
    pub async fn build_with(config: Config, overrides: Overrides) -> anyhow::Result<Self> {
        config.validate()?;
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let tokens = token_keys(&config)?;
        let metrics = Arc::new(Metrics::default());
        let db = connect(&config.database, Some(metrics.clone())).await?;
        Migrator::up(&db, None).await.context("applying database migrations")?;
        let writer = keep_sqlite_writer(&config.database, &db, &metrics).await?;
        let default_key = ProjectKey::parse(config.default_project.clone(), "TRIAGE_DEFAULT_PROJECT")
            .map_err(|err| anyhow::anyhow!("TRIAGE_DEFAULT_PROJECT: {err}"))?;
        let default_project = domain::projects::ensure_default(&db, &default_key)
            .await
            .map_err(|err| anyhow::anyhow!("making the default project: {err:?}"))?;
        let hasher = PasswordHasher::new(config.concurrent_hashes(), config.login_queue_timeout)?;
        // The dispatcher sleeps on this timer, and every commit that schedules a notice
        // wakes it through the outbox.
        let dispatcher_timer = overrides.clock.timer();
        let outbox = Outbox::new(config.assignment_delay, overrides.clock.clone(), dispatcher_timer.handle());
        // The jobs have a pool of their own: a burst of mail cannot starve requests of
        // connections, and `/metrics` counts the statements requests cost, alone.
        let jobs_database = DatabaseConfig { db_max_connections: Some(4), ..config.database.clone() };
        let jobs_db = connect(&jobs_database, None).await?;
        let events = if config.database.is_sqlite() {
            EventBus::local(config.subscription_buffer)
        } else {
            EventBus::postgres(
                config.database.database_url.expose(),
                EVENT_CHANNEL,
                config.subscription_buffer,
            )
            .await?
        };
        let mailer = mailer(&config, overrides.mail)?;
        let postman = Postman {
            mailer: mailer.clone(),
            templates: templates()?,
            public_url: config.public_url.clone(),
        };
        let jobs = start_jobs(&config, jobs_db, outbox.clone(), dispatcher_timer, mailer).await?;
        let services = Arc::new(AppState {
            db,
            tokens,
            hasher,
            refresh_token_ttl: config.refresh_token_ttl,
            outbox,
            events,
            logins: LoginLimits {
                per_client: config.login_max_failures,
                per_account: config.login_max_account_failures,
                window: config.login_window,
            },
            default_project: default_project.id,
            trash_retention: config.trash_retention,
            registration: config.registration,
            postman,
        });
        let (schema, ws_schema) = build_schemas(services.clone(), config.introspection);
        let limits = AdmissionLimits {
            max_nodes: config.max_nodes,
            max_depth: config.max_query_depth,
            max_root_fields: config.max_root_fields,
            introspection: config.introspection,
        };
        let gate = Gate {
            documents: Documents::new(
                config.apq_cache_size,
                config.document_cache_bytes,
                config.direct_answers,
            ),
            admission: Admission::new(&sdl(), limits)?,
            budgets: Budgets::new(
                config.rate_limit == Switch::On,
                config.rate_limit_points,
                config.rate_limit_anonymous_points,
            ),
        };
        let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
        let operations = tokio_util::task::TaskTracker::new();
        let state = HttpState {
            schema,
            ws_schema,
            gate: Arc::new(gate),
            app: services.clone(),
            metrics,
            max_batch: config.max_batch,
            proxies: Arc::new(TrustedProxies::parse(&config.trusted_proxies)?),
            request_timeout: config.request_timeout,
            running: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_requests)),
            queries: Arc::new(tokio::sync::Semaphore::new(config.concurrent_queries())),
            max_message_bytes: config.max_body_bytes,
            ws_init_timeout: config.ws_init_timeout,
            ws_max_subscriptions: config.ws_max_subscriptions,
            stopping: stopping_rx,
            operations: operations.clone(),
        };
        let router = router(state, config.max_body_bytes, &config.cors_origins)?;
        Ok(Self {
            listener,
            stopping,
            operations,
            router,
            services,
            jobs,
            header_timeout: config.header_timeout,
            _writer: writer,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn port(&self) -> anyhow::Result<u16> {
        Ok(self.local_addr()?.port())
    }

    /// How many subscriptions are live on this server, as it changes: a subscription
    /// counts from the moment it would receive a change that commits.
    pub fn live_subscriptions(&self) -> tokio::sync::watch::Receiver<usize> {
        self.services.events.live_receivers()
    }

    /// Serves until SIGINT or SIGTERM, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then drains in-flight requests.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        tracing::info!(address = %self.local_addr()?, "serving GraphQL on /graphql");
        let stopping = self.stopping;
        // Open WebSockets would hold the drain up forever: they are told to close.
        let shutdown = async move {
            shutdown.await;
            stopping.send_replace(true);
        };
        serve(self.listener, self.router, self.header_timeout, shutdown).await;
        // Operations whose clients hung up run on; let them finish with the pool open.
        self.operations.close();
        self.operations.wait().await;
        self.jobs.shutdown().await;
        self.services.events.shutdown();
        self.services.db.clone().close().await.context("closing the database pool")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// How long open connections get to finish once the server stops accepting.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Serves HTTP/1 and HTTP/2 on `listener` until `shutdown`, then drains.
///
/// Not `axum::serve`, which installs no timer: hyper's header-read timeout needs one,
/// and without it a client that never finishes its headers holds a connection for
/// ever. Each request carries its peer's address (`ConnectInfo`).
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, most likely: let some close.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Each response and WebSocket message goes out when written. With Nagle, a
        // small write waits for the peer to acknowledge the one before, and a peer
        // that only listens (a subscriber) acknowledges after its delayed-ACK timer:
        // about 40 ms an event.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, %peer, "setting TCP_NODELAY failed");
        }
        let service = router.clone().map_request(move |mut request: axum::extract::Request<_>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            request
        });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the drain deadline were dropped");
    }
}

/// The mailer: a test's memory, or SMTP, or `.eml` files.
fn mailer(config: &Config, memory_mail: Option<MemoryMail>) -> anyhow::Result<Mailer> {
    match memory_mail {
        Some(memory) => Mailer::in_memory(memory, &config.mail_from),
        None => Mailer::new(&MailConfig {
            smtp_url: config.smtp_url.clone(),
            mail_dir: config.mail_dir.clone(),
            from: config.mail_from.clone(),
            timeout: config.mail_timeout,
            pool_size: config.mail_concurrency as u32,
        }),
    }
}

fn templates() -> anyhow::Result<Templates> {
    Templates::new().map_err(|err| anyhow::anyhow!("loading the email templates: {err}"))
}

/// Starts the notice dispatcher (sleeping on `timer`) and the scheduled jobs.
async fn start_jobs(
    config: &Config,
    db: DatabaseConnection,
    outbox: Outbox,
    timer: Timer,
    mailer: Mailer,
) -> anyhow::Result<Jobs> {
    let dispatcher = Dispatcher::new(
        db.clone(),
        &outbox,
        timer,
        mailer,
        templates()?,
        DispatcherConfig {
            public_url: config.public_url.clone(),
            max_attempts: config.mail_max_attempts.max(1),
            retry_base: config.mail_retry_base,
            // A batch is two rounds of sends, each email within a few SMTP timeouts.
            lease: Duration::from_secs(120).max(config.mail_timeout.saturating_mul(20)),
            concurrency: config.mail_concurrency,
            sweep_every: config.notice_sweep,
            digest_include_empty: config.digest_include_empty,
        },
    );
    let digest = match &config.digest_cron {
        Some(cron) => DigestSchedule::Cron(cron.clone()),
        None => DigestSchedule::Every(config.digest_every),
    };
    let jobs_config = JobsConfig {
        digest,
        digest_include_empty: config.digest_include_empty,
        login_window: config.login_window,
        trash_retention: config.trash_retention,
    };
    Jobs::start(db, outbox, dispatcher, jobs_config).await
}

/// Each SQLite connection's page cache, in SQLite's spelling (negative: KiB), in
/// place of SQLite's 2,000 KiB: pages it does not hold come from the operating
/// system's file cache, which every connection shares. With the default, the page
/// caches were a fifth of the server's RSS under load (four API and up to four jobs
/// connections, each filling its own 2 MiB with much the same pages); at 256 KiB,
/// 64 pages, a write's pages still fit, and reads measured no slower.
const SQLITE_CACHE_SIZE: &str = "-256";

/// On an SQLite file, opens the one connection every write goes through (see
/// [`domain::keep_writer`]); its statements count in `/metrics` as the pool's do.
async fn keep_sqlite_writer(
    config: &DatabaseConfig,
    db: &DatabaseConnection,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Option<domain::KeptWriter>> {
    let on_file = config.sqlite_path().is_some() && !config.database_url.expose().contains("mode=memory");
    if !on_file {
        return Ok(None);
    }
    let writer_config = DatabaseConfig { db_max_connections: Some(1), ..config.clone() };
    let writer = connect(&writer_config, Some(metrics.clone())).await?;
    Ok(domain::keep_writer(db, writer))
}

/// Opens the database pool. SQLite runs in WAL mode with foreign keys on, a busy
/// timeout, `synchronous=NORMAL` (durable at every checkpoint, fast per commit) and
/// a small page cache ([`SQLITE_CACHE_SIZE`]).
pub async fn connect(
    config: &DatabaseConfig,
    metrics: Option<Arc<Metrics>>,
) -> anyhow::Result<DatabaseConnection> {
    let url = config.database_url.expose();
    // Every connection to `sqlite::memory:` is a database of its own: keep just one.
    let max_connections = if url.contains(":memory:") { 1 } else { config.max_connections() };
    let statement_timeout = config.db_statement_timeout;
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    // sqlx pings a connection every time it leaves the pool: on SQLite a round trip to
    // the connection's thread before every statement, a twelfth of a read's CPU. An
    // SQLite connection is a file handle and does not go stale; a PostgreSQL one can
    // (a restart, a proxy's idle cut), so it is pinged after a quiet half-minute.
    if config.is_sqlite() {
        options.test_before_acquire(false);
    } else {
        options.test_before_acquire_if_idle_for(Duration::from_secs(30));
    }
    options
        .map_sqlx_postgres_opts(move |opts| {
            // A statement that runs past the request timeout is stopped by the server.
            let millis = statement_timeout.as_millis().to_string();
            opts.options([("statement_timeout", millis)])
        })
        .map_sqlx_sqlite_opts(|opts| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .pragma("cache_size", SQLITE_CACHE_SIZE)
        });
    let mut db = Database::connect(options).await.context("connecting to the database")?;
    if let Some(metrics) = metrics {
        db.set_metric_callback(move |_| {
            metrics.sql_statements.fetch_add(1, Ordering::Relaxed);
        });
    }
    Ok(db)
}

/// The token key: `TRIAGE_TOKEN_KEY`, else (SQLite only) one kept beside the database.
fn token_keys(config: &Config) -> anyhow::Result<TokenKeys> {
    let paserk = match (&config.token_key, config.sqlite_path()) {
        (Some(key), _) => key.expose().to_owned(),
        (None, Some(db_path)) => {
            let mut key_path = db_path.into_os_string();
            key_path.push(".token-key");
            TokenKeys::load_or_create_paserk(key_path.as_ref())?
        }
        (None, None) if config.database.is_sqlite() => {
            tracing::warn!(
                "TRIAGE_TOKEN_KEY is not set: using a key that lasts only as long as this process"
            );
            TokenKeys::generate_paserk()?
        }
        (None, None) => anyhow::bail!(
            "TRIAGE_TOKEN_KEY must be set when the database is not the embedded SQLite file \
             (generate one with `triage token-key`), so every replica seals tokens with the same key"
        ),
    };
    TokenKeys::from_paserk(&paserk, config.token_issuer.clone(), config.access_token_ttl)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: draining requests");
}
