//! A write to issues, from `BEGIN` to what its commit announces.
//!
//! Every change to an issue runs in one [`Change`]: it holds the transaction and the
//! turn at writing, gathers the events the change publishes and remembers whether it
//! touched the notice outbox. [`Change::commit`] then commits, publishes the events
//! if and only if the commit succeeded, and wakes the notice dispatcher if the outbox
//! changed: one step, so no caller can commit and forget to announce.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction};

use super::{WriteTurn, begin_write, events::IssueEvent};
use crate::{
    Result,
    clock::{Clock, TimerHandle},
    events::EventBus,
};

/// Where committed changes are announced: subscribers, through the event bus, and
/// the notice dispatcher, through the outbox.
#[derive(Debug, Clone, Copy)]
pub struct Announce<'a> {
    pub outbox: &'a Outbox,
    pub events: &'a EventBus<IssueEvent>,
}

/// What the domain needs to schedule notices: the delay, the clock it counts from,
/// and a way to wake the dispatcher once a new notice is committed.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub assignment_delay: Duration,
    clock: Clock,
    dispatcher: TimerHandle,
}

impl Outbox {
    /// An outbox whose notices are due by `clock`, waking the dispatcher that sleeps
    /// on the timer `dispatcher` belongs to.
    pub fn new(assignment_delay: Duration, clock: Clock, dispatcher: TimerHandle) -> Self {
        Self { assignment_delay, clock, dispatcher }
    }

    /// The clock notices are scheduled, claimed and sent by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Tells the dispatcher that notices due at `due` and later were committed: it
    /// is woken only if it would sleep past `due`. (A cancelled notice needs no wake:
    /// the dispatcher finds it gone when it wakes for it.)
    pub fn scheduled(&self, due: DateTime<Utc>) {
        self.dispatcher.wake_by(due);
    }
}

/// A write in progress; dropped without [`Change::commit`], it rolls back and
/// announces nothing.
#[derive(Debug)]
pub struct Change<'a> {
    txn: DatabaseTransaction,
    turn: WriteTurn,
    announce: Announce<'a>,
    events: Vec<IssueEvent>,
    /// When the earliest notice the change scheduled is due.
    earliest_due: Option<DateTime<Utc>>,
}

impl<'a> Change<'a> {
    /// Begins a write (see [`begin_write`]).
    pub async fn begin(db: &DatabaseConnection, announce: Announce<'a>) -> Result<Self> {
        let (txn, turn) = begin_write(db).await?;
        Ok(Self { txn, turn, announce, events: Vec::new(), earliest_due: None })
    }

    /// The transaction, for the change's statements.
    pub fn txn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// The outbox the change schedules notices in.
    pub fn outbox(&self) -> &'a Outbox {
        self.announce.outbox
    }

    /// Adds events for the commit to publish, after those added before.
    pub fn publish(&mut self, events: Vec<IssueEvent>) {
        self.events.extend(events);
    }

    /// Records that the change scheduled a notice due at `due`, so that the
    /// dispatcher plans for it once the change commits.
    pub fn scheduled(&mut self, due: DateTime<Utc>) {
        self.earliest_due = Some(self.earliest_due.map_or(due, |earliest| earliest.min(due)));
    }

    /// Commits, then announces what committed.
    pub async fn commit(self) -> Result<()> {
        let Self { txn, turn, announce, events, earliest_due } = self;
        super::mark_committing();
        announce.events.commit(txn, events).await?;
        drop(turn);
        if let Some(due) = earliest_due {
            announce.outbox.scheduled(due);
        }
        Ok(())
    }
}
