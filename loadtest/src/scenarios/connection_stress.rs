//! connection-stress: open and register N clients at R per second; registrations per second,
//! failures, registration latency, and the server's memory per connection.

use std::time::{Duration, Instant};

use super::Result;
use crate::net::{now_ns, Pool};
use crate::report::{histogram, sample_proc, Progress, Report};
use crate::Opts;

pub fn connection_stress(o: &Opts) -> Result<Report> {
    let n = o.clients;
    let mut rep = Report::new("connection-stress", o.server_pid);
    let before = o.server_pid.and_then(sample_proc);
    let mut pool = Pool::new().map_err(|e| e.to_string())?;
    let mut started_ns: Vec<u64> = Vec::with_capacity(n);
    let mut hist = histogram();
    let mut failures = 0usize;
    let (mut registered, mut last_reg) = (0usize, Instant::now());
    let start = Instant::now();
    let planned = if o.rate > 0.0 { n as f64 / o.rate } else { 0.0 };
    let deadline = start + Duration::from_secs_f64(planned) + Duration::from_secs(60);
    let mut progress = Progress::new(o.progress, Duration::from_secs_f64(planned.max(1.0)));
    let mut issued = 0usize;
    let mut first_error: Option<String> = None;
    while Instant::now() < deadline {
        let due = if o.rate > 0.0 { ((start.elapsed().as_secs_f64() * o.rate) as usize).min(n) } else { n };
        // unthrottled: in steps, so that the listen backlog does not overflow
        let due = if o.rate > 0.0 { due } else { due.min(registered + failures + 500) };
        while issued < due {
            match pool.connect(o.server, o.source(issued), &format!("cs{issued}")) {
                Ok(_) => started_ns.push(now_ns()),
                // The very first cannot connect: nothing listens there (or cannot be reached).
                Err(e) if issued == 0 => return Err(super::connect_error(o.server, &e)),
                Err(e) => {
                    failures += 1;
                    first_error.get_or_insert_with(|| super::connect_error(o.server, &e));
                }
            }
            issued += 1;
        }
        pool.poll(Duration::from_millis(1), |_, ev| {
            if ev.line.split(' ').nth(1) == Some("001") {
                hist.record((ev.recv_ns.saturating_sub(started_ns[ev.conn]) / 1000).max(1)).ok();
                registered += 1;
                last_reg = Instant::now();
            }
        })
        .map_err(|e| e.to_string())?;
        // The first client failed before registering, and none has: the server refuses us (or
        // is not there); say why now rather than after the deadline.
        if let (0, Some((0, why))) = (registered, &pool.first_failure) {
            return Err(format!("{why}; no client registered"));
        }
        progress.tick(|| format!("{registered}/{n} registered"));
        if registered + failures + pool.disconnects as usize >= n {
            break;
        }
    }
    // Let the server settle (`--settle`: a server may shed what idle clients do not need),
    // then weigh it with every client connected.
    std::thread::sleep(o.settle);
    let after = o.server_pid.and_then(sample_proc);
    let secs = last_reg.duration_since(start).as_secs_f64().max(1e-6);
    rep.set("clients", n, None);
    rep.set(
        "registered",
        registered,
        Some(format!("{registered} of {n} registered in {secs:.2} s: {:.0} registrations/s", registered as f64 / secs)),
    );
    rep.set("registrations_per_second", (registered as f64 / secs).round(), None);
    let never = n.saturating_sub(registered + failures);
    rep.set(
        "failures",
        failures + never,
        Some(format!(
            "failures: {failures} connects refused, {never} never registered ({} disconnected)",
            pool.disconnects
        )),
    );
    rep.set("disconnects", pool.disconnects, None);
    if let Some(why) = first_error.or(pool.first_failure.take().map(|(_, why)| why)) {
        rep.set("first_failure", why.clone(), Some(format!("first failure: {why}")));
    }
    rep.latency("registration", &hist);
    rep.memory_per_connection(before, after, registered);
    for i in 0..pool.conns.len() {
        pool.close(i);
    }
    Ok(rep)
}
