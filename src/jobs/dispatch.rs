//! The notice dispatcher: sends each due notice once, on time.
//!
//! It sleeps until the earliest pending notice is due (or until woken), claims what is
//! due in batches no larger than its free send slots, and sends each on its own task.
//! A transient failure is retried with exponential backoff and jitter; a permanent
//! one, or running out of attempts, marks the notice failed.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::DatabaseConnection;
use tokio::{
    sync::{Semaphore, watch},
    time::Instant,
};

use crate::{
    Result,
    domain::{
        digest, issues,
        notices::{self, Notice, Outbox},
        users::{self, User},
    },
    entity::{issues::Status, notices::Kind},
    mail::{AssignmentEmail, DigestEmail, DigestGroup, Email, IssueSummary, Mailer, SendError, Templates},
};

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Base URL of the web app, for links in emails.
    pub public_url: String,
    pub max_attempts: u32,
    /// First retry delay; each further one doubles, up to an hour.
    pub retry_base: Duration,
    /// How long a claimed notice is this sender's before others may take it.
    pub lease: Duration,
    /// Most emails in flight at once.
    pub concurrency: usize,
    /// Longest sleep without looking at the outbox.
    pub sweep_every: Duration,
    pub digest_include_empty: bool,
}

#[derive(Debug)]
pub struct Dispatcher {
    db: DatabaseConnection,
    outbox: Outbox,
    mailer: Mailer,
    templates: Templates,
    config: DispatcherConfig,
    slots: Arc<Semaphore>,
}

