//! Password hashing with argon2id at the OWASP parameters (7 MiB, 5 passes, 1 lane).
//!
//! A hash takes tens of milliseconds of CPU, so it never runs on the async runtime:
//! it runs on a small pool of its own threads, one per hash allowed at once
//! (`TRIAGE_MAX_CONCURRENT_HASHES`), half as many as cores by default. Further
//! logins wait for a turn, but only for so long (`TRIAGE_LOGIN_QUEUE_TIMEOUT`): one
//! that gets none by then is answered at once with `RATE_LIMITED`, rather than
//! waiting seconds behind a storm. Turns go to the newest waiter first
//! ([`super::turns`]), so a login that is served waits a hash or two, not the
//! timeout. The threads run five nice steps below the server (nice 5 for a server
//! at 0), so that a storm of logins takes mostly the CPU the requests leave; a hash
//! slowed down that way delays only its own login. (Ten steps below, a hash beside
//! PostgreSQL's processes was held off for up to half a second: a served login's p99
//! past 500 ms.) After a hash the thread rests on its turn three times as long as the
//! requests held the hash off the CPU ([`rest_after`]): at full speed on an idle server,
//! fewer hashes a second the busier it is. A hash's 7 MiB are kept while logins keep
//! coming and given back to the system after two idle seconds.

use std::{
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use anyhow::Context as _;
use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng},
};

use super::turns::{Turn, Turns};
use crate::{Result, sync::lock};

/// Work for a hashing thread, given that thread's argon2 memory.
type Work = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// Work and the turn it runs on: the thread hands the turn back once it has rested
/// after the work.
struct Job {
    work: Work,
    turn: Turn,
}

#[derive(Clone)]
pub struct PasswordHasher {
    turns: Turns,
    /// Longest wait for a hashing thread before the work is refused.
    queue_timeout: Duration,
    jobs: mpsc::Sender<Job>,
    /// The hashing threads' memory between jobs.
    memory: Arc<Memory>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("free_turns", &self.turns.free())
            .field("waiting", &self.turns.waiting())
            .field("idle_memory_blocks", &lock(&self.memory.idle).len())
            .finish_non_exhaustive()
    }
}

/// OWASP: m=7168 KiB, t=5, p=1, the last of the Password Storage Cheat Sheet's five
/// argon2id settings, which it rates as equal defences trading memory for passes.
/// Of those, the least memory: a hash is the largest single allocation the server
/// makes (at m=19456, t=2, its 19 MiB were a quarter of the peak RSS under load),
/// for about the same CPU (35,840 block passes against 38,912). Hashes made with
/// other parameters still verify: a PHC string names its own.
/// `Params::new` only fails for out-of-range values, and these are constants inside
/// the range.
fn params() -> Params {
    Params::new(7 * 1024, 5, 1, None).unwrap_or_default()
}

/// Verified against when the user does not exist, so that an unknown username costs
/// the same work as a wrong password and cannot be told apart by timing: a hash of a
/// throwaway password at [`params`]'s parameters. Only its parameters matter, and the
/// answer for an unknown user is `false` whatever it says. A constant, so start-up
/// does not spend a hash on it (two thirds of the time to ready on SQLite).
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=7168,t=5,p=1$moTbt5bQ31MrvEoCFNmTuw$bUfBYD82d4VkjDdxDQBXzIbacO8FWktih4H4HVcrS2E";

/// How long the hashing threads stay idle before their memory is given back.
const IDLE_RELEASE: Duration = Duration::from_secs(2);

/// The least a hash's memory reserves, in blocks of 1 KiB: more than glibc's largest
/// mmap threshold (32 MiB on 64-bit), so the allocator always maps it on its own and
/// unmaps it when it is dropped. A hash's blocks, allocated in an ordinary heap, would stay
/// with the thread's arena for good after a single login (glibc raises its threshold
/// past any block it has unmapped): RSS grew by 80 MiB over 20 logins. Only the pages
/// a hash writes are resident; the rest is address space.
const RESERVED_BLOCKS: usize = 33 * 1024;

