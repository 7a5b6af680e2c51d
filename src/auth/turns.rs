//! Turns at a few workers, handed newest waiter first, each wait bounded.
//!
//! Under a storm every worker is busy and waiters pile up. Handed out oldest first,
//! every turn would go to a caller that has already waited nearly the whole bound:
//! each served login would carry the queue's wait. Handed out newest first, a turn
//! goes to the caller that came last, and the older ones run out their wait and are
//! refused. As many are served either way; those served wait a hash or two rather
//! than the bound.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::oneshot;

use crate::sync::lock;

/// `count` turns, and the callers waiting for one.
#[derive(Debug, Clone)]
pub struct Turns {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    free: usize,
    /// The callers waiting, by the order they came in: the newest is the last, and
    /// one that leaves is found without a walk through the rest.
    waiting: BTreeMap<u64, oneshot::Sender<()>>,
    next_id: u64,
}

/// No turn came within the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no turn came within the wait")]
pub struct NoTurn;

impl Turns {
    pub fn new(count: usize) -> Self {
        Self { state: Arc::new(Mutex::new(State { free: count, waiting: BTreeMap::new(), next_id: 0 })) }
    }

    /// Turns free now.
    pub fn free(&self) -> usize {
        lock(&self.state).free
    }

    /// Callers waiting now.
    pub fn waiting(&self) -> usize {
        lock(&self.state).waiting.len()
    }

    /// A turn, once one is free; [`NoTurn`] when none came within `wait`. A caller
    /// dropped while it waits leaves the queue, and a turn handed to it just then
    /// goes on to the next.
    pub async fn take(&self, wait: Duration) -> Result<Turn, NoTurn> {
        let (id, woken) = {
            let mut state = lock(&self.state);
            if state.free > 0 {
                state.free -= 1;
                return Ok(Turn { turns: self.clone() });
            }
            let (wake, woken) = oneshot::channel();
            let id = state.next_id;
            state.next_id += 1;
            state.waiting.insert(id, wake);
            (id, woken)
        };
        let mut waiting = Waiting { turns: self, id: Some(id) };
        // Whether the wake came or the wait ran out, the queue says which: a caller
        // still in it has no turn; one taken out of it was handed one.
        let _ = tokio::time::timeout(wait, woken).await;
        waiting.end()
    }

    /// Hands a turn back: to the newest waiter, or to the free ones. A waiter whose
    /// caller is going (its wake no longer heard) is handed the turn all the same:
    /// its guard, about to run, finds it out of the queue and hands the turn on.
    /// Moving on to the next waiter here would let that guard hand on a second one.
    fn give_back(&self) {
        let mut state = lock(&self.state);
        match state.waiting.pop_last() {
            Some((_, wake)) => {
                let _ = wake.send(());
            }
            None => state.free += 1,
        }
    }
}

/// A caller in the queue; dropped before it ends, it leaves (see [`Turns::take`]).
struct Waiting<'a> {
    turns: &'a Turns,
    id: Option<u64>,
}

impl Waiting<'_> {
    fn end(&mut self) -> Result<Turn, NoTurn> {
        let Some(id) = self.id.take() else { return Err(NoTurn) };
        let mut state = lock(&self.turns.state);
        match state.waiting.remove(&id) {
            Some(_) => Err(NoTurn),
            None => Ok(Turn { turns: self.turns.clone() }),
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        // A turn handed over as the caller went is handed on when dropped here.
        let _ = self.end();
    }
}

/// One turn, given back when dropped.
#[derive(Debug)]
pub struct Turn {
    turns: Turns,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.turns.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn turns_go_to_the_newest_waiter_first() -> anyhow::Result<()> {
        let turns = Turns::new(1);
        let held = turns.take(LONG).await?;
        let older = tokio::spawn(take(turns.clone()));
        wait_for(&turns, 1).await;
        let newer = tokio::spawn(take(turns.clone()));
        wait_for(&turns, 2).await;
        drop(held);
        let newer = newer.await??;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!older.is_finished(), "the older waiter still waits");
        drop(newer);
        drop(older.await??);
        assert_eq!((turns.free(), turns.waiting()), (1, 0));
        Ok(())
    }

    #[tokio::test]
    async fn a_wait_that_runs_out_leaves_the_queue() -> anyhow::Result<()> {
        let turns = Turns::new(1);
        let held = turns.take(LONG).await?;
        assert_eq!(turns.take(Duration::from_millis(20)).await.err(), Some(NoTurn));
        assert_eq!(turns.waiting(), 0);
        drop(held);
        assert_eq!(turns.free(), 1, "the turn went back to the free ones");
        Ok(())
    }

    #[tokio::test]
    async fn a_caller_dropped_while_it_waits_leaves_the_queue() -> anyhow::Result<()> {
        let turns = Turns::new(1);
        let held = turns.take(LONG).await?;
        let gone = tokio::spawn({
            let turns = turns.clone();
            async move { turns.take(LONG).await.is_ok() }
        });
        wait_for(&turns, 1).await;
        gone.abort();
        let _ = gone.await;
        assert_eq!(turns.waiting(), 0);
        drop(held);
        assert_eq!(turns.free(), 1);
        Ok(())
    }

    #[test]
    fn a_turn_handed_to_a_caller_as_it_goes_is_handed_on() {
        let turns = Turns::new(0);
        let (waiting, _woken) = queued(&turns);
        // The caller is taken out of the queue and handed the turn...
        turns.give_back();
        assert_eq!((turns.free(), turns.waiting()), (0, 0));
        // ...and dropped before it saw it.
        drop(waiting);
        assert_eq!(turns.free(), 1);
    }

    #[test]
    fn a_caller_going_as_its_turn_comes_hands_on_that_turn_alone() {
        let turns = Turns::new(0);
        let (waiting, woken) = queued(&turns);
        // The caller's wait is dropped first, then its guard; the turn comes between.
        drop(woken);
        turns.give_back();
        drop(waiting);
        assert_eq!((turns.free(), turns.waiting()), (1, 0), "one turn given back, not two");
    }

    /// A caller put in the queue by hand, as `take` does before it waits: its guard,
    /// and the end of the channel its wake comes on.
    fn queued(turns: &Turns) -> (Waiting<'_>, oneshot::Receiver<()>) {
        let (wake, woken) = oneshot::channel();
        lock(&turns.state).waiting.insert(7, wake);
        (Waiting { turns, id: Some(7) }, woken)
    }

    async fn take(turns: Turns) -> Result<Turn, NoTurn> {
        turns.take(LONG).await
    }

    async fn wait_for(turns: &Turns, waiting: usize) {
        while turns.waiting() < waiting {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}
