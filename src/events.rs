//! The event bus: a transport for what committed changes announce, to subscribers on
//! this replica and on the others. It carries messages of one type and knows nothing
//! of what they say; the domain decides what a change announces and the subscription
//! decides what a subscriber is shown.
//!
//! A change's messages are handed over with its transaction ([`EventBus::commit`]),
//! so they go out only if it commits, and in commit order:
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
//! from its receiver.

use std::sync::Arc;

use anyhow::Context as _;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, sqlx::postgres::PgListener};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::{Mutex, broadcast, watch};

use crate::Result;

/// PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; a batch larger than
/// this travels shrunk (see [`Message::shrink`]).
const MAX_PAYLOAD: usize = 7000;

/// What the bus carries.
pub trait Message: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Leaves out what the receiver can read again, for a batch too large to travel
    /// between replicas whole.
    fn shrink(&mut self) {}
}

/// One committed change's messages, in order.
pub type Batch<M> = Arc<[M]>;

/// Where committed messages go; shared by every request of this replica.
#[derive(Debug)]
pub struct EventBus<M> {
    sender: broadcast::Sender<Batch<M>>,
    transport: Transport,
    /// How many receivers are open: a readiness a test can wait on, where it would
    /// otherwise sleep until its subscription has surely started.
    live: watch::Sender<usize>,
}

#[derive(Debug)]
enum Transport {
    /// Within this process; the lock keeps the channel in commit order.
    Local { order: Mutex<()> },
    /// Across replicas, on a PostgreSQL channel of this name.
    Postgres { channel: &'static str, listener: tokio::task::JoinHandle<()> },
}

impl<M: Message> EventBus<M> {
    /// A bus within this process: for SQLite, which has one.
    pub fn local(buffer: usize) -> Self {
        let (sender, _) = broadcast::channel(buffer.max(1));
        Self { sender, transport: Transport::Local { order: Mutex::new(()) }, live: watch::Sender::new(0) }
    }

    /// A bus across every replica on the PostgreSQL database at `url`, on `channel`
    /// (channels are per database). It listens before it returns, so no message
    /// committed after start-up is missed.
    pub async fn postgres(url: &str, channel: &'static str, buffer: usize) -> anyhow::Result<Self> {
        let (sender, _) = broadcast::channel(buffer.max(1));
        let mut listener = PgListener::connect(url).await.context("connecting the event listener")?;
        listener.listen(channel).await.context("listening for events")?;
        let listener = tokio::spawn(relay(listener, sender.clone()));
        Ok(Self { sender, transport: Transport::Postgres { channel, listener }, live: watch::Sender::new(0) })
    }

    /// Commits `txn` and publishes `batch` if, and only if, it committed.
    pub async fn commit(&self, txn: DatabaseTransaction, batch: Vec<M>) -> Result<()> {
        if batch.is_empty() {
            return Ok(txn.commit().await?);
        }
        match &self.transport {
            Transport::Local { order } => {
                let _order = order.lock().await;
                txn.commit().await?;
                // An error only means nobody is subscribed.
                let _ = self.sender.send(batch.into());
            }
            Transport::Postgres { channel, .. } => {
                let statement = Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_notify($1, $2)",
                    [(*channel).into(), encode(batch)?.into()],
                );
                txn.execute_raw(statement).await?;
                txn.commit().await?;
            }
        }
        Ok(())
    }

    /// A receiver of every batch committed from now on.
    pub fn subscribe(&self) -> Receiver<M> {
        self.live.send_modify(|count| *count += 1);
        Receiver { inner: self.sender.subscribe(), live: self.live.clone() }
    }

    /// How many receivers are open, as it changes: one counts from the moment it
    /// would receive a batch that commits.
    pub fn live_receivers(&self) -> watch::Receiver<usize> {
        self.live.subscribe()
    }

    /// Stops listening (PostgreSQL); the channel closes when the last holder drops.
    pub fn shutdown(&self) {
        if let Transport::Postgres { listener, .. } = &self.transport {
            listener.abort();
        }
    }
}

/// One subscriber's end of the bus; counted in [`EventBus::live_receivers`] while it
/// lives.
#[derive(Debug)]
pub struct Receiver<M> {
    inner: broadcast::Receiver<Batch<M>>,
    live: watch::Sender<usize>,
}

impl<M: Clone> Receiver<M> {
    /// The next batch; an error when this receiver fell more than the buffer behind
    /// (`Lagged`, with how many batches it missed) or the bus is gone (`Closed`).
    pub async fn recv(&mut self) -> Result<Batch<M>, broadcast::error::RecvError> {
        self.inner.recv().await
    }
}

impl<M> Drop for Receiver<M> {
    fn drop(&mut self) {
        self.live.send_modify(|count| *count = count.saturating_sub(1));
    }
}

/// The NOTIFY payload: the batch as JSON, shrunk if too large.
fn encode<M: Message>(mut batch: Vec<M>) -> Result<String> {
    let json = serde_json::to_string(&batch).map_err(anyhow::Error::from)?;
    if json.len() <= MAX_PAYLOAD {
        return Ok(json);
    }
    batch.iter_mut().for_each(M::shrink);
    Ok(serde_json::to_string(&batch).map_err(anyhow::Error::from)?)
}

/// Hands what arrives on the channel to this replica's subscribers.
async fn relay<M: Message>(mut listener: PgListener, sender: broadcast::Sender<Batch<M>>) {
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
        match serde_json::from_str::<Vec<M>>(notification.payload()) {
            Ok(batch) => {
                let _ = sender.send(batch.into());
            }
            Err(err) => tracing::error!(error = %err, "an event could not be read"),
        }
    }
}
