//! history: IRCv3 `draft/chathistory`. Fills C channels with F messages each of L characters
//! (or, with `--private`, F private messages to the asker), at R messages/s, then one client
//! (the asker, with `batch server-time message-tags draft/chathistory`) sends
//! `CHATHISTORY LATEST <target> * LIMIT` N times, one after the other; each is timed from its
//! send to the closing `BATCH -id`. `--fill 0` queries what the server already keeps (a server
//! started on a filled store); `--queries 0` only fills.
//!
//! The fillers (one per 50 channels) pace themselves with a PING after every 200 messages and
//! at most two unanswered, so the server is never buried under a queue the generator made.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use super::{connect_all, join_all, Result};
use crate::net::{now_ns, Pool};
use crate::report::{histogram, Report};
use crate::Opts;

const PER_FILLER: usize = 50;
const PING_EVERY: usize = 200;

/// The `i`-th channel: the first is `--channel` itself (the one queried).
pub fn channel_name(base: &str, i: usize) -> String {
    if i == 0 {
        base.to_string()
    } else {
        format!("{base}-{i}")
    }
}

/// The verb and the parameters of a line, past its tags and source.
fn verb_params(line: &str) -> (&str, &str) {
    let mut l = line;
    if l.starts_with('@') {
        l = l.split_once(' ').map(|x| x.1).unwrap_or("");
    }
    if l.starts_with(':') {
        l = l.split_once(' ').map(|x| x.1).unwrap_or("");
    }
    l.split_once(' ').unwrap_or((l, ""))
}

