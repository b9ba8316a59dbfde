//! The catalogue cache: plans, currencies, taxes and their rate histories,
//! each held whole in memory by every instance, and kept in step across
//! instances by one generation counter per catalogue in the coordination
//! backend (Redis, or in process when embedded).
//!
//! - **Writes.** After a change of a catalogue commits, the writing
//!   instance drops its own copy (so its next read sees the change) and
//!   bumps the catalogue's generation. The bump is awaited before the write
//!   returns, so a write acknowledged to its caller has bumped.
//! - **Reads.** A copy is served only while it was *verified* less than
//!   [`BillingSettings::catalogue_refresh`](crate::BillingSettings) ago:
//!   verified means the generation was read from the backend and found
//!   equal to the one the copy was loaded at, and the instant recorded is
//!   the one *before* that read was sent. A read that finds its copy older
//!   re-reads the generation (one read at a time per catalogue; the others
//!   wait for it, up to `catalogue_refresh`, then go to the database) and
//!   reloads the catalogue when it moved.
//!   So a read that starts more than `catalogue_refresh` after a write was
//!   acknowledged anywhere sees that write.
//! - **Channel lost.** When the generation cannot be read (Redis down, or
//!   hanging past a second), or a bump of this instance has not
//!   reached the backend yet, reads go to the database until a read of the
//!   generation succeeds again: a copy is never served past the bound.
//!
//! Money paths do not read from here: an invoice is priced from rows read
//! from the database in one statement when it is created.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use billing_concurrency::Coordination;
use billing_domain::entities::{currency, tarif_plan, tax, tax_rate};
use billing_repository::{Currencies, Database, Page, Plans, TaxRates, Taxes};

use crate::{Billing, BillingError, PageRequest};

/// The most rows a catalogue (and, for taxes, their rates) may hold and
/// still be cached; a larger one is read from the database every time.
pub const MAX_CACHED_ROWS: u64 = 10_000;

/// One cached catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Catalogue {
    /// Tariff plans.
    Plans,
    /// Currencies.
    Currencies,
    /// Taxes and their rate histories.
    Taxes,
}

impl Catalogue {
    /// Every catalogue.
    pub const ALL: [Self; 3] = [Self::Plans, Self::Currencies, Self::Taxes];

    /// `plans`, `currencies`, `taxes`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Plans => "plans",
            Self::Currencies => "currencies",
            Self::Taxes => "taxes",
        }
    }

    /// The name of its generation counter in the coordination backend.
    fn generation_name(self) -> &'static str {
        match self {
            Self::Plans => "catalogue:plans",
            Self::Currencies => "catalogue:currencies",
            Self::Taxes => "catalogue:taxes",
        }
    }
}

/// What the catalogue cache of one instance has done since it started
/// (all catalogues together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CatalogueStats {
    /// Reads answered from memory.
    pub hits: u64,
    /// Reads that loaded a catalogue from the database into memory.
    pub loads: u64,
    /// Reads sent to the database because no copy could be trusted: the
    /// generation could not be read, a check by another read was under
    /// way, the cache is disabled or the catalogue too large.
    pub bypasses: u64,
    /// Changes made elsewhere (or before a reload) found by a check.
    pub invalidations: u64,
    /// Sum of the delays between a change's bump and its discovery here,
    /// in microseconds (of the `invalidations` with a measurable delay).
    pub invalidation_delay_micros_sum: u64,
    /// How many delays the sum holds.
    pub invalidation_delay_count: u64,
    /// The longest of them, in microseconds.
    pub invalidation_delay_micros_max: u64,
    /// Failed reads or bumps of a generation.
    pub channel_failures: u64,
}

/// The plans, in listing order (`sort_order`, then id).
#[derive(Debug)]
pub(crate) struct PlanCatalogue {
    pub(crate) plans: Vec<tarif_plan::Model>,
}

/// The currencies, by code.
#[derive(Debug)]
pub(crate) struct CurrencyCatalogue {
    pub(crate) currencies: Vec<currency::Model>,
}

/// The taxes, by code, and each tax's rate history, newest first.
#[derive(Debug)]
pub(crate) struct TaxCatalogue {
    pub(crate) taxes: Vec<tax::Model>,
    pub(crate) rates: HashMap<i64, Vec<tax_rate::Model>>,
}

/// The cache of one instance (one per [`Billing`](crate::Billing)).
#[derive(Debug)]
pub(crate) struct CatalogueCache {
    enabled: bool,
    refresh: Duration,
    plans: Slot<PlanCatalogue>,
    currencies: Slot<CurrencyCatalogue>,
    taxes: Slot<TaxCatalogue>,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    loads: AtomicU64,
    bypasses: AtomicU64,
    invalidations: AtomicU64,
    delay_sum: AtomicU64,
    delay_count: AtomicU64,
    delay_max: AtomicU64,
    channel_failures: AtomicU64,
}

