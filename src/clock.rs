//! Time for the jobs: the system clock in production, a manual one in tests.
//!
//! The notice dispatcher and the digest ask a [`Clock`] what time it is, and wait on
//! a [`Timer`] of it, never on `Utc::now()` or `tokio::time` themselves. So a test
//! can hold time still, move it on with [`ManualClock::advance`], and learn from
//! [`ManualClock::settled`] when everything that woke has done its work and gone
//! back to sleep, instead of sleeping and hoping.
//!
//! Only the jobs' time is the clock's: issue and account timestamps, tokens and login
//! windows keep the wall clock (tokens are checked against it by whoever reads them).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{Notify, watch};

/// Where the time comes from. The default is the system clock.
#[derive(Debug, Clone, Default)]
pub struct Clock(Source);

#[derive(Debug, Clone, Default)]
enum Source {
    #[default]
    System,
    Manual(ManualClock),
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Self(Source::System)
    }

    /// The current time, at the precision both databases keep (microseconds), so a
    /// value read back equals the value written.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            Source::System => to_micros(Utc::now()),
            Source::Manual(manual) => manual.now(),
        }
    }

    /// Whether this is a test's clock, which moves only when told to. Repeating work
    /// that a wall-clock scheduler would run is then driven by the clock instead.
    pub fn is_manual(&self) -> bool {
        matches!(self.0, Source::Manual(_))
    }

    /// A timer on this clock, for one task's waits (see [`Timer`]).
    pub fn timer(&self) -> Timer {
        let wake = match &self.0 {
            Source::System => Wake::System(Arc::new(SystemWake::default())),
            Source::Manual(manual) => Wake::Manual { clock: manual.clone(), id: manual.register() },
        };
        Timer { wake }
    }
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Self {
        Self(Source::Manual(manual))
    }
}

/// `at` without its nanoseconds past the microsecond.
pub fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// One task's way of waiting on a clock: until a moment, or until woken early
/// through a [`TimerHandle`]. A wake while the task is not waiting is kept for its
/// next wait (as with [`Notify::notify_one`]), so a wake is never lost. A wake for a
/// moment ([`TimerHandle::wake_by`]) is sent only when the task would otherwise
/// sleep past it: a task that is not waiting counts as one that would.
///
/// On a manual clock the timer is registered for as long as it lives, and counts as
/// busy whenever its task is not waiting on it: [`ManualClock::settled`] waits for it.
#[derive(Debug)]
pub struct Timer {
    wake: Wake,
}

/// Wakes a [`Timer`] early; cheap to clone.
#[derive(Debug, Clone)]
pub struct TimerHandle {
    wake: Wake,
}

#[derive(Debug, Clone)]
enum Wake {
    System(Arc<SystemWake>),
    Manual { clock: ManualClock, id: u64 },
}

/// A system-clock timer's wake, and the moment its task sleeps until.
#[derive(Debug)]
struct SystemWake {
    notify: Notify,
    /// The deadline of the current wait, in microseconds since the epoch;
    /// [`AWAKE`] while the task is not waiting.
    asleep_until: AtomicI64,
}

/// [`SystemWake::asleep_until`] while the timer's task is not waiting.
const AWAKE: i64 = i64::MIN;

impl Default for SystemWake {
    fn default() -> Self {
        Self { notify: Notify::new(), asleep_until: AtomicI64::new(AWAKE) }
    }
}

/// Marks a system-clock timer's task as not waiting once its wait ends or is given up.
struct Awake<'a>(&'a SystemWake);

impl Drop for Awake<'_> {
    fn drop(&mut self) {
        self.0.asleep_until.store(AWAKE, Ordering::SeqCst);
    }
}

impl Timer {
    pub fn handle(&self) -> TimerHandle {
        TimerHandle { wake: self.wake.clone() }
    }

    /// Waits until the clock reads `deadline` or later, or until woken.
    pub async fn sleep_until(&self, deadline: DateTime<Utc>) {
        match &self.wake {
            Wake::System(wake) => {
                let wait = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                // Stored before the wait begins: a wake sent from now on sees the
                // deadline, and one sent before is kept by the notify.
                wake.asleep_until.store(deadline.timestamp_micros(), Ordering::SeqCst);
                let _awake = Awake(wake);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = wake.notify.notified() => {}
                }
            }
            Wake::Manual { clock, id } => clock.sleep_until(*id, deadline).await,
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Wake::Manual { clock, id } = &self.wake {
            clock.state.send_modify(|state| {
                state.timers.remove(id);
            });
        }
    }
}

