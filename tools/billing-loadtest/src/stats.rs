//! Pure arithmetic of the reports: percentiles, rates and fixed-point
//! formatting (integers only: the workspace forbids float arithmetic), and
//! markdown tables.

use std::time::Duration;

/// The `permille`-th percentile (nearest rank) of `sorted` (ascending):
/// `percentile(v, 500)` is the median, `percentile(v, 990)` the p99.
/// `None` for an empty slice.
#[must_use]
pub fn percentile(sorted: &[u64], permille: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    // Nearest rank: ceil(p * n), 1-based.
    let rank = (permille * n).div_ceil(1000).clamp(1, n);
    usize::try_from(rank - 1)
        .ok()
        .and_then(|i| sorted.get(i).copied())
}

/// Events per second: `count` over `window`, rounded down; 0 for an empty
/// window.
#[must_use]
pub fn per_second(count: u64, window: Duration) -> u64 {
    let micros = window.as_micros();
    if micros == 0 {
        return 0;
    }
    u64::try_from(u128::from(count) * 1_000_000 / micros).unwrap_or(u64::MAX)
}

/// `numerator / denominator` with two decimals (`"1.25"`), or `"-"` when
/// the denominator is 0.
#[must_use]
pub fn ratio(numerator: u64, denominator: u64) -> String {
    if denominator == 0 {
        return "-".to_owned();
    }
    let hundredths =
        (u128::from(numerator) * 100 + u128::from(denominator) / 2) / u128::from(denominator);
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// `numerator / denominator` as a percentage with one decimal (`"41.3 %"`).
#[must_use]
pub fn percent(numerator: u64, denominator: u64) -> String {
    if denominator == 0 {
        return "-".to_owned();
    }
    let tenths =
        (u128::from(numerator) * 1000 + u128::from(denominator) / 2) / u128::from(denominator);
    format!("{}.{} %", tenths / 10, tenths % 10)
}

/// Microseconds as milliseconds with two decimals (`1234` → `"1.23"`).
#[must_use]
pub fn millis(micros: u64) -> String {
    let hundredths = (micros + 5) / 10;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// KiB as MiB with one decimal (`51234` → `"50.0"`).
#[must_use]
pub fn mib(kib: u64) -> String {
    let tenths = (kib * 10 + 512) / 1024;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// A duration as seconds with three decimals (`"0.412"`).
#[must_use]
pub fn seconds(duration: Duration) -> String {
    format!("{}.{:03}", duration.as_secs(), duration.subsec_millis())
}

/// A markdown table: a header row, the separator, one line per row.
#[must_use]
pub fn markdown_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    out.push_str("| ");
    out.push_str(&headers.join(" | "));
    out.push_str(" |\n|");
    for _ in headers {
        out.push_str("---|");
    }
    out.push('\n');
    for row in rows {
        out.push_str("| ");
        out.push_str(&row.join(" | "));
        out.push_str(" |\n");
    }
    out
}

/// The median of `values` (the lower middle one for an even count).
#[must_use]
pub fn median(values: &[Duration]) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    let middle = sorted.len().checked_sub(1)? / 2;
    sorted.get(middle).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 500), Some(50));
        assert_eq!(percentile(&values, 990), Some(99));
        assert_eq!(percentile(&values, 1000), Some(100));
        assert_eq!(percentile(&values, 0), Some(1));
        assert_eq!(percentile(&[7], 990), Some(7));
        assert_eq!(percentile(&[], 500), None);
    }

    #[test]
    fn rates_and_fixed_point_formats() {
        assert_eq!(per_second(1500, Duration::from_millis(500)), 3000);
        assert_eq!(per_second(10, Duration::ZERO), 0);
        assert_eq!(ratio(5, 4), "1.25");
        assert_eq!(ratio(2, 3), "0.67");
        assert_eq!(ratio(1, 0), "-");
        assert_eq!(percent(413, 1000), "41.3 %");
        assert_eq!(millis(1234), "1.23");
        assert_eq!(millis(999_996), "1000.00");
        assert_eq!(mib(51_234), "50.0");
        assert_eq!(seconds(Duration::from_millis(412)), "0.412");
    }

    #[test]
    fn medians() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), Some(ms(2)));
        assert_eq!(median(&[ms(4), ms(1), ms(2), ms(3)]), Some(ms(2)));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn tables_are_markdown() {
        let table = markdown_table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(table, "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }
}