#[derive(Debug)]
struct Slot<T> {
    catalogue: Catalogue,
    state: Mutex<State<T>>,
    /// Set while one read checks the generation (and reloads).
    checking: AtomicBool,
    /// Raised when a check ends: reads that found one under way wait for
    /// it rather than all going to the database at once.
    checked: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug)]
struct State<T> {
    copy: Option<Copy<T>>,
    /// Raised by every change committed by this instance; a load begun
    /// before a change is not kept.
    epoch: u64,
    /// The `epoch` the last successful bump covered: below `epoch`, a bump
    /// is still owed to the other instances.
    bumped_epoch: u64,
    /// After a failed check, the next one waits until then (reads go to
    /// the database meanwhile).
    retry_at: Option<Instant>,
    /// Whether the last check failed: then reads do not wait for the next.
    failing: bool,
}

#[derive(Debug)]
struct Copy<T> {
    data: Arc<T>,
    generation: u64,
    verified_at: Instant,
}

/// Resets [`Slot::checking`] and wakes the reads waiting for the check,
/// however it ends (cancelled included).
struct Checking<'a> {
    flag: &'a AtomicBool,
    checked: &'a tokio::sync::watch::Sender<u64>,
}

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        self.flag.store(false, Ordering::Release);
        self.checked
            .send_modify(|round| *round = round.wrapping_add(1));
    }
}

/// How long one read of a generation may take, while the channel works,
/// before it counts as lost (only the read that checks waits that long;
/// the others wait at most `catalogue_refresh`, and once the channel
/// failed, checks are given `catalogue_refresh`).
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

