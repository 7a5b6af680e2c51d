use std::{net::SocketAddr, panic::AssertUnwindSafe, path::PathBuf, time::Duration};

use crate::postgres::{self, PostgresDatabase};
use futures_util::FutureExt as _;
use serde_json::{Value, json};
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
};

use triage::{
    auth::TokenKeys,
    clock::{Clock, ManualClock},
    config::{Config, DatabaseConfig, Secret},
    mail::{MemoryMail, SentEmail},
    startup::{Application, Overrides},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How long a test waits for something it expects (an email, the jobs settling)
/// before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Which time the server's jobs run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// A [`ManualClock`] the test moves ([`TestApp::advance`]).
    Manual,
    /// The system clock, and the real scheduler.
    Real,
}

/// Runs `test` against a fresh server on every configured backend in turn.
pub async fn each_backend(test: impl AsyncFn(&TestApp)) {
    each_backend_with(|_| {}, async |app: &mut TestApp| test(app).await).await;
}

/// Like [`each_backend`], with the server's configuration adjusted by `configure`
/// and the app handed over mutably (to restart it). The jobs run on a manual clock,
/// and emails go to [`TestApp::mail`] unless `configure` sets an SMTP server.
pub async fn each_backend_with(configure: impl Fn(&mut Config), test: impl AsyncFn(&mut TestApp)) {
    each_backend_timed(Timing::Manual, configure, test).await;
}

/// Like [`each_backend_with`], with the jobs on `timing`.
pub async fn each_backend_timed(
    timing: Timing,
    configure: impl Fn(&mut Config),
    test: impl AsyncFn(&mut TestApp),
) {
    let mut backends = vec![Backend::Sqlite];
    if std::env::var(postgres::ADMIN_URL_ENV).is_ok_and(|url| !url.is_empty()) {
        backends.push(Backend::Postgres);
    }
    for backend in backends {
        let mut app = TestApp::spawn(backend, timing, &configure).await;
        let outcome = AssertUnwindSafe(test(&mut app)).catch_unwind().await;
        app.stop().await;
        if let Err(panic) = outcome {
            eprintln!("the test above failed on {backend:?}");
            std::panic::resume_unwind(panic);
        }
    }
}

/// A running server with its own database.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    /// The token key the server seals with, to mint tokens it should reject.
    pub token_key: String,
    /// The configuration the server runs with; replicas and restarts reuse it.
    pub config: Config,
    /// The jobs' clock, shared by the server and its replicas (with [`Timing::Manual`]).
    pub clock: ManualClock,
    /// Where emails go unless the configuration names an SMTP server; shared by the
    /// server and its replicas.
    pub mail: MemoryMail,
    overrides: Overrides,
    /// `None` while stopped by [`TestApp::stop_server`].
    server: Option<Server>,
    replicas: Vec<Server>,
    database: TestDatabase,
}

/// One running `triage` process (in this test's runtime).
pub struct Server {
    pub address: SocketAddr,
    /// How many subscriptions are live on this server.
    pub live_subscriptions: watch::Receiver<usize>,
    shutdown: oneshot::Sender<()>,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    pub async fn start(config: Config, overrides: Overrides) -> Self {
        let app = Application::build_with(config, overrides).await.expect("the application builds");
        let address = app.local_addr().expect("a bound address");
        let live_subscriptions = app.live_subscriptions();
        let (shutdown, stopped) = oneshot::channel();
        let handle = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Self { address, live_subscriptions, shutdown, handle }
    }

    /// Stops gracefully: stops accepting, drains, stops the jobs.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        match tokio::time::timeout(Duration::from_secs(20), self.handle).await {
            Ok(Ok(Ok(()))) => {}
            other => panic!("the server did not stop cleanly: {other:?}"),
        }
    }
}

enum TestDatabase {
    /// Deleted with the directory when dropped.
    Sqlite(tempfile::TempDir),
    /// Emptied and handed to the next test when released.
    Postgres(PostgresDatabase),
}

