//! Locks and idempotency keys on Redis: key names and the Lua scripts that
//! make every operation one atomic, token-checked, repeatable step.
//!
//! Keys (`<p>` is the key prefix, `<name>` the lock's name):
//! - `<p>:lock:{<name>}`: the holder's token, with the lock's TTL;
//! - `<p>:fence:{<name>}`: the last fencing token handed out (a counter
//!   without TTL, so tokens never go back; Redis must not evict it, i.e.
//!   run with `noeviction` or a `volatile-*` policy);
//! - `<p>:gen:<name>`: a generation counter (no TTL either), raised by
//!   every change of what it names and read by every instance that caches
//!   it;
//! - `<p>:idem:<len(scope)>:<scope>:<key>`: an idempotency record, a hash
//!   `state` (`inflight`/`done`), `fp`, `owner`, then `outcome` (the
//!   stored bytes) once done.
//!
//! Redis Cluster runs a script only if all its keys share a hash slot. The
//! lock scripts touch both lock keys: `{<name>}` is their hash tag (the
//! prefix holds no brace, and a lock name is never empty nor starts with
//! `}`, so the tag is the same non-empty text in both keys). The
//! idempotency scripts touch one key each and need no tag.
//!
//! Every script can be run twice with the same arguments without harm
//! (a retry after a lost reply): acquire recognises its own token, release
//! and extend recognise their own fencing token, begin its own owner token,
//! complete its own completed record.

use std::fmt;
use std::sync::LazyLock;

use deadpool_redis::redis::{Script, cmd};

use super::Token;
use super::redis_client::RedisClient;
use crate::error::{CoordinationError, Result};
use crate::idempotency::{IdempotencyOutcome, IdempotencyTicket, StoredOutcome};
use crate::settings::RedisSettings;

/// `SET NX PX` and, if it took, `INCR` of the fencing counter, raised to
/// the server's clock in microseconds when it is behind it. Returns the
/// fencing token, or 0 when someone else holds the lock.
///
/// The clock floor keeps tokens increasing across a Redis restart that lost
/// the counter (this deployment keeps nothing on disk): a token stored with
/// a write before the restart stays older than every token handed out after.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local token = redis.call('INCR', KEYS[2])
  local now = redis.call('TIME')
  local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
  if token < floor then
    token = floor
    redis.call('SET', KEYS[2], string.format('%d', floor))
  end
  return token
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return tonumber(redis.call('GET', KEYS[2]))
end
return 0
",
    )
});

/// `INCR` of a generation counter, raised to the server's clock in
/// microseconds when it is behind it, so that a counter lost in a restart
/// never comes back to a value an instance saw before the restart.
static BUMP_GENERATION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local generation = redis.call('INCR', KEYS[1])
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
if generation < floor then
  generation = floor
  redis.call('SET', KEYS[1], string.format('%d', floor))
end
return generation
",
    )
});

/// Deletes the lock if our token holds it. Returns 1 if nobody else has
/// acquired it since our fencing token (ARGV[2]) was handed out.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
if not holder and redis.call('GET', KEYS[2]) == ARGV[2] then
  return 1
end
return 0
",
    )
});

/// Sets the lock's TTL to ARGV[3] if nobody else has acquired it since our
/// fencing token (ARGV[2]); re-takes it if it lapsed in between.
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if not holder and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0
",
    )
});

/// Claims an idempotency key. Returns `{0}` started, `{1}` in flight,
/// `{2}` mismatch, `{3, outcome}` replay, `{4}` a completed record without
/// an outcome (always 2 items).
static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local r = redis.call('HMGET', KEYS[1], 'state', 'fp', 'owner', 'outcome')
if not r[1] then
  redis.call('HSET', KEYS[1], 'state', 'inflight', 'fp', ARGV[1], 'owner', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {0, ''}
end
if r[2] ~= ARGV[1] then
  return {2, ''}
end
if r[1] == 'inflight' then
  if r[3] == ARGV[2] then
    return {0, ''}
  end
  return {1, ''}
end
if not r[4] then
  return {4, ''}
end
return {3, r[4]}
",
    )
});

/// Stores the outcome if ARGV[1] still owns the in-flight record.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local r = redis.call('HMGET', KEYS[1], 'state', 'owner')
if r[2] ~= ARGV[1] then
  return 0
end
if r[1] == 'inflight' then
  redis.call('HSET', KEYS[1], 'state', 'done', 'outcome', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
",
    )
});

/// Deletes the record if ARGV[1] still owns it in flight.
static ABANDON: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local r = redis.call('HMGET', KEYS[1], 'state', 'owner')
if r[1] == 'inflight' and r[2] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
",
    )
});

