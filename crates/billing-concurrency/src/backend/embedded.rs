//! The embedded backend: locks, fencing counters and idempotency records in
//! in-process maps behind mutexes (sharded by key, so that unrelated keys do
//! not contend), with the same semantics as the Redis scripts (TTLs,
//! token-checked release, fencing). Valid for one process only: two API
//! instances with embedded backends do not see each other.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::Token;
use crate::idempotency::{IdempotencyOutcome, IdempotencyTicket, StoredOutcome};
use crate::settings::EmbeddedSettings;

/// Expired entries each operation removes at most, so that cleaning up
/// never holds the mutex for long, however many entries expire at once.
const EXPIRED_PER_OPERATION: usize = 64;

/// Number of independently locked shards.
const SHARDS: usize = 16;

pub(crate) struct EmbeddedStore {
    settings: EmbeddedSettings,
    /// A lock name, or a record's scope and key, always maps to one shard.
    shards: Box<[Mutex<State>]>,
    hasher: RandomState,
    /// Generation counter per name (see `Coordination::generation`).
    generations: Mutex<HashMap<String, u64>>,
}

struct State {
    locks: HashMap<String, HeldLock>,
    /// Last fencing token handed out per lock name; never forgotten, so
    /// tokens keep increasing for the life of the process.
    fences: HashMap<String, u64>,
    records: HashMap<(String, String), Record>,
    /// When each lock and record was set to expire, soonest first. An entry
    /// whose TTL was since extended is found still alive and skipped.
    expiries: BinaryHeap<Reverse<(Instant, Entry)>>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    Lock(String),
    Record((String, String)),
}

struct HeldLock {
    token: Token,
    expires_at: Instant,
}

struct Record {
    fingerprint: String,
    owner: Token,
    expires_at: Instant,
    state: RecordState,
}

enum RecordState {
    InFlight,
    Done(StoredOutcome),
}

