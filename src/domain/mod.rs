//! The rules of Triage: validation, ownership, what a change does. Plain async
//! functions over a connection or transaction, returning [`crate::Result`], so every
//! entry point (GraphQL, CLI, jobs) gets the same answers.

pub mod change;
pub mod digest;
pub mod events;
pub mod issues;
pub mod logins;
pub mod notices;
pub mod page;
pub mod policy;
pub mod sessions;
pub mod users;
pub mod values;

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait, QueryTrait, Select,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};

/// The current time at the precision both databases keep (microseconds), so a value
/// read back equals the value written and cursors built from either agree.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
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

/// A turn at writing, held from [`begin_write`] until its transaction has ended.
#[derive(Debug)]
#[must_use = "the turn must be held until the transaction ends"]
pub struct WriteTurn(
    #[expect(dead_code, reason = "held, never read")] Option<tokio::sync::MutexGuard<'static, ()>>,
);

/// SQLite has one writer at a time, and a connection that finds the write lock taken
/// polls for it with growing sleeps (its busy handler), leaving the lock idle between
/// holders. This process's write transactions take turns here instead, and each
/// starts the moment the one before ends.
static SQLITE_WRITERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Begins a transaction that will write, with this process's turn at writing. On
/// SQLite it takes the write lock at BEGIN (`BEGIN IMMEDIATE`): a transaction that
/// reads first and upgrades later fails with "database is locked" when another
/// writer got in between, without waiting.
pub async fn begin_write(db: &DatabaseConnection) -> crate::Result<(DatabaseTransaction, WriteTurn)> {
    let turn = match db.get_database_backend() {
        DbBackend::Sqlite => Some(SQLITE_WRITERS.lock().await),
        _ => None,
    };
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    Ok((db.begin_with_options(options).await?, WriteTurn(turn)))
}

/// This process's turn at writing, for a single statement run outside a
/// transaction (SQLite: see [`SQLITE_WRITERS`]; on PostgreSQL nothing is taken).
pub async fn write_turn(db: &DatabaseConnection) -> WriteTurn {
    match db.get_database_backend() {
        DbBackend::Sqlite => WriteTurn(Some(SQLITE_WRITERS.lock().await)),
        _ => WriteTurn(None),
    }
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

/// The statement of `select` with `LIMIT limit` written into its SQL rather than
/// bound, for the reason [`unique`] gives.
pub fn with_literal_limit<E: EntityTrait>(backend: DbBackend, select: Select<E>, limit: u64) -> Statement {
    let mut statement = select.build(backend);
    statement.sql = format!("{} LIMIT {limit}", statement.sql);
    statement
}