pub fn history(o: &Opts) -> Result<Report> {
    let mut rep = Report::new("history", o.server_pid);
    let mut pool = Pool::new().map_err(|e| e.to_string())?;
    let channels = if o.private { 0 } else { o.channels.max(1) };
    let fillers = if o.fill == 0 { 0 } else { channels.div_ceil(PER_FILLER).max(1) };
    let asker_nick = "hasker".to_string();
    let mut nicks = vec![asker_nick.clone()];
    nicks.extend((0..fillers).map(|j| format!("hfill{j}")));
    connect_all(&mut pool, o, &nicks, 0, Duration::from_secs(60))?;
    let asker = 0;
    // The asker's port, to find its shard in the server's log ("Client connected: [127.0.0.1:PORT]").
    if let Ok(a) = pool.conns[asker].stream.local_addr() {
        rep.set("asker_port", a.port(), None);
    }

    // The asker's capabilities (only to query: a server without history refuses them, and
    // `--queries 0` can fill it all the same, as a control).
    if o.queries > 0 {
        pool.send(asker, b"CAP REQ :batch server-time message-tags draft/chathistory\r\n");
    }
    let acked = Cell::new(None::<bool>);
    pool.run_until(
        Duration::from_secs(10),
        |_, ev| {
            let (verb, params) = verb_params(ev.line);
            if ev.conn == asker && verb == "CAP" {
                if params.contains(" ACK ") {
                    acked.set(Some(true));
                } else if params.contains(" NAK ") {
                    acked.set(Some(false));
                }
            }
        },
        |_| acked.get().is_some() || o.queries == 0,
    )
    .map_err(|e| e.to_string())?;
    if o.queries > 0 && acked.get() != Some(true) {
        return Err("the server did not ACK batch server-time message-tags draft/chathistory".into());
    }

    // Everyone in their channels: the asker in the first, filler j in channels 50j..50j+49.
    let names: Vec<String> = (0..channels).map(|i| channel_name(&o.channel, i)).collect();
    for (i, name) in names.iter().enumerate() {
        let filler = 1 + i / PER_FILLER;
        let members: Vec<usize> =
            if i == 0 { vec![asker] } else { vec![] }.into_iter().chain((fillers > 0).then_some(filler)).collect();
        if !members.is_empty() {
            join_all(&mut pool, &members, name, Duration::from_secs(30))?;
        }
    }
    let target = if o.private { "hfill0".to_string() } else { names[0].clone() };

    // The fill.
    let text: String = "x".repeat(o.text_len.saturating_sub(9).max(1));
    let total = if o.private { o.fill } else { o.fill * channels };
    let mut sent = 0usize;
    let pongs = Cell::new(0usize);
    let mut pings = vec![0usize; fillers + 1];
    let start = Instant::now();
    let start_rss = o.server_pid.and_then(crate::report::sample_proc);
    if fillers > 0 {
        let per_filler: Vec<Vec<String>> = (0..fillers)
            .map(|j| {
                if o.private {
                    vec![asker_nick.clone()]
                } else {
                    names.iter().skip(j * PER_FILLER).take(PER_FILLER).cloned().collect()
                }
            })
            .collect();
        let mut next = vec![0usize; fillers];
        let mut per_sent = vec![0usize; fillers];
        let quota: Vec<usize> = per_filler.iter().map(|t| if o.private { o.fill } else { t.len() * o.fill }).collect();
        let answered = RefCell::new(vec![0usize; fillers + 1]);
        let deadline = start + o.duration;
        while sent < total {
            if Instant::now() > deadline {
                return Err(format!("the fill did not finish within {:?}: {sent} of {total} sent", o.duration));
            }
            // As many as the rate allows by now (0: no pacing), within each filler's window.
            let allowed = if o.rate > 0.0 { (start.elapsed().as_secs_f64() * o.rate) as usize + 1 } else { usize::MAX };
            let mut progressed = false;
            for j in 0..fillers {
                let c = 1 + j;
                while per_sent[j] < quota[j] && sent < allowed && pings[c] <= answered.borrow()[c] + 1 {
                    let t = &per_filler[j][next[j] % per_filler[j].len()];
                    next[j] += 1;
                    let line = format!("PRIVMSG {t} :{:08} {text}\r\n", per_sent[j]);
                    pool.send(c, line.as_bytes());
                    per_sent[j] += 1;
                    sent += 1;
                    progressed = true;
                    if per_sent[j] % PING_EVERY == 0 || per_sent[j] == quota[j] {
                        pings[c] += 1;
                        pool.send(c, format!("PING :fill{}\r\n", pings[c]).as_bytes());
                    }
                }
            }
            let wait = if progressed { Duration::ZERO } else { Duration::from_millis(1) };
            pool.poll(wait, |_, ev| {
                let (verb, params) = verb_params(ev.line);
                if verb == "PONG" && params.contains(":fill") {
                    answered.borrow_mut()[ev.conn] += 1;
                    pongs.set(pongs.get() + 1);
                }
            })
            .map_err(|e| e.to_string())?;
        }
        // Until every filler's last PING is answered.
        let want: usize = pings.iter().sum();
        pool.run_until(
            Duration::from_secs(120),
            |_, ev| {
                let (verb, params) = verb_params(ev.line);
                if verb == "PONG" && params.contains(":fill") {
                    pongs.set(pongs.get() + 1);
                }
            },
            |_| pongs.get() >= want,
        )
        .map_err(|e| e.to_string())?;
        if pongs.get() < want {
            return Err(format!("the fill's PINGs: {} of {want} answered", pongs.get()));
        }
    }
    let fill_s = start.elapsed().as_secs_f64();
    rep.set("filled", total, Some(format!("filled {total} messages in {fill_s:.1} s")));
    rep.set("fill_seconds", (fill_s * 1000.0).round() / 1000.0, None);
    if let (Some(b), Some(a)) = (start_rss, o.server_pid.and_then(crate::report::sample_proc)) {
        rep.set("server_rss_before_fill_kib", b.rss_kib, None);
        rep.set("server_rss_after_fill_kib", a.rss_kib, None);
    }
    // The last entries reach the channel's home shard after the sender's PONG: let them land.
    pool.run_until(Duration::from_millis(300), |_, _| {}, |_| false).map_err(|e| e.to_string())?;

    // The queries.
    rep.start_window();
    let mut hist = histogram();
    let mut entries = Vec::new();
    let cmd = format!("CHATHISTORY LATEST {target} * {}\r\n", o.limit);
    for _ in 0..o.queries {
        let (done, failed, got, end) =
            (Cell::new(false), RefCell::new(None::<String>), Cell::new(0usize), Cell::new(0u64));
        let inside = Cell::new(false);
        let t0 = now_ns();
        pool.send(asker, cmd.as_bytes());
        pool.run_until(
            Duration::from_secs(30),
            |_, ev| {
                if ev.conn != asker {
                    return;
                }
                let (verb, params) = verb_params(ev.line);
                match verb {
                    "BATCH" if params.starts_with('+') => inside.set(true),
                    "BATCH" if params.starts_with('-') => {
                        end.set(ev.recv_ns);
                        done.set(true);
                    }
                    "PRIVMSG" | "NOTICE" if inside.get() && ev.line.starts_with('@') && ev.line.contains("batch=") => {
                        got.set(got.get() + 1)
                    }
                    "FAIL" => *failed.borrow_mut() = Some(ev.line.to_string()),
                    _ => {}
                }
            },
            |_| done.get() || failed.borrow().is_some(),
        )
        .map_err(|e| e.to_string())?;
        if let Some(l) = failed.take() {
            return Err(format!("CHATHISTORY failed: {l}"));
        }
        if !done.get() {
            return Err("no BATCH -id within 30 s of a CHATHISTORY".into());
        }
        hist.record((end.get().saturating_sub(t0) / 1000).max(1)).ok();
        entries.push(got.get());
    }
    rep.end_window();
    if o.queries > 0 {
        entries.sort_unstable();
        let e = entries[entries.len() / 2];
        rep.set("queries", o.queries, None);
        rep.set(
            "entries_per_answer",
            e,
            Some(format!("CHATHISTORY LATEST {target} * {}: {e} entries per answer (median)", o.limit)),
        );
        rep.latency("chathistory", &hist);
    }
    Ok(rep)
}
