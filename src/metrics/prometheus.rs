//! The Prometheus text exposition format (version 0.0.4) of the shards' reports. Pure: the
//! endpoint gathers the reports and process figures, this writes them.

use std::fmt::Write;

use super::histogram::Histogram;
use super::shard::SIZE_BUCKETS;
use super::ShardReport;

/// Figures of the whole process, read at scrape time.
#[derive(Clone, Debug, Default)]
pub struct Process {
    pub open_fds: Option<u64>,
    pub resident_bytes: Option<u64>,
    pub started_unix: u64,
    /// Shards asked, and how many answered in time.
    pub shards: usize,
    pub answered: usize,
}

impl Process {
    /// The process's own figures from `/proc` (Linux); None where unreadable.
    pub fn read(started_unix: u64, shards: usize, answered: usize) -> Process {
        let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
        let resident_bytes = std::fs::read_to_string("/proc/self/statm").ok().and_then(|s| {
            let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            Some(pages * page.max(0) as u64)
        });
        Process { open_fds, resident_bytes, started_unix, shards, answered }
    }
}

struct Out {
    text: String,
}

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// One series per shard.
    fn per_shard(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        reports: &[ShardReport],
        f: impl Fn(&ShardReport) -> u64,
    ) {
        self.head(name, kind, help);
        for r in reports {
            self.sample(name, &[("shard", &r.shard.to_string())], f(r));
        }
    }

    /// One series per shard and value of `label` (`f` gives each value and its figure).
    fn per_shard_by<const N: usize>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        reports: &[ShardReport],
        label: &str,
        f: impl Fn(&ShardReport) -> [(&'static str, u64); N],
    ) {
        self.head(name, kind, help);
        for r in reports {
            let shard = r.shard.to_string();
            for (value, n) in f(r) {
                self.sample(name, &[("shard", &shard), (label, value)], n);
            }
        }
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        for (bound, n) in h.cumulative() {
            let le = match bound {
                Some(us) => format!("{}", us as f64 / 1e6),
                None => "+Inf".to_string(),
            };
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.sample(&format!("{name}_bucket"), &l, n);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum_ns as f64 / 1e9);
        self.sample(&format!("{name}_count"), labels, h.count);
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The whole exposition: every series of every shard, then the process's.
pub fn render(reports: &[ShardReport], process: &Process, commands: &[&str]) -> String {
    let mut o = Out { text: String::with_capacity(16 * 1024) };
    let r = reports;

    o.head("rustircd_info", "gauge", "Server version.");
    o.sample("rustircd_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);
    o.head("rustircd_start_time_seconds", "gauge", "When the server started, in seconds since the epoch.");
    o.sample("rustircd_start_time_seconds", &[], process.started_unix);
    o.head("rustircd_shards_reporting", "gauge", "Shards that answered this scrape in time (of rustircd_shards).");
    o.sample("rustircd_shards_reporting", &[], process.answered);
    o.head("rustircd_shards", "gauge", "Shards (pinned executors) of the server.");
    o.sample("rustircd_shards", &[], process.shards);

    // Gauges.
    o.per_shard("rustircd_connections", "gauge", "Open client connections.", r, |r| r.connections);
    o.per_shard("rustircd_users", "gauge", "Registered users.", r, |r| r.users);
    o.per_shard(
        "rustircd_connections_asleep",
        "gauge",
        "Quiet connections asleep in the shard's epoll, without a task of their own.",
        r,
        |r| r.io.asleep,
    );
    o.per_shard("rustircd_unregistered_connections", "gauge", "Connections not yet registered.", r, |r| r.unregistered);
    o.per_shard("rustircd_operators", "gauge", "Users with operator status.", r, |r| r.opers);
    o.per_shard(
        "rustircd_channels",
        "gauge",
        "Channels whose home is the shard (their sum is the channel count).",
        r,
        |r| r.channels_homed,
    );
    // The network map is the same on every shard once quiet: shard 0's, or the first that answered.
    let servers = r.iter().find(|s| s.shard == 0).or(r.first()).map_or(0, |s| s.servers);
    o.head("rustircd_servers", "gauge", "Servers of the network besides this one (the network map).");
    o.sample("rustircd_servers", &[], servers);
    o.head("rustircd_server_links", "gauge", "Server links up (direct peers), over all shards.");
    o.sample("rustircd_server_links", &[], r.iter().flat_map(|s| &s.links).filter(|l| l.up).count());
    o.per_shard_by(
        "rustircd_mesh_queue_depth",
        "gauge",
        "Mesh messages waiting to leave the shard (out), batches waiting to be handled by it (in).",
        r,
        "direction",
        |s| [("out", s.mesh_out_waiting), ("in", s.mesh_in_waiting)],
    );
    o.head(
        "rustircd_loop_latency_seconds",
        "gauge",
        "Longest a shard's event loop kept its timer waiting in the last second.",
    );
    for s in r {
        o.sample("rustircd_loop_latency_seconds", &[("shard", &s.shard.to_string())], s.turn_max.as_secs_f64());
    }
    o.per_shard(
        "rustircd_sequenced_held",
        "gauge",
        "Channel changes held for their sequence turn on the shard.",
        r,
        |r| r.seq_held,
    );
    o.head(
        "rustircd_sequenced_oldest_wait_seconds",
        "gauge",
        "How long the oldest change held for its sequence turn has waited (0 when none is held).",
    );
    for s in r {
        o.sample(
            "rustircd_sequenced_oldest_wait_seconds",
            &[("shard", &s.shard.to_string())],
            s.seq_oldest_wait.as_secs_f64(),
        );
    }
    if let Some(n) = process.open_fds {
        o.head("rustircd_open_fds", "gauge", "Open file descriptors of the process.");
        o.sample("rustircd_open_fds", &[], n);
    }
    if let Some(n) = process.resident_bytes {
        o.head("rustircd_resident_memory_bytes", "gauge", "Resident memory of the process.");
        o.sample("rustircd_resident_memory_bytes", &[], n);
    }

    // Counters.
    o.per_shard("rustircd_messages_received_total", "counter", "Lines received from clients.", r, |r| {
        r.counters.lines_in
    });
    o.per_shard("rustircd_messages_sent_total", "counter", "Lines queued for clients.", r, |r| r.io.records_out);
    o.per_shard("rustircd_bytes_received_total", "counter", "Bytes read from client sockets.", r, |r| r.io.bytes_in);
    o.per_shard("rustircd_bytes_sent_total", "counter", "Bytes written to client sockets.", r, |r| r.io.bytes_out);
    o.per_shard("rustircd_parse_errors_total", "counter", "Lines with no command or too long (417).", r, |r| {
        r.counters.parse_errors
    });
    o.per_shard("rustircd_unknown_commands_total", "counter", "Lines with an unknown command (421).", r, |r| {
        r.counters.unknown_commands
    });
    o.per_shard(
        "rustircd_dropped_messages_total",
        "counter",
        "Lines not queued because their connection was closing or gone.",
        r,
        |r| r.io.dropped_sends,
    );
    o.per_shard(
        "rustircd_sequencer_stalls_total",
        "counter",
        "Channel changes that waited longer than 5 s for their sequence turn (each is logged).",
        r,
        |r| r.counters.seq_stalls,
    );
    o.per_shard("rustircd_connections_accepted_total", "counter", "Connections accepted.", r, |r| r.io.accepted);
    o.per_shard_by(
        "rustircd_connection_failures_total",
        "counter",
        "Connections that did not become clients, by reason.",
        r,
        "reason",
        |s| {
            [
                ("refused", s.counters.refused),
                ("server_full", s.io.refused_full),
                ("tls_handshake", s.io.handshake_failures),
                ("websocket_upgrade", s.io.upgrade_failures),
            ]
        },
    );
    o.per_shard_by(
        "rustircd_flood_disconnects_total",
        "counter",
        "Clients disconnected for flooding (Excess Flood) or not reading (SendQ exceeded).",
        r,
        "reason",
        |s| [("excess_flood", s.counters.excess_flood), ("sendq_exceeded", s.counters.sendq_exceeded)],
    );
    o.head("rustircd_netsplits_total", "counter", "Netsplits seen: links lost, and servers lost behind them.");
    o.sample("rustircd_netsplits_total", &[], r.iter().map(|s| s.counters.netsplits).sum::<u64>());
    o.per_shard("rustircd_joins_total", "counter", "Channel joins by the shard's users.", r, |r| r.counters.joins);
    o.per_shard("rustircd_parts_total", "counter", "Channel parts and kicks of the shard's users.", r, |r| {
        r.counters.parts
    });
    o.per_shard_by(
        "rustircd_cache_hits_total",
        "counter",
        "Cache hits: dns (host names), message (renderings of a shared line), user (WHOWAS).",
        r,
        "cache",
        |s| [("dns", s.counters.dns_hits), ("message", s.counters.render_hits), ("user", s.counters.whowas_hits)],
    );
    o.per_shard_by(
        "rustircd_cache_misses_total",
        "counter",
        "Cache misses, as for rustircd_cache_hits_total.",
        r,
        "cache",
        |s| [("dns", s.counters.dns_misses), ("message", s.counters.render_misses), ("user", s.counters.whowas_misses)],
    );
    o.per_shard("rustircd_mesh_messages_sent_total", "counter", "Messages sent to other shards.", r, |r| {
        r.io.mesh_msgs_out
    });
    o.per_shard("rustircd_mesh_messages_received_total", "counter", "Messages received from other shards.", r, |r| {
        r.io.mesh_msgs_in
    });
    o.head("rustircd_commands_total", "counter", "Commands handled, by command (STATS m).");
    for s in r {
        let shard = s.shard.to_string();
        for (name, u) in commands.iter().zip(&s.usage) {
            if u.count > 0 {
                o.sample("rustircd_commands_total", &[("shard", &shard), ("command", name)], u.count);
            }
        }
    }

    // Histograms.
    o.head(
        "rustircd_message_latency_seconds",
        "histogram",
        "From a message's arrival at the server to its queueing for recipients, per recipient shard.",
    );
    for s in r {
        o.histogram("rustircd_message_latency_seconds", &[("shard", &s.shard.to_string())], &s.message_latency);
    }
    o.head(
        "rustircd_channel_broadcast_latency_seconds",
        "histogram",
        "From a channel message's arrival to its queueing for all of a shard's members, by channel size.",
    );
    for s in r {
        let shard = s.shard.to_string();
        for ((size, _), h) in SIZE_BUCKETS.iter().zip(&s.broadcast_latency) {
            o.histogram("rustircd_channel_broadcast_latency_seconds", &[("shard", &shard), ("size", size)], h);
        }
    }
    let mut bursts = Histogram::default();
    for s in r {
        bursts.merge(&s.burst_time);
    }
    o.head(
        "rustircd_burst_duration_seconds",
        "histogram",
        "From a server link's opening to the end of the peer's burst (its EOB), over all shards.",
    );
    o.histogram("rustircd_burst_duration_seconds", &[], &bursts);
    o.head(
        "rustircd_link_propagation_latency_seconds",
        "histogram",
        "From a message's arrival at this server to its write on a server link, per shard holding links.",
    );
    for s in r {
        o.histogram("rustircd_link_propagation_latency_seconds", &[("shard", &s.shard.to_string())], &s.link_latency);
    }
    o.text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(shard: usize) -> ShardReport {
        let mut r = ShardReport {
            shard,
            connections: 3 + shard as u64,
            usage: vec![Default::default(); 2],
            ..Default::default()
        };
        r.counters.lines_in = 10;
        r.usage[1].count = 4;
        r.message_latency.observe(std::time::Duration::from_micros(30));
        r
    }

    fn value(text: &str, series: &str) -> Option<String> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_string))
    }

    #[test]
    fn every_shard_gets_its_series() {
        let text =
            render(&[report(0), report(1)], &Process { shards: 2, answered: 2, ..Default::default() }, &["A", "B"]);
        assert_eq!(value(&text, "rustircd_connections{shard=\"0\"}").as_deref(), Some("3"));
        assert_eq!(value(&text, "rustircd_connections{shard=\"1\"}").as_deref(), Some("4"));
        assert_eq!(value(&text, "rustircd_commands_total{shard=\"1\",command=\"B\"}").as_deref(), Some("4"));
        assert!(value(&text, "rustircd_commands_total{shard=\"1\",command=\"A\"}").is_none());
        assert_eq!(
            value(&text, "rustircd_message_latency_seconds_bucket{shard=\"0\",le=\"0.00005\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            value(&text, "rustircd_message_latency_seconds_bucket{shard=\"0\",le=\"0.000025\"}").as_deref(),
            Some("0")
        );
        assert_eq!(value(&text, "rustircd_message_latency_seconds_count{shard=\"0\"}").as_deref(), Some("1"));
    }

    #[test]
    fn every_series_is_declared_once_and_well_formed() {
        let text = render(&[report(0), report(1)], &Process::read(0, 2, 2), &["A", "B"]);
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(declared.insert(name.to_string()), "{name} declared twice");
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let name = line.split(['{', ' ']).next().unwrap();
            let base = name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
            assert!(declared.contains(name) || declared.contains(base), "{name} not declared: {line}");
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
        }
        assert!(declared.contains("rustircd_open_fds"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
