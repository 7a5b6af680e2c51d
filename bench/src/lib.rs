//! Shared parts of the load benchmarks: a fast SMTP sink that records when each
//! notice arrived, seeding straight into the database, and running the release
//! `triage` binary as a child process while sampling its memory.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use migration::{Migrator, MigratorTrait as _};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionSession as _, TransactionTrait};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::{TcpListener, TcpStream},
    process::{Child, Command},
};
use triage::{
    auth::TokenKeys,
    config::{DatabaseConfig, Secret},
    startup::connect,
};

/// Arrivals by notice id (from the Message-ID), each with every time it arrived.
pub type Arrivals = Arc<Mutex<HashMap<i64, Vec<DateTime<Utc>>>>>;

/// Starts an SMTP sink on loopback; returns its URL and what it records.
pub async fn smtp_sink() -> anyhow::Result<(String, Arrivals)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("smtp://{}", listener.local_addr()?);
    let arrivals: Arrivals = Arc::default();
    let store = arrivals.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(smtp_session(stream, store.clone()));
        }
    });
    Ok((url, arrivals))
}

async fn smtp_session(stream: TcpStream, arrivals: Arrivals) -> std::io::Result<()> {
    // Replies go out at once, as a mail server's do, rather than waiting on Nagle.
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 bench ESMTP\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut notice = None;
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                if notice.is_none() && line.to_ascii_lowercase().starts_with("message-id:") {
                    notice = line
                        .split("notice-")
                        .nth(1)
                        .and_then(|rest| rest.split('@').next())
                        .and_then(|id| id.parse::<i64>().ok());
                }
            }
            if let Some(id) = notice {
                arrivals
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))?
                    .entry(id)
                    .or_default()
                    .push(Utc::now());
            }
            write.write_all(b"250 OK\r\n").await?;
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else if command.starts_with("EHLO") {
            write.write_all(b"250-bench\r\n250 8BITMIME\r\n").await?;
        } else {
            write.write_all(b"250 OK\r\n").await?;
        }
    }
}

/// A migrated, empty database: `BENCH_DATABASE_URL`, or a fresh SQLite file.
#[derive(Debug)]
pub struct Fixture {
    /// Holds the SQLite file and the mail folder.
    pub dir: tempfile::TempDir,
    pub url: String,
    pub db: DatabaseConnection,
}

impl Fixture {
    pub async fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = std::env::var("BENCH_DATABASE_URL")
            .unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()));
        let config = DatabaseConfig {
            database_url: Secret::new(seeding_url(&url)),
            db_max_connections: Some(4),
            db_statement_timeout: std::time::Duration::ZERO,
        };
        let db = connect(&config, None).await?;
        Migrator::up(&db, None).await?;
        Ok(Self { dir, url, db })
    }

    /// The environment of a `triage serve` on this database, mailing `smtp_url`.
    /// Sends run 128 at a time unless `TRIAGE_MAIL_CONCURRENCY` says otherwise, and the
    /// interval digest's first run (30 s after start) does not matter: the benchmarks
    /// count only the notices they made.
    pub fn server_env(&self, smtp_url: String) -> anyhow::Result<Vec<(&'static str, String)>> {
        let concurrency = std::env::var("TRIAGE_MAIL_CONCURRENCY").unwrap_or_else(|_| "128".to_owned());
        Ok(vec![
            ("DATABASE_URL", self.url.clone()),
            ("TRIAGE_TOKEN_KEY", TokenKeys::generate_paserk()?),
            ("TRIAGE_SMTP_URL", smtp_url),
            ("TRIAGE_MAIL_CONCURRENCY", concurrency),
            ("TRIAGE_NOTICE_SWEEP", "200ms".to_owned()),
            ("TRIAGE_DIGEST_EVERY", "100000h".to_owned()),
            ("TRIAGE_MAIL_DIR", self.dir.path().join("mail").display().to_string()),
        ])
    }
}

