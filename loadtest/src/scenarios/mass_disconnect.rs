//! mass-disconnect: N registered clients all leave at once (their sockets dropped; with
//! `--quit-half` every other one sends QUIT first). Measures what the departures cost the
//! server (CPU seconds, with `--server-pid`), how long until LUSERS shows them gone, and the
//! stall a bystander sees meanwhile: a separate registered connection sends `PING :<n>` every
//! 10 ms and times each PONG. With `--channel-size M` the clients first join channels of M
//! members each (client i in `#md<i mod channels>`), so that every departure also fans a QUIT
//! out to the members still there.
//!
//! Meant for a server with no other traffic: the phase ends when LUSERS counts no more users
//! than it did before the N clients connected (the bystander alone on a fresh server).

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::{connect_all, Result};
use crate::net::{now_ns, Pool};
use crate::report::{fmt_us, histogram, sample_proc, ticks_per_second, Progress, Report};
use crate::Opts;

/// The departures must be over within this; past it the run reports how far it got.
const PHASE_LIMIT: Duration = Duration::from_secs(120);
const PING_EVERY: Duration = Duration::from_millis(10);
const LUSERS_EVERY: Duration = Duration::from_millis(50);

/// Users counted by a 251 line (`:srv 251 nick :There are X users and Y invisible on ...`).
pub fn lusers_users(line: &str) -> Option<u64> {
    if line.split(' ').nth(1) != Some("251") {
        return None;
    }
    let text = &line[line.find(" :There are ")? + 12..];
    let mut it = text.split(' ');
    let visible: u64 = it.next()?.parse().ok()?;
    let invisible: u64 = it.nth(2)?.parse().ok()?;
    Some(visible + invisible)
}

/// Asks the bystander's server for LUSERS and waits (up to `limit`) for the user count.
fn lusers(by: &mut Pool, limit: Duration) -> Result<u64> {
    let got = Cell::new(None);
    by.send(0, b"LUSERS\r\n");
    by.run_until(
        limit,
        |_, ev| {
            if let Some(n) = lusers_users(ev.line) {
                got.set(Some(n));
            }
        },
        |_| got.get().is_some(),
    )
    .map_err(|e| e.to_string())?;
    got.get().ok_or_else(|| "no answer to LUSERS".to_string())
}

/// Client `i` joins `#md<i % channels>`; waits (bounded) until every client saw its own JOIN.
fn join_channels(pool: &mut Pool, channels: usize) -> Result<()> {
    let n = pool.conns.len();
    for i in 0..n {
        pool.send(i, format!("JOIN #md{}\r\n", i % channels).as_bytes());
    }
    let mut joined = vec![false; n];
    let count = Cell::new(0usize);
    let ok = pool
        .run_until(
            Duration::from_secs(120),
            |p, ev| {
                let own =
                    ev.line.strip_prefix(':').and_then(|l| l.split('!').next()) == Some(p.conns[ev.conn].nick.as_str());
                if own && ev.line.contains(" JOIN ") && !joined[ev.conn] {
                    joined[ev.conn] = true;
                    count.set(count.get() + 1);
                }
            },
            |_| count.get() >= n,
        )
        .map_err(|e| e.to_string())?;
    if !ok {
        return Err(format!("only {} of {n} clients joined their channel within 120 s", count.get()));
    }
    Ok(())
}

