//! The outbox of emails to send. A notice is written in the same transaction as the
//! change that causes it, so a committed assignment always has its notice and a
//! rolled-back one never does. `jobs::dispatch` sends them when due.
//!
//! Sending claims a notice with one conditional UPDATE that takes a lease and stamps
//! the row with the claim's token: of several replicas (or a retry racing a restart)
//! exactly one wins it. A sender that dies holding a lease releases the notice when
//! the lease runs out. Each send's outcome is recorded as soon as the send completes,
//! by an UPDATE that requires the claim's token and a lease still running: a sender
//! whose lease ran out, and whose notice was claimed again, changes nothing. So a
//! crash re-sends at most the emails that were in flight.
//!
//! Time. The outbox runs on the jobs' clock ([`Outbox::clock`]): a notice is due
//! `assignment_delay` after the moment that clock read when it was scheduled, and
//! the dispatcher passes the moment it claims, sends and settles at (`at`), so a
//! test that moves a manual clock by the delay makes the notice due, exactly.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QueryTrait, Statement,
    sea_query::{Expr, ExprTrait as _, LockBehavior, LockType, Query},
};

pub use super::change::Outbox;
use super::{Template, change::Change};
use crate::entity::ids::{IssueId, ProjectId, UserId};
use crate::{
    Result,
    auth::token::random_token_string,
    entity::{
        issues,
        notices::{self, Kind, State},
    },
};

pub use notices::Model as Notice;

/// Within the change of an issue's assignee from `old` to `new`: cancels the pending
/// notice of the former assignment, if the issue has one (`notice_pending`, read with
/// the issue: [`pending_exists`]), and schedules one for the new. A reassignment
/// after the former notice went out, or of an issue nobody was assigned, is a
/// statement shorter.
pub async fn on_assignment_change(
    change: &mut Change<'_>,
    issue_id: IssueId,
    actor_id: UserId,
    (old, new): (Option<UserId>, Option<UserId>),
    notice_pending: bool,
) -> Result<()> {
    if old == new {
        return Ok(());
    }
    if notice_pending {
        cancel_for_issue(change, issue_id).await?;
    }
    if let Some(recipient) = new {
        let at = change.outbox().clock().now();
        let scheduled =
            Scheduled { issue_id, recipient, actor_id, due: at + change.outbox().assignment_delay, at };
        let backend = change.txn().get_database_backend();
        change.txn().execute_raw(scheduled.statement(backend)).await?;
        change.scheduled(scheduled.due);
    }
    Ok(())
}

/// A new assignment notice, due at `due`, scheduled at `at`.
#[derive(Debug, Clone, Copy)]
struct Scheduled {
    issue_id: IssueId,
    recipient: UserId,
    actor_id: UserId,
    due: DateTime<Utc>,
    at: DateTime<Utc>,
}

/// The statements of a reassignment, built once per backend (see [`Template`]):
/// each write of an assignee ran both, and building them cost more than sending.
static SCHEDULE: Template = Template::new();
static CANCEL: Template = Template::new();

/// Why a notice was cancelled when its issue's assignee changed.
const REASSIGNED: &str = "cancelled: the assignment changed";

impl Scheduled {
    /// Its INSERT, from the template: nothing reads the row back, so it returns none.
    fn statement(self, backend: DbBackend) -> Statement {
        // The build's values, in the order of the model's columns.
        let values = vec![
            Kind::Assignment.into(),
            Some(self.issue_id).into(),
            self.recipient.into(),
            Some(self.actor_id).into(),
            self.due.into(),
            State::Pending.into(),
            0_i32.into(),
            self.at.into(),
        ];
        SCHEDULE.statement(backend, || self.build(backend), values)
    }

    fn build(self, backend: DbBackend) -> Statement {
        // The columns left out are NULL.
        let notice = notices::ActiveModel {
            kind: Set(Kind::Assignment),
            issue_id: Set(Some(self.issue_id)),
            recipient_id: Set(self.recipient),
            actor_id: Set(Some(self.actor_id)),
            due_at: Set(self.due),
            state: Set(State::Pending),
            attempts: Set(0),
            created_at: Set(self.at),
            ..Default::default()
        };
        notices::Entity::insert(notice).build(backend)
    }
}

