//! The login-counter purge: deletes login attempt counters whose window is over,
//! which count nothing any more (an attacker spraying names would otherwise grow
//! the table without end). Idempotent: any replica may run it, any number of times.

use std::time::Duration;

use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use tokio_cron_scheduler::Job;

use crate::domain::logins;

/// Deletes the counters whose `window` is over; returns how many went.
pub async fn run_login_purge(db: &DatabaseConnection, window: Duration) -> crate::Result<u64> {
    let purged = logins::purge_expired(db, window).await?;
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
            if let Err(err) = run_login_purge(&db, window).await {
                tracing::error!(error = %err, "purging login attempt counters failed");
            }
        })
    })
    .context("creating the login counter purge job")
}
