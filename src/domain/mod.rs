//! The rules of Triage: validation, ownership, what a change does. Plain async
//! functions over a connection or transaction, returning [`crate::Result`], so every
//! entry point (GraphQL, CLI, jobs) gets the same answers.

pub mod change;
pub mod digest;
pub mod events;
pub mod invitations;
pub mod issues;
pub mod logins;
pub mod notices;
pub mod page;
pub mod policy;
pub mod projects;
pub mod sessions;
pub mod users;
pub mod values;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicBool, Ordering},
    },
};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseConnectionType, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, FromQueryResult, QueryResult, QueryTrait, Select, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait, Value,
};

use crate::sync::lock;

/// The wall clock's time, at the precision both databases keep (microseconds), so a
/// value read back equals the value written and cursors built from either agree.
/// For the timestamps of records; the jobs' time comes from their [`crate::clock::Clock`].
pub fn now() -> DateTime<Utc> {
    crate::clock::Clock::system().now()
}

/// A filter criterion naming a row by id. An id the client spelled so that it names
/// no row, like one naming a row that does not exist, matches nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdMatch<T> {
    Id(T),
    Nothing,
}

impl<T: PartialEq> IdMatch<T> {
    /// Whether `id` is the one named.
    pub fn is(&self, id: T) -> bool {
        *self == Self::Id(id)
    }
}

impl<T> IdMatch<T> {
    /// The same criterion with the id turned into `U`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> IdMatch<U> {
        match self {
            Self::Id(id) => IdMatch::Id(f(id)),
            Self::Nothing => IdMatch::Nothing,
        }
    }
}