pub fn mass_disconnect(o: &Opts) -> Result<Report> {
    let n = o.clients.max(1);
    let mut rep = Report::new("mass-disconnect", o.server_pid);
    // The bystander: its own pool (its own epoll set), registered before anyone else.
    let mut by = Pool::new().map_err(|e| e.to_string())?;
    connect_all(&mut by, o, &["mdby".to_string()], 0, Duration::from_secs(30))?;
    let baseline = lusers(&mut by, Duration::from_secs(10))?;

    let mut pool = Pool::new().map_err(|e| e.to_string())?;
    let nicks: Vec<String> = (0..n).map(|i| format!("md{i}")).collect();
    connect_all(&mut pool, o, &nicks, 1, Duration::from_secs(120))?;
    // Every client registered (each saw its 001); the server counts them all once LUSERS does.
    let want = baseline + n as u64;
    let mut before_users = 0;
    let settle = Instant::now() + Duration::from_secs(30);
    while Instant::now() < settle {
        before_users = lusers(&mut by, Duration::from_secs(10))?;
        if before_users >= want {
            break;
        }
        pool.poll(Duration::from_millis(50), |_, _| {}).map_err(|e| e.to_string())?;
    }
    if before_users < want {
        return Err(format!("LUSERS shows {before_users} users, expected {want} after connecting {n} clients"));
    }
    let channels = if o.channel_size > 0 { n.div_ceil(o.channel_size) } else { 0 };
    if channels > 0 {
        join_channels(&mut pool, channels)?;
    }
    // Let the server go idle, and drain what the clients were sent, so that the close is a FIN.
    pool.run_until(Duration::from_millis(500), |_, _| {}, |_| false).map_err(|e| e.to_string())?;

    let mut hist = histogram();
    let mut sent_ns: Vec<u64> = Vec::new();
    let mut lost_pongs = 0usize;
    let (mut last_users, mut done_at) = (before_users, None);
    let mut lusers_pending = false;
    let mut next_lusers = Instant::now();
    let mut progress = Progress::new(o.progress, Duration::from_secs(5));

    rep.start_window();
    let cpu0 = o.server_pid.and_then(sample_proc);
    let t0 = Instant::now();
    let mut next_ping = t0;
    // The first PING goes out before the clients leave, so that a stall from the start shows.
    sent_ns.push(now_ns());
    by.send(0, b"PING :0\r\n");
    next_ping += PING_EVERY;
    let quits = if o.quit_half {
        for i in (0..n).step_by(2) {
            pool.send(i, b"QUIT :mass disconnect\r\n");
        }
        n.div_ceil(2)
    } else {
        0
    };
    drop(pool); // every client socket closed at once
    let close_secs = t0.elapsed().as_secs_f64();

    while t0.elapsed() < PHASE_LIMIT {
        let now = Instant::now();
        if now >= next_ping {
            let k = sent_ns.len();
            sent_ns.push(now_ns());
            by.send(0, format!("PING :{k}\r\n").as_bytes());
            next_ping += PING_EVERY;
            // Do not fire a burst to catch up after the generator itself was held up.
            if next_ping < now {
                next_ping = now + PING_EVERY;
            }
        }
        if !lusers_pending && now >= next_lusers {
            by.send(0, b"LUSERS\r\n");
            lusers_pending = true;
            next_lusers = now + LUSERS_EVERY;
        }
        let wait = next_ping.saturating_duration_since(Instant::now()).min(PING_EVERY);
        by.poll(wait, |_, ev| {
            let mut words = ev.line.split(' ');
            if words.nth(1) == Some("PONG") {
                let token = ev.line.rsplit(':').next().and_then(|t| t.trim().parse::<usize>().ok());
                match token.and_then(|k| sent_ns.get(k)) {
                    Some(&s) => {
                        hist.record((ev.recv_ns.saturating_sub(s) / 1000).max(1)).ok();
                    }
                    None => lost_pongs += 1,
                }
            } else if let Some(users) = lusers_users(ev.line) {
                lusers_pending = false;
                last_users = users;
                if users <= baseline && done_at.is_none() {
                    done_at = Some(Instant::now());
                }
            }
        })
        .map_err(|e| e.to_string())?;
        if by.conns[0].closed {
            return Err("the bystander was disconnected".into());
        }
        progress.tick(|| format!("{} users left", last_users.saturating_sub(baseline)));
        if done_at.is_some() {
            break;
        }
    }
    let cpu1 = o.server_pid.and_then(sample_proc);
    rep.end_window();
    // Collect the PONGs still on their way (the PINGs sent just before the end).
    let outstanding = |h: &hdrhistogram::Histogram<u64>| sent_ns.len() as u64 - h.len() - lost_pongs as u64;
    let drain_until = Instant::now() + Duration::from_secs(5);
    while outstanding(&hist) > 0 && Instant::now() < drain_until {
        by.poll(Duration::from_millis(10), |_, ev| {
            if ev.line.split(' ').nth(1) == Some("PONG") {
                let token = ev.line.rsplit(':').next().and_then(|t| t.trim().parse::<usize>().ok());
                if let Some(&s) = token.and_then(|k| sent_ns.get(k)) {
                    hist.record((ev.recv_ns.saturating_sub(s) / 1000).max(1)).ok();
                }
            }
        })
        .map_err(|e| e.to_string())?;
    }

    let completed = done_at.is_some();
    let wall = done_at.map(|d| d.duration_since(t0)).unwrap_or_else(|| t0.elapsed()).as_secs_f64();
    rep.set("clients", n, None);
    rep.set("quit_sent", quits, None);
    rep.set("channels", channels, None);
    rep.set("users_before", before_users, None);
    rep.set("users_after", last_users, None);
    rep.set("completed", completed, None);
    rep.set("close_seconds", (close_secs * 1e4).round() / 1e4, None);
    rep.set("disconnect_seconds", (wall * 1000.0).round() / 1000.0, None);
    if completed {
        rep.note(format!(
            "{n} clients in {channels} channels closed at once ({quits} sent QUIT first; the generator closed them in {:.1} ms): LUSERS back to {baseline} after {wall:.3} s",
            close_secs * 1000.0
        ));
    } else {
        rep.note(format!(
            "{n} clients closed at once: after {wall:.0} s LUSERS still shows {last_users} users (wanted {baseline}); gave up"
        ));
    }
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        let secs = b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / ticks_per_second();
        rep.set("server_cpu_seconds", (secs * 1000.0).round() / 1000.0, None);
        rep.set("server_cpu_us_per_departure", (secs * 1e6 / n as f64).round(), None);
        rep.note(format!(
            "server CPU during the departures: {secs:.2} s ({:.0} µs per departure)",
            secs * 1e6 / n as f64
        ));
    }
    let unanswered = outstanding(&hist);
    rep.set("bystander_pings", sent_ns.len(), None);
    rep.set("bystander_pings_unanswered", unanswered, None);
    if !hist.is_empty() {
        let (max, p99) = (hist.max(), hist.value_at_quantile(0.99));
        rep.set("bystander_ping_max_ms", (max as f64 / 10.0).round() / 100.0, None);
        rep.set("bystander_ping_p99_ms", (p99 as f64 / 10.0).round() / 100.0, None);
        rep.note(format!(
            "bystander PING every {} ms: max {} p99 {} ({} PINGs, {unanswered} unanswered)",
            PING_EVERY.as_millis(),
            fmt_us(max),
            fmt_us(p99),
            sent_ns.len()
        ));
    }
    rep.latency("bystander_ping", &hist);
    by.close(0);
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lusers_count() {
        let l = ":irc.local 251 nick :There are 14999 users and 2 invisible on 1 servers";
        assert_eq!(lusers_users(l), Some(15001));
        assert_eq!(lusers_users(":irc.local 255 nick :I have 3 clients and 0 servers"), None);
    }
}