impl EmbeddedStore {
    pub(crate) fn new(settings: EmbeddedSettings) -> Self {
        Self {
            settings,
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(State {
                        locks: HashMap::new(),
                        fences: HashMap::new(),
                        records: HashMap::new(),
                        expiries: BinaryHeap::new(),
                    })
                })
                .collect(),
            hasher: RandomState::new(),
            generations: Mutex::new(HashMap::new()),
        }
    }

    /// The generation of `name`: 0 until first bumped.
    pub(crate) fn generation(&self, name: &str) -> u64 {
        self.generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Raises the generation of `name` (never below the clock in
    /// microseconds, as the Redis script does) and returns it.
    pub(crate) fn bump_generation(&self, name: &str) -> u64 {
        let mut generations = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let generation = generations.entry(name.to_owned()).or_insert(0);
        *generation = (*generation + 1).max(clock_micros());
        *generation
    }

    pub(crate) fn settings(&self) -> &EmbeddedSettings {
        &self.settings
    }

    /// Locks the shard of `key` (a panic elsewhere cannot leave it
    /// half-updated: no user code runs under these mutexes) and removes a
    /// few expired entries from it.
    fn shard(&self, key: impl Hash, now: Instant) -> MutexGuard<'_, State> {
        let hash = self.hasher.hash_one(key);
        let index = usize::try_from(hash % SHARDS as u64).unwrap_or(0);
        let mut state = self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.remove_expired(now);
        state
    }

    fn lock_shard(&self, name: &str, now: Instant) -> MutexGuard<'_, State> {
        self.shard(name, now)
    }

    fn record_shard(&self, scope: &str, key: &str, now: Instant) -> MutexGuard<'_, State> {
        self.shard((scope, key), now)
    }

    pub(crate) fn try_acquire(&self, name: &str, token: Token, ttl_ms: u64) -> Option<u64> {
        let now = Instant::now();
        let mut state = self.lock_shard(name, now);
        let held = state
            .locks
            .get(name)
            .filter(|lock| lock.expires_at > now)
            .map(|lock| lock.token == token);
        match held {
            // Held by this very acquisition: answer as the first time did.
            Some(true) => state.fences.get(name).copied(),
            Some(false) => None,
            None => {
                // Never below the clock in microseconds, so tokens keep
                // increasing across a restart of the process (the counters
                // live in memory, the tokens stored with writes do not).
                let fence = state.fences.entry(name.to_owned()).or_insert(0);
                *fence = (*fence + 1).max(clock_micros());
                let fence = *fence;
                state.set_lock(name, token, now + Duration::from_millis(ttl_ms));
                Some(fence)
            }
        }
    }

    /// `(is ours, is live)` for the lock entry of `name`, if any.
    fn holder(state: &State, name: &str, token: Token, now: Instant) -> Option<(bool, bool)> {
        state
            .locks
            .get(name)
            .map(|lock| (lock.token == token, lock.expires_at > now))
    }

    pub(crate) fn release(&self, name: &str, token: Token, fence: u64) -> bool {
        let now = Instant::now();
        let mut state = self.lock_shard(name, now);
        match Self::holder(&state, name, token, now) {
            Some((true, _)) => {
                state.locks.remove(name);
                true
            }
            Some((false, true)) => false,
            // Gone (expired): still ours if nobody acquired it since.
            Some((false, false)) | None => state.fences.get(name) == Some(&fence),
        }
    }

    pub(crate) fn extend(&self, name: &str, token: Token, fence: u64, ttl_ms: u64) -> bool {
        let now = Instant::now();
        let expires_at = now + Duration::from_millis(ttl_ms);
        let mut state = self.lock_shard(name, now);
        match Self::holder(&state, name, token, now) {
            Some((true, _)) => {
                state.set_lock(name, token, expires_at);
                true
            }
            Some((false, true)) => false,
            Some((false, false)) | None => {
                if state.fences.get(name) == Some(&fence) {
                    state.set_lock(name, token, expires_at);
                    true
                } else {
                    false
                }
            }
        }
    }

    pub(crate) fn begin(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        owner: Token,
    ) -> IdempotencyOutcome {
        let now = Instant::now();
        let mut state = self.record_shard(scope, key, now);
        let id = (scope.to_owned(), key.to_owned());
        match state.records.get(&id).filter(|r| r.expires_at > now) {
            None => {
                state.set_record(
                    id,
                    Record {
                        fingerprint: fingerprint.to_owned(),
                        owner,
                        expires_at: now + self.settings.in_flight_ttl,
                        state: RecordState::InFlight,
                    },
                );
                IdempotencyOutcome::Started(IdempotencyTicket {
                    scope: scope.to_owned(),
                    key: key.to_owned(),
                    owner,
                })
            }
            Some(record) if record.fingerprint != fingerprint => IdempotencyOutcome::Mismatch,
            Some(record) => match &record.state {
                RecordState::InFlight => IdempotencyOutcome::InFlight,
                RecordState::Done(outcome) => IdempotencyOutcome::Replay(outcome.clone()),
            },
        }
    }

    pub(crate) fn complete(&self, ticket: &IdempotencyTicket, outcome: &StoredOutcome) -> bool {
        let now = Instant::now();
        let expires_at = now + self.settings.idempotency_ttl;
        let mut state = self.record_shard(&ticket.scope, &ticket.key, now);
        let id = (ticket.scope.clone(), ticket.key.clone());
        let Some(record) = state
            .records
            .get_mut(&id)
            .filter(|r| r.expires_at > now && r.owner == ticket.owner)
        else {
            return false;
        };
        match record.state {
            RecordState::InFlight => {
                record.state = RecordState::Done(outcome.clone());
                record.expires_at = expires_at;
                state
                    .expiries
                    .push(Reverse((expires_at, Entry::Record(id))));
            }
            // Completed by an earlier call with this ticket: keep it.
            RecordState::Done(_) => {}
        }
        true
    }

    pub(crate) fn abandon(&self, ticket: &IdempotencyTicket) -> bool {
        let now = Instant::now();
        let mut state = self.record_shard(&ticket.scope, &ticket.key, now);
        let id = (ticket.scope.clone(), ticket.key.clone());
        let ours_in_flight = state.records.get(&id).is_some_and(|r| {
            r.expires_at > now
                && r.owner == ticket.owner
                && matches!(r.state, RecordState::InFlight)
        });
        if ours_in_flight {
            state.records.remove(&id);
        }
        ours_in_flight
    }
}

