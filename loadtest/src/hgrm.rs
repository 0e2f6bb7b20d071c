//! HdrHistogram's percentile-distribution text (`.hgrm`), as Java's
//! `Histogram.outputPercentileDistribution(out, 5, 1000.0)` writes it: the harness records
//! microseconds, the file holds **milliseconds** (the unit HdrHistogram's plotters and other
//! tools' `.hgrm` files assume), three decimals (the histogram's three significant digits).
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!        0.079 0.000000000000          1           1.00
//!        ...
//!        2.111 1.000000000000      49000
//! #[Mean    =        0.251, StdDeviation   =        0.102]
//! #[Max     =        2.111, Total count    =        49000]
//! #[Buckets =           26, SubBuckets     =         2048]
//! ```
//! [`parse`] reads such files back, this harness's or another tool's (lines that are not a
//! distribution row are skipped).

use std::fmt::Write;

use hdrhistogram::Histogram;

/// The unit of the values in the file.
pub const UNIT: &str = "ms";
/// Recorded values (µs) per unit of the file.
const SCALE: f64 = 1000.0;
/// Percentile ticks per half distance to 100% (HdrHistogram's usual 5).
const TICKS: u32 = 5;

/// The percentile distribution of `h` (values recorded in µs) as `.hgrm` text in ms.
pub fn write(h: &Histogram<u64>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:>12} {:>14} {:>10} {:>14}\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    let mut total = 0u64;
    for v in h.iter_quantiles(TICKS) {
        total += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / SCALE;
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            let _ = writeln!(s, "{value:12.3} {q:2.12} {total:10} {:14.2}", 1.0 / (1.0 - q));
        } else {
            let _ = writeln!(s, "{value:12.3} {q:2.12} {total:10}");
        }
    }
    let sub_buckets = 1u64 << (2.0 * 10f64.powi(i32::from(h.sigfig()))).log2().ceil() as u32;
    let _ = writeln!(s, "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]", h.mean() / SCALE, h.stdev() / SCALE);
    let _ = writeln!(s, "#[Max     = {:12.3}, Total count    = {:12}]", h.max() as f64 / SCALE, h.len());
    let _ = writeln!(s, "#[Buckets = {:12}, SubBuckets     = {:12}]", h.buckets(), sub_buckets);
    s
}

/// One row: a value (ms), the percentile level as a fraction (0–1) and the count of samples
/// at or below the value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    pub value: f64,
    pub quantile: f64,
    pub total: u64,
}

/// A distribution read back.
#[derive(Clone, Debug, Default)]
pub struct Distribution {
    pub rows: Vec<Row>,
    pub mean: Option<f64>,
    pub max: Option<f64>,
    pub count: Option<u64>,
}

impl Distribution {
    /// The value at percentile level `q` (0–1): the first row at or past it.
    pub fn value_at(&self, q: f64) -> Option<f64> {
        self.rows.iter().find(|r| r.quantile >= q).or(self.rows.last()).map(|r| r.value)
    }

    /// Samples in all: the footer's count, else the last row's.
    pub fn samples(&self) -> u64 {
        self.count.or(self.rows.last().map(|r| r.total)).unwrap_or(0)
    }
}