/// Whether issue `issue` (an id column or value) has a pending assignment notice:
/// read with the issue at the start of a change, it spares the change a cancel that
/// would find nothing. The issue's change holds it locked, and nothing else makes a
/// notice of it pending, so the answer holds until the change commits.
pub fn pending_exists(issue: Expr) -> Expr {
    Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(notices::Entity)
            .and_where(Expr::col((notices::Entity, notices::Column::IssueId)).eq(issue))
            .and_where(Expr::col((notices::Entity, notices::Column::Kind)).eq(Kind::Assignment))
            .and_where(Expr::col((notices::Entity, notices::Column::State)).eq(State::Pending))
            .to_owned(),
    )
}

/// Within `change`, cancels the pending assignment notice of an issue, if any.
/// Cancelling only makes the dispatcher's next wake-up early, so nobody needs waking.
pub async fn cancel_for_issue(change: &Change<'_>, issue_id: IssueId) -> Result<()> {
    let backend = change.txn().get_database_backend();
    change.txn().execute_raw(cancel_statement(backend, issue_id)).await?;
    Ok(())
}

/// [`cancel_for_issue`]'s UPDATE, from its template.
fn cancel_statement(backend: DbBackend, issue_id: IssueId) -> Statement {
    // The new values, then the conditions'.
    let values = vec![
        State::Cancelled.into(),
        REASSIGNED.into(),
        issue_id.into(),
        Kind::Assignment.into(),
        State::Pending.into(),
    ];
    CANCEL.statement(backend, || cancel_build(backend, issue_id), values)
}

/// [`cancel_for_issue`]'s UPDATE, built.
fn cancel_build(backend: DbBackend, issue_id: IssueId) -> Statement {
    notices::Entity::update_many()
        .col_expr(notices::Column::State, Expr::value(State::Cancelled))
        .col_expr(notices::Column::LastError, Expr::value(REASSIGNED))
        .filter(notices::Column::IssueId.eq(issue_id))
        .filter(notices::Column::Kind.eq(Kind::Assignment))
        .filter(notices::Column::State.eq(State::Pending))
        .build(backend)
}

/// Cancels the pending assignment notices to `recipient` about issues of `project`
/// (they left it). Cancelling only makes the dispatcher's next wake-up early, so
/// nobody needs waking.
pub async fn cancel_for_member(
    db: &impl ConnectionTrait,
    project: ProjectId,
    recipient: UserId,
) -> Result<()> {
    let issues_of_project = Query::select()
        .column(issues::Column::Id)
        .from(issues::Entity)
        .and_where(issues::Column::ProjectId.eq(project))
        .to_owned();
    notices::Entity::update_many()
        .col_expr(notices::Column::State, Expr::value(State::Cancelled))
        .col_expr(notices::Column::LastError, Expr::value("cancelled: the recipient left the project"))
        .filter(notices::Column::RecipientId.eq(recipient))
        .filter(notices::Column::Kind.eq(Kind::Assignment))
        .filter(notices::Column::State.eq(State::Pending))
        .filter(notices::Column::IssueId.in_subquery(issues_of_project))
        .exec(db)
        .await?;
    Ok(())
}

/// The pending assignment notices of these issues (at most one each).
pub async fn pending_for_issues(db: &impl ConnectionTrait, issue_ids: &[IssueId]) -> Result<Vec<Notice>> {
    Ok(notices::Entity::find()
        .filter(notices::Column::IssueId.is_in(issue_ids.iter().copied()))
        .filter(notices::Column::Kind.eq(Kind::Assignment))
        .filter(notices::Column::State.eq(State::Pending))
        .all(db)
        .await?)
}