impl Dispatcher {
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        mailer: Mailer,
        templates: Templates,
        config: DispatcherConfig,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
        Self { db, outbox, mailer, templates, config, slots }
    }

    /// Runs until `stop` turns true, then waits for the sends in flight.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            self.send_due().await;
            let deadline = self.next_wake().await;
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = self.outbox.changed() => {}
                _ = stop.changed() => break,
            }
        }
        // Every slot back means every send has finished.
        let _ = self.slots.acquire_many(self.config.concurrency.max(1) as u32).await;
    }

    /// Claims and starts sending everything due now.
    async fn send_due(self: &Arc<Self>) {
        loop {
            let Ok(first) = self.slots.clone().acquire_owned().await else { return };
            let mut permits = vec![first];
            while let Ok(permit) = self.slots.clone().try_acquire_owned() {
                permits.push(permit);
            }
            let wanted = permits.len();
            let claimed = match notices::claim_due(&self.db, self.config.lease, wanted as u64).await {
                Ok(claimed) => claimed,
                Err(err) => {
                    tracing::error!(error = %err, "claiming due notices failed");
                    return;
                }
            };
            let full = claimed.len() == wanted;
            for (notice, permit) in claimed.into_iter().zip(permits) {
                let this = self.clone();
                tokio::spawn(async move {
                    this.deliver(notice).await;
                    drop(permit);
                });
            }
            if !full {
                return;
            }
        }
    }

    /// When to look again: the earliest pending due time, or the sweep interval.
    async fn next_wake(&self) -> Instant {
        let latest = Instant::now() + self.config.sweep_every;
        match notices::next_due(&self.db).await {
            Ok(Some(due)) => {
                let wait = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                latest.min(Instant::now() + wait)
            }
            Ok(None) => latest,
            Err(err) => {
                tracing::error!(error = %err, "reading the outbox failed");
                Instant::now() + Duration::from_secs(1).min(self.config.sweep_every)
            }
        }
    }

    async fn deliver(&self, notice: Notice) {
        let outcome = match self.compose(&notice).await {
            Ok(Some(email)) => self.mailer.send(&email).await,
            Ok(None) => {
                return self.settle(notices::mark_cancelled(&self.db, notice.id, "nothing to send")).await;
            }
            Err(err) => Err(SendError::Transient(format!("composing: {err}"))),
        };
        match outcome {
            Ok(()) => {
                tracing::info!(notice_id = notice.id, kind = ?notice.kind, attempt = notice.attempts, "notice sent");
                self.settle(notices::mark_sent(&self.db, notice.id)).await;
            }
            Err(SendError::Transient(error)) if (notice.attempts as u32) < self.config.max_attempts => {
                let retry_in = backoff(self.config.retry_base, notice.attempts as u32);
                tracing::warn!(notice_id = notice.id, attempt = notice.attempts, %error, ?retry_in, "sending failed; will retry");
                let retry_at = Utc::now() + retry_in;
                self.settle(notices::mark_retry(&self.db, notice.id, &error, retry_at)).await;
            }
            Err(err) => {
                tracing::error!(notice_id = notice.id, attempt = notice.attempts, error = %err, "notice failed for good");
                self.settle(notices::mark_failed(&self.db, notice.id, &err.to_string())).await;
            }
        }
    }

    async fn settle(&self, result: impl Future<Output = Result<()>>) {
        if let Err(err) = result.await {
            // The lease runs out and the notice is tried again.
            tracing::error!(error = %err, "recording a notice's outcome failed");
        }
    }

    /// The email a notice stands for, as things are now; `None` when there is nothing
    /// to send any more (the issue is gone or assigned elsewhere, or the digest is empty).
    async fn compose(&self, notice: &Notice) -> Result<Option<Email>> {
        let Some(recipient) = users::find(&self.db, notice.recipient_id).await? else { return Ok(None) };
        let rendered = match notice.kind {
            Kind::Assignment => {
                let Some(issue_id) = notice.issue_id else { return Ok(None) };
                let Some(issue) = issues::find(&self.db, issue_id).await? else { return Ok(None) };
                if issue.assigned_to != Some(recipient.id) {
                    return Ok(None);
                }
                let actor = match notice.actor_id {
                    Some(id) => users::find(&self.db, id).await?,
                    None => None,
                };
                self.templates.assignment(&AssignmentEmail {
                    recipient_name: display_name(&recipient),
                    actor_name: actor.as_ref().map_or_else(|| "Someone".to_owned(), display_name),
                    issue: self.summary(&issue),
                })?
            }
            Kind::Digest => {
                let groups = digest::assigned_by_status(&self.db, recipient.id).await?;
                let total = groups.iter().map(|(_, issues)| issues.len()).sum();
                if total == 0 && !self.config.digest_include_empty {
                    return Ok(None);
                }
                let open = groups.iter().filter(|(s, _)| *s != Status::Closed).map(|(_, i)| i.len()).sum();
                let groups = groups
                    .into_iter()
                    .map(|(status, issues)| DigestGroup {
                        status: status_name(status),
                        issues: issues.iter().map(|issue| self.summary(issue)).collect(),
                    })
                    .collect();
                self.templates.digest(&DigestEmail {
                    recipient_name: display_name(&recipient),
                    total,
                    open,
                    groups,
                })?
            }
        };
        Ok(Some(Email {
            to_address: recipient.email.clone(),
            to_name: display_name(&recipient),
            message_id: format!("<notice-{}@{}>", notice.id, self.host()),
            rendered,
        }))
    }

    fn summary(&self, issue: &issues::Issue) -> IssueSummary {
        IssueSummary {
            id: issue.id,
            title: issue.title.clone(),
            status: status_name(issue.status),
            description: issue.description.clone(),
            url: format!("{}/issues/{}", self.config.public_url.trim_end_matches('/'), issue.id),
        }
    }

    fn host(&self) -> &str {
        let url = self.config.public_url.as_str();
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        if host.is_empty() { "triage.invalid" } else { host }
    }
}

fn display_name(user: &User) -> String {
    let name = format!("{} {}", user.first_name, user.last_name);
    let name = name.trim();
    if name.is_empty() { user.username.clone() } else { name.to_owned() }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Open => "OPEN",
        Status::InProgress => "IN_PROGRESS",
        Status::Closed => "CLOSED",
    }
}

/// `base * 2^(attempt-1)`, capped at an hour, less up to a quarter at random, so a
/// fleet of retries does not hit the server in step.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential =
        base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))).min(Duration::from_secs(3600));
    let jitter = exponential.mul_f64(random_fraction() / 4.0);
    exponential - jitter
}

fn random_fraction() -> f64 {
    use argon2::password_hash::rand_core::{OsRng, RngCore as _};
    f64::from(OsRng.next_u32()) / f64::from(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(2);
        for attempt in 1..=6 {
            let full = base * 2u32.pow(attempt - 1);
            let delay = backoff(base, attempt);
            assert!(delay <= full && delay >= full.mul_f64(0.75), "attempt {attempt}: {delay:?}");
        }
        assert!(backoff(base, 30) <= Duration::from_secs(3600));
    }
}
