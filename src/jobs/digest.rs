//! The digest job: enqueues one digest notice per user per period; the dispatcher
//! sends them. Enqueueing is idempotent per (user, period), so every replica may run
//! it and a run that died half way can simply run again.

use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use croner::parser::{CronParser, Seconds};
use sea_orm::DatabaseConnection;
use tokio_cron_scheduler::Job;

use super::{DigestSchedule, JobsConfig};
use crate::domain::{digest, notices, notices::Outbox};

/// Enqueues the digests of `period` and wakes the dispatcher. Returns how many were new.
pub async fn run_digest(
    db: &DatabaseConnection,
    outbox: &Outbox,
    period: &str,
    include_empty: bool,
) -> crate::Result<u64> {
    let enqueued = notices::enqueue_digests(db, period, include_empty).await?;
    if enqueued > 0 {
        tracing::info!(period, enqueued, "digests enqueued");
        outbox.committed();
    }
    Ok(enqueued)
}

pub(super) fn job(db: DatabaseConnection, outbox: Outbox, config: &JobsConfig) -> anyhow::Result<Job> {
    let include_empty = config.digest_include_empty;
    match config.digest.clone() {
        DigestSchedule::Every(every) => {
            // Check twice a period (at most every 30 s): each epoch-aligned period is
            // seen by at least one tick, and the first tick in it enqueues.
            let tick = (every / 2).clamp(Duration::from_millis(500), Duration::from_secs(30));
            Job::new_repeated_async(tick, move |_, _| {
                let (db, outbox) = (db.clone(), outbox.clone());
                Box::pin(async move {
                    let period = digest::period_of(Utc::now(), every);
                    if let Err(err) = run_digest(&db, &outbox, &period, include_empty).await {
                        tracing::error!(error = %err, period, "digest run failed; the next tick retries");
                    }
                })
            })
            .context("creating the digest job")
        }
        DigestSchedule::Cron(expression) => {
            let schedule = CronParser::builder()
                .seconds(Seconds::Required)
                .dom_and_dow(true)
                .build()
                .parse(&expression)
                .with_context(|| format!("TRIAGE_DIGEST_CRON is not a cron line: {expression}"))?;
            Job::new_async_tz(expression.as_str(), Utc, move |_, _| {
                let (db, outbox, schedule) = (db.clone(), outbox.clone(), schedule.clone());
                Box::pin(async move {
                    // The period is the scheduled tick, not the moment this replica got
                    // round to it: replicas firing a little late, on either side of a
                    // second, still agree.
                    let tick = match schedule.find_previous_occurrence(&Utc::now(), true) {
                        Ok(tick) => tick,
                        Err(err) => return tracing::error!(error = %err, "finding the digest tick failed"),
                    };
                    let period = digest::period_of_tick(tick);
                    if let Err(err) = run_digest(&db, &outbox, &period, include_empty).await {
                        tracing::error!(error = %err, period, "digest run failed");
                    }
                })
            })
            .with_context(|| format!("TRIAGE_DIGEST_CRON is not a cron line: {expression}"))
        }
    }
}
