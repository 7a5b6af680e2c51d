//! Login throttling, with the counts in the database so every replica shares them.
//!
//! Before a password is hashed, one transaction reserves an attempt on two counters:
//! the account from this client address (tight: `TRIAGE_LOGIN_MAX_FAILURES`), then
//! the account from anywhere (loose: `TRIAGE_LOGIN_MAX_ACCOUNT_FAILURES`, so one
//! address cannot lock the owner out). Each is one conditional upsert that counts
//! only while its counter is below the limit or its window has run out. When either
//! is full the transaction rolls back, so an attempt refused by one consumes neither,
//! and the caller gets `RATE_LIMITED` at once, without a hash. The upsert holds its
//! row's lock to the end of the transaction (SQLite: the write lock), so concurrent
//! attempts count one after another: at most the limit of them reach the hasher in a
//! window, however many arrive at once. A successful login deletes both counters.
//!
//! A known account is counted by its user id, whichever of its names a login used;
//! an unknown name by its trimmed, lower-cased text, so guessing names still costs.

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait as _, Statement,
};
use sha2::{Digest as _, Sha256};

use super::{begin_write, now, values::LoginName};
use crate::entity::ids::UserId;
use crate::entity::users::Model as User;
use crate::{Error, Result, entity::login_attempts};

/// How many attempts the counters allow, and over what window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Attempts on one account from one client address.
    pub per_client: u32,
    /// Attempts on one account from all addresses together.
    pub per_account: u32,
    pub window: Duration,
}

/// Whose attempts are counted.
#[derive(Clone, PartialEq, Eq)]
pub enum LoginSubject {
    /// A known account, however the login named it.
    User(UserId),
    /// A name that is no account: trimmed and lower-cased.
    Name(String),
}

impl LoginSubject {
    /// The subject of a login for `login`, which found `user` (or nobody).
    pub fn of(user: Option<&User>, login: &LoginName) -> Self {
        match user {
            Some(user) => Self::User(user.id),
            None => Self::Name(login.normalized()),
        }
    }

    fn key(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Name(name) => format!("name:{name}"),
        }
    }
}

/// For logs: the user id, or a short hash of the name (a mistyped password is
/// sometimes typed into the name field: it is never logged as typed).
impl fmt::Display for LoginSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(id) => write!(f, "user:{id}"),
            Self::Name(name) => {
                let hash = Sha256::digest(name.as_bytes());
                write!(f, "name#")?;
                hash.iter().take(6).try_for_each(|byte| write!(f, "{byte:02x}"))
            }
        }
    }
}

impl fmt::Debug for LoginSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The client part of a counter's key. An IPv6 client is counted by its /64, the
/// block one host is usually given; an IPv4 address mapped into IPv6 as itself.
fn client_key(client: Option<IpAddr>) -> String {
    match client.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(ip)) => ip.to_string(),
        Some(IpAddr::V6(ip)) => {
            let prefix = u128::from(ip) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
        None => "unknown".to_owned(),
    }
}

/// The two counters of an attempt, tight one first (the order every transaction
/// takes their locks in).
fn keys(subject: &LoginSubject, client: Option<IpAddr>) -> [String; 2] {
    let subject = subject.key();
    [format!("client:{}|{subject}", client_key(client)), format!("account:{subject}")]
}

/// Reserves one login attempt for `subject` from `client`, or refuses it with
/// `RATE_LIMITED` (and `retryAfter`) when either counter is full, counting nothing.
pub async fn reserve(
    db: &DatabaseConnection,
    limits: &LoginLimits,
    subject: &LoginSubject,
    client: Option<IpAddr>,
) -> Result<()> {
    let window = chrono::Duration::from_std(limits.window)
        .map_err(|_| Error::internal("the login window is out of range"))?;
    let (txn, _turn) = begin_write(db).await?;
    let at = now();
    let expired = at - window;
    let [client_counter, account_counter] = keys(subject, client);
    for (key, limit) in [(client_counter, limits.per_client), (account_counter, limits.per_account)] {
        if !count(&txn, &key, limit, at, expired).await? {
            let retry_after = retry_after(&txn, &key, window, at).await?;
            txn.rollback().await?;
            tracing::warn!(
                account = %subject,
                client = %client_key(client),
                retry_after,
                "login throttled: too many attempts"
            );
            return Err(Error::RateLimited {
                message: "Too many login attempts; try again later",
                retry_after,
            });
        }
    }
    super::commit(txn).await?;
    Ok(())
}