/// The first `blocks` blocks of `memory`, grown to fit on first use.
fn blocks(memory: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        if memory.capacity() < blocks {
            *memory = Vec::with_capacity(blocks.max(RESERVED_BLOCKS));
        }
        memory.resize(blocks, Block::default());
    }
    &mut memory[..blocks]
}

/// The hashing threads' memory while it is not in use; freed once every thread has
/// been idle for [`IDLE_RELEASE`], so a burst of logins leaves no hash memory behind.
#[derive(Debug, Default)]
struct Memory {
    idle: Mutex<Vec<Vec<Block>>>,
}

impl Memory {
    fn take(&self) -> Vec<Block> {
        lock(&self.idle).pop().unwrap_or_default()
    }

    fn put_back(&self, memory: Vec<Block>) {
        lock(&self.idle).push(memory);
    }

    fn release(&self) {
        lock(&self.idle).clear();
    }
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
        let threads = max_concurrent.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let memory = Arc::new(Memory::default());
        for n in 0..threads {
            let (queue, memory) = (queue.clone(), memory.clone());
            std::thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || hashing_thread(&queue, &memory))
                .context("starting a password hashing thread")?;
        }
        Ok(Self { turns: Turns::new(threads), queue_timeout, jobs, memory })
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

    /// A hashing thread's turn, once one is free (the newest waiter first);
    /// `RATE_LIMITED` when none comes within the queue timeout. Taken before anything
    /// else is spent on a login (its attempt counted, say), so a shed login costs
    /// nothing.
    pub async fn turn(&self) -> Result<HashTurn<'_>> {
        match self.turns.take(self.queue_timeout).await {
            Ok(turn) => Ok(HashTurn { hasher: self, turn }),
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
    turn: Turn,
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
        let hash = hash.unwrap_or(DUMMY_HASH).to_owned();
        let password = password.to_owned();
        let matches = self.run(move |memory| verify_with(memory, &hash, &password)).await?;
        Ok(known && matches)
    }

    /// Runs `work` on a hashing thread, which keeps the turn until it has rested
    /// after it (see [`rest_after`]).
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let work = Box::new(move |memory: &mut Vec<Block>| {
            let _ = done.send(work(memory));
        });
        self.hasher.jobs.send(Job { work, turn: self.turn }).map_err(|_| gone())?;
        result.await.map_err(|_| gone())
    }
}

/// How far below the server's priority the hashing threads run (in nice steps, up to
/// the lowest, 19), so that a hash gives way to the requests it would otherwise hold
/// up. Relative, so a server started at nice 15 hashes at 19, not 5; and lowering
/// a priority needs no privilege.
///
/// Five, not ten (issue #12): at ten, beside PostgreSQL's processes on a busy
/// 2-core machine, a hash of 16 ms of CPU took up to 470 ms, and the served logins'
/// p99 was 480 to 510 ms; at five it was 274 to 291 ms. The requests' p99 during a
/// login storm did not move beyond the machine's noise (SQLite and PostgreSQL), as
/// the longer rest ([`REST_PER_HELD_OFF`]) gives the CPU back.
#[cfg(target_os = "linux")]
const HASHING_NICE: i32 = 5;

/// Lowers the calling thread by [`HASHING_NICE`] (Linux keeps a nice value for each
/// thread, and a new thread starts with its creator's). Elsewhere the threads run at
/// the server's own priority.
fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    if let Err(err) = rustix::process::nice(HASHING_NICE) {
        tracing::warn!(%err, "the password hashing thread keeps the server's priority");
    }
}

/// How long a hashing thread rests after a hash for each moment the hash waited for
/// a core. Three: at five nice steps below the server a hash is held off less than at
/// ten, so its rest, which is in proportion, would be shorter; at ten, two was enough.
const REST_PER_HELD_OFF: u32 = 3;