impl<T> Slot<T> {
    fn new(catalogue: Catalogue) -> Self {
        Self {
            catalogue,
            state: Mutex::new(State {
                copy: None,
                epoch: 0,
                bumped_epoch: 0,
                retry_at: None,
                failing: false,
            }),
            checking: AtomicBool::new(false),
            checked: tokio::sync::watch::Sender::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The current time in microseconds since the Unix epoch.
fn clock_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

impl CatalogueCache {
    pub(crate) fn new(enabled: bool, refresh: Duration) -> Self {
        Self {
            enabled,
            refresh,
            plans: Slot::new(Catalogue::Plans),
            currencies: Slot::new(Catalogue::Currencies),
            taxes: Slot::new(Catalogue::Taxes),
            counters: Counters::default(),
        }
    }

    pub(crate) fn stats(&self) -> CatalogueStats {
        let c = &self.counters;
        CatalogueStats {
            hits: c.hits.load(Ordering::Relaxed),
            loads: c.loads.load(Ordering::Relaxed),
            bypasses: c.bypasses.load(Ordering::Relaxed),
            invalidations: c.invalidations.load(Ordering::Relaxed),
            invalidation_delay_micros_sum: c.delay_sum.load(Ordering::Relaxed),
            invalidation_delay_count: c.delay_count.load(Ordering::Relaxed),
            invalidation_delay_micros_max: c.delay_max.load(Ordering::Relaxed),
            channel_failures: c.channel_failures.load(Ordering::Relaxed),
        }
    }

    /// The plans, or `None`: read them from the database.
    pub(crate) async fn plans(
        &self,
        db: &Database,
        coordination: &Coordination,
    ) -> Result<Option<Arc<PlanCatalogue>>, BillingError> {
        self.read(&self.plans, coordination, async || {
            let plans = Plans::all_in_listing_order(db, MAX_CACHED_ROWS + 1).await?;
            Ok(fits(plans.len()).then_some(PlanCatalogue { plans }))
        })
        .await
    }

    /// The currencies, or `None`: read them from the database.
    pub(crate) async fn currencies(
        &self,
        db: &Database,
        coordination: &Coordination,
    ) -> Result<Option<Arc<CurrencyCatalogue>>, BillingError> {
        self.read(&self.currencies, coordination, async || {
            let currencies = Currencies::all_by_code(db, MAX_CACHED_ROWS + 1).await?;
            Ok(fits(currencies.len()).then_some(CurrencyCatalogue { currencies }))
        })
        .await
    }

    /// The taxes and their rates, or `None`: read them from the database.
    pub(crate) async fn taxes(
        &self,
        db: &Database,
        coordination: &Coordination,
    ) -> Result<Option<Arc<TaxCatalogue>>, BillingError> {
        self.read(&self.taxes, coordination, async || {
            let taxes = Taxes::all_by_code(db, MAX_CACHED_ROWS + 1).await?;
            if !fits(taxes.len()) {
                return Ok(None);
            }
            let all_rates = TaxRates::all_histories(db, MAX_CACHED_ROWS + 1).await?;
            if !fits(all_rates.len()) {
                return Ok(None);
            }
            let mut rates: HashMap<i64, Vec<tax_rate::Model>> = HashMap::new();
            for rate in all_rates {
                rates.entry(rate.tax_id).or_default().push(rate);
            }
            Ok(Some(TaxCatalogue { taxes, rates }))
        })
        .await
    }

    /// Notes that a change of `catalogue` has committed (or may have): this
    /// instance's copy goes at once, and the generation is bumped for the
    /// others. A bump that fails is owed: this instance's reads of the
    /// catalogue go to the database, and its next read retries the bump.
    pub(crate) async fn changed(&self, catalogue: Catalogue, coordination: &Coordination) {
        match catalogue {
            Catalogue::Plans => self.changed_in(&self.plans, coordination).await,
            Catalogue::Currencies => self.changed_in(&self.currencies, coordination).await,
            Catalogue::Taxes => self.changed_in(&self.taxes, coordination).await,
        }
    }

    async fn changed_in<T>(&self, slot: &Slot<T>, coordination: &Coordination) {
        let epoch = {
            let mut state = slot.state();
            state.copy = None;
            state.epoch += 1;
            state.epoch
        };
        self.bump(slot, coordination, epoch).await;
    }

    /// Bumps the generation; `true` when it reached the backend.
    async fn bump<T>(&self, slot: &Slot<T>, coordination: &Coordination, epoch: u64) -> bool {
        match coordination
            .bump_generation(slot.catalogue.generation_name())
            .await
        {
            Ok(_) => {
                let mut state = slot.state();
                state.bumped_epoch = state.bumped_epoch.max(epoch);
                true
            }
            Err(error) => {
                self.counters
                    .channel_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    catalogue = slot.catalogue.name(),
                    error = &error as &dyn std::error::Error,
                    "could not announce a catalogue change; \
                     reading it from the database until the announcement succeeds"
                );
                false
            }
        }
    }

    fn bypass<X>(&self) -> Option<X> {
        self.counters.bypasses.fetch_add(1, Ordering::Relaxed);
        None
    }

    async fn read<T, L>(
        &self,
        slot: &Slot<T>,
        coordination: &Coordination,
        load: L,
    ) -> Result<Option<Arc<T>>, BillingError>
    where
        L: AsyncFnOnce() -> Result<Option<T>, BillingError>,
    {
        if !self.enabled {
            return Ok(self.bypass());
        }
        let now = Instant::now();
        {
            let state = slot.state();
            if let Some(copy) = &state.copy
                && now.saturating_duration_since(copy.verified_at) < self.refresh
            {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(Arc::clone(&copy.data)));
            }
            if state.retry_at.is_some_and(|at| now < at) {
                return Ok(self.bypass());
            }
        }
        if slot.checking.swap(true, Ordering::AcqRel) {
            return Ok(self.after_check_of_another(slot, now).await);
        }
        let _checking = Checking {
            flag: &slot.checking,
            checked: &slot.checked,
        };

        let Some((generation, sent)) = self.checked_generation(slot, coordination).await else {
            return Ok(self.bypass());
        };

        let epoch = {
            let mut state = slot.state();
            state.retry_at = None;
            state.failing = false;
            match &mut state.copy {
                Some(copy) if copy.generation == generation => {
                    copy.verified_at = sent;
                    self.counters.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(Arc::clone(&copy.data)));
                }
                Some(_) => {
                    state.copy = None;
                    self.invalidation_seen(generation);
                }
                None => {}
            }
            state.epoch
        };

        let Some(data) = load().await? else {
            return Ok(self.bypass());
        };
        let data = Arc::new(data);
        self.counters.loads.fetch_add(1, Ordering::Relaxed);
        let mut state = slot.state();
        // A change committed here during the load may be missing from it.
        if state.epoch == epoch {
            state.copy = Some(Copy {
                data: Arc::clone(&data),
                generation,
                verified_at: sent,
            });
        }
        Ok(Some(data))
    }

