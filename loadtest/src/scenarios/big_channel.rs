//! big-channel: one channel of N members. Times (medians of K tries): a JOIN until its 366,
//! NAMES until 366, and one PRIVMSG until it reached the last of the other N-1 members.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::{connect_all, join_all, parse_payload, payload, Result};
use crate::net::{now_ns, Pool};
use crate::report::{fmt_us, histogram, Report};
use crate::Opts;

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

pub fn big_channel(o: &Opts) -> Result<Report> {
    let n = o.members.max(2);
    let k = o.messages.max(1);
    let mut rep = Report::new("big-channel", o.server_pid);
    let mut pool = Pool::new().map_err(|e| e.to_string())?;
    let nicks: Vec<String> = (0..n).map(|i| format!("bc{i}")).collect();
    connect_all(&mut pool, o, &nicks, 0, Duration::from_secs(120))?;
    let chan = "#bigchannel";
    // Everyone but the last joins; the last one's JOINs are timed.
    let members: Vec<usize> = (0..n - 1).collect();
    join_all(&mut pool, &members, chan, Duration::from_secs(120))?;
    let last = n - 1;
    rep.start_window();
    let done = Cell::new(false);
    // The other members' copies of the timed client's own JOIN or PART, counted whenever they
    // arrive (before or after the timed client's reply).
    let source = format!(":{}!", nicks[last]);
    let seen = Cell::new(0usize);
    let counts = |ev_conn: usize, line: &str, verb: &str| {
        if ev_conn != last && line.starts_with(&source) && line.split(' ').nth(1) == Some(verb) {
            seen.set(seen.get() + 1);
        }
    };
    let until = |pool: &mut Pool, cmd: &str, stop: &str| -> Result<u64> {
        done.set(false);
        seen.set(0);
        let verb = cmd.split(' ').next().unwrap_or("");
        let t0 = now_ns();
        pool.send(last, cmd.as_bytes());
        let end = Cell::new(0u64);
        pool.run_until(
            Duration::from_secs(30),
            |_, ev| {
                counts(ev.conn, ev.line, verb);
                if ev.conn == last && ev.line.split(' ').nth(1) == Some(stop) {
                    end.set(ev.recv_ns);
                    done.set(true);
                }
            },
            |_| done.get(),
        )
        .map_err(|e| e.to_string())?;
        if !done.get() {
            return Err(format!("no {stop} after {}", cmd.trim()));
        }
        Ok((end.get().saturating_sub(t0)) / 1000)
    };
    // Until every other member has seen the timed client's JOIN or PART: each command is timed
    // on a server that has finished the previous one's fan-out (a server that answers the
    // requester before the members would otherwise have the next command wait behind it).
    let settle = |pool: &mut Pool, verb: &str| -> Result<()> {
        pool.run_until(Duration::from_secs(30), |_, ev| counts(ev.conn, ev.line, verb), |_| seen.get() >= n - 1)
            .map_err(|e| e.to_string())?;
        if seen.get() < n - 1 {
            return Err(format!("{verb} reached {} of {} members", seen.get(), n - 1));
        }
        Ok(())
    };
    let mut joins = Vec::new();
    let mut names = Vec::new();
    for i in 0..k {
        joins.push(until(&mut pool, &format!("JOIN {chan}\r\n"), "366")?);
        settle(&mut pool, "JOIN")?;
        names.push(until(&mut pool, &format!("NAMES {chan}\r\n"), "366")?);
        if i + 1 < k {
            until(&mut pool, &format!("PART {chan}\r\n"), "PART")?;
            settle(&mut pool, "PART")?;
        }
    }
    // Let the JOIN/PART notices reach everyone before timing messages.
    pool.run_until(Duration::from_millis(300), |_, _| {}, |_| false).map_err(|e| e.to_string())?;
    let mut last_arrival = Vec::new();
    let mut hist = histogram();
    for i in 0..k {
        let sent_ns = Cell::new(0u64);
        let (got, latest) = (Cell::new(0usize), Cell::new(0u64));
        let text = payload(i as u64);
        sent_ns.set(parse_payload(&format!(" :{text}")).map(|(ns, _)| ns).unwrap_or(0));
        pool.send(0, format!("PRIVMSG {chan} :{text}\r\n").as_bytes());
        let want = n - 1;
        pool.run_until(
            Duration::from_secs(30),
            |_, ev| {
                if let Some((ns, tag)) = parse_payload(ev.line) {
                    if tag == i as u64 {
                        got.set(got.get() + 1);
                        latest.set(latest.get().max(ev.recv_ns));
                        hist.record((ev.recv_ns.saturating_sub(ns) / 1000).max(1)).ok();
                    }
                }
            },
            |_| got.get() >= want,
        )
        .map_err(|e| e.to_string())?;
        if got.get() < want {
            return Err(format!("message {i} reached {} of {want} members", got.get()));
        }
        last_arrival.push(latest.get().saturating_sub(sent_ns.get()) / 1000);
        std::thread::sleep(Duration::from_millis(20));
    }
    let (j, nm, l) = (median(&mut joins), median(&mut names), median(&mut last_arrival));
    rep.set("members", n, None);
    rep.set("tries", k, None);
    rep.set("join_to_366_us", j, Some(format!("JOIN → 366 on a {n}-member channel: {} (median of {k})", fmt_us(j))));
    rep.set("names_us", nm, Some(format!("NAMES → 366: {} (median of {k})", fmt_us(nm))));
    rep.set(
        "privmsg_last_arrival_us",
        l,
        Some(format!("PRIVMSG → last of {} members: {} (median of {k})", n - 1, fmt_us(l))),
    );
    rep.latency("delivery", &hist);
    let _ = Instant::now();
    Ok(rep)
}