/// When a pending notice can next be claimed, as of `at`, if there is one: the
/// earliest due time of those nobody holds, or the earliest lease to run out of those
/// somebody does. (A notice held by another replica is not "due" here, or every other
/// replica would poll for it until that replica is done.)
pub async fn next_due(db: &impl ConnectionTrait, at: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    let free = notices::Entity::find()
        .filter(notices::Column::State.eq(State::Pending))
        .filter(
            sea_orm::Condition::any()
                .add(notices::Column::LeaseUntil.is_null())
                .add(notices::Column::LeaseUntil.lt(at)),
        )
        .order_by_asc(notices::Column::DueAt)
        .one(db)
        .await?
        .map(|notice| notice.due_at);
    let held = notices::Entity::find()
        .filter(notices::Column::State.eq(State::Pending))
        .filter(notices::Column::LeaseUntil.gte(at))
        .order_by_asc(notices::Column::LeaseUntil)
        .one(db)
        .await?
        .and_then(|notice| notice.lease_until);
    Ok(match (free, held) {
        (Some(free), Some(held)) => Some(std::cmp::min(free, held)),
        (free, held) => free.or(held),
    })
}

/// Claims up to `limit` notices due at `at`, for `lease`: they are this sender's
/// until the lease runs out. Each claim counts as an attempt. The notices come back
/// with the claim's token in `claim_token`, which their outcome must name.
pub async fn claim_due(
    db: &DatabaseConnection,
    at: DateTime<Utc>,
    lease: Duration,
    limit: u64,
) -> Result<Vec<Notice>> {
    let token = random_token_string::<16>()?;
    let claimable = || {
        sea_orm::Condition::all()
            .add(notices::Column::State.eq(State::Pending))
            .add(notices::Column::DueAt.lte(at))
            .add(
                sea_orm::Condition::any()
                    .add(notices::Column::LeaseUntil.is_null())
                    .add(notices::Column::LeaseUntil.lt(at)),
            )
    };
    let due = Query::select()
        .column(notices::Column::Id)
        .from(notices::Entity)
        .cond_where(claimable())
        .order_by(notices::Column::DueAt, sea_orm::Order::Asc)
        .limit(limit)
        // PostgreSQL: replicas claiming at once take different rows instead of
        // queueing behind each other's row locks. (SQLite has one writer anyway.)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    // The conditions are checked again on each row as it is updated, so a row another
    // sender claimed meanwhile is skipped rather than claimed twice.
    let _turn = super::write_turn(db).await;
    let claimed = notices::Entity::update_many()
        .col_expr(notices::Column::LeaseUntil, Expr::value(at + lease))
        .col_expr(notices::Column::ClaimToken, Expr::value(token))
        .col_expr(notices::Column::Attempts, Expr::col(notices::Column::Attempts).add(1))
        .filter(notices::Column::Id.in_subquery(due))
        .filter(claimable())
        .exec_with_returning(db)
        .await?;
    Ok(claimed)
}

/// Records a claimed notice as sent at `at`. Like every outcome, it applies only
/// while the notice's claim (the token `claim_due` gave it) still holds it; returns
/// whether it did.
pub async fn mark_sent(db: &DatabaseConnection, notice: &Notice, at: DateTime<Utc>) -> Result<bool> {
    settle(db, notice, Settled::Sent(at), None, None).await
}

/// Records a notice that will not be sent (its issue or assignment is gone).
pub async fn mark_cancelled(db: &DatabaseConnection, notice: &Notice, reason: &str) -> Result<bool> {
    settle(db, notice, Settled::Cancelled, Some(reason), None).await
}

/// Records a notice that failed for good.
pub async fn mark_failed(db: &DatabaseConnection, notice: &Notice, error: &str) -> Result<bool> {
    settle(db, notice, Settled::Failed, Some(error), None).await
}

/// Releases a notice for another attempt at `retry_at`.
pub async fn mark_retry(
    db: &DatabaseConnection,
    notice: &Notice,
    error: &str,
    retry_at: DateTime<Utc>,
) -> Result<bool> {
    settle(db, notice, Settled::Retry, Some(error), Some(retry_at)).await
}

/// What an outcome makes of a notice.
enum Settled {
    Sent(DateTime<Utc>),
    Cancelled,
    Failed,
    Retry,
}

