//! An outbox in memory, for tests: it keeps what is sent, stamped with the jobs'
//! clock, fails sends on demand, and lets a test await a number of messages.

use std::{collections::VecDeque, sync::Arc};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::{Email, SendError};
use crate::clock::Clock;

/// One email as the in-memory transport took it.
#[derive(Debug, Clone)]
pub struct SentEmail {
    /// When it was sent, by the jobs' clock.
    pub at: DateTime<Utc>,
    pub to_address: String,
    pub to_name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: String,
}

/// Mail that goes nowhere. Clones share one outbox, so every replica of a test can
/// send into the same one.
#[derive(Debug, Clone)]
pub struct MemoryMail {
    clock: Clock,
    state: Arc<watch::Sender<State>>,
}

#[derive(Debug, Default)]
struct State {
    sent: Vec<SentEmail>,
    /// Every send tried, whether it failed or not.
    attempts: usize,
    /// How the next sends fail, in turn.
    failures: VecDeque<SendError>,
    /// How every send fails, after `failures`, until cleared.
    down: Option<SendError>,
}

impl MemoryMail {
    /// An empty outbox whose sends are stamped by `clock`.
    pub fn new(clock: Clock) -> Self {
        Self { clock, state: Arc::new(watch::Sender::new(State::default())) }
    }

    /// Everything sent so far, in order.
    pub fn sent(&self) -> Vec<SentEmail> {
        self.state.borrow().sent.clone()
    }

    /// What was sent to `address`.
    pub fn to(&self, address: &str) -> Vec<SentEmail> {
        self.state.borrow().sent.iter().filter(|email| email.to_address == address).cloned().collect()
    }

    /// How many sends were tried, failed ones included.
    pub fn attempts(&self) -> usize {
        self.state.borrow().attempts
    }

    /// Makes the next sends fail, one with each of `failures`.
    pub fn fail_next(&self, failures: impl IntoIterator<Item = SendError>) {
        self.state.send_modify(|state| state.failures.extend(failures));
    }

    /// Makes every send fail with `failure` until called with `None` (a mail server
    /// that is down, and back).
    pub fn set_down(&self, failure: Option<SendError>) {
        self.state.send_modify(|state| state.down = failure);
    }

    /// Forgets what was sent and tried.
    pub fn clear(&self) {
        self.state.send_modify(|state| {
            state.sent.clear();
            state.attempts = 0;
        });
    }

    /// Waits until at least `count` emails were sent; returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<SentEmail> {
        let mut state = self.state.subscribe();
        match state.wait_for(|state| state.sent.len() >= count).await {
            Ok(state) => state.sent.clone(),
            // The sender lives in `self`: not reached.
            Err(_) => self.sent(),
        }
    }

    /// Waits until at least `count` sends were tried.
    pub async fn wait_for_attempts(&self, count: usize) {
        let mut state = self.state.subscribe();
        let _ = state.wait_for(|state| state.attempts >= count).await;
    }

    pub(super) fn send(&self, email: &Email) -> Result<(), SendError> {
        let at = self.clock.now();
        let mut outcome = Ok(());
        self.state.send_modify(|state| {
            state.attempts += 1;
            if let Some(failure) = state.failures.pop_front().or_else(|| state.down.clone()) {
                outcome = Err(failure);
                return;
            }
            state.sent.push(SentEmail {
                at,
                to_address: email.to_address.clone(),
                to_name: email.to_name.clone(),
                subject: email.rendered.subject.clone(),
                text: email.rendered.text.clone(),
                html: email.rendered.html.clone(),
                message_id: email.message_id.clone(),
            });
        });
        outcome
    }
}
