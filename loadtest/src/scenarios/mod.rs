//! The scenarios, one file each, and what they share: connecting and registering many
//! clients, the timestamped payload, a small random generator.

mod big_channel;
mod channel_load;
mod connection_stress;
mod history;
mod link_burst;
mod mass_disconnect;
mod message_throughput;
mod mixed;

pub use big_channel::big_channel;
pub use channel_load::channel_load;
pub use connection_stress::connection_stress;
pub use history::history;
pub use link_burst::link_burst;
pub use mass_disconnect::mass_disconnect;
pub use message_throughput::message_throughput;
pub use mixed::mixed;

use std::time::Duration;

use crate::net::Pool;
use crate::Opts;

pub type Result<T> = std::result::Result<T, String>;

/// The text of a timed message: `lt <send time ns> <tag>`.
pub fn payload(tag: u64) -> String {
    format!("lt {} {tag}", crate::net::now_ns())
}

/// Send time and tag of a timed message line, if it is one.
pub fn parse_payload(line: &str) -> Option<(u64, u64)> {
    let text = &line[line.find(" :lt ")? + 5..];
    let mut it = text.split(' ');
    let ns = it.next()?.parse().ok()?;
    let tag = it.next()?.parse().ok()?;
    Some((ns, tag))
}

/// Connects `nicks.len()` clients and waits (up to `limit`) until all are registered. A client
/// that cannot connect or that the server closes before registering ends it at once, saying why
/// (the socket error, or the server's ERROR line).
pub fn connect_all(pool: &mut Pool, o: &Opts, nicks: &[String], first_source: usize, limit: Duration) -> Result<()> {
    let failed = |p: &Pool| p.first_failure.as_ref().map(|(_, why)| why.clone());
    let wait = |pool: &mut Pool, want: usize| -> Result<()> {
        let done = |p: &Pool| p.registered() >= want || p.first_failure.is_some();
        let ok = pool.run_until(limit, |_, _| {}, done).map_err(|e| e.to_string())?;
        if let Some(why) = failed(pool) {
            return Err(format!("{why}; {} of {} clients registered", pool.registered(), nicks.len()));
        }
        if !ok {
            return Err(format!(
                "only {} of {want} clients registered within {limit:?} (the server at {} accepted them but did not register them)",
                pool.registered(),
                o.server
            ));
        }
        Ok(())
    };
    for (i, n) in nicks.iter().enumerate() {
        pool.connect(o.server, o.source(first_source + i), n).map_err(|e| connect_error(o.server, &e))?;
        // Keep the listen backlog from overflowing: let the server catch up every 500.
        if i % 500 == 499 {
            wait(pool, pool.conns.len())?;
        }
    }
    wait(pool, pool.conns.len())
}

/// The message for a connection that could not even start.
pub fn connect_error(server: std::net::SocketAddr, e: &std::io::Error) -> String {
    format!("cannot connect to {server}: {e}")
}

/// Joins every client in `members` to `chan` and waits until the first has seen them all
/// (the first joins alone first, so that every later JOIN reaches it).
pub fn join_all(pool: &mut Pool, members: &[usize], chan: &str, limit: Duration) -> Result<()> {
    let joined = std::cell::Cell::new(0usize);
    let first = members[0];
    let count = |_: &mut Pool, ev: crate::net::LineEvent<'_>| {
        if ev.conn == first && ev.line.contains(" JOIN ") {
            joined.set(joined.get() + 1);
        }
    };
    pool.send(first, format!("JOIN {chan}\r\n").as_bytes());
    pool.run_until(limit, count, |_| joined.get() >= 1).map_err(|e| e.to_string())?;
    for &m in &members[1..] {
        pool.send(m, format!("JOIN {chan}\r\n").as_bytes());
    }
    let need = members.len();
    let ok = pool.run_until(limit, count, |_| joined.get() >= need).map_err(|e| e.to_string())?;
    if !ok {
        let first_nick = &pool.conns[first].nick;
        return Err(format!("{first_nick} saw {} of {need} JOINs to {chan}", joined.get()));
    }
    Ok(())
}

/// Runs `units` (channels, pairs) spread over `threads` generator threads. Each thread sets up,
/// then waits at the barrier; the report's measured window runs from when all are ready until
/// all are done, so setup is never measured. `run(thread, units_of_it, rate_of_it, is_first,
/// barrier)` is one thread's work.
pub fn measured<T: Send>(
    rep: &mut crate::report::Report,
    threads: usize,
    units: usize,
    rate: f64,
    run: impl Fn(usize, usize, f64, bool, &std::sync::Barrier) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let ready = std::sync::Barrier::new(threads + 1);
    let (ready, run) = (&ready, &run);
    let results: Vec<Result<T>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mine = units / threads + usize::from(t < units % threads);
                s.spawn(move || run(t, mine, rate / threads as f64, t == 0, ready))
            })
            .collect();
        ready.wait();
        rep.start_window();
        let r = handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into()))).collect();
        rep.end_window();
        r
    });
    results.into_iter().collect()
}

/// A failed setup still passes the start barrier, so that the other threads are not left
/// waiting for it.
pub fn or_release<T>(r: Result<T>, ready: &std::sync::Barrier) -> Result<T> {
    if r.is_err() {
        ready.wait();
    }
    r
}

/// xorshift64*: enough randomness for choosing operations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let p = payload(42);
        let line = format!(":a!b@c PRIVMSG #x :{p}");
        let (ns, tag) = parse_payload(&line).unwrap();
        assert_eq!(tag, 42);
        assert!(ns > 1_600_000_000_000_000_000);
        assert!(parse_payload(":a PRIVMSG #x :hello").is_none());
    }
}
