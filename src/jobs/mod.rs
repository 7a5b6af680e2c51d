//! Background work: the notice dispatcher and the scheduled jobs (digest and
//! login-counter purge), each a thin call into `domain` and `mail`.
//!
//! Timing. tokio-cron-scheduler runs the repeating jobs. Assignment notices are not
//! one scheduler job each: its loop scans every live job each tick (about 500 ms) and
//! keeps them only in memory, so 100,000 pending notices would be 100,000 jobs
//! scanned twice a second, and a notice could be up to a tick late. Instead the
//! dispatcher keeps one timer, for the earliest pending notice in the database (the
//! truth), and is woken early when a change commits a nearer one; it never sleeps
//! longer than `TRIAGE_NOTICE_SWEEP`, so it picks up notices other replicas wrote.

mod digest;
mod dispatch;
mod logins;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use tokio::{sync::watch, task::JoinHandle};
use tokio_cron_scheduler::JobScheduler;

pub use digest::run_digest;
pub use dispatch::{Dispatcher, DispatcherConfig};
pub use logins::run_login_purge;

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
}

/// The running background work.
pub struct Jobs {
    db: DatabaseConnection,
    scheduler: JobScheduler,
    stop: watch::Sender<bool>,
    dispatcher: JoinHandle<()>,
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
        let dispatcher = tokio::spawn(Arc::new(dispatcher).run(stopped));
        let pool = db.clone();

        let scheduler = JobScheduler::new().await.context("starting the job scheduler")?;
        scheduler.add(logins::job(db.clone(), config.login_window)?).await?;
        scheduler.add(digest::job(db, outbox, &config)?).await?;
        scheduler.start().await.context("starting the job scheduler")?;
        Ok(Self { db: pool, scheduler, stop, dispatcher })
    }

    /// Stops the scheduler and lets the dispatcher finish the sends in flight.
    pub async fn shutdown(mut self) {
        if let Err(err) = self.scheduler.shutdown().await {
            tracing::warn!(error = %err, "stopping the job scheduler");
        }
        let _ = self.stop.send(true);
        if let Err(err) = self.dispatcher.await {
            tracing::error!(error = %err, "the notice dispatcher panicked");
        }
        if let Err(err) = self.db.close().await {
            tracing::warn!(error = %err, "closing the jobs' database pool");
        }
    }
}
