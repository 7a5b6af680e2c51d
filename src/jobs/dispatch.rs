//! The notice dispatcher: sends each due notice once, on time.
//!
//! It sleeps on its timer, on the outbox's clock, until the earliest pending notice
//! is due (or until a commit wakes it), then claims
//! what is due in batches, loads the batch's people and issues in a few queries, and
//! sends its emails concurrently, recording each one's outcome as soon as its send
//! completes (under the claim that holds it: see `domain::notices`), so a crash
//! re-sends at most the emails in flight.
//! A transient failure is retried with exponential backoff and jitter; a permanent
//! one, or running out of attempts, marks the notice failed.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures_util::{StreamExt as _, stream};
use sea_orm::{ActiveEnum as _, DatabaseConnection};
use tokio::sync::watch;

use crate::{
    Result,
    clock::{Clock, Timer},
    domain::{
        digest::{self, ProjectDigest},
        issues,
        notices::{self, Notice, Outbox},
        policy,
        projects::{self, Project},
        users::{self, User, display_name},
    },
    entity::{
        ids::{IssueId, ProjectId, UserId},
        issues::Status,
        notices::Kind,
    },
    mail::{
        AssignmentEmail, DigestEmail, DigestGroup, DigestProject, Email, IssueSummary, Mailer, SendError,
        Templates,
    },
};

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Base URL of the web app, for links in emails.
    pub public_url: String,
    pub max_attempts: u32,
    /// First retry delay; each further one doubles, up to an hour.
    pub retry_base: Duration,
    /// How long a claimed notice is this sender's before others may take it: longer
    /// than two rounds of sends at the worst SMTP timeouts.
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
    clock: Clock,
    /// What the dispatcher sleeps on; the outbox holds its handle, to wake it.
    timer: Timer,
    mailer: Mailer,
    templates: Templates,
    config: DispatcherConfig,
}

/// What became of one notice.
enum Outcome {
    Sent,
    Cancelled,
    Retry { error: String, at: DateTime<Utc> },
    Failed(String),
}

impl Outcome {
    fn name(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Cancelled => "cancelled",
            Self::Retry { .. } => "retry",
            Self::Failed(_) => "failed",
        }
    }
}

/// The rows a batch of notices needs, loaded once for the batch.
struct BatchData {
    users: HashMap<UserId, User>,
    issues: HashMap<IssueId, issues::Issue>,
    /// The projects of `issues`.
    projects: HashMap<ProjectId, Project>,
    digests: HashMap<UserId, Vec<ProjectDigest>>,
}

impl Dispatcher {
    /// A dispatcher for `outbox`, on its clock, sleeping on `timer`: the timer whose
    /// handle the outbox was made with, so that a commit wakes it.
    pub fn new(
        db: DatabaseConnection,
        outbox: &Outbox,
        timer: Timer,
        mailer: Mailer,
        templates: Templates,
        config: DispatcherConfig,
    ) -> Self {
        Self { db, clock: outbox.clock().clone(), timer, mailer, templates, config }
    }