/// A turn at writing, held from [`begin_write`] (or [`write_turn`]) until its
/// transaction or statement has ended.
#[derive(Debug)]
#[must_use = "the turn must be held until the transaction ends"]
pub struct WriteTurn {
    _held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// The SQLite files this process has open, by file: each one's turn at writing and
/// the connection its transactions write through.
///
/// SQLite has one writer at a time, and a connection that finds the write lock taken
/// polls for it with growing sleeps (its busy handler), leaving the lock idle between
/// holders. Writers to one file take turns on its mutex here instead, and each starts
/// the moment the one before ends.
///
/// The turn belongs to the file, not to a pool and not to the process: the requests'
/// and the jobs' pools of one server (and a test's replicas) write the same file and
/// share its turn, while the many servers of a test run, each on a file of its own,
/// never wait for each other. An entry lives while someone holds or awaits its turn,
/// or a server keeps its writer ([`keep_writer`]); when nobody does, the next writer
/// starts a fresh one, which is the same thing. Another process on the same file
/// (`triage user create`) is not in here: SQLite's busy timeout orders it.
static SQLITE_FILES: Mutex<BTreeMap<PathBuf, Weak<SqliteFile>>> = Mutex::new(BTreeMap::new());

/// An SQLite file's entry in [`SQLITE_FILES`].
#[derive(Debug, Default)]
struct SqliteFile {
    turn: Arc<tokio::sync::Mutex<()>>,
    /// The connection [`begin_write`] begins transactions on, once a server keeps one.
    writer: OnceLock<DatabaseConnection>,
}

/// The entry of the SQLite file behind `db`; `None` on PostgreSQL, which orders its
/// writers itself.
fn sqlite_file(db: &DatabaseConnection) -> Option<Arc<SqliteFile>> {
    if !matches!(db.inner, DatabaseConnectionType::SqlxSqlitePoolConnection(_)) {
        return None;
    }
    let file = db.get_sqlite_connection_pool().connect_options().get_filename().to_path_buf();
    // The same file however the URL spelt it (relative or not). An in-memory
    // database has a name of its own per pool.
    let file = std::path::absolute(&file).unwrap_or(file);
    let mut files = lock(&SQLITE_FILES);
    if let Some(entry) = files.get(&file).and_then(Weak::upgrade) {
        return Some(entry);
    }
    files.retain(|_, entry| entry.strong_count() > 0);
    let entry = Arc::new(SqliteFile::default());
    files.insert(file, Arc::downgrade(&entry));
    Some(entry)
}

/// What keeps an SQLite file's writer (see [`keep_writer`]); held by the server.
#[derive(Debug)]
pub struct KeptWriter(#[allow(dead_code, reason = "held for its drop")] Arc<SqliteFile>);

/// Makes `writer`, a pool of one connection to the SQLite file behind `db`, the
/// connection every [`begin_write`] on that file begins its transaction on, for as
/// long as the returned handle is kept. `None` (and `writer` unused) on PostgreSQL.
///
/// SQLite empties a connection's page cache whenever another connection has written
/// since its last transaction. Writes spread over a pool each began with a cold
/// cache and read their pages again from the operating system, while holding the
/// turn: one connection that makes every write keeps its pages. A replica in the
/// same process keeps the writer the first one made.
pub fn keep_writer(db: &DatabaseConnection, writer: DatabaseConnection) -> Option<KeptWriter> {
    let file = sqlite_file(db)?;
    let _ = file.writer.set(writer);
    Some(KeptWriter(file))
}

/// Begins a transaction that will write, with its database's turn at writing (see
/// [`SQLITE_FILES`]). On SQLite it takes the write lock at BEGIN (`BEGIN IMMEDIATE`):
/// a transaction that reads first and upgrades later fails with "database is
/// locked" when another writer got in between, without waiting. The transaction is
/// on the file's kept writer when it has one ([`keep_writer`]).
pub async fn begin_write(db: &DatabaseConnection) -> crate::Result<(DatabaseTransaction, WriteTurn)> {
    let file = sqlite_file(db);
    let turn = take_turn(file.as_deref()).await;
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    let on = file.as_deref().and_then(|file| file.writer.get()).unwrap_or(db);
    Ok((on.begin_with_options(options).await?, turn))
}

/// Commits `txn`, first marking the running operation's [`Commits`] (if it has one):
/// every transaction of the domain ends here.
pub async fn commit(txn: DatabaseTransaction) -> crate::Result<()> {
    mark_committing();
    Ok(txn.commit().await?)
}

/// Marks the running operation's [`Commits`], if it has one, before its writes are
/// committed by other means than [`commit`] (the event bus commits a [`change::Change`]).
pub fn mark_committing() {
    // Outside [`Commits::watch`] (jobs, the CLI) there is nobody to tell.
    let _ = WATCHED.try_with(|commits| commits.0.store(true, Ordering::Release));
}

tokio::task_local! {
    static WATCHED: Commits;
}

/// Whether an operation has begun to commit: the point past which cancelling it
/// would not undo its writes.
///
/// An operation run under a deadline (an HTTP request's) is cancelled by dropping
/// it, which rolls back its open transaction. Once `COMMIT` is sent, though, the
/// writes may stand whatever becomes of the operation: cancelling it then would
/// answer `TIMEOUT` for a change that was made, and a client that retried would make
/// it twice. Whoever holds the deadline runs the operation in [`Commits::watch`]
/// and lets it finish once [`Commits::started`].
#[derive(Debug, Clone, Default)]
pub struct Commits(Arc<AtomicBool>);

impl Commits {
    /// Runs `operation`, marking `self` when it begins to commit.
    pub async fn watch<F: Future>(&self, operation: F) -> F::Output {
        WATCHED.scope(self.clone(), operation).await
    }

    /// Whether the operation has begun to commit.
    pub fn started(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The database's turn at writing, for a single statement run outside a
/// transaction (SQLite: see [`SQLITE_FILES`]; on PostgreSQL nothing is taken).
pub async fn write_turn(db: &DatabaseConnection) -> WriteTurn {
    take_turn(sqlite_file(db).as_deref()).await
}

/// The turn of `file`, once it is this writer's; nothing to take without a file.
async fn take_turn(file: Option<&SqliteFile>) -> WriteTurn {
    let held = match file {
        Some(file) => Some(file.turn.clone().lock_owned().await),
        None => None,
    };
    WriteTurn { _held: held }
}

/// The row `select` names by a unique key, if any, read without `LIMIT 1`.
///
/// sea-orm's `one()` binds `LIMIT 1` as a parameter, and SQLite (built with STAT4,
/// as the bundled one is) prepares a statement again every time a bound LIMIT is
/// bound: that was a fifth of a lookup's cost. A unique key needs no limit.
pub async fn unique<E: EntityTrait>(
    db: &impl ConnectionTrait,
    select: Select<E>,
) -> crate::Result<Option<E::Model>> {
    Ok(select.all(db).await?.pop())
}

/// The rows of `statement` as `R`s, read from `db`'s pool by sea-orm's driver.
///
/// sea-orm's `query_all` awaits the driver's future inside a tracing span and a
/// match over every backend it was built for: a future of several KiB, copied at
/// each level it passes through. For the reads most requests make (an issue, a page
/// of them) that was an eighth of `issue(id)`'s instructions (callgrind). The
/// driver's own `query_all` counts the statement all the same (`/metrics`).
pub async fn fetch<R: FromQueryResult>(
    db: &DatabaseConnection,
    statement: Statement,
) -> crate::Result<Vec<R>> {
    // Boxed: inline, the driver's future would make every future that awaits this
    // one as big.
    let rows: BoxFuture<'_, Result<Vec<QueryResult>, DbErr>> = match &db.inner {
        DatabaseConnectionType::SqlxSqlitePoolConnection(pool) => Box::pin(pool.query_all(statement)),
        DatabaseConnectionType::SqlxPostgresPoolConnection(pool) => Box::pin(pool.query_all(statement)),
        _ => Box::pin(db.query_all_raw(statement)),
    };
    let rows = rows.await?;
    Ok(rows.iter().map(|row| R::from_query_result(row, "")).collect::<Result<_, _>>()?)
}

/// The statement of `select` with `LIMIT limit` written into its SQL rather than
/// bound, for the reason [`unique`] gives.
pub fn with_literal_limit<E: EntityTrait>(backend: DbBackend, select: Select<E>, limit: u64) -> Statement {
    let mut statement = select.build(backend);
    statement.sql = format!("{} LIMIT {limit}", statement.sql);
    statement
}

/// A statement whose SQL depends on the backend alone: sea-query builds it once per
/// backend, and each run binds its own values. For the hottest lookups, where
/// building and dropping the statement's tree cost a tenth of the request.
///
/// The values must be the ones the build would collect, in its order: a test of each
/// template compares [`Template::statement`] with the build, on both backends.
#[derive(Debug, Default)]
pub struct Template {
    /// SQLite's SQL, then PostgreSQL's.
    sql: [OnceLock<String>; 2],
}

impl Template {
    pub const fn new() -> Self {
        Self { sql: [OnceLock::new(), OnceLock::new()] }
    }

    /// The statement `build` makes, with `values` bound in place of the ones it was
    /// built with.
    pub fn statement(
        &self,
        backend: DbBackend,
        build: impl FnOnce() -> Statement,
        values: Vec<Value>,
    ) -> Statement {
        let cell = match backend {
            DbBackend::Sqlite => &self.sql[0],
            DbBackend::Postgres => &self.sql[1],
            _ => return build(),
        };
        let sql = cell.get_or_init(|| build().sql);
        Statement::from_sql_and_values(backend, sql.as_str(), values)
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectOptions, Database};

    use super::*;

    #[tokio::test]
    async fn writes_to_an_sqlite_file_begin_on_the_writer_it_keeps() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("triage.db").display());
        let db = Database::connect(&url).await?;
        let writer = Database::connect(ConnectOptions::new(&url).max_connections(1).to_owned()).await?;
        // A temporary table is its connection's alone: it marks the writer's one.
        writer.execute_unprepared("CREATE TEMP TABLE writer (x)").await?;
        let on_writer = async |txn: &DatabaseTransaction| -> anyhow::Result<bool> {
            let sql = "SELECT count(*) AS n FROM temp.sqlite_master WHERE name = 'writer'";
            let row = txn.query_one_raw(Statement::from_string(DbBackend::Sqlite, sql)).await?;
            Ok(row.map(|row| row.try_get::<i32>("", "n")).transpose()? == Some(1))
        };

        let kept = keep_writer(&db, writer.clone());
        assert!(kept.is_some(), "an SQLite file keeps a writer");
        let (txn, turn) = begin_write(&db).await?;
        assert!(on_writer(&txn).await?, "the transaction is on the writer");
        txn.rollback().await?;
        drop(turn);

        // Once nobody keeps it, writes begin on the pool they were given.
        drop(kept);
        let (txn, _turn) = begin_write(&db).await?;
        assert!(!on_writer(&txn).await?);
        Ok(())
    }
}
