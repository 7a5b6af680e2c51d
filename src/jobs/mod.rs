//! Background work: the notice dispatcher and the scheduled jobs (digest,
//! login-counter purge, trash purge), each a thin call into `domain` and `mail`.
//!
//! Timing. tokio-cron-scheduler runs the repeating jobs. Assignment notices are not
//! one scheduler job each: its loop scans every live job each tick (about 500 ms) and
//! keeps them only in memory, so 100,000 pending notices would be 100,000 jobs
//! scanned twice a second, and a notice could be up to a tick late. Instead the
//! dispatcher keeps one timer, for the earliest pending notice in the database (the
//! truth), and is woken early when a change commits a nearer one; it never sleeps
//! longer than `TRIAGE_NOTICE_SWEEP`, so it picks up notices other replicas wrote.
//!
//! Clock. The dispatcher and the digest read the time from the outbox's clock
//! ([`crate::clock::Clock`]) and wait on timers of it. On a manual clock (tests) the
//! digest is run by the clock rather than the scheduler (see `digest`), so moving the
//! clock is all it takes to run it.

mod digest;
mod dispatch;
mod logins;
mod trash;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use tokio::{sync::watch, task::JoinHandle};
use tokio_cron_scheduler::JobScheduler;

pub use digest::run_digest;
pub use dispatch::{Dispatcher, DispatcherConfig};
pub use logins::run_login_purge;
pub use trash::run_trash_purge;

use crate::domain::notices::Outbox;

/// When digests go out.
#[derive(Debug, Clone)]
pub enum DigestSchedule {
    Every(Duration),
    Cron(String),
}

#[derive(Debug, Clone)]
pub struct JobsConfig {
    pub digest: DigestSchedule,
    pub digest_include_empty: bool,
    /// The login throttling window: counters older than this are purged.
    pub login_window: Duration,
    /// How long deleted issues stay in the trash.
    pub trash_retention: Duration,
}

/// The running background work.
pub struct Jobs {
    db: DatabaseConnection,
    scheduler: JobScheduler,
    stop: watch::Sender<bool>,
    dispatcher: JoinHandle<()>,
    /// The digest's task when the clock, not the scheduler, runs it.
    digest: Option<JoinHandle<()>>,
    trash: JoinHandle<()>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").finish_non_exhaustive()
    }
}

impl Jobs {
    pub async fn start(
        db: DatabaseConnection,
        outbox: Outbox,
        dispatcher: Dispatcher,
        config: JobsConfig,
    ) -> anyhow::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let dispatcher = tokio::spawn(Arc::new(dispatcher).run(stopped.clone()));
        let pool = db.clone();
        let periods = digest::Periods::new(&config.digest)?;

        let scheduler = JobScheduler::new().await.context("starting the job scheduler")?;
        scheduler.add(logins::job(db.clone(), config.login_window)?).await?;
        let clock = outbox.clock().clone();
        let trash =
            tokio::spawn(trash::on_clock(db.clone(), config.trash_retention, clock.clone(), stopped.clone()));
        let digest = if clock.is_manual() {
            let include_empty = config.digest_include_empty;
            Some(tokio::spawn(digest::on_clock(db, outbox, periods, include_empty, clock, stopped)))
        } else {
            scheduler.add(digest::job(db, outbox, periods, &config)?).await?;
            None
        };
        scheduler.start().await.context("starting the job scheduler")?;
        Ok(Self { db: pool, scheduler, stop, dispatcher, digest, trash })
    }

    /// Stops the scheduler and lets the dispatcher finish the sends in flight.
    pub async fn shutdown(mut self) {
        if let Err(err) = self.scheduler.shutdown().await {
            tracing::warn!(error = %err, "stopping the job scheduler");
        }
        let _ = self.stop.send(true);
        if let Some(digest) = self.digest.take()
            && let Err(err) = digest.await
        {
            tracing::error!(error = %err, "the digest task panicked");
        }
        if let Err(err) = (&mut self.trash).await {
            tracing::error!(error = %err, "the trash purge panicked");
        }
        if let Err(err) = self.dispatcher.await {
            tracing::error!(error = %err, "the notice dispatcher panicked");
        }
        if let Err(err) = self.db.close().await {
            tracing::warn!(error = %err, "closing the jobs' database pool");
        }
    }
}
