//! Login throttling: after too many failed logins for one account name within a
//! window, further attempts for it are refused with `RATE_LIMITED` until the window
//! ends, without spending a password hash on them. Kept in memory per replica.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{Error, Result};

/// Entries kept before expired ones are swept out.
const SWEEP_AT: usize = 10_000;

#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self { max_failures: max_failures.max(1), window, failures: Mutex::default() }
    }

    fn key(login: &str) -> String {
        login.trim().to_lowercase()
    }

    /// `RATE_LIMITED` while `login` has used up its failures in the current window.
    pub fn check(&self, login: &str) -> Result<()> {
        let failures = self.failures.lock().map_err(|_| Error::internal("login limiter poisoned"))?;
        match failures.get(&Self::key(login)) {
            Some((count, since)) if *count >= self.max_failures && since.elapsed() < self.window => {
                Err(Error::RateLimited("Too many failed logins; try again later"))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed login for `login`.
    pub fn failed(&self, login: &str) {
        let Ok(mut failures) = self.failures.lock() else { return };
        if failures.len() >= SWEEP_AT {
            let window = self.window;
            failures.retain(|_, (_, since)| since.elapsed() < window);
        }
        let entry = failures.entry(Self::key(login)).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    /// Forgets the failures of `login` after it logged in.
    pub fn succeeded(&self, login: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&Self::key(login));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_beyond_the_limit_are_refused_until_the_window_ends() {
        let limiter = LoginLimiter::new(3, Duration::from_millis(50));
        for _ in 0..3 {
            assert!(limiter.check("Ada").is_ok());
            limiter.failed("Ada");
        }
        assert!(matches!(limiter.check("ada"), Err(Error::RateLimited(_))), "names are matched without case");
        assert!(limiter.check("bob").is_ok(), "other accounts are unaffected");
        std::thread::sleep(Duration::from_millis(60));
        assert!(limiter.check("ada").is_ok());
    }

    #[test]
    fn a_success_clears_the_count() {
        let limiter = LoginLimiter::new(2, Duration::from_secs(60));
        limiter.failed("ada");
        limiter.succeeded("ada");
        limiter.failed("ada");
        assert!(limiter.check("ada").is_ok());
    }
}
