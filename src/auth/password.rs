//! Password hashing with argon2id at the OWASP parameters (19 MiB, 2 passes, 1 lane).
//!
//! A hash takes tens of milliseconds of CPU, so it runs on the blocking pool, and a
//! semaphore bounds how many run at once: a login storm queues instead of starving
//! the rest of the API.

use std::sync::Arc;

use anyhow::Context as _;
use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;

use crate::{Result, domain::values::Password};

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Verified against when the user does not exist, so an unknown username costs
    /// the same time as a wrong password and cannot be told apart by timing.
    dummy_hash: Arc<str>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("available_permits", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

fn argon2() -> Argon2<'static> {
    // OWASP: m=19456 KiB, t=2, p=1. `Params::new` only fails for out-of-range values,
    // and these are constants inside the range.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| crate::Error::internal(format!("hashing a password failed: {err}")))
}

impl PasswordHasher {
    /// A hasher running at most `max_concurrent` hashes at once.
    pub fn new(max_concurrent: usize) -> anyhow::Result<Self> {
        let dummy_hash = hash_blocking("not a real password, only spent time")
            .map_err(|err| anyhow::anyhow!("{err}"))
            .context("computing the dummy password hash")?;
        Ok(Self { permits: Arc::new(Semaphore::new(max_concurrent.max(1))), dummy_hash: dummy_hash.into() })
    }

    /// The PHC string of a fresh argon2id hash of `password`.
    pub async fn hash(&self, password: &Password) -> Result<String> {
        let password = password.expose().to_owned();
        self.run(move || hash_blocking(&password)).await?
    }

    /// Whether `password` matches `hash`; with no hash (an unknown user) the dummy is
    /// checked and the answer is `false`.
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let password = password.to_owned();
        let matches = self
            .run(move || {
                PasswordHash::new(&hash)
                    .map(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
                    .unwrap_or(false)
            })
            .await?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| crate::Error::internal("password hasher is shut down"))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|err| crate::Error::internal(format!("password task failed: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() -> anyhow::Result<()> {
        let hasher = PasswordHasher::new(1)?;
        let password = Password::parse("correct horse".to_owned())?;
        let hash = hasher.hash(&password).await?;
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify(Some(&hash), "correct horse").await?);
        assert!(!hasher.verify(Some(&hash), "wrong horse").await?);
        assert!(!hasher.verify(None, "correct horse").await?);
        Ok(())
    }
}
