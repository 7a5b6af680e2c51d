//! The digest job: enqueues one digest notice per user per period; the dispatcher
//! sends them. Enqueueing is idempotent per (user, period), so every replica may run
//! it and a run that died half way can simply run again.
//!
//! Its work is [`run_digest`] at a moment. On the system clock tokio-cron-scheduler
//! runs it; on a manual clock (tests) the clock does, through a timer set for the
//! start of each next period, so a test that advances the clock past a period's
//! start gets that period's digests, and [`crate::clock::ManualClock::settled`]
//! tells it when they are sent.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use croner::{
    Cron,
    parser::{CronParser, Seconds},
};
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use tokio_cron_scheduler::Job;

use super::{DigestSchedule, JobsConfig};
use crate::{
    clock::Clock,
    domain::{digest, notices, notices::Outbox},
};

/// Enqueues the digests of `period`, due at `at`, and wakes the dispatcher. Returns
/// how many were new.
pub async fn run_digest(
    db: &DatabaseConnection,
    outbox: &Outbox,
    period: &str,
    include_empty: bool,
    at: DateTime<Utc>,
) -> crate::Result<u64> {
    let enqueued = notices::enqueue_digests(db, period, include_empty, at).await?;
    if enqueued > 0 {
        tracing::info!(period, enqueued, "digests enqueued");
        outbox.scheduled(at);
    }
    Ok(enqueued)
}

/// The digest's periods under a schedule.
#[derive(Debug, Clone)]
pub(super) enum Periods {
    Every(Duration),
    Cron(Box<Cron>),
}

impl Periods {
    pub(super) fn new(schedule: &DigestSchedule) -> anyhow::Result<Self> {
        Ok(match schedule {
            DigestSchedule::Every(every) => Self::Every(*every),
            DigestSchedule::Cron(expression) => Self::Cron(Box::new(
                CronParser::builder()
                    .seconds(Seconds::Required)
                    .dom_and_dow(true)
                    .build()
                    .parse(expression)
                    .with_context(|| format!("TRIAGE_DIGEST_CRON is not a cron line: {expression}"))?,
            )),
        })
    }

    /// The key of the period `at` falls in, the same on every replica.
    fn key(&self, at: DateTime<Utc>) -> anyhow::Result<String> {
        Ok(match self {
            Self::Every(every) => digest::period_of(at, *every),
            // The period is the scheduled tick, not the moment this replica got round
            // to it: replicas firing a little late, on either side of a second, agree.
            Self::Cron(schedule) => digest::period_of_tick(
                schedule.find_previous_occurrence(&at, true).context("finding the digest tick")?,
            ),
        })
    }

    /// When the first period after `at` starts.
    fn next_start(&self, at: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
        match self {
            Self::Every(every) => Ok(digest::next_period_start(at, *every)),
            Self::Cron(schedule) => {
                schedule.find_next_occurrence(&at, false).context("finding the next digest tick")
            }
        }
    }
}

/// One run at `at`: the digests of the period it falls in.
async fn tick(
    db: &DatabaseConnection,
    outbox: &Outbox,
    periods: &Periods,
    include_empty: bool,
    at: DateTime<Utc>,
) {
    let period = match periods.key(at) {
        Ok(period) => period,
        Err(err) => return tracing::error!(error = %format!("{err:#}"), "digest run failed"),
    };
    if let Err(err) = run_digest(db, outbox, &period, include_empty, at).await {
        tracing::error!(error = %err, period, "digest run failed; the next tick retries");
    }
}

/// The digest as a tokio-cron-scheduler job, on the system clock.
pub(super) fn job(
    db: DatabaseConnection,
    outbox: Outbox,
    periods: Periods,
    config: &JobsConfig,
) -> anyhow::Result<Job> {
    let include_empty = config.digest_include_empty;
    let run = move || {
        let (db, outbox, periods) = (db.clone(), outbox.clone(), periods.clone());
        Box::pin(async move {
            let at = outbox.clock().now();
            tick(&db, &outbox, &periods, include_empty, at).await;
        }) as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
    };
    match &config.digest {
        DigestSchedule::Every(every) => {
            // Check twice a period (at most every 30 s): each epoch-aligned period is
            // seen by at least one tick, and the first tick in it enqueues.
            let check = (*every / 2).clamp(Duration::from_millis(500), Duration::from_secs(30));
            Job::new_repeated_async(check, move |_, _| run()).context("creating the digest job")
        }
        DigestSchedule::Cron(expression) => Job::new_async_tz(expression.as_str(), Utc, move |_, _| run())
            .with_context(|| format!("TRIAGE_DIGEST_CRON is not a cron line: {expression}")),
    }
}

/// The digest driven by a (manual) clock, until `stop` turns true: each time the
/// clock reaches the start of a period, a run for the period it is in then (so a
/// jump over several periods runs once, for the last, as a replica that was down
/// for them would).
pub(super) async fn on_clock(
    db: DatabaseConnection,
    outbox: Outbox,
    periods: Periods,
    include_empty: bool,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    let timer = clock.timer();
    loop {
        let next = match periods.next_start(clock.now()) {
            Ok(next) => next,
            Err(err) => return tracing::error!(error = %format!("{err:#}"), "the digest has no next period"),
        };
        tokio::select! {
            () = timer.sleep_until(next) => {}
            _ = stop.changed() => return,
        }
        if clock.now() >= next {
            tick(&db, &outbox, &periods, include_empty, clock.now()).await;
        }
    }
}