/// Counts an attempt on `key` unless it already has `limit` in a window that is
/// still running (one that started after `expired`); whether it was counted.
async fn count(
    txn: &DatabaseTransaction,
    key: &str,
    limit: u32,
    at: DateTime<Utc>,
    expired: DateTime<Utc>,
) -> Result<bool> {
    let backend = txn.get_database_backend();
    let sql = "INSERT INTO login_attempts (\"key\", attempts, window_started_at) VALUES ($1, 1, $2) \
         ON CONFLICT (\"key\") DO UPDATE SET \
           attempts = CASE WHEN login_attempts.window_started_at <= $3 THEN 1 \
                      ELSE login_attempts.attempts + 1 END, \
           window_started_at = CASE WHEN login_attempts.window_started_at <= $4 \
                      THEN excluded.window_started_at ELSE login_attempts.window_started_at END \
         WHERE login_attempts.window_started_at <= $5 OR login_attempts.attempts < $6 \
         RETURNING attempts";
    // SQLite takes `?` for each value in order; PostgreSQL numbers them.
    let sql = match backend {
        DbBackend::Postgres => sql.to_owned(),
        _ => (1..=6).fold(sql.to_owned(), |sql, n| sql.replace(&format!("${n}"), "?")),
    };
    let limit = i32::try_from(limit).unwrap_or(i32::MAX);
    let values: [sea_orm::Value; 6] =
        [key.into(), at.into(), expired.into(), expired.into(), expired.into(), limit.into()];
    let counted = txn.query_one_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    Ok(counted.is_some())
}

/// Whole seconds (at least one) until the window of the full counter `key` ends.
async fn retry_after(
    txn: &DatabaseTransaction,
    key: &str,
    window: chrono::Duration,
    at: DateTime<Utc>,
) -> Result<u64> {
    let started =
        login_attempts::Entity::find_by_id(key.to_owned()).one(txn).await?.map(|row| row.window_started_at);
    // A window another transaction started while this one waited for the row may
    // have started a little after `at`: never more than the window is left.
    let left = started.map_or(window, |started| started + window - at).min(window);
    let millis = u64::try_from(left.num_milliseconds()).unwrap_or(0);
    Ok(millis.div_ceil(1000).max(1))
}

/// A login whose password matched: its user, and the attempts it counted, which its
/// session clears ([`super::sessions::log_in`]).
#[derive(Debug)]
pub struct Authenticated {
    pub user: User,
    subject: LoginSubject,
    client: Option<IpAddr>,
}

impl Authenticated {
    pub fn new(user: User, subject: LoginSubject, client: Option<IpAddr>) -> Self {
        Self { user, subject, client }
    }

    /// Forgets the attempts counted against this login's account, within `db`'s write.
    pub async fn forget_attempts(&self, db: &impl ConnectionTrait) -> Result<()> {
        clear(db, &self.subject, self.client).await
    }
}

/// Forgets the attempts of `subject` after it logged in from `client`: both the
/// account's counter and this address's, in one statement. Run in the caller's
/// write (on SQLite it needs the write turn).
pub async fn clear(db: &impl ConnectionTrait, subject: &LoginSubject, client: Option<IpAddr>) -> Result<()> {
    use sea_orm::{ColumnTrait as _, QueryFilter as _};
    login_attempts::Entity::delete_many()
        .filter(login_attempts::Column::Key.is_in(keys(subject, client)))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes counters whose window ended `window` before `at` or earlier: they count
/// nothing any more. Returns how many went.
pub async fn purge_expired(db: &DatabaseConnection, window: Duration, at: DateTime<Utc>) -> Result<u64> {
    use sea_orm::{ColumnTrait as _, QueryFilter as _};
    let window = chrono::Duration::from_std(window)
        .map_err(|_| Error::internal("the login window is out of range"))?;
    let (txn, _turn) = begin_write(db).await?;
    let deleted = login_attempts::Entity::delete_many()
        .filter(login_attempts::Column::WindowStartedAt.lte(at - window))
        .exec(&txn)
        .await?;
    super::commit(txn).await?;
    Ok(deleted.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_logged_as_a_short_hash() {
        let subject = LoginSubject::Name("ada@example.com".to_owned());
        let shown = subject.to_string();
        assert!(shown.starts_with("name#") && shown.len() == 17, "{shown}");
        assert!(!shown.contains("ada"));
        assert_eq!(LoginSubject::User(UserId(7)).to_string(), "user:7");
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_block() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(Some(a)), client_key(Some(b)));
        assert_ne!(client_key(Some(a)), client_key(Some(other)));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_key(Some(mapped)), "192.0.2.1");
        assert_eq!(client_key(None), "unknown");
    }
}