impl State {
    fn remove_expired(&mut self, now: Instant) {
        for _ in 0..EXPIRED_PER_OPERATION {
            let due = self
                .expiries
                .peek()
                .is_some_and(|Reverse((at, _))| *at <= now);
            if !due {
                return;
            }
            let Some(Reverse((_, entry))) = self.expiries.pop() else {
                return;
            };
            match entry {
                Entry::Lock(name) => {
                    if self.locks.get(&name).is_some_and(|l| l.expires_at <= now) {
                        self.locks.remove(&name);
                    }
                }
                Entry::Record(id) => {
                    if self.records.get(&id).is_some_and(|r| r.expires_at <= now) {
                        self.records.remove(&id);
                    }
                }
            }
        }
    }

    fn set_lock(&mut self, name: &str, token: Token, expires_at: Instant) {
        self.locks
            .insert(name.to_owned(), HeldLock { token, expires_at });
        self.expiries
            .push(Reverse((expires_at, Entry::Lock(name.to_owned()))));
    }

    fn set_record(&mut self, id: (String, String), record: Record) {
        self.expiries
            .push(Reverse((record.expires_at, Entry::Record(id.clone()))));
        self.records.insert(id, record);
    }
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
fn clock_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(in_flight_ttl: Duration, idempotency_ttl: Duration) -> EmbeddedStore {
        EmbeddedStore::new(EmbeddedSettings {
            idempotency_ttl,
            in_flight_ttl,
            ..EmbeddedSettings::default()
        })
    }

    #[test]
    fn expired_entries_are_removed_a_few_at_a_time() {
        let store = store(Duration::from_millis(1), Duration::from_millis(1));
        for i in 0..500 {
            let outcome = store.begin("s", &i.to_string(), "fp", Token::random());
            assert!(matches!(outcome, IdempotencyOutcome::Started(_)));
            assert!(
                store
                    .try_acquire(&i.to_string(), Token::random(), 1)
                    .is_some()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
        // Every shard sees operations, each removing a few expired entries.
        for i in 0..2000 {
            let _ = store.try_acquire(&format!("live-{}", i % 100), Token::random(), 60_000);
            let _ = store.begin("s", &format!("live-{}", i % 100), "fp", Token::random());
        }
        let (mut stale_records, mut locks, mut fences) = (0, 0, 0);
        for shard in &store.shards {
            let state = shard.lock().unwrap_or_else(PoisonError::into_inner);
            stale_records += state
                .records
                .keys()
                .filter(|(_, key)| !key.starts_with("live-"))
                .count();
            locks += state.locks.len();
            fences += state.fences.len();
        }
        assert_eq!(stale_records, 0, "expired records are removed");
        assert_eq!(locks, 100, "only live locks remain");
        // Fencing counters are kept: tokens never go back.
        assert_eq!(fences, 600);
    }

    #[test]
    fn a_completed_record_outlives_its_in_flight_ttl() {
        let in_flight_ttl = Duration::from_millis(300);
        let store = store(in_flight_ttl, Duration::from_secs(60));
        let IdempotencyOutcome::Started(ticket) = store.begin("s", "k", "fp", Token::random())
        else {
            panic!("expected Started");
        };
        let stored = StoredOutcome(b"ok".to_vec());
        let completed = store.complete(&ticket, &stored);
        std::thread::sleep(in_flight_ttl * 2);
        if completed {
            for _ in 0..3 {
                let outcome = store.begin("s", "k", "fp", Token::random());
                assert!(matches!(outcome, IdempotencyOutcome::Replay(ref r) if *r == stored));
            }
        }
    }
}
