//! channel-load: C channels of M members; one sender per channel sends timed messages at a
//! set total rate (rate 0: as fast as 32 messages in flight per channel allow); every member
//! receives each. Deliveries per second, latency, loss.

use std::cell::Cell;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::{connect_all, join_all, or_release, parse_payload, payload, Result};
use crate::net::Pool;
use crate::report::{histogram, Progress, Report};
use crate::Opts;

const WINDOW: u64 = 32;

struct Outcome {
    hist: Histogram<u64>,
    sent: u64,
    delivered: u64,
    disconnects: u64,
    send_secs: f64,
}

pub fn channel_load(o: &Opts) -> Result<Report> {
    if o.users_per_channel < 2 {
        return Err("--users-per-channel must be at least 2".into());
    }
    let mut rep = Report::new("channel-load", o.server_pid);
    let threads = o.threads.min(o.channels.max(1));
    let results = super::measured(&mut rep, threads, o.channels, o.rate, |t, chans, rate, show, ready| {
        run(o, t, chans, rate, show, ready)
    })?;
    let mut hist = histogram();
    let (mut sent, mut delivered, mut disc, mut secs) = (0, 0, 0, 0f64);
    for r in results {
        hist.add(&r.hist).ok();
        sent += r.sent;
        delivered += r.delivered;
        disc += r.disconnects;
        secs = secs.max(r.send_secs);
    }
    let expected = sent * (o.users_per_channel as u64 - 1);
    let rate = delivered as f64 / secs.max(1e-6);
    rep.set("channels", o.channels, None);
    rep.set("users_per_channel", o.users_per_channel, None);
    rep.set("target_rate", o.rate, None);
    rep.set(
        "sent",
        sent,
        Some(format!("{sent} messages sent to {} channels of {} members", o.channels, o.users_per_channel)),
    );
    rep.set("delivered", delivered, Some(format!("{delivered} of {expected} deliveries: {rate:.0} deliveries/s")));
    rep.set("deliveries_per_second", rate.round(), None);
    rep.set(
        "lost",
        expected.saturating_sub(delivered),
        Some(format!("lost: {}, disconnects: {disc}", expected.saturating_sub(delivered))),
    );
    rep.set("disconnects", disc, None);
    rep.latency("delivery", &hist);
    Ok(rep)
}

fn run(o: &Opts, t: usize, chans: usize, rate: f64, show: bool, ready: &std::sync::Barrier) -> Result<Outcome> {
    let m = o.users_per_channel;
    let mut pool = Pool::new().map_err(|e| e.to_string())?;
    let nicks: Vec<String> = (0..chans).flat_map(|c| (0..m).map(move |j| format!("cl{t}c{c}m{j}"))).collect();
    or_release(connect_all(&mut pool, o, &nicks, t * chans * m, Duration::from_secs(120)), ready)?;
    for c in 0..chans {
        let members: Vec<usize> = (c * m..(c + 1) * m).collect();
        or_release(join_all(&mut pool, &members, &format!("#lt{t}x{c}"), Duration::from_secs(60)), ready)?;
    }
    let targets: Vec<Vec<u8>> = (0..chans).map(|c| format!("PRIVMSG #lt{t}x{c} :").into_bytes()).collect();
    let mut hist = histogram();
    let mut sent_per = vec![0u64; chans];
    let mut sent = 0u64;
    let delivered = Cell::new(0u64);
    // The last member of each channel paces the window.
    let paced: Vec<Cell<u64>> = (0..chans).map(|_| Cell::new(0)).collect();
    let mut on_line = |_: &mut Pool, ev: crate::net::LineEvent<'_>| {
        if let Some((ns, _)) = parse_payload(ev.line) {
            hist.record((ev.recv_ns.saturating_sub(ns) / 1000).max(1)).ok();
            delivered.set(delivered.get() + 1);
            if ev.conn % m == m - 1 {
                let p = &paced[ev.conn / m];
                p.set(p.get() + 1);
            }
        }
    };
    let mut progress = Progress::new(o.progress && show, o.duration);
    ready.wait();
    let start = Instant::now();
    let mut line = Vec::with_capacity(128);
    while start.elapsed() < o.duration {
        let elapsed = start.elapsed().as_secs_f64();
        let mut budget = if rate > 0.0 { ((elapsed * rate) as u64).saturating_sub(sent) } else { u64::MAX };
        for (c, target) in targets.iter().enumerate() {
            if budget == 0 {
                break;
            }
            if rate <= 0.0 && sent_per[c] - paced[c].get() >= WINDOW {
                continue;
            }
            line.clear();
            line.extend_from_slice(target);
            line.extend_from_slice(payload(sent).as_bytes());
            line.extend_from_slice(b"\r\n");
            pool.send(c * m, &line);
            sent_per[c] += 1;
            sent += 1;
            budget -= 1;
        }
        let wait = if rate > 0.0 { Duration::from_micros(500) } else { Duration::ZERO };
        pool.poll(wait, &mut on_line).map_err(|e| e.to_string())?;
        progress.tick(|| format!("{sent} sent, {} delivered", delivered.get()));
    }
    let send_secs = start.elapsed().as_secs_f64();
    let expected = sent * (m as u64 - 1);
    let deadline = Instant::now() + Duration::from_secs(3);
    while delivered.get() < expected && Instant::now() < deadline {
        pool.poll(Duration::from_millis(5), &mut on_line).map_err(|e| e.to_string())?;
    }
    drop(on_line);
    Ok(Outcome { hist, sent, delivered: delivered.get(), disconnects: pool.disconnects, send_secs })
}