/// The URL the fixture itself connects with to seed. sqlx asks for TLS when the URL
/// does not say (`sslmode=prefer`), and PostgreSQL on loopback usually offers it; a
/// seeding statement then spans several TLS records, and each waited about 40 ms (a
/// delayed ACK, as sqlx leaves Nagle on): 100,000 issues took 11 s instead of 3. So on
/// loopback, with no `sslmode` given, the fixture's own connections skip TLS. The
/// servers connect as the URL says.
fn seeding_url(url: &str) -> String {
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let host = url.split("://").nth(1).unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
    let loopback = ["127.0.0.1", "localhost", "[::1]"].iter().any(|name| {
        host.strip_prefix(name).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/', '?']))
    });
    if !postgres || !loopback || url.contains("sslmode=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=disable")
}

/// Runs `sql` (one statement, no parameters).
pub async fn exec(db: &impl ConnectionTrait, sql: String) -> anyhow::Result<u64> {
    let backend = db.get_database_backend();
    Ok(db.execute_raw(Statement::from_string(backend, sql)).await?.rows_affected())
}

/// Inserts `rows` (each a parenthesised tuple) into `table (columns)` in batches of
/// 500, all in one transaction: one commit rather than one a batch took 100,000
/// issues from 6 s to 1.5 s on SQLite.
pub async fn insert_rows(
    db: &(impl ConnectionTrait + TransactionTrait),
    table: &str,
    columns: &str,
    rows: impl Iterator<Item = String>,
) -> anyhow::Result<()> {
    let txn = db.begin().await?;
    let mut batch = Vec::with_capacity(500);
    let flush = async |batch: &mut Vec<String>| -> anyhow::Result<()> {
        if !batch.is_empty() {
            exec(&txn, format!("INSERT INTO {table} ({columns}) VALUES {}", batch.join(","))).await?;
            batch.clear();
        }
        Ok(())
    };
    for row in rows {
        batch.push(row);
        if batch.len() == 500 {
            flush(&mut batch).await?;
        }
    }
    flush(&mut batch).await?;
    txn.commit().await?;
    Ok(())
}

/// An SQL timestamp literal both databases read as UTC.
pub fn at(time: DateTime<Utc>) -> String {
    format!("'{}'", time.to_rfc3339_opts(chrono::SecondsFormat::Micros, false))
}

/// Seeds `users` users (password hashes are dummies: nobody logs in).
pub async fn seed_users(db: &DatabaseConnection, users: usize) -> anyhow::Result<()> {
    seed_users_with_hash(db, users, "x").await
}

/// Seeds `users` users, `user1` to `user{users}`, all with the PHC string
/// `password_hash` (one argon2 hash computed once: hashing each would take minutes).
pub async fn seed_users_with_hash(
    db: &(impl ConnectionTrait + TransactionTrait),
    users: usize,
    password_hash: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(!password_hash.contains('\''), "a PHC string holds no quote");
    let now = at(Utc::now());
    insert_rows(
        db,
        "users",
        "username, email, first_name, last_name, password_hash, role, created_at, updated_at",
        (1..=users).map(|n| {
            format!(
                "('user{n}', 'user{n}@example.com', 'User', '{n}', '{password_hash}', 'member', {now}, {now})"
            )
        }),
    )
    .await
}

/// The columns a seeded issue row gives, in order: its project and number first.
pub const ISSUE_COLUMNS: &str =
    "project_id, number, title, description, status, created_by, assigned_to, created_at, updated_at";

/// The id of the default project [`seed_default_project`] makes.
pub const DEFAULT_PROJECT: i64 = 1;

