//! Delivery of issue events to subscribers, on this replica and on the others.
//!
//! A change's events are handed over with its transaction ([`EventBus::commit`]), so
//! they go out only if it commits, and in commit order:
//!
//! - On PostgreSQL they are sent with `pg_notify` inside the transaction, which
//!   PostgreSQL delivers at commit, in commit order, to every replica listening on
//!   the database, this one included. Each replica's listener hands them to its own
//!   subscribers.
//! - On SQLite (one process) they go to the local channel right after the commit,
//!   under a lock that keeps the channel's order the commit order.
//!
//! The local channel is a bounded broadcast: publishing never waits for a
//! subscriber, and a subscriber that falls more than the buffer behind learns so
//! from its receiver (see `graphql::subscription`).

use std::{collections::VecDeque, sync::Arc};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures_util::{Stream, stream};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement,
    sqlx::postgres::PgListener,
};
use tokio::sync::{Mutex, broadcast, broadcast::error::RecvError, watch};

use crate::{
    Error, Result,
    domain::{
        events::{EventFilter, EventKind, IssueEvent},
        issues,
    },
};

/// The PostgreSQL channel events travel on (channels are per database).
const CHANNEL: &str = "triage_issue_events";

/// PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; events larger than
/// this travel without their issue, which the receiving replica reads again.
const MAX_PAYLOAD: usize = 7000;

/// One committed change's events, in order.
pub type EventBatch = Arc<[IssueEvent]>;

/// Where committed events go; shared by every request of this replica.
#[derive(Debug)]
pub struct EventBus {
    sender: broadcast::Sender<EventBatch>,
    transport: Transport,
    /// How many feeds are open: a readiness a test can wait on, where it would
    /// otherwise sleep until its subscription has surely started.
    live: watch::Sender<usize>,
}

#[derive(Debug)]
enum Transport {
    Local { order: Mutex<()> },
    Postgres { listener: tokio::task::JoinHandle<()> },
}

impl EventBus {
    /// A bus within this process: for SQLite, which has one.
    pub fn local(buffer: usize) -> Self {
        let (sender, _) = broadcast::channel(buffer.max(1));
        Self { sender, transport: Transport::Local { order: Mutex::new(()) }, live: watch::Sender::new(0) }
    }

    /// A bus across every replica on the PostgreSQL database at `url`. It listens
    /// before it returns, so no event committed after start-up is missed; `db`
    /// reads back issues too large to travel with their event.
    pub async fn postgres(url: &str, db: DatabaseConnection, buffer: usize) -> anyhow::Result<Self> {
        let (sender, _) = broadcast::channel(buffer.max(1));
        let mut listener = PgListener::connect(url).await.context("connecting the event listener")?;
        listener.listen(CHANNEL).await.context("listening for issue events")?;
        let listener = tokio::spawn(relay(listener, db, sender.clone()));
        Ok(Self { sender, transport: Transport::Postgres { listener }, live: watch::Sender::new(0) })
    }

    /// Commits `txn` and publishes `events` if, and only if, it committed.
    pub async fn commit(&self, txn: DatabaseTransaction, events: Vec<IssueEvent>) -> Result<()> {
        if events.is_empty() {
            return Ok(txn.commit().await?);
        }
        match &self.transport {
            Transport::Local { order } => {
                let _order = order.lock().await;
                txn.commit().await?;
                // An error only means nobody is subscribed.
                let _ = self.sender.send(events.into());
            }
            Transport::Postgres { .. } => {
                let statement = Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_notify($1, $2)",
                    [CHANNEL.into(), encode(events)?.into()],
                );
                txn.execute_raw(statement).await?;
                txn.commit().await?;
            }
        }
        Ok(())
    }

    /// A receiver of every batch committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EventBatch> {
        self.sender.subscribe()
    }

    /// The events `viewer` wants from now on, one at a time. The stream ends with an
    /// `UNAUTHENTICATED` error at `until` (when the viewer's token expires), and with
    /// `SUBSCRIPTION_LAGGED` if the viewer falls more than the buffer behind.
    pub fn feed(
        &self,
        filter: EventFilter,
        viewer: i64,
        until: Option<DateTime<Utc>>,
    ) -> impl Stream<Item = Result<IssueEvent>> + Send + use<> {
        let expiry = until.map(|until| {
            let left = (until - Utc::now()).to_std().unwrap_or_default();
            Box::pin(tokio::time::sleep(left))
        });
        let receiver = self.subscribe();
        // Counted once its receiver exists: every batch sent from now on reaches it.
        let live = LiveFeed::new(&self.live);
        let feed = Feed { receiver, filter, viewer, expiry, ready: VecDeque::new(), _live: live };
        stream::unfold(Some(feed), |feed| async move {
            let mut feed = feed?;
            match feed.next().await {
                Ok(Some(event)) => Some((Ok(event), Some(feed))),
                Ok(None) => None,
                Err(err) => Some((Err(err), None)),
            }
        })
    }

    /// The number of open feeds, as it changes.
    pub fn live_feeds(&self) -> watch::Receiver<usize> {
        self.live.subscribe()
    }

    /// Stops listening (PostgreSQL); the channel closes when the last holder drops.
    pub fn shutdown(&self) {
        if let Transport::Postgres { listener } = &self.transport {
            listener.abort();
        }
    }
}

