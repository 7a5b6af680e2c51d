//! The rules of Triage: validation, ownership, what a change does. Plain async
//! functions over a connection or transaction, returning [`crate::Result`], so every
//! entry point (GraphQL, CLI, jobs) gets the same answers.

pub mod digest;
pub mod events;
pub mod issues;
pub mod notices;
pub mod page;
pub mod sessions;
pub mod users;
pub mod values;

use chrono::{DateTime, Utc};
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// The current time at the precision both databases keep (microseconds), so a value
/// read back equals the value written and cursors built from either agree.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// Parses an API id (the decimal row id); anything else names no row.
pub fn parse_id(id: &str) -> Option<i64> {
    id.parse().ok().filter(|id| *id > 0)
}

/// Begins a transaction that will write. On SQLite it takes the write lock at BEGIN
/// (`BEGIN IMMEDIATE`): a transaction that reads first and upgrades later fails with
/// "database is locked" when another writer got in between, without waiting.
pub async fn begin_write(db: &DatabaseConnection) -> crate::Result<DatabaseTransaction> {
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    Ok(db.begin_with_options(options).await?)
}
