//! Passwords: their rules and their argon2id hashing on one thread.

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, mpsc};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use billing_domain::PasswordHash;

use crate::BillingError;

/// Shorter passwords are refused.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longer passwords are refused (hashing cost is bounded).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Hashes a password with argon2id (OWASP parameters: 19 MiB, 2 passes) on
/// the hashing thread, so the async workers keep serving.
///
/// Fails at once with [`BillingError::Overloaded`] when the hashing queue
/// is full, rather than making the caller wait behind a burst.
pub(super) async fn hash_password(
    hasher: &PasswordHasher,
    password: String,
) -> Result<PasswordHash, BillingError> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(BillingError::invalid(format!(
            "password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    hasher
        .submit(password)?
        .await
        .map_err(|_| internal("the password hashing thread stopped"))?
}

/// A password to hash and where to send its hash.
type HashJob = (
    String,
    tokio::sync::oneshot::Sender<Result<PasswordHash, BillingError>>,
);

/// The hash function the thread runs ([`hash_now`]; another in tests).
type HashFn = Arc<dyn Fn(&str, &mut [Block]) -> Result<PasswordHash, BillingError> + Send + Sync>;

/// The one thread of a [`Billing`] that runs argon2, fed through a bounded
/// queue.
///
/// Each hash needs a 19 MiB block. Hashed on the blocking pool, every
/// thread that ever hashed kept its block resident in its own malloc arena
/// (measured: about 19 MiB more per registration, 435 MiB after 23); one
/// hashing thread keeps one block, and also bounds the CPU registrations
/// can take from the requests being served.
///
/// The queue holds at most `capacity` passwords besides the one being
/// hashed: a burst beyond that is refused at once
/// ([`BillingError::Overloaded`]) instead of growing memory and latency
/// without limit. A job whose caller has gone (its request was dropped)
/// by the time the thread reaches it is skipped, not hashed. The thread
/// starts with the first hash and ends when the [`Billing`] is dropped.
pub(crate) struct PasswordHasher {
    capacity: usize,
    hash: HashFn,
    queue: OnceLock<Option<mpsc::SyncSender<HashJob>>>,
    counts: Arc<HashCounts>,
}

/// What the hashing thread did, for tests and diagnostics.
#[derive(Debug, Default)]
struct HashCounts {
    /// Passwords hashed.
    hashed: AtomicU64,
    /// Jobs skipped because their caller had gone.
    skipped: AtomicU64,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("capacity", &self.capacity)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher whose queue holds at most `capacity` (at least 1) waiting
    /// passwords.
    pub(crate) fn new(capacity: usize) -> Self {
        Self::with_hash(capacity, Arc::new(hash_now))
    }

    fn with_hash(capacity: usize, hash: HashFn) -> Self {
        Self {
            capacity: capacity.max(1),
            hash,
            queue: OnceLock::new(),
            counts: Arc::default(),
        }
    }

    /// Queues `password`; the receiver gets its hash.
    ///
    /// # Errors
    /// [`BillingError::Overloaded`] when the queue is full;
    /// [`BillingError::Internal`] when the thread does not run.
    fn submit(
        &self,
        password: String,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<PasswordHash, BillingError>>, BillingError>
    {
        let jobs = self
            .queue
            .get_or_init(|| self.start())
            .as_ref()
            .ok_or_else(|| internal("the password hashing thread is not running"))?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        jobs.try_send((password, reply))
            .map_err(|error| match error {
                mpsc::TrySendError::Full(_) => BillingError::Overloaded {
                    resource: "password hashing",
                },
                mpsc::TrySendError::Disconnected(_) => {
                    internal("the password hashing thread stopped")
                }
            })?;
        Ok(answer)
    }

    /// Starts the thread; `None` (logged) when the system refuses.
    fn start(&self) -> Option<mpsc::SyncSender<HashJob>> {
        let (jobs, queue) = mpsc::sync_channel::<HashJob>(self.capacity);
        let hash = Arc::clone(&self.hash);
        let counts = Arc::clone(&self.counts);
        let started = std::thread::Builder::new()
            .name("password-hasher".to_owned())
            .spawn(move || {
                // Allocated once for the life of the thread, reused by every hash.
                let mut memory = vec![Block::default(); HASH_MEMORY_KIB as usize];
                for (password, reply) in queue {
                    if reply.is_closed() {
                        // The caller has gone: nobody would read this hash.
                        counts.skipped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let hashed = hash(&password, &mut memory);
                    counts.hashed.fetch_add(1, Ordering::Relaxed);
                    // The caller may have gone meanwhile; the hash is then unused.
                    let _ = reply.send(hashed);
                }
            });
        match started {
            Ok(_) => Some(jobs),
            Err(error) => {
                tracing::error!(%error, "cannot start the password hashing thread");
                None
            }
        }
    }
}

/// Argon2 memory cost in KiB (OWASP: 19 MiB).
const HASH_MEMORY_KIB: u32 = 19 * 1024;

/// Hashes `password` with argon2id (19 MiB, 2 passes, 1 lane) into a PHC
/// string, using `memory` (`HASH_MEMORY_KIB` blocks) instead of allocating.
fn hash_now(password: &str, memory: &mut [Block]) -> Result<PasswordHash, BillingError> {
    let params = Params::new(HASH_MEMORY_KIB, 2, 1, None).map_err(internal)?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = Salt::generate();
    let mut raw = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut raw, &mut *memory)
        .map_err(internal)?;
    let output = Output::new(&raw).map_err(internal)?;
    let phc = argon2::PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(internal)?,
        salt: Some(salt),
        hash: Some(output),
    };
    Ok(PasswordHash(phc.to_string()))
}

fn internal(error: impl std::fmt::Display) -> BillingError {
    BillingError::Internal {
        source: error.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use argon2::PasswordVerifier;

    use super::*;

    /// A hasher whose hashes each wait for one `gate` message, and report
    /// on `started` when they begin.
    fn gated_hasher(capacity: usize) -> (PasswordHasher, mpsc::Sender<()>, mpsc::Receiver<()>) {
        let (gate, gate_rx) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel::<()>();
        let gate_rx = Mutex::new(gate_rx);
        let started_tx = Mutex::new(started_tx);
        let hash: HashFn = Arc::new(move |password: &str, _memory: &mut [Block]| {
            let _ = started_tx.lock().unwrap().send(());
            gate_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30))
                .map_err(internal)?;
            Ok(PasswordHash(format!("hash of {password}")))
        });
        (PasswordHasher::with_hash(capacity, hash), gate, started)
    }

    fn wait_started(started: &mpsc::Receiver<()>) {
        started
            .recv_timeout(Duration::from_secs(30))
            .expect("the hashing thread started a hash");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_then_drains() {
        let (hasher, gate, started) = gated_hasher(2);
        let first = hasher.submit("first password".into()).unwrap();
        wait_started(&started); // the thread holds the first: the queue is empty
        let queued = [
            hasher.submit("second password".into()).unwrap(),
            hasher.submit("third password".into()).unwrap(),
        ];
        let refused = hasher.submit("fourth password".into()).unwrap_err();
        assert!(
            matches!(refused, BillingError::Overloaded { .. }),
            "{refused:?}"
        );
        assert!(refused.is_transient() && refused.is_server_fault());
        for _ in 0..3 {
            gate.send(()).unwrap();
        }
        assert_eq!(first.await.unwrap().unwrap().0, "hash of first password");
        for (answer, password) in queued.into_iter().zip(["second", "third"]) {
            assert_eq!(
                answer.await.unwrap().unwrap().0,
                format!("hash of {password} password")
            );
        }
        // Drained: a new password is accepted and hashed.
        let later = hasher.submit("fifth password".into()).unwrap();
        gate.send(()).unwrap();
        assert_eq!(later.await.unwrap().unwrap().0, "hash of fifth password");
        assert_eq!(hasher.counts.hashed.load(Ordering::Relaxed), 4);
    }

    #[tokio::test]
    async fn a_password_whose_caller_has_gone_is_not_hashed() {
        let (hasher, gate, started) = gated_hasher(4);
        let first = hasher.submit("first password".into()).unwrap();
        wait_started(&started);
        let gone = hasher.submit("abandoned password".into()).unwrap();
        let kept = hasher.submit("kept password".into()).unwrap();
        drop(gone); // the request was dropped while queued
        gate.send(()).unwrap();
        gate.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap().0, "hash of first password");
        assert_eq!(kept.await.unwrap().unwrap().0, "hash of kept password");
        assert_eq!(hasher.counts.skipped.load(Ordering::Relaxed), 1);
        assert_eq!(hasher.counts.hashed.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn hashes_verify_with_argon2_and_reuse_the_memory() {
        let mut memory = vec![Block::default(); HASH_MEMORY_KIB as usize];
        let first = hash_now("correct horse battery", &mut memory).unwrap();
        let second = hash_now("correct horse battery", &mut memory).unwrap();
        assert_ne!(first, second, "a fresh salt each time");
        for hash in [&first, &second] {
            assert!(
                hash.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
                "{}",
                hash.0
            );
            let parsed = argon2::PasswordHash::new(&hash.0).unwrap();
            assert!(
                Argon2::default()
                    .verify_password(b"correct horse battery", &parsed)
                    .is_ok()
            );
            assert!(
                Argon2::default()
                    .verify_password(b"wrong", &parsed)
                    .is_err()
            );
        }
    }
}