impl TimerHandle {
    /// Ends the timer's current wait, or its next one.
    pub fn wake(&self) {
        self.wake_by(DateTime::<Utc>::MIN_UTC);
    }

    /// Ends the timer's current wait if it would last past `at`; ends its next one
    /// if its task is not waiting (it may be about to plan a wait past `at`).
    pub fn wake_by(&self, at: DateTime<Utc>) {
        match &self.wake {
            Wake::System(wake) => {
                let asleep_until = wake.asleep_until.load(Ordering::SeqCst);
                if asleep_until == AWAKE || at.timestamp_micros() < asleep_until {
                    wake.notify.notify_one();
                }
            }
            Wake::Manual { clock, id } => {
                clock.state.send_if_modified(|state| match state.timers.get_mut(id) {
                    Some(timer) if timer.asleep_until.is_none_or(|deadline| at < deadline) => {
                        timer.woken = true;
                        true
                    }
                    // Waiting until `at` or sooner, or the timer's task has ended.
                    _ => false,
                });
            }
        }
    }
}

/// A clock that moves only when a test moves it. Clones share one time, so replicas
/// in one test agree on it.
#[derive(Debug, Clone)]
pub struct ManualClock {
    state: watch::Sender<Manual>,
}

#[derive(Debug)]
struct Manual {
    now: DateTime<Utc>,
    timers: HashMap<u64, TimerState>,
    next_id: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct TimerState {
    /// Set while the timer's task waits on it; `None` while the task is busy.
    asleep_until: Option<DateTime<Utc>>,
    woken: bool,
}

impl TimerState {
    fn settled(&self, now: DateTime<Utc>) -> bool {
        !self.woken && self.asleep_until.is_some_and(|deadline| deadline > now)
    }
}

impl ManualClock {
    /// A clock reading `start` (to the microsecond) until it is advanced.
    pub fn new(start: DateTime<Utc>) -> Self {
        let (state, _) = watch::channel(Manual { now: to_micros(start), timers: HashMap::new(), next_id: 0 });
        Self { state }
    }

    /// A clock that starts at the wall clock's time, so what it stamps looks recent.
    pub fn starting_now() -> Self {
        Self::new(Utc::now())
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.state.borrow().now
    }

    /// Moves the time on by `by`, waking every timer whose deadline it reaches.
    pub fn advance(&self, by: Duration) {
        let by = TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
        self.state.send_modify(|state| {
            state.now = state.now.checked_add_signed(by).unwrap_or(DateTime::<Utc>::MAX_UTC);
        });
    }

    /// Resolves once every timer's task waits for a moment still to come and has no
    /// wake pending: whatever the time or a wake set off has been done.
    pub async fn settled(&self) {
        let mut state = self.state.subscribe();
        let _ = state.wait_for(|state| state.timers.values().all(|timer| timer.settled(state.now))).await;
    }

    fn register(&self) -> u64 {
        let mut id = 0;
        self.state.send_modify(|state| {
            id = state.next_id;
            state.next_id += 1;
            state.timers.insert(id, TimerState::default());
        });
        id
    }