/// The longest rest after a hash, whatever held it off (a stalled machine, say).
const LONGEST_REST: Duration = Duration::from_millis(200);

/// The rest after a hash that `waited` for a core while it ran:
/// [`REST_PER_HELD_OFF`] times that, up to [`LONGEST_REST`].
///
/// The lower priority alone still left a login storm nearly half a core of a busy
/// 2-core machine, taken from the requests: a thread at nice 10 (as it then ran) is
/// held off while they run, but it runs in every gap between them (a hash of 12 ms
/// of CPU took 45 ms). Resting in proportion to how long it was held off, the thread hashes at
/// full speed on an idle machine and ever more slowly the busier the server is; the
/// logins it cannot serve are shed with `RATE_LIMITED`. It rests on its turn, so a
/// login that gets one starts hashing at once and a served login waits at most the
/// queue timeout and its own hash.
fn rest_after(waited: Duration) -> Duration {
    (waited * REST_PER_HELD_OFF).min(LONGEST_REST)
}

/// How long the calling thread has waited for a core, in all, as Linux counts it
/// (the second figure of `/proc/thread-self/schedstat`); `None` where that cannot be
/// read, and the hashing threads then never rest. Read from the file rather than
/// through the CPU-time clock: `rustix` reads that clock through the vDSO, which
/// valgrind (`bench/link-order/collect`, callgrind profiles) cannot run.
fn time_waited_for_a_core() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = stat.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// One hashing thread: runs jobs until the hasher is dropped, resting on each job's
/// turn after it ([`rest_after`]). The thread waiting for the next job (the others
/// wait for it) frees the idle memory when none has come for [`IDLE_RELEASE`].
fn hashing_thread(queue: &Mutex<mpsc::Receiver<Job>>, memory: &Memory) {
    yield_to_requests();
    loop {
        let Job { work, turn } = match lock(queue).recv_timeout(IDLE_RELEASE) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                memory.release();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let waited_before = time_waited_for_a_core();
        let mut blocks = memory.take();
        work(&mut blocks);
        memory.put_back(blocks);
        if let (Some(before), Some(after)) = (waited_before, time_waited_for_a_core()) {
            let rest = rest_after(after.saturating_sub(before));
            if !rest.is_zero() {
                std::thread::sleep(rest);
            }
        }
        drop(turn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() -> anyhow::Result<()> {
        let hasher = PasswordHasher::new(1, Duration::from_secs(5))?;
        let hash = hasher.hash("correct horse").await?;
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"));
        assert!(hasher.verify(Some(&hash), "correct horse").await?);
        assert!(!hasher.verify(Some(&hash), "wrong horse").await?);
        assert!(!hasher.verify(None, "correct horse").await?);
        Ok(())
    }

    #[tokio::test]
    async fn the_memory_of_a_hash_is_given_back_once_the_threads_are_idle() -> anyhow::Result<()> {
        let hasher = PasswordHasher::new(1, Duration::from_secs(5))?;
        hasher.hash("correct horse").await?;
        // The thread puts its blocks back just after it answers.
        let kept = || lock(&hasher.memory.idle).iter().map(Vec::len).collect::<Vec<_>>();
        for _ in 0..100 {
            if !kept().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(kept(), [7 * 1024], "the blocks wait for the next job");
        tokio::time::sleep(IDLE_RELEASE + Duration::from_secs(1)).await;
        assert!(lock(&hasher.memory.idle).is_empty(), "idle memory is freed");
        assert!(hasher.verify(None, "correct horse").await.is_ok_and(|matches| !matches));
        Ok(())
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_below_the_server_s_priority() -> anyhow::Result<()> {
        // The thread that starts the hasher stands for the server's.
        let server = rustix::process::getpriority_process(None)?;
        let hasher = PasswordHasher::new(1, Duration::from_secs(5))?;
        let nice = hasher.turn().await?.run(|_| rustix::process::getpriority_process(None)).await??;
        assert_eq!(nice, (server + HASHING_NICE).min(19));
        assert_eq!(rustix::process::getpriority_process(None)?, server, "the server keeps its priority");
        Ok(())
    }

    #[test]
    fn a_hash_rests_three_times_as_long_as_it_waited_for_a_core_up_to_a_bound() {
        let ms = Duration::from_millis;
        assert_eq!(rest_after(Duration::ZERO), Duration::ZERO, "none after a hash never held off");
        assert_eq!(rest_after(ms(28)), ms(84));
        assert_eq!(rest_after(Duration::from_secs(10)), LONGEST_REST);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_hashing_thread_held_off_the_cpu_rests_on_its_turn() -> anyhow::Result<()> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let hasher = PasswordHasher::new(1, Duration::from_secs(5))?;
        // Twice as many busy threads as cores, at the server's priority, running before
        // the work starts and until it ends: the hashing thread, five steps below, waits
        // for a core most of the time.
        let (busy, started) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicUsize::new(0)));
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let threads: Vec<_> = (0..2 * cores)
            .map(|_| {
                let (busy, started) = (busy.clone(), started.clone());
                std::thread::spawn(move || {
                    started.fetch_add(1, Ordering::Relaxed);
                    while busy.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        while started.load(Ordering::Relaxed) < 2 * cores {
            std::thread::yield_now();
        }
        let done = busy.clone();
        let hashed = hasher
            .turn()
            .await?
            .run(move |memory| {
                // Four hashes, some 50 ms of CPU, to be held off for.
                let hashes: Result<Vec<_>> = (0..4).map(|_| hash_with(memory, "correct horse")).collect();
                done.store(false, Ordering::Relaxed);
                hashes
            })
            .await;
        let answered = std::time::Instant::now();
        busy.store(false, Ordering::Relaxed);
        for thread in threads {
            let _ = thread.join();
        }
        hashed??;
        // Held off for most of that, the thread rests up to the longest rest, 200 ms;
        // without a rest the turn is back at once.
        assert!(hasher.turn().await.is_ok(), "the turn comes back after the rest");
        let rested = answered.elapsed();
        assert!(rested >= Duration::from_millis(50), "the thread kept the turn {rested:?}");
        Ok(())
    }

    #[tokio::test]
    async fn a_hash_made_with_the_earlier_parameters_still_verifies() -> anyhow::Result<()> {
        // Made by another argon2 implementation at m=19456, t=2, p=1, the parameters
        // of the hashes stored before they changed.
        let earlier = "$argon2id$v=19$m=19456,t=2,p=1$FuqfwEYfx4/+13pf34Fktg$\
                       jBmLyRd/A5y5wC3Tu0jQ6RY+jJRuGrevEGMHa11lUKU";
        let hasher = PasswordHasher::new(1, Duration::from_secs(5))?;
        assert!(hasher.verify(Some(earlier), "correct horse").await?);
        assert!(!hasher.verify(Some(earlier), "wrong horse").await?);
        Ok(())
    }

    #[test]
    fn the_dummy_hash_has_the_parameters_of_a_real_one() -> anyhow::Result<()> {
        let dummy = PasswordHash::new(DUMMY_HASH).map_err(|err| anyhow::anyhow!("{err}"))?;
        let real = hash_with(&mut Vec::new(), "correct horse")?;
        let real = PasswordHash::new(&real).map_err(|err| anyhow::anyhow!("{err}"))?;
        assert_eq!(
            (dummy.algorithm, dummy.version, &dummy.params),
            (real.algorithm, real.version, &real.params)
        );
        assert!(verify_with(&mut Vec::new(), DUMMY_HASH, "x"), "a hash that verifies does the full work");
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
