//! A latency histogram with fixed bucket bounds: cumulative counts render straight into a
//! Prometheus histogram, and observing is one comparison loop over 16 bounds.

use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (`+Inf` follows).
pub const BOUNDS_US: [u64; 16] =
    [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 5_000_000];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    pub counts: [u64; BOUNDS_US.len() + 1],
    pub count: u64,
    pub sum_ns: u128,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let us = d.as_micros() as u64;
        let i = BOUNDS_US.iter().position(|&b| us <= b).unwrap_or(BOUNDS_US.len());
        self.counts[i] += 1;
        self.count += 1;
        self.sum_ns += d.as_nanos();
    }

    /// Adds another histogram's observations (the sum over shards).
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
    }

    /// Cumulative counts per bound (`le`), the last for `+Inf`.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        let mut total = 0;
        self.counts.iter().enumerate().map(move |(i, c)| {
            total += c;
            (BOUNDS_US.get(i).copied(), total)
        })
    }

    /// The bound under which `q` (0..=1) of the observations fall, in microseconds (None:
    /// no observations, or beyond the last bound).
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let want = ((self.count as f64) * q).ceil().max(1.0) as u64;
        self.cumulative().find(|(_, n)| *n >= want).and_then(|(b, _)| b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket() {
        let mut h = Histogram::default();
        h.observe(Duration::from_micros(5));
        h.observe(Duration::from_micros(10));
        h.observe(Duration::from_micros(11));
        h.observe(Duration::from_secs(60));
        assert_eq!(h.counts[0], 2);
        assert_eq!(h.counts[1], 1);
        assert_eq!(h.counts[BOUNDS_US.len()], 1);
        assert_eq!(h.count, 4);
        let cum: Vec<_> = h.cumulative().collect();
        assert_eq!(cum[0], (Some(10), 2));
        assert_eq!(cum[1], (Some(25), 3));
        assert_eq!(*cum.last().unwrap(), (None, 4));
        assert_eq!(h.sum_ns, 5_000 + 10_000 + 11_000 + 60_000_000_000);
    }

    #[test]
    fn quantiles_are_bucket_bounds() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile_us(0.5), None);
        for _ in 0..99 {
            h.observe(Duration::from_micros(40));
        }
        h.observe(Duration::from_millis(3));
        assert_eq!(h.quantile_us(0.5), Some(50));
        assert_eq!(h.quantile_us(0.99), Some(50));
        assert_eq!(h.quantile_us(1.0), Some(5_000));
    }
}