    async fn sleep_until(&self, id: u64, deadline: DateTime<Utc>) {
        let mut state = self.state.subscribe();
        self.state.send_modify(|state| {
            if let Some(timer) = state.timers.get_mut(&id) {
                timer.asleep_until = Some(deadline);
            }
        });
        // Busy again from the moment the wait ends, or is given up (its task chose
        // another branch of a select); the wake is spent either way, and the task
        // looks at everything afresh.
        let _busy = Busy { clock: self, id };
        let _ = state
            .wait_for(|state| state.now >= deadline || state.timers.get(&id).is_none_or(|timer| timer.woken))
            .await;
    }
}

struct Busy<'a> {
    clock: &'a ManualClock,
    id: u64,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.clock.state.send_modify(|state| {
            if let Some(timer) = state.timers.get_mut(&self.id) {
                *timer = TimerState::default();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_manual_timer_fires_exactly_at_its_deadline() {
        let manual = ManualClock::new(start());
        let clock = Clock::from(manual.clone());
        let timer = clock.timer();
        let deadline = start() + TimeDelta::seconds(10);
        let sleeping = tokio::spawn(async move { timer.sleep_until(deadline).await });
        manual.settled().await;
        manual.advance(Duration::from_secs(9));
        manual.settled().await;
        assert!(!sleeping.is_finished(), "a second early it still sleeps");
        manual.advance(Duration::from_secs(1));
        assert!(sleeping.await.is_ok());
        assert_eq!(clock.now(), deadline);
    }

    #[tokio::test]
    async fn a_wake_before_the_wait_is_kept_for_it() {
        let manual = ManualClock::new(start());
        let timer = Clock::from(manual.clone()).timer();
        timer.handle().wake();
        timer.sleep_until(start() + TimeDelta::days(1)).await;
        assert_eq!(manual.now(), start(), "woken, not timed out");
    }

    #[tokio::test]
    async fn a_wake_by_a_moment_ends_only_a_wait_past_it() {
        let manual = ManualClock::new(start());
        let timer = Clock::from(manual.clone()).timer();
        let handle = timer.handle();
        let deadline = start() + TimeDelta::minutes(10);
        let sleeping = tokio::spawn(async move { timer.sleep_until(deadline).await });
        manual.settled().await;
        handle.wake_by(deadline);
        handle.wake_by(deadline + TimeDelta::minutes(2));
        manual.settled().await;
        assert!(!sleeping.is_finished(), "it wakes by then anyway");
        handle.wake_by(deadline - TimeDelta::seconds(1));
        assert!(sleeping.await.is_ok());
        assert_eq!(manual.now(), start(), "woken, not timed out");
    }

    #[tokio::test]
    async fn a_wake_by_a_moment_while_busy_is_kept_for_the_next_wait() {
        let manual = ManualClock::new(start());
        let timer = Clock::from(manual.clone()).timer();
        timer.handle().wake_by(start() + TimeDelta::days(2));
        timer.sleep_until(start() + TimeDelta::days(1)).await;
        assert_eq!(manual.now(), start(), "woken: the task had not planned its wait yet");
    }

    #[tokio::test]
    async fn a_system_timer_is_woken_only_by_a_moment_before_its_deadline() {
        let timer = Clock::system().timer();
        let handle = timer.handle();
        let deadline = Utc::now() + TimeDelta::hours(1);
        let (asleep, is_asleep) = tokio::sync::oneshot::channel();
        let sleeping = tokio::spawn(async move {
            let wait = timer.sleep_until(deadline);
            tokio::pin!(wait);
            // Polled once: the deadline is stored and the wait has begun.
            assert!(futures_util::poll!(&mut wait).is_pending());
            let _ = asleep.send(());
            wait.await;
        });
        assert!(is_asleep.await.is_ok());
        handle.wake_by(deadline + TimeDelta::minutes(1));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!sleeping.is_finished(), "a wake after its deadline leaves it asleep");
        handle.wake_by(deadline - TimeDelta::minutes(1));
        let woken = tokio::time::timeout(Duration::from_secs(10), sleeping).await;
        assert!(woken.is_ok_and(|joined| joined.is_ok()), "a wake before its deadline ends the wait");
    }

    #[tokio::test]
    async fn settled_waits_for_busy_and_woken_timers() {
        let manual = ManualClock::new(start());
        let timer = Clock::from(manual.clone()).timer();
        let handle = timer.handle();
        let settled = || tokio::time::timeout(Duration::from_millis(20), manual.settled());
        assert!(settled().await.is_err(), "a timer whose task has not waited yet is busy");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                timer.sleep_until(start() + TimeDelta::hours(1)).await;
                if tx.send(()).is_err() {
                    return;
                }
            }
        });
        manual.settled().await;
        handle.wake();
        manual.settled().await;
        assert!(rx.try_recv().is_ok(), "settled after the woken task ran and slept again");
        task.abort();
        let _ = task.await;
        manual.settled().await;
    }
}
