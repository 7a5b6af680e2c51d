//! The trash purge: deletes for good the issues that have been in the trash longer
//! than `TRIAGE_TRASH_RETENTION`. Idempotent: any replica may run it, any number of
//! times. It runs once a day on the jobs' clock, so a test that moves a manual clock
//! a day runs it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use tokio::sync::watch;

use crate::{clock::Clock, domain};

/// How often the trash is purged.
const EVERY: Duration = Duration::from_secs(24 * 3600);

/// Deletes the issues that went to the trash `retention` or longer before `at`;
/// returns how many went.
pub async fn run_trash_purge(
    db: &DatabaseConnection,
    retention: Duration,
    at: DateTime<Utc>,
) -> crate::Result<u64> {
    let purged = domain::issues::purge_trash(db, at, retention).await?;
    if purged > 0 {
        tracing::info!(purged, "issues purged from the trash");
    }
    Ok(purged)
}

/// Purges the trash every day, from a day after start-up, until `stop`.
pub(super) async fn on_clock(
    db: DatabaseConnection,
    retention: Duration,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    let timer = clock.timer();
    let every = chrono::Duration::from_std(EVERY).unwrap_or(chrono::Duration::MAX);
    let mut next = clock.now() + every;
    loop {
        tokio::select! {
            () = timer.sleep_until(next) => {}
            _ = stop.changed() => return,
        }
        let now = clock.now();
        if now >= next {
            if let Err(err) = run_trash_purge(&db, retention, now).await {
                tracing::error!(error = %err, "purging the trash failed");
            }
            next = now + every;
        }
    }
}
