//! Locks that outlive a panic.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// `mutex`'s guard, poisoned or not. Every mutex in Triage guards data that a panic
/// mid-update leaves usable (a cache, a count, a queue), so poisoning only means a
/// panic elsewhere, which has been reported already.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
