//! mixed-workload and soak: N clients in channels doing what users do — channel and private
//! messages, joins and parts, nick changes, WHO and WHOIS, quits and reconnects — at R
//! operations per second. `soak` also samples the server's RSS every second and reports its
//! trend (the memory-leak check).

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::{connect_all, parse_payload, payload, Result, Rng};
use crate::net::Pool;
use crate::report::{histogram, sample_proc, Progress, Report};
use crate::Opts;

pub fn mixed(o: &Opts, soak: bool) -> Result<Report> {
    let name = if soak { "soak" } else { "mixed-workload" };
    let mut rep = Report::new(name, o.server_pid);
    let n = o.clients.max(2);
    let channels = (n / 20).max(1);
    let mut pool = Pool::new().map_err(|e| e.to_string())?;
    let prefix = if soak { "sk" } else { "mx" };
    let nicks: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    connect_all(&mut pool, o, &nicks, 0, Duration::from_secs(120))?;
    let mut rng = Rng::new(0x9e3779b97f4a7c15);
    // Everyone starts in one channel; the ops below move them around.
    let mut member_of: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, m) in member_of.iter_mut().enumerate() {
        let c = i % channels;
        pool.send(i, format!("JOIN #mx{c}\r\n").as_bytes());
        m.push(c);
    }
    pool.run_until(Duration::from_secs(2), |_, _| {}, |_| false).map_err(|e| e.to_string())?;
    // The connection index of each client slot (reconnects get a new connection).
    let mut slot: Vec<usize> = (0..n).collect();
    let mut generation = vec![0u32; n];
    let mut hist = histogram();
    let errors = Cell::new(0u64);
    let (mut ops, mut messages) = (0u64, 0u64);
    let received = Cell::new(0u64);
    let mut on_line = |_: &mut Pool, ev: crate::net::LineEvent<'_>| {
        if let Some((ns, _)) = parse_payload(ev.line) {
            hist.record((ev.recv_ns.saturating_sub(ns) / 1000).max(1)).ok();
            received.set(received.get() + 1);
        } else if let Some(code) = ev.line.split(' ').nth(1) {
            // 4xx/5xx other than the expected races (nick in use, not on channel, no such nick)
            if code.len() == 3
                && (code.starts_with('4') || code.starts_with('5'))
                && !matches!(code, "433" | "442" | "401" | "403")
            {
                errors.set(errors.get() + 1);
            }
        }
    };
    let mut rss: Vec<(f64, u64)> = Vec::new();
    let mut next_sample = Instant::now();
    let mut progress = Progress::new(o.progress, o.duration);
    rep.start_window();
    let start = Instant::now();
    let rate = if o.rate > 0.0 { o.rate } else { 1000.0 };
    while start.elapsed() < o.duration {
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        while ops < due {
            ops += 1;
            let i = rng.below(n);
            let c = slot[i];
            if pool.conns[c].closed {
                continue;
            }
            let roll = rng.below(100);
            let line = match roll {
                0..=59 => {
                    messages += 1;
                    let ch = member_of[i].first().copied().unwrap_or(0);
                    format!("PRIVMSG #mx{ch} :{}\r\n", payload(ops))
                }
                60..=74 => {
                    messages += 1;
                    let j = rng.below(n);
                    format!("PRIVMSG {} :{}\r\n", pool.conns[slot[j]].nick, payload(ops))
                }
                75..=79 => {
                    let ch = rng.below(channels);
                    if !member_of[i].contains(&ch) {
                        member_of[i].push(ch);
                    }
                    format!("JOIN #mx{ch}\r\n")
                }
                80..=84 => match member_of[i].len() {
                    0 | 1 => continue,
                    _ => format!("PART #mx{} :bye\r\n", member_of[i].remove(0)),
                },
                85..=89 => {
                    generation[i] += 1;
                    let nick = format!("{prefix}{i}g{}", generation[i]);
                    pool.conns[c].nick = nick.clone();
                    format!("NICK {nick}\r\n")
                }
                90..=94 => {
                    if rng.below(2) == 0 {
                        format!("WHO #mx{}\r\n", rng.below(channels))
                    } else {
                        format!("WHOIS {}\r\n", pool.conns[slot[rng.below(n)]].nick)
                    }
                }
                _ => {
                    // quit and come back under a new nick, into one channel
                    pool.send(c, b"QUIT :reconnecting\r\n");
                    pool.close(c);
                    generation[i] += 1;
                    let nick = format!("{prefix}{i}g{}", generation[i]);
                    slot[i] =
                        pool.connect(o.server, o.source(i), &nick).map_err(|e| super::connect_error(o.server, &e))?;
                    member_of[i] = vec![i % channels];
                    pool.send(slot[i], format!("JOIN #mx{}\r\n", i % channels).as_bytes());
                    continue;
                }
            };
            pool.send(c, line.as_bytes());
        }
        pool.poll(Duration::from_millis(1), &mut on_line).map_err(|e| e.to_string())?;
        if soak && Instant::now() >= next_sample {
            next_sample += Duration::from_secs(1);
            if let Some(s) = o.server_pid.and_then(sample_proc) {
                rss.push((start.elapsed().as_secs_f64(), s.rss_kib));
            }
        }
        progress.tick(|| format!("{ops} ops, {} messages received", received.get()));
    }
    pool.run_until(Duration::from_millis(500), &mut on_line, |_| false).map_err(|e| e.to_string())?;
    drop(on_line);
    let secs = o.duration.as_secs_f64();
    rep.set("clients", n, None);
    rep.set("channels", channels, None);
    rep.set(
        "operations",
        ops,
        Some(format!("{ops} operations in {secs:.0} s ({:.0}/s), {messages} of them messages", ops as f64 / secs)),
    );
    rep.set("messages_received", received.get(), Some(format!("{} timed messages received", received.get())));
    rep.set("unexpected_errors", errors.get(), Some(format!("unexpected error numerics: {}", errors.get())));
    rep.set("disconnects", pool.disconnects, None);
    rep.latency("message", &hist);
    if soak {
        trend(&mut rep, &rss);
    }
    Ok(rep)
}

/// Least-squares slope of RSS over time, in KiB per minute, after the first tenth (warm-up).
fn trend(rep: &mut Report, rss: &[(f64, u64)]) {
    if rss.len() < 3 {
        rep.note("RSS trend: not enough samples (give --server-pid and a longer --duration)".into());
        return;
    }
    let skip = rss.len() / 10;
    let pts = &rss[skip..];
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1 as f64).sum::<f64>() / n;
    let num: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 as f64 - my)).sum();
    let den: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let slope = if den > 0.0 { num / den * 60.0 } else { 0.0 };
    let (first, last) = (pts[0].1, pts[pts.len() - 1].1);
    let max = pts.iter().map(|p| p.1).max().unwrap_or(0);
    rep.set("rss_first_kib", first, None);
    rep.set("rss_last_kib", last, None);
    rep.set("rss_max_kib", max, None);
    rep.set(
        "rss_slope_kib_per_min",
        (slope * 10.0).round() / 10.0,
        Some(format!(
            "server RSS: {first} → {last} KiB (max {max}); trend {slope:+.1} KiB/min over {} samples",
            pts.len()
        )),
    );
}
