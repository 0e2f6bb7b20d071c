//! Guards on OPER's password check. An argon2 check allocates its memory cost (19 MiB with the
//! `--mkpasswd` defaults, 64 MiB in common configs) on a blocking thread; run on many threads at
//! once, each thread's malloc arena kept its share, and wrong passwords took the process from
//! 51 MB to 1 GB. So:
//!
//! - a client is disconnected after [`MAX_CLIENT_FAILURES`] refused or wrong attempts;
//! - each address may have [`ADDRESS_BUDGET`] checks per [`WINDOW`] that did not succeed, per
//!   shard (no mesh traffic; an address reaches at most `shards ×` the budget); beyond it OPER
//!   is refused with 491 without a check, and operators are told once per window;
//! - each shard runs one check at a time and queues the rest, and a process-wide gate lets
//!   [`CONCURRENT_CHECKS`] run at once; argon2's memory is a mapping of its own, returned to
//!   the system when the check ends (`crate::password`).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use ahash::AHashMap;

use crate::commands::outbox::Conn;

/// Wrong or refused OPER attempts after which a connection is closed.
pub const MAX_CLIENT_FAILURES: u8 = 3;
/// Checks an address may spend per window on one shard (a successful one is given back).
pub const ADDRESS_BUDGET: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Password checks running at once in the whole process: bounds the memory argon2 holds.
pub const CONCURRENT_CHECKS: usize = 1;
/// Addresses remembered before the expired ones are swept.
const SWEEP_AT: usize = 1024;

/// A password check waiting for its turn.
pub struct Check {
    pub conn: Conn,
    pub name: String,
    pub hash: String,
    pub password: String,
    pub plain_ok: bool,
}

/// What the budget says about one more check from an address.
#[derive(Debug, PartialEq, Eq)]
pub enum Spend {
    Allowed,
    /// Refused; `first` is true for the first refusal of the window (tell the operators once).
    Refused {
        first: bool,
    },
}

struct Window {
    since: Instant,
    spent: u32,
    told: bool,
}

/// One shard's OPER guards: the budgets of addresses, and the queue of checks.
#[derive(Default)]
pub struct OperLimit {
    addrs: AHashMap<IpAddr, Window>,
    queue: VecDeque<Check>,
    running: bool,
}

impl OperLimit {
    /// Takes one check from `ip`'s budget for the current window.
    pub fn spend(&mut self, ip: IpAddr, now: Instant) -> Spend {
        if self.addrs.len() >= SWEEP_AT {
            self.addrs.retain(|_, w| now.saturating_duration_since(w.since) < WINDOW);
        }
        let w = self.addrs.entry(ip).or_insert(Window { since: now, spent: 0, told: false });
        if now.saturating_duration_since(w.since) >= WINDOW {
            *w = Window { since: now, spent: 0, told: false };
        }
        if w.spent < ADDRESS_BUDGET {
            w.spent += 1;
            return Spend::Allowed;
        }
        let first = !w.told;
        w.told = true;
        Spend::Refused { first }
    }

    /// A check from `ip` succeeded: it does not count against the address.
    pub fn refund(&mut self, ip: IpAddr) {
        if let Some(w) = self.addrs.get_mut(&ip) {
            w.spent = w.spent.saturating_sub(1);
        }
    }

    /// Queues a check; returns it back when it may start at once (none is running).
    pub fn enqueue(&mut self, check: Check) -> Option<Check> {
        if self.running {
            self.queue.push_back(check);
            return None;
        }
        self.running = true;
        Some(check)
    }

    /// The running check ended; the next one for which `alive` holds starts, if any.
    pub fn next(&mut self, alive: impl Fn(Conn) -> bool) -> Option<Check> {
        while let Some(c) = self.queue.pop_front() {
            if alive(c.conn) {
                return Some(c);
            }
        }
        self.running = false;
        None
    }
}

/// A counting semaphore for blocking threads (std has none).
struct Gate {
    running: Mutex<usize>,
    freed: Condvar,
}

static GATE: Gate = Gate { running: Mutex::new(0), freed: Condvar::new() };

/// Runs `f` once fewer than [`CONCURRENT_CHECKS`] others are running, on this blocking thread.
pub fn gated<T>(f: impl FnOnce() -> T) -> T {
    let _permit = Permit::take();
    f()
}

/// A place in the gate, given back on drop (a panicking check frees it too).
struct Permit;

impl Permit {
    fn take() -> Permit {
        let mut n = GATE.running.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= CONCURRENT_CHECKS {
            n = GATE.freed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        *GATE.running.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        GATE.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(conn: u64) -> Check {
        Check { conn: Conn(conn), name: "o".into(), hash: String::new(), password: String::new(), plain_ok: false }
    }

    #[test]
    fn an_address_has_a_budget_per_window() {
        let mut l = OperLimit::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t = Instant::now();
        for _ in 0..ADDRESS_BUDGET {
            assert_eq!(l.spend(ip, t), Spend::Allowed);
        }
        assert_eq!(l.spend(ip, t), Spend::Refused { first: true });
        assert_eq!(l.spend(ip, t), Spend::Refused { first: false });
        assert_eq!(l.spend("10.0.0.2".parse().unwrap(), t), Spend::Allowed, "other addresses are apart");
        l.refund(ip);
        assert_eq!(l.spend(ip, t), Spend::Allowed, "a success is given back");
        assert_eq!(l.spend(ip, t + WINDOW), Spend::Allowed, "a new window, a new budget");
    }

    #[test]
    fn one_check_runs_at_a_time_and_gone_clients_are_skipped() {
        let mut l = OperLimit::default();
        assert!(l.enqueue(check(1)).is_some());
        assert!(l.enqueue(check(2)).is_none());
        assert!(l.enqueue(check(3)).is_none());
        assert_eq!(l.next(|c| c != Conn(2)).map(|c| c.conn), Some(Conn(3)));
        assert!(l.next(|_| true).is_none());
        assert!(l.enqueue(check(4)).is_some(), "idle again");
    }

    #[test]
    fn the_gate_bounds_concurrency() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NOW: AtomicUsize = AtomicUsize::new(0);
        static MAX: AtomicUsize = AtomicUsize::new(0);
        let threads: Vec<_> = (0..6)
            .map(|_| {
                std::thread::spawn(|| {
                    gated(|| {
                        let n = NOW.fetch_add(1, Ordering::SeqCst) + 1;
                        MAX.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(5));
                        NOW.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(MAX.load(Ordering::SeqCst), CONCURRENT_CHECKS);
    }
}
