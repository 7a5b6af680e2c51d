//! Wiring: config -> database -> migrations -> services -> schema -> router -> serve.
//!
//! [`Application::build`] binds the listener first, so a test can ask for port 0 and
//! read the port back, and gets the very router, database and services `main` runs.

use std::{future::Future, net::SocketAddr, sync::Arc, sync::atomic::Ordering, time::Duration};

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait as _};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use tokio::net::TcpListener;

use crate::{
    auth::{PasswordHasher, TokenKeys},
    config::{Config, DatabaseConfig},
    domain::{logins::LoginLimits, notices::Outbox},
    events::EventBus,
    graphql::{Documents, Limits, ServiceState, build_schemas},
    http::{HttpState, Metrics, router},
    jobs::{DigestSchedule, Dispatcher, DispatcherConfig, Jobs, JobsConfig},
    mail::{MailConfig, Mailer, Templates},
};

/// A built, bound, not yet serving Triage.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    stopping: tokio::sync::watch::Sender<bool>,
    operations: tokio_util::task::TaskTracker,
    router: axum::Router,
    services: Arc<ServiceState>,
    jobs: Jobs,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let tokens = token_keys(&config)?;
        let metrics = Arc::new(Metrics::default());
        let db = connect(&config.database, Some(metrics.clone())).await?;
        Migrator::up(&db, None).await.context("applying database migrations")?;
        let hasher = PasswordHasher::new(config.concurrent_hashes())?;
        let outbox = Outbox::new(config.assignment_delay);
        // The jobs have a pool of their own: a burst of mail cannot starve requests of
        // connections, and `/metrics` counts the statements requests cost, alone.
        let jobs_database = DatabaseConfig { db_max_connections: Some(4), ..config.database.clone() };
        let jobs_db = connect(&jobs_database, None).await?;
        let events = if config.database.is_sqlite() {
            EventBus::local(config.subscription_buffer)
        } else {
            EventBus::postgres(
                config.database.database_url.expose(),
                jobs_db.clone(),
                config.subscription_buffer,
            )
            .await?
        };
        let jobs = start_jobs(&config, jobs_db, outbox.clone()).await?;
        let services = Arc::new(ServiceState {
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
        });
        let limits = Limits { depth: config.max_query_depth, complexity: config.max_query_complexity };
        let (schema, ws_schema) = build_schemas(services.clone(), limits);
        let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
        let operations = tokio_util::task::TaskTracker::new();
        let state = HttpState {
            schema,
            ws_schema,
            documents: Arc::new(Documents::new(config.apq_cache_size)),
            services: services.clone(),
            metrics,
            max_batch: config.max_batch,
            stopping: stopping_rx,
            operations: operations.clone(),
        };
        let router = router(state, config.max_body_bytes, &config.cors_origins)?;
        Ok(Self { listener, stopping, operations, router, services, jobs })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn port(&self) -> anyhow::Result<u16> {
        Ok(self.local_addr()?.port())
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
        // With each connection's peer address, which login throttling counts by.
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service).with_graceful_shutdown(shutdown).await.context("serving HTTP")?;
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

/// Starts the notice dispatcher and the scheduled jobs.
async fn start_jobs(config: &Config, db: DatabaseConnection, outbox: Outbox) -> anyhow::Result<Jobs> {
    let mailer = Mailer::new(&MailConfig {
        smtp_url: config.smtp_url.clone(),
        mail_dir: config.mail_dir.clone(),
        from: config.mail_from.clone(),
        timeout: config.mail_timeout,
        pool_size: config.mail_concurrency as u32,
    })?;
    let templates = Templates::new().map_err(|err| anyhow::anyhow!("loading the email templates: {err}"))?;
    let dispatcher = Dispatcher::new(
        db.clone(),
        outbox.clone(),
        mailer,
        templates,
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
        sweep_every: config.notice_sweep,
        login_window: config.login_window,
    };
    Jobs::start(db, outbox, dispatcher, jobs_config).await
}

/// Opens the database pool. SQLite runs in WAL mode with foreign keys on, a busy
/// timeout and `synchronous=NORMAL` (durable at every checkpoint, fast per commit).
pub async fn connect(
    config: &DatabaseConfig,
    metrics: Option<Arc<Metrics>>,
) -> anyhow::Result<DatabaseConnection> {
    let url = config.database_url.expose();
    // Every connection to `sqlite::memory:` is a database of its own: keep just one.
    let max_connections = if url.contains(":memory:") { 1 } else { config.max_connections() };
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
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