async fn settle(
    db: &DatabaseConnection,
    notice: &Notice,
    outcome: Settled,
    error: Option<&str>,
    retry_at: Option<DateTime<Utc>>,
) -> Result<bool> {
    // A notice nobody claimed has no claim to record an outcome for.
    let Some(claim) = notice.claim_token.as_deref() else { return Ok(false) };
    let state = match outcome {
        Settled::Sent(_) => State::Sent,
        Settled::Cancelled => State::Cancelled,
        Settled::Failed => State::Failed,
        Settled::Retry => State::Pending,
    };
    let mut update = notices::Entity::update_many()
        .col_expr(notices::Column::State, Expr::value(state))
        .col_expr(notices::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(notices::Column::Id.eq(notice.id))
        // Only a notice still pending is settled: one cancelled while it was being
        // sent stays cancelled.
        .filter(notices::Column::State.eq(State::Pending))
        // Only by the claim that holds it: after its lease ran out the notice may be
        // another sender's, whose claim rewrote the token and whose outcome this must
        // not overwrite. Late but unclaimed, the outcome still stands: the email went.
        .filter(notices::Column::ClaimToken.eq(claim));
    if let Settled::Sent(at) = outcome {
        update = update.col_expr(notices::Column::SentAt, Expr::value(at));
    }
    if let Some(error) = error {
        update = update.col_expr(notices::Column::LastError, Expr::value(error));
    }
    if let Some(retry_at) = retry_at {
        update = update.col_expr(notices::Column::DueAt, Expr::value(retry_at));
    }
    let _turn = super::write_turn(db).await;
    Ok(update.exec(db).await?.rows_affected == 1)
}

/// Enqueues one digest per user for the period `period` (a key that is the same on
/// every replica), due at `at`, skipping users who already have one for it. Users
/// with nothing assigned are skipped unless `include_empty`. Returns how many were
/// enqueued.
pub async fn enqueue_digests(
    db: &DatabaseConnection,
    period: &str,
    include_empty: bool,
    at: DateTime<Utc>,
) -> Result<u64> {
    let backend = db.get_database_backend();
    // SQLite needs a WHERE before an upsert's ON CONFLICT, even a trivial one: without
    // it the ON would parse as a join constraint.
    let assigned = if include_empty {
        " WHERE 1 = 1"
    } else {
        " WHERE EXISTS (SELECT 1 FROM issues WHERE issues.assigned_to = users.id)"
    };
    // One statement for every user: `ON CONFLICT DO NOTHING` on the dedupe key makes
    // a second replica's run, or a rerun after a crash, a no-op per user.
    let placeholders = match backend {
        sea_orm::DatabaseBackend::Postgres => ("$1", "$2", "$3"),
        _ => ("?", "?", "?"),
    };
    let sql = format!(
        "INSERT INTO notices (kind, recipient_id, dedupe_key, due_at, state, attempts, created_at) \
         SELECT 'digest', users.id, {key} || users.id, {due}, 'pending', 0, {created} FROM users{assigned} \
         ON CONFLICT (dedupe_key) DO NOTHING",
        key = placeholders.0,
        due = placeholders.1,
        created = placeholders.2,
    );
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [format!("digest:{period}:").into(), at.into(), at.into()],
    );
    let _turn = super::write_turn(db).await;
    let result = db.execute_raw(statement).await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn the_templates_of_a_reassignment_bind_what_the_build_would() {
        let at = DateTime::from_timestamp(1_800_000_000, 123_000).unwrap_or_default();
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for (issue, recipient, actor) in [(1, 2, 3), (40, 7, 7), (1, 2, 3)] {
                let issue_id = IssueId(issue);
                let due = at + TimeDelta::minutes(issue);
                let scheduled =
                    Scheduled { issue_id, recipient: UserId(recipient), actor_id: UserId(actor), due, at };
                assert_eq!(scheduled.statement(backend), scheduled.build(backend), "{backend:?}");
                assert_eq!(
                    cancel_statement(backend, issue_id),
                    cancel_build(backend, issue_id),
                    "{backend:?}"
                );
            }
        }
    }
}