pub(crate) struct RedisStore {
    client: RedisClient,
    settings: RedisSettings,
    idempotency_ttl_ms: u64,
    in_flight_ttl_ms: u64,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("client", &self.client)
            .field("key_prefix", &self.settings.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    pub(crate) fn new(settings: RedisSettings) -> Result<Self> {
        settings.validate()?;
        let client = RedisClient::new(&settings)?;
        let idempotency_ttl_ms =
            crate::error::ttl_millis("idempotency_ttl", settings.idempotency_ttl)?;
        let in_flight_ttl_ms = crate::error::ttl_millis("in_flight_ttl", settings.in_flight_ttl)?;
        Ok(Self {
            client,
            settings,
            idempotency_ttl_ms,
            in_flight_ttl_ms,
        })
    }

    pub(crate) fn settings(&self) -> &RedisSettings {
        &self.settings
    }

    fn lock_keys(&self, name: &str) -> [String; 2] {
        let prefix = &self.settings.key_prefix;
        [
            format!("{prefix}:lock:{{{name}}}"),
            format!("{prefix}:fence:{{{name}}}"),
        ]
    }

    fn record_key(&self, scope: &str, key: &str) -> String {
        let prefix = &self.settings.key_prefix;
        format!("{prefix}:idem:{}:{scope}:{key}", scope.len())
    }

    fn generation_key(&self, name: &str) -> String {
        let prefix = &self.settings.key_prefix;
        format!("{prefix}:gen:{name}")
    }

    pub(crate) async fn generation(&self, name: &str) -> Result<u64> {
        let mut get = cmd("GET");
        get.arg(self.generation_key(name));
        let generation: Option<u64> = self
            .client
            .run("generation read", |mut connection| {
                let get = &get;
                async move { get.query_async(&mut connection).await }
            })
            .await?;
        Ok(generation.unwrap_or(0))
    }

    pub(crate) async fn bump_generation(&self, name: &str) -> Result<u64> {
        let mut invocation = BUMP_GENERATION.prepare_invoke();
        invocation.key(self.generation_key(name));
        self.client
            .run("generation bump", |mut connection| {
                let invocation = &invocation;
                async move { invocation.invoke_async(&mut connection).await }
            })
            .await
    }

    pub(crate) async fn ping(&self) -> Result<()> {
        let ping = cmd("PING");
        self.client
            .run("ping", |mut connection| {
                let ping = &ping;
                async move { ping.query_async::<()>(&mut connection).await }
            })
            .await
    }

    pub(crate) async fn try_acquire(
        &self,
        name: &str,
        token: Token,
        ttl_ms: u64,
    ) -> Result<Option<u64>> {
        let mut invocation = ACQUIRE.prepare_invoke();
        invocation
            .key(self.lock_keys(name).as_slice())
            .arg(token.hex())
            .arg(ttl_ms);
        let fence: u64 = self
            .client
            .run("lock acquire", |mut connection| {
                let invocation = &invocation;
                async move { invocation.invoke_async(&mut connection).await }
            })
            .await?;
        Ok((fence > 0).then_some(fence))
    }

    pub(crate) async fn release(&self, name: &str, token: Token, fence: u64) -> Result<bool> {
        let mut invocation = RELEASE.prepare_invoke();
        invocation
            .key(self.lock_keys(name).as_slice())
            .arg(token.hex())
            .arg(fence);
        self.client
            .run("lock release", |mut connection| {
                let invocation = &invocation;
                async move { invocation.invoke_async(&mut connection).await }
            })
            .await
    }

    pub(crate) async fn extend(
        &self,
        name: &str,
        token: Token,
        fence: u64,
        ttl_ms: u64,
    ) -> Result<bool> {
        let mut invocation = EXTEND.prepare_invoke();
        invocation
            .key(self.lock_keys(name).as_slice())
            .arg(token.hex())
            .arg(fence)
            .arg(ttl_ms);
        self.client
            .run("lock extend", |mut connection| {
                let invocation = &invocation;
                async move { invocation.invoke_async(&mut connection).await }
            })
            .await
    }

    pub(crate) async fn begin(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        owner: Token,
    ) -> Result<IdempotencyOutcome> {
        let mut invocation = BEGIN.prepare_invoke();
        invocation
            .key(self.record_key(scope, key))
            .arg(fingerprint)
            .arg(owner.hex())
            .arg(self.in_flight_ttl_ms);
        let (outcome, stored): (i64, Vec<u8>) = self
            .client
            .run("idempotency begin", |mut connection| {
                let invocation = &invocation;
                async move { invocation.invoke_async(&mut connection).await }
            })
            .await?;
        let corrupt = |reason: String| CoordinationError::CorruptRecord {
            scope: scope.to_owned(),
            key: key.to_owned(),
            reason,
        };
        match outcome {
            0 => Ok(IdempotencyOutcome::Started(IdempotencyTicket {
                scope: scope.to_owned(),
                key: key.to_owned(),
                owner,
            })),
            1 => Ok(IdempotencyOutcome::InFlight),
            2 => Ok(IdempotencyOutcome::Mismatch),
            3 => Ok(IdempotencyOutcome::Replay(StoredOutcome(stored))),
            4 => Err(corrupt("a completed record without an outcome".to_owned())),
            other => Err(corrupt(format!("unknown begin outcome {other}"))),
        }
    }

    pub(crate) async fn complete(
        &self,
        ticket: &IdempotencyTicket,
        outcome: &StoredOutcome,
    ) -> Result<bool> {
        let mut invocation = COMPLETE.prepare_invoke();
        invocation
            .key(self.record_key(&ticket.scope, &ticket.key))
            .arg(ticket.owner.hex())
            .arg(outcome.0.as_slice())
            .arg(self.idempotency_ttl_ms);
        self.client
            .run("idempotency complete", |mut connection| {
                let invocation = &invocation;
                async move { invocation.invoke_async(&mut connection).await }
            })
            .await
    }

    pub(crate) async fn abandon(&self, ticket: &IdempotencyTicket) -> Result<bool> {
        let mut invocation = ABANDON.prepare_invoke();
        invocation
            .key(self.record_key(&ticket.scope, &ticket.key))
            .arg(ticket.owner.hex());
        self.client
            .run("idempotency abandon", |mut connection| {
                let invocation = &invocation;
                async move { invocation.invoke_async(&mut connection).await }
            })
            .await
    }
}
