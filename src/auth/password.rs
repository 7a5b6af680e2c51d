//! Password hashing with argon2id at the OWASP parameters (19 MiB, 2 passes, 1 lane).
//!
//! A hash takes tens of milliseconds of CPU, so it never runs on the async runtime:
//! it runs on a small pool of its own threads, one per hash allowed at once
//! (`TRIAGE_MAX_CONCURRENT_HASHES`), which further logins queue for, but only for
//! so long (`TRIAGE_LOGIN_QUEUE_TIMEOUT`): one that cannot start by then is answered
//! at once with `RATE_LIMITED`, rather than waiting seconds behind a storm. The threads
//! run at a lower CPU priority (nice 10) than the rest of the server, so a login
//! storm takes the CPU the API leaves idle rather than the API's share: reads stay
//! fast while logins queue.

use std::{
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use anyhow::Context as _;
use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;

use crate::Result;

/// The hashing threads' priority, on thread-priority's 0 (lowest) to 99 scale,
/// which on Linux maps 22 to nice 10: about a tenth of a nice-0 thread's CPU share
/// when both want the CPU.
const HASHING_PRIORITY: u8 = 22;

/// Work for a hashing thread, given that thread's argon2 memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Longest wait for a hashing thread before the work is refused.
    queue_timeout: Duration,
    jobs: mpsc::Sender<Job>,
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

/// OWASP: m=19456 KiB, t=2, p=1. `Params::new` only fails for out-of-range values,
/// and these are constants inside the range.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).unwrap_or_default()
}

/// The first `blocks` blocks of `memory`, grown to fit on first use. Each hashing
/// thread keeps its memory for its life: allocating 19 MiB per hash left glibc's
/// allocator holding several copies per thread (RSS grew by 80 MiB over 20 logins).
fn blocks(memory: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    &mut memory[..blocks]
}

