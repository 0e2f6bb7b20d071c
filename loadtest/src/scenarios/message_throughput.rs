//! message-throughput: private messages between pairs of clients, at a set rate or (rate 0)
//! as fast as a window of 32 messages in flight per pair allows.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::{connect_all, or_release, parse_payload, payload, Result};
use crate::net::Pool;
use crate::report::{histogram, Progress, Report};
use crate::Opts;

const WINDOW: u64 = 32;

struct Outcome {
    hist: Histogram<u64>,
    sent: u64,
    received: u64,
    disconnects: u64,
    send_secs: f64,
}

pub fn message_throughput(o: &Opts) -> Result<Report> {
    let mut rep = Report::new("message-throughput", o.server_pid);
    let threads = o.threads.min(o.pairs.max(1));
    let results = super::measured(&mut rep, threads, o.pairs, o.rate, |t, pairs, rate, show, ready| {
        run(o, t, pairs, rate, show, ready)
    })?;
    let mut hist = histogram();
    let (mut sent, mut received, mut disc, mut secs) = (0, 0, 0, 0f64);
    for r in results {
        hist.add(&r.hist).ok();
        sent += r.sent;
        received += r.received;
        disc += r.disconnects;
        secs = secs.max(r.send_secs);
    }
    let rate = received as f64 / secs.max(1e-6);
    rep.set("pairs", o.pairs, None);
    rep.set("target_rate", o.rate, None);
    rep.set("sent", sent, None);
    rep.set("delivered", received, Some(format!("{received} of {sent} delivered: {rate:.0} msg/s")));
    rep.set("delivered_per_second", rate.round(), None);
    rep.set(
        "lost",
        sent - received.min(sent),
        Some(format!("lost: {}, disconnects: {disc}", sent - received.min(sent))),
    );
    rep.set("disconnects", disc, None);
    rep.latency("delivery", &hist);
    Ok(rep)
}

fn run(o: &Opts, t: usize, pairs: usize, rate: f64, show: bool, ready: &std::sync::Barrier) -> Result<Outcome> {
    let mut pool = Pool::new().map_err(|e| e.to_string())?;
    let nicks: Vec<String> = (0..pairs).flat_map(|i| [format!("mt{t}a{i}"), format!("mt{t}b{i}")]).collect();
    or_release(connect_all(&mut pool, o, &nicks, t * pairs * 2, Duration::from_secs(60)), ready)?;
    let targets: Vec<Vec<u8>> = (0..pairs).map(|i| format!("PRIVMSG mt{t}b{i} :").into_bytes()).collect();
    let mut hist = histogram();
    let mut sent = 0u64;
    let received = std::cell::Cell::new(0u64);
    let outstanding: Vec<std::cell::Cell<u64>> = (0..pairs).map(|_| std::cell::Cell::new(0)).collect();
    let mut progress = Progress::new(o.progress && show, o.duration);
    ready.wait();
    let start = Instant::now();
    let mut on_line = |_: &mut Pool, ev: crate::net::LineEvent<'_>| {
        if let Some((ns, _)) = parse_payload(ev.line) {
            hist.record((ev.recv_ns.saturating_sub(ns) / 1000).max(1)).ok();
            received.set(received.get() + 1);
            let o = &outstanding[ev.conn / 2];
            o.set(o.get().saturating_sub(1));
        }
    };
    let mut line = Vec::with_capacity(128);
    while start.elapsed() < o.duration {
        let elapsed = start.elapsed().as_secs_f64();
        let mut budget = if rate > 0.0 { ((elapsed * rate) as u64).saturating_sub(sent) } else { u64::MAX };
        // One pass over the pairs per turn keeps every pair busy.
        for (i, target) in targets.iter().enumerate() {
            if budget == 0 {
                break;
            }
            if rate <= 0.0 && outstanding[i].get() >= WINDOW {
                continue;
            }
            line.clear();
            line.extend_from_slice(target);
            line.extend_from_slice(payload(sent).as_bytes());
            line.extend_from_slice(b"\r\n");
            pool.send(i * 2, &line);
            outstanding[i].set(outstanding[i].get() + 1);
            sent += 1;
            budget -= 1;
        }
        let wait = if rate > 0.0 { Duration::from_micros(500) } else { Duration::ZERO };
        pool.poll(wait, &mut on_line).map_err(|e| e.to_string())?;
        progress.tick(|| format!("{sent} sent"));
    }
    let send_secs = start.elapsed().as_secs_f64();
    // Whatever is still in flight gets two seconds.
    let deadline = Instant::now() + Duration::from_secs(2);
    while received.get() < sent && Instant::now() < deadline {
        pool.poll(Duration::from_millis(5), &mut on_line).map_err(|e| e.to_string())?;
    }
    drop(on_line);
    let received = received.get();
    Ok(Outcome { hist, sent, received, disconnects: pool.disconnects, send_secs })
}
