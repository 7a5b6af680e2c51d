//! The login-counter purge: deletes login attempt counters whose window is over,
//! which count nothing any more (an attacker spraying names would otherwise grow
//! the table without end). Idempotent: any replica may run it, any number of times.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use tokio_cron_scheduler::Job;

use crate::domain::{self, logins};

/// Deletes the counters whose `window` was over at `at`; returns how many went.
pub async fn run_login_purge(
    db: &DatabaseConnection,
    window: Duration,
    at: DateTime<Utc>,
) -> crate::Result<u64> {
    let purged = logins::purge_expired(db, window, at).await?;
    if purged > 0 {
        tracing::debug!(purged, "expired login attempt counters purged");
    }
    Ok(purged)
}

/// Runs the purge once a window (at least once a minute, at most once an hour).
pub(super) fn job(db: DatabaseConnection, window: Duration) -> anyhow::Result<Job> {
    let every = window.clamp(Duration::from_secs(60), Duration::from_secs(3600));
    Job::new_repeated_async(every, move |_, _| {
        let db = db.clone();
        Box::pin(async move {
            // The wall clock's time: login windows are counted by it (`domain::logins`).
            if let Err(err) = run_login_purge(&db, window, domain::now()).await {
                tracing::error!(error = %err, "purging login attempt counters failed");
            }
        })
    })
    .context("creating the login counter purge job")
}