struct Feed {
    receiver: broadcast::Receiver<EventBatch>,
    filter: EventFilter,
    viewer: i64,
    expiry: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    ready: VecDeque<IssueEvent>,
    _live: LiveFeed,
}

/// One open feed in [`EventBus::live_feeds`], for as long as it lives.
struct LiveFeed(watch::Sender<usize>);

impl LiveFeed {
    fn new(live: &watch::Sender<usize>) -> Self {
        live.send_modify(|count| *count += 1);
        Self(live.clone())
    }
}

impl Drop for LiveFeed {
    fn drop(&mut self) {
        self.0.send_modify(|count| *count = count.saturating_sub(1));
    }
}

impl Feed {
    /// The next wanted event; `None` when the bus is gone.
    async fn next(&mut self) -> Result<Option<IssueEvent>> {
        let Self { receiver, filter, viewer, expiry, ready, .. } = self;
        loop {
            if let Some(event) = ready.pop_front() {
                return Ok(Some(event));
            }
            let expired = async {
                match expiry {
                    Some(expiry) => expiry.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = expired => {
                    return Err(Error::Unauthenticated("The access token expired; subscribe again with a new one"));
                }
                received = receiver.recv() => match received {
                    Ok(batch) => {
                        ready.extend(batch.iter().filter(|event| filter.matches(event, *viewer)).cloned());
                    }
                    Err(RecvError::Lagged(missed)) => return Err(Error::Lagged { missed }),
                    Err(RecvError::Closed) => return Ok(None),
                },
            }
        }
    }
}

/// The NOTIFY payload: the events as JSON, without their issues if too large.
fn encode(mut events: Vec<IssueEvent>) -> Result<String> {
    let json = serde_json::to_string(&events).map_err(anyhow::Error::from)?;
    if json.len() <= MAX_PAYLOAD {
        return Ok(json);
    }
    for event in &mut events {
        event.issue = None;
    }
    Ok(serde_json::to_string(&events).map_err(anyhow::Error::from)?)
}

/// Hands what arrives on the channel to this replica's subscribers.
async fn relay(mut listener: PgListener, db: DatabaseConnection, sender: broadcast::Sender<EventBatch>) {
    loop {
        // `recv` reconnects by itself after a lost connection; what was sent
        // meanwhile is lost, which the log says.
        let notification = match listener.recv().await {
            Ok(notification) => notification,
            Err(err) => {
                tracing::warn!(error = %err, "event listener lost its connection; events may be missed");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut events: Vec<IssueEvent> = match serde_json::from_str(notification.payload()) {
            Ok(events) => events,
            Err(err) => {
                tracing::error!(error = %err, "an issue event could not be read");
                continue;
            }
        };
        if let Err(err) = fill_in_issues(&db, &mut events).await {
            tracing::error!(error = %err, "reading back the issues of large events failed");
        }
        let _ = sender.send(events.into());
    }
}

/// Reads back the issues of events that travelled without them.
async fn fill_in_issues(db: &DatabaseConnection, events: &mut [IssueEvent]) -> Result<()> {
    let wanted: Vec<i64> = events
        .iter()
        .filter(|event| event.issue.is_none() && event.kind != EventKind::Deleted)
        .map(|event| event.issue_id)
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let found = issues::find_many(db, &wanted).await?;
    for event in events.iter_mut().filter(|event| event.kind != EventKind::Deleted) {
        if event.issue.is_none() {
            event.issue = found.iter().find(|issue| issue.id == event.issue_id).cloned();
        }
    }
    Ok(())
}
