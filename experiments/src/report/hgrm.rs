//! `latency.hgrm`: a latency histogram in HdrHistogram's classic percentile
//! distribution text (Java's `outputPercentileDistribution(out, 5, scale)`), which the
//! standard HdrHistogram plotter loads.
//!
//! The histogram is recorded in microseconds and written in milliseconds (scale 1000),
//! with as many decimals as the histogram has significant digits. Rows walk the
//! percentiles in 5 ticks per half-distance to 100%; the last row is percentile 1.0 at
//! the maximum and has no `1/(1-Percentile)` column. A footer gives mean, standard
//! deviation, max, total count and the bucket layout.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;

/// Microseconds per millisecond: the unit ratio between the histogram and the file.
pub(crate) const MICROS_PER_MILLI: f64 = 1000.0;
/// Percentile ticks per half-distance to 100%, as in the Java default.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Writes `latency_micros` to `path` in milliseconds.
pub(crate) fn write_hgrm(path: &Path, latency_micros: &Histogram<u64>) -> Result<()> {
    std::fs::write(
        path,
        percentile_distribution(latency_micros, MICROS_PER_MILLI),
    )
    .with_context(|| format!("writing {}", path.display()))
}

/// The percentile distribution of `histogram` with every value divided by
/// `unit_ratio`.
pub(crate) fn percentile_distribution(histogram: &Histogram<u64>, unit_ratio: f64) -> String {
    let places = usize::from(histogram.sigfig());
    let scaled = |value: u64| value as f64 / unit_ratio;
    let mut out = String::new();
    // `write!` into a String cannot fail.
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if !histogram.is_empty() {
        // The crate reports counts per step; the running sum is Java's TotalCount.
        let mut total = 0u64;
        for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            let quantile = step.quantile_iterated_to();
            let value = scaled(step.value_iterated_to());
            total += step.count_since_last_iteration();
            let _ = if quantile < 1.0 {
                let inverse = 1.0 / (1.0 - quantile);
                writeln!(
                    out,
                    "{value:12.places$} {quantile:2.12} {total:10} {inverse:14.2}"
                )
            } else {
                writeln!(out, "{value:12.places$} {quantile:2.12} {total:10}")
            };
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.places$}, StdDeviation   = {:12.places$}]",
        histogram.mean() / unit_ratio,
        histogram.stdev() / unit_ratio
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.places$}, Total count    = {:12}]",
        scaled(histogram.max()),
        histogram.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        histogram.buckets(),
        sub_bucket_count(histogram.sigfig())
    );
    out
}

/// HdrHistogram's sub-bucket count for `sigfig` significant digits: the power of two
/// that gives unit resolution up to 2·10^sigfig (not exposed by the crate).
fn sub_bucket_count(sigfig: u8) -> u64 {
    (2 * 10u64.pow(u32::from(sigfig))).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (value, percentile, total count) of each data row.
    fn data_rows(text: &str) -> Vec<(f64, f64, u64)> {
        text.lines()
            .skip(2)
            .take_while(|line| !line.starts_with('#'))
            .map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                (
                    cols[0].parse().unwrap(),
                    cols[1].parse().unwrap(),
                    cols[2].parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn matches_the_java_layout() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for micros in 1..=10_000u64 {
            histogram.record(micros).unwrap();
        }
        let text = percentile_distribution(&histogram, 1000.0);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        assert_eq!(
            lines[2],
            "       0.001 0.000000000000          1           1.00"
        );
        assert!(
            lines.contains(&"       5.003 0.500000000000       5003           2.00"),
            "{text}"
        );
        let rows = data_rows(&text);
        let (last_value, last_percentile, last_total) = *rows.last().unwrap();
        assert_eq!(last_percentile, 1.0);
        assert_eq!(last_total, 10_000);
        assert_eq!(last_value, histogram.max() as f64 / 1000.0);
        assert_eq!(
            lines[lines.len() - 3],
            "#[Mean    =        5.001, StdDeviation   =        2.887]"
        );
        assert_eq!(
            lines[lines.len() - 2],
            "#[Max     =       10.007, Total count    =        10000]"
        );
        assert_eq!(
            lines[lines.len() - 1],
            format!(
                "#[Buckets = {:12}, SubBuckets     =         2048]",
                histogram.buckets()
            )
        );
    }

    #[test]
    fn empty_histogram_has_header_and_footer_only() {
        let text = percentile_distribution(&Histogram::<u64>::new(3).unwrap(), 1000.0);
        assert!(data_rows(&text).is_empty());
        assert!(
            text.contains("#[Max     =        0.000, Total count    =            0]"),
            "{text}"
        );
    }
}