/// A user registered through the API, with their session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl TestApp {
    pub async fn spawn(backend: Backend, timing: Timing, configure: impl Fn(&mut Config)) -> Self {
        let (database, url) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let path: PathBuf = dir.path().join("triage.db");
                (TestDatabase::Sqlite(dir), format!("sqlite://{}?mode=rwc", path.display()))
            }
            Backend::Postgres => {
                let database = PostgresDatabase::take().await;
                let url = database.url();
                (TestDatabase::Postgres(database), url)
            }
        };
        let token_key = TokenKeys::generate_paserk().expect("a token key");
        let mut config = test_config(url, token_key.clone());
        if let TestDatabase::Sqlite(dir) = &database {
            config.mail_dir = dir.path().join("mail");
        }
        configure(&mut config);
        let clock = ManualClock::starting_now();
        let jobs_clock = match timing {
            Timing::Manual => Clock::from(clock.clone()),
            Timing::Real => Clock::system(),
        };
        let mail = MemoryMail::new(jobs_clock.clone());
        let overrides =
            Overrides { clock: jobs_clock, mail: config.smtp_url.is_none().then(|| mail.clone()) };
        let server = Server::start(config.clone(), overrides.clone()).await;
        Self {
            address: server.address,
            client: reqwest::Client::new(),
            token_key,
            config,
            clock,
            mail,
            overrides,
            server: Some(server),
            replicas: Vec::new(),
            database,
        }
    }

    /// Moves the jobs' clock on by `by`.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Waits until the jobs of every server have done what the clock and the
    /// changes so far set off, and sleep again (see `ManualClock::settled`).
    pub async fn settled(&self) {
        if tokio::time::timeout(PATIENCE, self.clock.settled()).await.is_err() {
            panic!("the jobs did not settle within {PATIENCE:?}");
        }
    }

    /// Waits until at least `count` emails went to [`Self::mail`]; returns them all.
    pub async fn emails(&self, count: usize) -> Vec<SentEmail> {
        match tokio::time::timeout(PATIENCE, self.mail.wait_for(count)).await {
            Ok(sent) => sent,
            Err(_) => panic!("expected {count} emails within {PATIENCE:?}, got {:#?}", self.mail.sent()),
        }
    }

    /// Waits until at least `count` sends were tried, failed ones included.
    pub async fn attempts(&self, count: usize) {
        if tokio::time::timeout(PATIENCE, self.mail.wait_for_attempts(count)).await.is_err() {
            panic!("expected {count} send attempts within {PATIENCE:?}, got {}", self.mail.attempts());
        }
    }

    /// Waits until `count` emails went out and the jobs settled; fails if more did.
    pub async fn exactly_emails(&self, count: usize) -> Vec<SentEmail> {
        self.emails(count).await;
        self.settled().await;
        let sent = self.mail.sent();
        assert_eq!(sent.len(), count, "{sent:#?}");
        sent
    }

    /// Waits until exactly `count` subscriptions are live on the server (not its
    /// replicas): from then on each gets every change that commits.
    pub async fn subscribed(&self, count: usize) {
        let mut live = self.server.as_ref().expect("a running server").live_subscriptions.clone();
        let waited = tokio::time::timeout(PATIENCE, live.wait_for(|live| *live == count)).await;
        assert!(matches!(waited, Ok(Ok(_))), "{count} subscriptions did not start within {PATIENCE:?}");
    }

    /// Stops the server, leaving the database; [`Self::start_server`] brings it back.
    pub async fn stop_server(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    pub async fn start_server(&mut self) {
        let server = Server::start(self.config.clone(), self.overrides.clone()).await;
        self.address = server.address;
        self.server = Some(server);
    }

    /// Starts a second server on the same database and settings; returns its address.
    pub async fn start_replica(&mut self) -> SocketAddr {
        self.start_replica_with(|_| {}).await
    }

    /// Starts a second server on the same database, with its settings adjusted by
    /// `configure`; returns its address.
    pub async fn start_replica_with(&mut self, configure: impl Fn(&mut Config)) -> SocketAddr {
        let mut config = self.config.clone();
        configure(&mut config);
        let replica = Server::start(config, self.overrides.clone()).await;
        let address = replica.address;
        self.replicas.push(replica);
        address
    }

    async fn stop(self) {
        for replica in self.replicas {
            replica.stop().await;
        }
        if let Some(server) = self.server {
            server.stop().await;
        }
        if let TestDatabase::Postgres(database) = self.database {
            database.release().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// POSTs an operation; returns the whole JSON response.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.graphql_at(self.address, token, query, variables).await
    }

    /// POSTs an operation to the server at `address` (a replica, say).
    pub async fn graphql_at(
        &self,
        address: SocketAddr,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Value {
        let body = json!({ "query": query, "variables": variables });
        let text = self.post_at(address, token, &body).await;
        serde_json::from_str(&text).expect("a JSON body")
    }

    /// POSTs `body` to the server at `address`; returns the response's text.
    pub async fn post_at(&self, address: SocketAddr, token: Option<&str>, body: &Value) -> String {
        let mut request = self.client.post(format!("http://{address}/graphql")).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the server answers");
        assert_eq!(response.status(), 200, "a GraphQL response over application/json is 200");
        response.text().await.expect("a body")
    }

    /// Like [`Self::graphql`], but the operation must succeed; returns `data`.
    pub async fn data(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let response = self.graphql(token, query, variables).await;
        assert!(response.get("errors").is_none(), "unexpected errors: {response:#}");
        response["data"].clone()
    }

    /// Registers `username` (with `<username>@example.com` and a fixed password).
    pub async fn register(&self, username: &str) -> Session {
        let data = self
            .data(
                None,
                "mutation($input: RegisterInput!) { register(input: $input) {
                    accessToken refreshToken user { id username } } }",
                json!({ "input": {
                    "email": format!("{username}@example.com"),
                    "username": username,
                    "password": PASSWORD,
                    "firstName": "Test",
                    "lastName": username,
                }}),
            )
            .await;
        session_of(&data["register"])
    }

    /// Opens an issue as `session`; returns its id.
    pub async fn create_issue(&self, session: &Session, title: &str, assignee: Option<&str>) -> String {
        let data = self
            .data(
                Some(&session.access_token),
                "mutation($input: CreateIssueInput!) { createIssue(input: $input) { issue { id } } }",
                json!({ "input": { "title": title, "assignedTo": assignee } }),
            )
            .await;
        data["createIssue"]["issue"]["id"].as_str().expect("an issue id").to_owned()
    }

    /// How many SQL statements the server has run so far, from `/metrics`.
    pub async fn sql_statements(&self) -> u64 {
        self.counter("triage_sql_statements_total").await
    }

    /// The counter `name` of the server's `/metrics`.
    pub async fn counter(&self, name: &str) -> u64 {
        let body = self.client.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or_else(|| panic!("the counter {name}"))
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// A digest schedule that never fires within a test (once a year, on 1 January).
pub const NO_DIGEST: &str = "0 0 0 1 1 *";

pub fn session_of(payload: &Value) -> Session {
    Session {
        id: payload["user"]["id"].as_str().expect("user id").to_owned(),
        access_token: payload["accessToken"].as_str().expect("access token").to_owned(),
        refresh_token: payload["refreshToken"].as_str().expect("refresh token").to_owned(),
    }
}

/// The `extensions.code` of the first error of `response`.
pub fn error_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {response:#}"))
}

/// The `extensions.field` of the first error of `response`.
pub fn error_field(response: &Value) -> &str {
    response["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field in {response:#}"))
}

/// The defaults of `triage serve`, with what the tests need instead: a loopback
/// port, this test's database and key, and short timings.
pub fn test_config(database_url: String, token_key: String) -> Config {
    use clap::Parser as _;
    let mut config = triage::config::Cli::try_parse_from(["triage"]).expect("the default settings").serve;
    config.listen = "127.0.0.1:0".parse().expect("an address");
    config.database = DatabaseConfig {
        database_url: Secret::new(database_url),
        db_max_connections: Some(8),
        db_statement_timeout: Duration::from_secs(30),
    };
    config.token_key = Some(Secret::new(token_key));
    config.max_concurrent_hashes = Some(2);
    // Concurrent logins queue in the tests: the one test of shedding sets its own.
    config.login_queue_timeout = Duration::from_secs(30);
    config.cors_origins = vec!["https://app.example".to_owned()];
    config.apq_cache_size = 100;
    config.login_max_failures = 5;
    config.login_window = Duration::from_secs(60);
    config.log = "warn".to_owned();
    config.mail_dir = std::env::temp_dir().join("triage-test-mail");
    config.mail_from = "Triage <triage@example.com>".to_owned();
    config.mail_retry_base = Duration::from_millis(200);
    config.mail_timeout = Duration::from_secs(2);
    config.mail_concurrency = 8;
    config.public_url = "https://triage.example".to_owned();
    config.notice_sweep = Duration::from_millis(500);
    // No digest unless a test asks for one: the daily period starts at midnight UTC,
    // and a test that moves its clock across it would get an email it did not expect.
    config.digest_cron = Some(NO_DIGEST.to_owned());
    // Each test has a budget of its own: tests of the limits set one.
    config.rate_limit = triage::config::Switch::Off;
    config
}