/// The PHC string of a fresh argon2id hash of `password`.
fn hash_with(memory: &mut Vec<Block>, password: &str) -> Result<String> {
    let failed =
        |err: &dyn std::fmt::Display| crate::Error::internal(format!("hashing a password failed: {err}"));
    let params = params();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|err| failed(&err))?;
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut output,
            blocks(memory, params.block_count()),
        )
        .map_err(|err| failed(&err))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|err| failed(&err))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output).map_err(|err| failed(&err))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc` (with whatever argon2 variant and
/// parameters it names), compared in constant time.
fn verify_with(memory: &mut Vec<Block>, phc: &str, password: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(hash.algorithm), Params::try_from(&hash)) else {
        return false;
    };
    let Ok(version) = hash.version.map_or(Ok(Version::V0x13), Version::try_from) else { return false };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else { return false };
    let mut output = vec![0u8; expected.len()];
    let block_count = params.block_count();
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut output,
            blocks(memory, block_count),
        )
        .is_ok()
        && Output::new(&output).is_ok_and(|computed| computed == expected)
}

impl PasswordHasher {
    /// A hasher running at most `max_concurrent` hashes at once, whose callers wait at
    /// most `queue_timeout` for their turn.
    pub fn new(max_concurrent: usize, queue_timeout: Duration) -> anyhow::Result<Self> {
        let dummy_hash = hash_with(&mut Vec::new(), "not a real password, only spent time")
            .map_err(|err| anyhow::anyhow!("{err}"))
            .context("computing the dummy password hash")?;
        let threads = max_concurrent.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || hashing_thread(&queue))
                .context("starting a password hashing thread")?;
        }
        Ok(Self {
            permits: Arc::new(Semaphore::new(threads)),
            queue_timeout,
            jobs,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// The PHC string of a fresh argon2id hash of `password` (one the domain has
    /// judged good enough to keep).
    pub async fn hash(&self, password: &str) -> Result<String> {
        self.turn().await?.hash(password).await
    }

    /// Whether `password` matches `hash`; with no hash (an unknown user) the dummy is
    /// checked and the answer is `false`.
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> Result<bool> {
        self.turn().await?.verify(hash, password).await
    }

    /// A hashing thread's turn, once one is free; `RATE_LIMITED` when none is within
    /// the queue timeout. Taken before anything else is spent on a login (its
    /// attempt counted, say), so a shed login costs nothing.
    pub async fn turn(&self) -> Result<HashTurn<'_>> {
        match tokio::time::timeout(self.queue_timeout, self.permits.acquire()).await {
            Ok(permit) => Ok(HashTurn { hasher: self, _permit: permit.map_err(|_| gone())? }),
            Err(_) => {
                // Debug, not warn: a storm sheds thousands a second.
                tracing::debug!(queue_timeout = ?self.queue_timeout, "password work shed: every hashing thread is busy");
                Err(crate::Error::RateLimited {
                    message: "Too many sign-ins at once; try again in a moment",
                    retry_after: 1,
                })
            }
        }
    }
}

fn gone() -> crate::Error {
    crate::Error::internal("the password hashing threads are gone")
}

/// A hashing thread reserved for one hash or check ([`PasswordHasher::turn`]).
#[derive(Debug)]
pub struct HashTurn<'a> {
    hasher: &'a PasswordHasher,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl HashTurn<'_> {
    /// [`PasswordHasher::hash`], on this turn.
    pub async fn hash(self, password: &str) -> Result<String> {
        let password = password.to_owned();
        self.run(move |memory| hash_with(memory, &password)).await?
    }

    /// [`PasswordHasher::verify`], on this turn.
    pub async fn verify(self, hash: Option<&str>, password: &str) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.map_or_else(|| self.hasher.dummy_hash.to_string(), str::to_owned);
        let password = password.to_owned();
        let matches = self.run(move |memory| verify_with(memory, &hash, &password)).await?;
        Ok(known && matches)
    }

    /// Runs `work` on a hashing thread; the turn ends with it.
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.hasher
            .jobs
            .send(Box::new(move |memory| {
                let _ = done.send(work(memory));
            }))
            .map_err(|_| gone())?;
        result.await.map_err(|_| gone())
    }
}

/// One hashing thread: lowers its own priority, then runs jobs until the hasher is
/// dropped.
fn hashing_thread(queue: &Mutex<mpsc::Receiver<Job>>) {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    let lowered =
        ThreadPriorityValue::try_from(HASHING_PRIORITY).map_err(|err| format!("{err:?}")).and_then(|value| {
            set_current_thread_priority(ThreadPriority::Crossplatform(value))
                .map_err(|err| format!("{err:?}"))
        });
    if let Err(err) = lowered {
        tracing::warn!(error = %err, "cannot lower the password hashing thread's priority");
    }
    let mut memory = Vec::new();
    loop {
        // A poisoned lock only means another hashing thread panicked while waiting.
        let job = match queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        job(&mut memory);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() -> anyhow::Result<()> {
        let hasher = PasswordHasher::new(1, Duration::from_secs(5))?;
        let hash = hasher.hash("correct horse").await?;
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify(Some(&hash), "correct horse").await?);
        assert!(!hasher.verify(Some(&hash), "wrong horse").await?);
        assert!(!hasher.verify(None, "correct horse").await?);
        Ok(())
    }

    #[test]
    fn hashes_agree_with_the_argon2_crate_both_ways() -> anyhow::Result<()> {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let ours = hash_with(&mut Vec::new(), "correct horse")?;
        let parsed = PasswordHash::new(&ours).map_err(|err| anyhow::anyhow!("{err}"))?;
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        let mut memory = Vec::new();
        assert!(verify_with(&mut memory, &theirs.to_string(), "correct horse"));
        assert!(!verify_with(&mut memory, &theirs.to_string(), "correct horsf"));
        assert!(!verify_with(&mut memory, "not a hash", "correct horse"));
        Ok(())
    }
}