    /// Runs until `stop` turns true, finishing the batch in flight.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            // One reading of the clock a round: what was due at this moment is sent,
            // and the next wake is planned from the same moment. (Planned from a later
            // one, a notice that fell due in between would look as if it had been
            // looked at; a manual clock would then never wake the dispatcher for it.)
            let now = self.clock.now();
            self.send_due(now, &stop).await;
            let deadline = self.next_wake(now).await;
            tokio::select! {
                () = self.timer.sleep_until(deadline) => {}
                _ = stop.changed() => break,
            }
        }
    }

    /// Claims and sends everything due at `now`, a batch at a time.
    async fn send_due(&self, now: DateTime<Utc>, stop: &watch::Receiver<bool>) {
        while !*stop.borrow() {
            // Two rounds of sends a batch: enough to keep the slots busy while the slowest
            // send of a round finishes, few enough that every claimed notice is sent
            // well inside its lease (see `DispatcherConfig::lease`).
            let batch = (self.config.concurrency.clamp(1, 256) * 2) as u64;
            let claimed = match notices::claim_due(&self.db, now, self.config.lease, batch).await {
                Ok(claimed) => claimed,
                Err(err) => {
                    tracing::error!(error = %err, "claiming due notices failed");
                    return;
                }
            };
            if claimed.is_empty() {
                return;
            }
            let full = claimed.len() as u64 == batch;
            self.send_batch(claimed).await;
            if !full {
                return;
            }
        }
    }

    async fn send_batch(&self, claimed: Vec<Notice>) {
        let data = match self.load(&claimed).await {
            Ok(data) => data,
            Err(err) => {
                // The leases run out and the batch is tried again.
                tracing::error!(error = %err, "loading a batch of notices failed");
                return;
            }
        };
        let data = &data;
        stream::iter(claimed)
            .for_each_concurrent(self.config.concurrency.max(1), |notice: Notice| async move {
                let outcome = self.deliver(&notice, data).await;
                self.record(&notice, outcome).await;
            })
            .await;
    }

    /// Records what became of one send, at once.
    async fn record(&self, notice: &Notice, outcome: Outcome) {
        let recorded = match &outcome {
            Outcome::Sent => notices::mark_sent(&self.db, notice, self.clock.now()).await,
            Outcome::Cancelled => notices::mark_cancelled(&self.db, notice, "nothing to send").await,
            Outcome::Retry { error, at } => notices::mark_retry(&self.db, notice, error, *at).await,
            Outcome::Failed(error) => notices::mark_failed(&self.db, notice, error).await,
        };
        match recorded {
            Ok(true) => {}
            // Cancelled meanwhile, or the lease ran out and the notice is another
            // claim's now: that claim's outcome stands.
            Ok(false) => tracing::warn!(
                notice_id = notice.id.0,
                outcome = outcome.name(),
                "a notice's outcome was not recorded: it is no longer this claim's"
            ),
            // The lease runs out and the notice is tried again.
            Err(err) => {
                tracing::error!(notice_id = notice.id.0, error = %err, "recording a notice's outcome failed")
            }
        }
    }

    async fn load(&self, claimed: &[Notice]) -> Result<BatchData> {
        let mut user_ids: Vec<UserId> =
            claimed.iter().flat_map(|n| [Some(n.recipient_id), n.actor_id]).flatten().collect();
        user_ids.sort_unstable();
        user_ids.dedup();
        let issue_ids: Vec<IssueId> = claimed.iter().filter_map(|n| n.issue_id).collect();
        let digest_users: Vec<UserId> =
            claimed.iter().filter(|n| n.kind == Kind::Digest).map(|n| n.recipient_id).collect();
        let users = users::find_many(&self.db, &user_ids).await?.into_iter().map(|u| (u.id, u)).collect();
        let issues: HashMap<_, _> =
            issues::find_many(&self.db, &issue_ids).await?.into_iter().map(|i| (i.id, i)).collect();
        let project_ids = issues.values().map(|issue| issue.project_id);
        let projects =
            projects::find_many(&self.db, project_ids).await?.into_iter().map(|p| (p.id, p)).collect();
        let digests = if digest_users.is_empty() {
            HashMap::new()
        } else {
            digest::assigned_by_project(&self.db, &digest_users).await?
        };
        Ok(BatchData { users, issues, projects, digests })
    }

    /// When to look again after looking at `now`, by the clock: the earliest pending
    /// due time, or the sweep interval.
    async fn next_wake(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let latest = now + self.config.sweep_every;
        match notices::next_due(&self.db, now).await {
            // A floor, so a notice that cannot be claimed yet never spins the loop.
            Ok(Some(due)) => latest.min(due.max(now + Duration::from_millis(5))),
            Ok(None) => latest,
            Err(err) => {
                tracing::error!(error = %err, "reading the outbox failed");
                now + Duration::from_secs(1).min(self.config.sweep_every)
            }
        }
    }

    async fn deliver(&self, notice: &Notice, data: &BatchData) -> Outcome {
        let result = match self.compose(notice, data) {
            Ok(Some(email)) => self.mailer.send(&email).await,
            Ok(None) => return Outcome::Cancelled,
            Err(err) => Err(SendError::Transient(format!("composing: {err}"))),
        };
        match result {
            Ok(()) => {
                tracing::debug!(notice_id = notice.id.0, kind = ?notice.kind, attempt = notice.attempts, "notice sent");
                Outcome::Sent
            }
            Err(SendError::Transient(error)) if (notice.attempts as u32) < self.config.max_attempts => {
                let retry_in = backoff(self.config.retry_base, notice.attempts as u32);
                tracing::warn!(notice_id = notice.id.0, attempt = notice.attempts, %error, ?retry_in, "sending failed; will retry");
                Outcome::Retry { error, at: self.clock.now() + retry_in }
            }
            Err(err) => {
                tracing::error!(notice_id = notice.id.0, attempt = notice.attempts, error = %err, "notice failed for good");
                Outcome::Failed(err.to_string())
            }
        }
    }

    /// The email a notice stands for, as things are now; `None` when there is nothing
    /// to send any more (the issue is gone or assigned elsewhere, or the digest is empty).
    fn compose(&self, notice: &Notice, data: &BatchData) -> Result<Option<Email>> {
        let Some(recipient) = data.users.get(&notice.recipient_id) else { return Ok(None) };
        let rendered = match notice.kind {
            Kind::Assignment => {
                let issue = notice.issue_id.and_then(|id| data.issues.get(&id));
                let (true, Some(issue)) = (policy::assignment_notice_wanted(issue, recipient.id), issue)
                else {
                    return Ok(None);
                };
                let Some(project) = data.projects.get(&issue.project_id) else { return Ok(None) };
                let actor = notice.actor_id.and_then(|id| data.users.get(&id));
                self.templates.assignment(&AssignmentEmail {
                    recipient_name: display_name(recipient),
                    actor_name: actor.map_or_else(|| "Someone".to_owned(), display_name),
                    issue: self.summary(issue, project),
                })?
            }
            Kind::Digest => {
                let digest = data.digests.get(&recipient.id).map(Vec::as_slice).unwrap_or_default();
                let groups = || digest.iter().flat_map(|part| &part.groups);
                let total = groups().map(|(_, issues)| issues.len()).sum();
                if !policy::digest_wanted(total, self.config.digest_include_empty) {
                    return Ok(None);
                }
                let open = groups().filter(|(s, _)| *s != Status::Closed).map(|(_, i)| i.len()).sum();
                let projects = digest.iter().map(|part| self.digest_project(part)).collect();
                self.templates.digest(&DigestEmail {
                    recipient_name: display_name(recipient),
                    total,
                    open,
                    projects,
                })?
            }
        };
        Ok(Some(Email {
            to_address: recipient.email.clone(),
            to_name: display_name(recipient),
            message_id: format!("<notice-{}@{}>", notice.id, self.host()),
            rendered,
        }))
    }

    fn digest_project(&self, part: &ProjectDigest) -> DigestProject {
        let groups: Vec<DigestGroup> = part
            .groups
            .iter()
            .map(|(status, issues)| DigestGroup {
                status: status.to_value(),
                issues: issues.iter().map(|issue| self.summary(issue, &part.project)).collect(),
            })
            .collect();
        DigestProject {
            key: part.project.key.clone(),
            name: part.project.name.clone(),
            total: groups.iter().map(|group| group.issues.len()).sum(),
            groups,
        }
    }

    fn summary(&self, issue: &issues::Issue, project: &Project) -> IssueSummary {
        IssueSummary {
            id: issue.id.0,
            key: issues::key_of(project, issue),
            title: issue.title.clone(),
            status: issue.status.to_value(),
            description: issue.description.clone(),
            url: format!("{}/issues/{}", self.config.public_url.trim_end_matches('/'), issue.id),
        }
    }

    fn host(&self) -> &str {
        crate::mail::message_host(&self.config.public_url)
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