    /// Sends a bump this instance still owes, then reads the generation of
    /// `slot`'s catalogue: the generation and when its read was sent, or
    /// `None` when the channel failed (the read then goes to the database).
    async fn checked_generation<T>(
        &self,
        slot: &Slot<T>,
        coordination: &Coordination,
    ) -> Option<(u64, Instant)> {
        // A bump this instance still owes goes first: until it is out, the
        // other instances do not know of the change.
        let (epoch, owed) = {
            let state = slot.state();
            (state.epoch, state.bumped_epoch < state.epoch)
        };
        if owed && !self.bump(slot, coordination, epoch).await {
            let mut state = slot.state();
            state.retry_at = Some(Instant::now() + self.refresh);
            state.failing = true;
            drop(state);
            return None;
        }

        // While the channel is failing, a check that does not answer at
        // once is not waited for long.
        let timeout = if slot.state().failing {
            self.refresh.max(Duration::from_millis(1))
        } else {
            CHECK_TIMEOUT.max(self.refresh)
        };
        let sent = Instant::now();
        let generation = match tokio::time::timeout(
            timeout,
            coordination.generation(slot.catalogue.generation_name()),
        )
        .await
        {
            Ok(Ok(generation)) => generation,
            Ok(Err(error)) => {
                self.channel_lost(slot, &error);
                return None;
            }
            Err(elapsed) => {
                self.channel_lost(slot, &elapsed);
                return None;
            }
        };
        Some((generation, sent))
    }

    fn channel_lost<T>(&self, slot: &Slot<T>, error: &(dyn std::error::Error + 'static)) {
        self.counters
            .channel_failures
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            catalogue = slot.catalogue.name(),
            error,
            "cannot read the catalogue generation; reading from the database until it answers"
        );
        let mut state = slot.state();
        state.copy = None;
        state.retry_at = Some(Instant::now() + self.refresh);
        state.failing = true;
    }

    /// A read that found another read checking the generation: it waits for
    /// that check, up to `catalogue_refresh`, and is served the copy if the
    /// check verified it; otherwise (a failing channel, a slow check, a
    /// reload under way) it reads the database. The copy must have been
    /// verified after `started - catalogue_refresh`, as on the fast path.
    async fn after_check_of_another<T>(&self, slot: &Slot<T>, started: Instant) -> Option<Arc<T>> {
        if slot.state().failing {
            return self.bypass();
        }
        let mut checked = slot.checked.subscribe();
        if slot.checking.load(Ordering::Acquire) {
            let waited = tokio::time::timeout(
                self.refresh.max(Duration::from_millis(1)),
                checked.changed(),
            )
            .await;
            if waited.is_err() {
                return self.bypass();
            }
        }
        let state = slot.state();
        match &state.copy {
            Some(copy) if started.saturating_duration_since(copy.verified_at) < self.refresh => {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                Some(Arc::clone(&copy.data))
            }
            Some(_) | None => {
                drop(state);
                self.bypass()
            }
        }
    }

    /// Counts a change found by a check; a generation is the time of its
    /// bump in microseconds (unless bumps came faster than that), so the
    /// delay until now is how late this instance learnt of it.
    fn invalidation_seen(&self, generation: u64) {
        let c = &self.counters;
        c.invalidations.fetch_add(1, Ordering::Relaxed);
        let delay = clock_micros().saturating_sub(generation);
        // An old or future-dated generation says nothing about the delay.
        if generation > 0 && delay < 60_000_000 {
            c.delay_sum.fetch_add(delay, Ordering::Relaxed);
            c.delay_count.fetch_add(1, Ordering::Relaxed);
            c.delay_max.fetch_max(delay, Ordering::Relaxed);
        }
    }
}

impl Billing {
    /// Announces a change of `catalogue` when `outcome` says it committed,
    /// or may have (the database failed at the commit); passes `outcome`
    /// on. A refusal wrote nothing and is not announced.
    pub(crate) async fn announce<T>(
        &self,
        catalogue: Catalogue,
        outcome: Result<T, BillingError>,
    ) -> Result<T, BillingError> {
        let may_have_committed = match &outcome {
            Ok(_) => true,
            Err(error) => matches!(
                error,
                BillingError::Unavailable { .. } | BillingError::Internal { .. }
            ),
        };
        if may_have_committed {
            self.catalogue_changed(catalogue).await;
        }
        outcome
    }
}

fn fits(rows: usize) -> bool {
    u64::try_from(rows).is_ok_and(|rows| rows <= MAX_CACHED_ROWS)
}

/// Page `page` of `rows` (already in order), as the repository's
/// `paginate` would answer it, without a `COUNT`.
pub(crate) fn page_of<'a, T: Clone + 'a>(
    rows: impl Iterator<Item = &'a T>,
    page: PageRequest,
) -> Page<T> {
    let offset = page.offset();
    let mut total: u64 = 0;
    let mut items = Vec::new();
    for row in rows {
        if total >= offset && total < offset.saturating_add(page.limit()) {
            items.push(row.clone());
        }
        total += 1;
    }
    Page::of(items, page, total)
}
