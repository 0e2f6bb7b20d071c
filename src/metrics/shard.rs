//! One shard's figures: plain counters its own thread adds to, command usage, latency
//! histograms, and the per-second rates and loop latency sampled on its tick.

use std::time::{Duration, Instant};

use super::Histogram;

/// Event counters of one shard (the runtime's byte and record counters are in `IoFigures`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Lines received from clients and handled.
    pub lines_in: u64,
    /// Lines that could not be handled as sent: no command in them, or too long (417).
    pub parse_errors: u64,
    /// Lines naming a command the server does not know (421).
    pub unknown_commands: u64,
    /// Connections refused at admission (D-line, K-line, throttle, per-IP/CIDR, class full).
    pub refused: u64,
    /// Clients disconnected for flooding (`Excess Flood`) or not reading (`SendQ exceeded`).
    pub excess_flood: u64,
    pub sendq_exceeded: u64,
    /// Channel joins and parts (kicks included) of this shard's users.
    pub joins: u64,
    pub parts: u64,
    /// Host-name cache (reverse DNS results).
    pub dns_hits: u64,
    pub dns_misses: u64,
    /// User cache (WHOWAS history), per nick asked for.
    pub whowas_hits: u64,
    pub whowas_misses: u64,
    /// Message cache: a shared line rendered once per capability set; a hit reuses a rendering.
    pub render_hits: u64,
    pub render_misses: u64,
    /// Netsplits this shard's links saw (a link lost, or a server behind one).
    pub netsplits: u64,
    /// Sequenced channel changes that waited for their turn longer than the stall limit.
    pub seq_stalls: u64,
}

/// Use of one command (STATS m): times, bytes received with it, times from servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub count: u64,
    pub bytes: u64,
    pub remote: u64,
}

/// Channel sizes that split the broadcast latency histogram: up to 10, 100, 1000 members, more.
pub const SIZE_BUCKETS: [(&str, usize); 4] = [("10", 10), ("100", 100), ("1000", 1000), ("+Inf", usize::MAX)];

/// How often the rates are computed.
const RATE_WINDOW: Duration = Duration::from_secs(1);

pub struct ShardMetrics {
    pub c: Counters,
    /// Indexed like `commands::COMMANDS`.
    pub usage: Vec<Usage>,
    /// From a message's arrival at the server to its delivery into a recipient's queue (on
    /// whichever shard), one observation per recipient shard and message.
    pub message_latency: Histogram,
    /// From a channel message's arrival to its queueing for all of this shard's members, by
    /// channel size (`SIZE_BUCKETS`).
    pub broadcast_latency: [Histogram; 4],
    /// From a link's opening to the end of its peer's burst.
    pub burst_time: Histogram,
    /// From a message's arrival at the server to its write on a server link (one per link).
    pub link_latency: Histogram,
    sample: Option<(Instant, u64, u64)>,
    /// Lines in and records out per second over the last full window.
    pub rate_in: u64,
    pub rate_out: u64,
    turn_now: Duration,
    /// The longest the loop kept a timer waiting over the last window (loop turn latency).
    pub turn_max: Duration,
}

impl ShardMetrics {
    /// A peer's burst ended, `took` after its link opened.
    pub fn burst(&mut self, took: Duration) {
        self.burst_time.observe(took);
    }

    pub fn new(commands: usize) -> Self {
        ShardMetrics {
            c: Counters::default(),
            usage: vec![Usage::default(); commands],
            message_latency: Histogram::default(),
            broadcast_latency: Default::default(),
            burst_time: Histogram::default(),
            link_latency: Histogram::default(),
            sample: None,
            rate_in: 0,
            rate_out: 0,
            turn_now: Duration::ZERO,
            turn_max: Duration::ZERO,
        }
    }

    pub fn command(&mut self, index: usize, bytes: usize) {
        if let Some(u) = self.usage.get_mut(index) {
            u.count += 1;
            u.bytes += bytes as u64;
        }
    }

    pub fn broadcast(&mut self, members: usize, took: Duration) {
        let i = SIZE_BUCKETS.iter().position(|&(_, max)| members <= max).unwrap_or(SIZE_BUCKETS.len() - 1);
        self.broadcast_latency[i].observe(took);
    }

    /// Called every tick with the runtime's record counter and the tick's lateness.
    pub fn tick(&mut self, now: Instant, records_out: u64, lateness: Duration) {
        self.turn_now = self.turn_now.max(lateness);
        let Some((at, lines, records)) = self.sample else {
            self.sample = Some((now, self.c.lines_in, records_out));
            return;
        };
        let elapsed = now.duration_since(at);
        if elapsed < RATE_WINDOW {
            return;
        }
        let per_sec = |d: u64| (d as f64 / elapsed.as_secs_f64()).round() as u64;
        self.rate_in = per_sec(self.c.lines_in - lines);
        self.rate_out = per_sec(records_out.saturating_sub(records));
        self.turn_max = std::mem::take(&mut self.turn_now);
        self.sample = Some((now, self.c.lines_in, records_out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_over_the_window() {
        let mut m = ShardMetrics::new(3);
        let t0 = Instant::now();
        m.tick(t0, 0, Duration::ZERO);
        m.c.lines_in = 500;
        m.tick(t0 + Duration::from_millis(500), 300, Duration::from_millis(7));
        assert_eq!(m.rate_in, 0, "no full window yet");
        m.tick(t0 + Duration::from_secs(2), 1000, Duration::from_millis(2));
        assert_eq!(m.rate_in, 250);
        assert_eq!(m.rate_out, 500);
        assert_eq!(m.turn_max, Duration::from_millis(7));
    }

    #[test]
    fn broadcasts_bucket_by_channel_size() {
        let mut m = ShardMetrics::new(0);
        m.broadcast(2, Duration::from_micros(3));
        m.broadcast(100, Duration::from_micros(3));
        m.broadcast(101, Duration::from_micros(3));
        m.broadcast(5000, Duration::from_micros(3));
        let counts: Vec<u64> = m.broadcast_latency.iter().map(|h| h.count).collect();
        assert_eq!(counts, vec![1, 1, 1, 1]);
    }

    #[test]
    fn command_usage_counts_bytes() {
        let mut m = ShardMetrics::new(2);
        m.command(1, 10);
        m.command(1, 5);
        m.command(7, 5); // out of range: ignored
        assert_eq!(m.usage[1], Usage { count: 2, bytes: 15, remote: 0 });
    }
}