/// What the server and the projects migration make of a database with `users`
/// users: the PUBLIC default project `TRIAGE` (id [`DEFAULT_PROJECT`]) with every
/// user a MEMBER.
pub async fn seed_default_project(
    db: &(impl ConnectionTrait + TransactionTrait),
    users: usize,
) -> anyhow::Result<()> {
    let now = at(Utc::now());
    exec(
        db,
        format!(
            "INSERT INTO projects (id, key, name, description, visibility, next_number, created_at, updated_at) \
             VALUES ({DEFAULT_PROJECT}, 'TRIAGE', 'General', '', 'PUBLIC', 1, {now}, {now})"
        ),
    )
    .await?;
    insert_rows(
        db,
        "project_members",
        "project_id, user_id, role, added_at",
        (1..=users).map(|n| format!("({DEFAULT_PROJECT}, {n}, 'MEMBER', {now})")),
    )
    .await
}

/// Sets every project's counter past the numbers its seeded issues took, and (on
/// PostgreSQL) the projects' id sequence past the ids seeded.
pub async fn finish_numbering(db: &impl ConnectionTrait) -> anyhow::Result<()> {
    exec(
        db,
        "UPDATE projects SET next_number = \
         COALESCE((SELECT MAX(number) FROM issues WHERE issues.project_id = projects.id), 0) + 1"
            .to_owned(),
    )
    .await?;
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        exec(db, "SELECT setval('projects_id_seq', (SELECT MAX(id) FROM projects))".to_owned()).await?;
    }
    Ok(())
}

/// The release binary, built by `bench/run`.
pub fn triage_binary() -> PathBuf {
    release_binary("triage")
}

/// A binary of the release build (`triage`, or one of this crate's).
pub fn release_binary(name: &str) -> PathBuf {
    // Where `bench/run` built it: CARGO_TARGET_DIR when set, else the workspace's target.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("release").join(name)
}

/// A running `triage serve`.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    pub url: String,
    pub started: Instant,
    /// Where its stderr goes, if not to this process's.
    pub log: Option<PathBuf>,
}

impl Server {
    /// Starts `triage serve`; its warnings and errors go to this process's stderr.
    pub async fn start(env: &[(&str, String)]) -> anyhow::Result<Self> {
        Self::spawn(&triage_binary(), &["serve"], env, None)
    }

    /// Starts `binary` with `args`, listening on the free port it is given in
    /// `TRIAGE_LISTEN`, logging warnings and errors to `log` (stderr if `None`).
    pub fn spawn(
        binary: &Path,
        args: &[&str],
        env: &[(&str, String)],
        log: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.port()
        };
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
            ),
            None => Stdio::inherit(),
        };
        let mut command = Command::new(binary);
        command
            .args(args)
            .env("TRIAGE_LISTEN", format!("127.0.0.1:{port}"))
            .env("TRIAGE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let started = Instant::now();
        let child =
            command.spawn().with_context(|| format!("starting {} (run bench/run)", binary.display()))?;
        Ok(Self { child, url: format!("http://127.0.0.1:{port}"), started, log: log.map(Path::to_path_buf) })
    }

    /// Waits for `/readyz`; returns how long after start it answered.
    pub async fn ready(&self) -> anyhow::Result<Duration> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(response) = client.get(format!("{}/readyz", self.url)).send().await
                && response.status().is_success()
            {
                return Ok(self.started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        anyhow::bail!("the server did not become ready")
    }

    /// Whether the process is still running (not exited, nor a zombie).
    pub fn is_running(&self) -> bool {
        self.child.id().and_then(rss_kib_of).is_some()
    }

    /// Resident memory of the server now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.child.id().and_then(rss_kib_of).unwrap_or(0)
    }

    /// Stops with SIGTERM (a graceful shutdown) and waits for the exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status()?;
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??;
        Ok(())
    }
}

/// Resident memory of process `pid`, in KiB; `None` once it has exited.
pub fn rss_kib_of(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmRSS:")
}

/// The most resident memory process `pid` has had since it started (the kernel's
/// high-water mark, which no sampling misses), in KiB.
pub fn peak_rss_kib_of(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmHWM:")
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// The `p`th percentile (0-100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
