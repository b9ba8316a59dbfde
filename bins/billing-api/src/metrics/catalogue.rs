//! The catalogue cache's metrics, brought up to the cache's cumulative
//! counters at each scrape.

use billing_service::CatalogueStats;
use prometheus::{Counter, Gauge, IntCounter, IntCounterVec, Opts, Registry};

/// The catalogue cache's counters and gauges.
#[derive(Debug)]
pub(super) struct CatalogueMetrics {
    reads: IntCounterVec,
    hit_ratio: Gauge,
    invalidations: IntCounter,
    delay_sum: Counter,
    delay_count: IntCounter,
    delay_max: Gauge,
    channel_failures: IntCounter,
}

impl CatalogueMetrics {
    /// Registers the catalogue cache metrics in `registry`.
    pub(super) fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let reads = IntCounterVec::new(
            Opts::new(
                "billing_catalogue_reads_total",
                "Plan, currency and tax reads: answered from memory (hit), loading the catalogue into memory (load), or sent to the database (bypass).",
            ),
            &["outcome"],
        )?;
        let hit_ratio = Gauge::new(
            "billing_catalogue_hit_ratio",
            "Catalogue reads answered from memory over all catalogue reads.",
        )?;
        let invalidations = IntCounter::new(
            "billing_catalogue_invalidations_total",
            "Catalogue changes this instance learnt of through their generation.",
        )?;
        let delay_sum = Counter::new(
            "billing_catalogue_invalidation_delay_seconds_sum",
            "Total time from a catalogue change's announcement to its discovery by this instance.",
        )?;
        let delay_count = IntCounter::new(
            "billing_catalogue_invalidation_delay_seconds_count",
            "Catalogue changes whose discovery delay is in the sum.",
        )?;
        let delay_max = Gauge::new(
            "billing_catalogue_invalidation_delay_seconds_max",
            "The longest time from a catalogue change's announcement to its discovery by this instance.",
        )?;
        let channel_failures = IntCounter::new(
            "billing_catalogue_channel_failures_total",
            "Failed reads or announcements of a catalogue generation (reads went to the database meanwhile).",
        )?;
        registry.register(Box::new(reads.clone()))?;
        registry.register(Box::new(hit_ratio.clone()))?;
        registry.register(Box::new(invalidations.clone()))?;
        registry.register(Box::new(delay_sum.clone()))?;
        registry.register(Box::new(delay_count.clone()))?;
        registry.register(Box::new(delay_max.clone()))?;
        registry.register(Box::new(channel_failures.clone()))?;
        Ok(Self {
            reads,
            hit_ratio,
            invalidations,
            delay_sum,
            delay_count,
            delay_max,
            channel_failures,
        })
    }

    /// Brings the metrics up to `stats` (cumulative since start).
    pub(super) fn record(&self, stats: &CatalogueStats) {
        fn raise(counter: &IntCounter, to: u64) {
            counter.inc_by(to.saturating_sub(counter.get()));
        }
        raise(&self.reads.with_label_values(&["hit"]), stats.hits);
        raise(&self.reads.with_label_values(&["load"]), stats.loads);
        raise(&self.reads.with_label_values(&["bypass"]), stats.bypasses);
        raise(&self.invalidations, stats.invalidations);
        raise(&self.delay_count, stats.invalidation_delay_count);
        raise(&self.channel_failures, stats.channel_failures);
        self.delay_sum.inc_by(seconds_added(
            stats.invalidation_delay_micros_sum,
            self.delay_sum.get(),
        ));
        self.delay_max
            .set(micros_as_seconds(stats.invalidation_delay_micros_max));
        let reads = stats
            .hits
            .saturating_add(stats.loads)
            .saturating_add(stats.bypasses);
        if reads > 0 {
            self.hit_ratio.set(ratio(stats.hits, reads));
        }
    }
}

/// How much a counter at `current` seconds must rise to reach `total_micros`.
#[allow(clippy::float_arithmetic, reason = "a difference of seconds")]
fn seconds_added(total_micros: u64, current: f64) -> f64 {
    (micros_as_seconds(total_micros) - current).max(0.0)
}

/// `part / whole`.
#[allow(
    clippy::float_arithmetic,
    clippy::cast_precision_loss,
    reason = "a ratio of counts far below 2^52"
)]
fn ratio(part: u64, whole: u64) -> f64 {
    part as f64 / whole as f64
}

/// Microseconds as seconds.
#[allow(
    clippy::float_arithmetic,
    clippy::cast_precision_loss,
    reason = "durations far below 2^52 microseconds"
)]
fn micros_as_seconds(micros: u64) -> f64 {
    micros as f64 / 1_000_000.0
}