/// Reads `.hgrm` text: the rows (value, percentile, total count, …) and the footer's mean, max
/// and count. Lines that are not a row (the header, blank lines, other text) are skipped; text
/// without a single row is an error.
pub fn parse(text: &str) -> Result<Distribution, String> {
    let mut d = Distribution::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(footer) = line.strip_prefix("#[") {
            for part in footer.trim_end_matches(']').split(',') {
                let Some((k, v)) = part.split_once('=') else { continue };
                let v = v.trim();
                match k.trim() {
                    "Mean" => d.mean = v.parse().ok(),
                    "Max" => d.max = v.parse().ok(),
                    "Total count" => d.count = v.parse().ok(),
                    _ => {}
                }
            }
            continue;
        }
        let mut cols = line.split_whitespace();
        let (Some(v), Some(q), Some(t)) = (cols.next(), cols.next(), cols.next()) else { continue };
        let (Ok(value), Ok(quantile), Ok(total)) = (v.parse::<f64>(), q.parse::<f64>(), t.parse::<u64>()) else {
            continue;
        };
        if !(0.0..=1.0).contains(&quantile) || !value.is_finite() {
            continue;
        }
        d.rows.push(Row { value, quantile, total });
    }
    if d.rows.is_empty() {
        return Err("no percentile rows (Value Percentile TotalCount ...)".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::histogram;

    fn sample() -> Histogram<u64> {
        let mut h = histogram();
        // 10,000 samples: 1..=10,000 µs, and a tail of 100 at 250 ms.
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        h.record_n(250_000, 100).unwrap();
        h
    }

    #[test]
    fn it_parses_back() {
        let h = sample();
        let text = write(&h);
        let d = parse(&text).unwrap();
        assert!(d.rows.len() > 30, "{text}");
        // percentiles and values never go down, counts only grow, and end at the total
        for w in d.rows.windows(2) {
            assert!(w[1].quantile >= w[0].quantile, "{w:?}");
            assert!(w[1].value >= w[0].value, "{w:?}");
            assert!(w[1].total >= w[0].total, "{w:?}");
        }
        let last = d.rows.last().unwrap();
        assert_eq!(last.quantile, 1.0);
        assert_eq!(last.total, h.len());
        assert_eq!(d.rows[0].quantile, 0.0);
        assert_eq!(d.count, Some(10_100));
        // values in ms: the max is 250 ms (within the histogram's precision)
        let max = d.max.unwrap();
        assert!((max - 250.0).abs() < 0.25, "{max}");
        assert!((d.mean.unwrap() - h.mean() / 1000.0).abs() < 0.001);
        // the median is 5 ms (5000 of 10,100 samples at or below ~5 ms)
        let p50 = d.value_at(0.5).unwrap();
        assert!((p50 - 5.05).abs() < 0.05, "{p50}");
        assert!((d.value_at(0.999).unwrap() - 250.0).abs() < 0.25);
        // each row's count is what the histogram holds at or below its value
        for r in &d.rows {
            let at_or_below = h.count_between(0, (r.value * 1000.0).round() as u64);
            assert_eq!(r.total, at_or_below, "{r:?}");
        }
    }

    #[test]
    fn the_format_is_hdrhistograms() {
        let mut h = histogram();
        h.record_n(1000, 3).unwrap();
        h.record(2000).unwrap();
        let text = write(&h);
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), "       Value     Percentile TotalCount 1/(1-Percentile)");
        assert_eq!(lines.next().unwrap(), "");
        assert_eq!(lines.next().unwrap(), "       1.000 0.000000000000          3           1.00");
        assert!(text.contains("       2.000 1.000000000000          4\n"), "{text}");
        assert!(text.contains("#[Mean    =        1.250, StdDeviation   =        0.433]\n"), "{text}");
        assert!(text.contains("#[Max     =        2.000, Total count    =            4]\n"), "{text}");
        assert!(text.ends_with("SubBuckets     =         2048]\n"), "{text}");
        // Each row: the first value at or past its percentile, the count up to it, 1/(1-p)
        assert!(text.contains("       1.000 0.700000000000          3           3.33\n"), "{text}");
        assert!(text.contains("       2.000 0.750000000000          4           4.00\n"), "{text}");
    }

    #[test]
    fn other_text_is_skipped_but_rows_are_needed() {
        let d = parse("Detailed Percentile spectrum:\n  1.5 0.5 10 2.00\n  3.0 1.0 20\n----\n").unwrap();
        assert_eq!(d.rows.len(), 2);
        assert_eq!(d.samples(), 20);
        assert!(parse("nothing here\n").is_err());
        assert!(parse("").is_err());
    }
}
