//! link-burst: the harness links to the server under test as a TS6 server of its own (the
//! dialect of ircd-hybrid 8.2, `shared/docs/ts6.md`) and measures what a server link costs:
//!
//! 1. **Burst in.** Peer A (`--peer-name`, `--peer-sid`) sends PASS/CAPAB/SERVER, waits for the
//!    server's SERVER, then its whole burst in one go: SVINFO, N `UID`s, one `SJOIN` per channel
//!    (C channels of M members, the first opped), EOB and `PING :<our SID>`. The server answers
//!    that PING only once it has processed every line before it (a link's lines run in order,
//!    on hybrid and on rustircd alike), so the time from the first burst byte written to the
//!    kernel receive time of the PONG is the burst time. Server CPU over that window comes from
//!    the threads' `schedstat` (`--server-pid`).
//! 2. Observers (one client per `--observer-channels` channels, connected before the link) join
//!    every burst channel; their NAMES must show every burst member (the burst checked).
//! 3. **Burst out.** Peer B (`--peer2-name`, `--peer2-sid`) links: the server bursts everything
//!    it knows to it — A, the N users, the observers, the channels. Time from B's SERVER sent to
//!    the server's own EOB received; its UIDs are counted. Then B closes. (`--no-burst-out`
//!    skips this.)
//! 4. **Per-hop propagation.** One message at a time, K of each (`--messages`): an observer's
//!    PRIVMSG to a burst user until it arrives at peer A, and back (A's user to the observer's
//!    UID); the same to and from a channel the observer shares with burst users. Send time in
//!    the message, receive time from the kernel.
//! 5. **Split.** A closes its socket (`--split close`, as a crash) or sends `SQUIT <server's
//!    SID>` (`--split squit`); the observers count the QUITs: each burst user must reach each
//!    observer sharing a channel with it exactly once, with `<server> <peer A>` as reason. Time
//!    from the close to the last QUIT's arrival; server CPU meanwhile.
//!
//! `--server` is where the links connect; the observers connect there too unless
//! `--client-server` names another port (hybrid takes servers on a `flags = server` listener).
//!
//! `--callgrind`: the server runs under valgrind's callgrind; at the end of each phase the harness
//! has it dump its counts (`vgdb ... dump <phase>`), so each dump holds one phase's instructions
//! (`scripts/link-perf.sh` with `CALLGRIND=1` sums them up). `LINK_BURST_TRACE=1` prints the lines
//! the peers get (for debugging a server's dialect).
//!
//! Needs a server with nothing else on it and a link block for both peers: name, password
//! (`--link-password`, both directions), from 127.0.0.1; the server must accept two server
//! links at once (hybrid: `hub = yes`) and give them a sendq for the burst (~1.5 MB for 10,000
//! users). Loopback only, every wait bounded, every socket closed at the end.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::mass_disconnect::lusers_users;
use super::{connect_all, parse_payload, payload, Result};
use crate::net::{now_ns, LineEvent, Pool};
use crate::report::{cpu_ns, fmt_us, histogram, own_cpu, Report};
use crate::Opts;

/// What ircd-hybrid 8.2 advertises (the harness plays a hybrid peer).
const CAPAB: &str = "MLOCK KNOCK KLN TBURST RESYNC ENCAP UNKLN DLN UNDLN RHOST CLUSTER EOB HOP";
/// Members per SJOIN line (10-character UIDs plus a prefix: well under 510 bytes).
const SJOIN_CHUNK: usize = 40;
const BURST_LIMIT: Duration = Duration::from_secs(300);
const PHASE_LIMIT: Duration = Duration::from_secs(60);
const MESSAGE_LIMIT: Duration = Duration::from_secs(5);

/// The `i`-th user's UID behind `sid`: hybrid's scheme, `<SID>` then `[A-Z][A-Z0-9]{5}`.
pub fn uid(sid: &str, i: usize) -> String {
    const DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rest = [0u8; 5];
    let mut x = i;
    for d in rest.iter_mut().rev() {
        *d = DIGITS[x % 36];
        x /= 36;
    }
    let mut s = String::with_capacity(9);
    s.push_str(sid);
    s.push((b'A' + (x % 26) as u8) as char);
    s.extend(rest.iter().map(|&b| b as char));
    s
}

/// Members (user indexes) of burst channel `ch`: M consecutive users, wrapping around.
fn members(ch: usize, m: usize, n: usize) -> impl Iterator<Item = usize> {
    (0..m).map(move |j| (ch * m + j) % n)
}

/// The burst after the handshake: SVINFO, UIDs, SJOINs, EOB, PING. Returns the bytes and the
/// number of lines.
pub fn burst(sid: &str, n: usize, c: usize, m: usize, unix: u64) -> (Vec<u8>, usize) {
    let mut b = Vec::with_capacity(n * 110 + c * (m * 11 + 60) + 100);
    let mut lines = 0;
    let mut line = |b: &mut Vec<u8>, s: String| {
        b.extend_from_slice(s.as_bytes());
        b.extend_from_slice(b"\r\n");
        lines += 1;
    };
    line(&mut b, format!(":{sid} SVINFO 6 6 0 :{unix}"));
    let ts = unix.saturating_sub(1000);
    for i in 0..n {
        let u = uid(sid, i);
        line(
            &mut b,
            format!(":{sid} UID lb{i} 1 {ts} +i lt lb.loadtest lb.loadtest 127.0.0.9 {u} * :loadtest burst user"),
        );
    }
    for ch in 0..c {
        let all: Vec<usize> = members(ch, m, n).collect();
        for (k, chunk) in all.chunks(SJOIN_CHUNK).enumerate() {
            let list: Vec<String> = chunk
                .iter()
                .enumerate()
                .map(|(j, &i)| if k == 0 && j == 0 { format!("@{}", uid(sid, i)) } else { uid(sid, i) })
                .collect();
            line(&mut b, format!(":{sid} SJOIN {ts} #lb{ch} +nt :{}", list.join(" ")));
        }
    }
    line(&mut b, format!(":{sid} EOB"));
    line(&mut b, format!("PING :{sid}"));
    (b, lines)
}

/// `[:source] VERB params... [:trailing]`.
pub fn split(line: &str) -> (Option<&str>, &str, Vec<&str>) {
    let (src, rest) = match line.strip_prefix(':') {
        Some(l) => match l.split_once(' ') {
            Some((s, r)) => (Some(s), r),
            None => (Some(l), ""),
        },
        None => (None, line),
    };
    let (head, trailing) = match rest.split_once(" :") {
        Some((h, t)) => (h, Some(t)),
        None => (rest, None),
    };
    let mut words = head.split(' ').filter(|w| !w.is_empty());
    let verb = words.next().unwrap_or("");
    let mut params: Vec<&str> = words.collect();
    if let Some(t) = trailing {
        params.push(t);
    }
    (src, verb, params)
}

/// The burst user index of nick `lb<i>`.
fn burst_index(nick: &str) -> Option<usize> {
    nick.strip_prefix("lb")?.parse().ok()
}

/// What the lines seen so far say.
struct State {
    observers: usize,
    a: usize,
    b: usize,
    sid: String,
    name: String,
    sid2: String,
    name2: String,
    server_name: String,
    server_sid: String,
    a_server_at: Option<u64>,
    a_eob_at: Option<u64>,
    a_pong_at: Option<u64>,
    a_lines: u64,
    /// nick → UID, from the server's burst to A and its later UID lines.
    uids: HashMap<String, String>,
    b_server_at: Option<u64>,
    b_eob_at: Option<u64>,
    b_lines: u64,
    b_bytes: u64,
    b_uids: u64,
    b_sjoin_members: u64,
    names_burst: u64,
    names_done: usize,
    lusers: Option<u64>,
    /// The timed message awaited (its tag, the connection it must reach), and its latency.
    expect: Option<(u64, usize)>,
    got_ns: Option<u64>,
    /// Per observer, per burst user: its QUIT seen.
    seen: Vec<Vec<bool>>,
    quits: u64,
    dup_quits: u64,
    bad_reasons: u64,
    quit_reason: String,
    first_quit: Option<u64>,
    last_quit: Option<u64>,
    errors: Vec<String>,
    /// `LINK_BURST_TRACE=1`: every line a peer gets is printed (B's UIDs and SJOINs excepted).
    trace: bool,
}

impl State {
    fn on_line(&mut self, p: &mut Pool, ev: LineEvent<'_>) {
        let (src, verb, params) = split(ev.line);
        if ev.conn < self.observers {
            match verb {
                "353" => {
                    let names = params.last().copied().unwrap_or("");
                    let burst =
                        names.split(' ').filter(|n| n.trim_start_matches(['@', '+', '%']).starts_with("lb")).count();
                    self.names_burst += burst as u64;
                }
                "366" => self.names_done += 1,
                // Only the asking observer's (every welcome has a 251 too).
                "251" if ev.conn == 0 => self.lusers = lusers_users(ev.line),
                "QUIT" if !self.seen.is_empty() => {
                    let nick = src.and_then(|s| s.split('!').next()).unwrap_or("");
                    let Some(i) = burst_index(nick) else { return };
                    let Some(slot) = self.seen.get_mut(ev.conn).and_then(|s| s.get_mut(i)) else { return };
                    if *slot {
                        self.dup_quits += 1;
                        return;
                    }
                    *slot = true;
                    self.quits += 1;
                    if params.first().copied() != Some(self.quit_reason.as_str()) {
                        self.bad_reasons += 1;
                    }
                    self.first_quit = Some(self.first_quit.map_or(ev.recv_ns, |f| f.min(ev.recv_ns)));
                    self.last_quit = Some(self.last_quit.map_or(ev.recv_ns, |l| l.max(ev.recv_ns)));
                }
                "PRIVMSG" => self.timed(&ev),
                _ => {}
            }
            return;
        }
        let is_a = ev.conn == self.a;
        if self.trace && (is_a || verb != "UID" && verb != "SJOIN") {
            eprintln!("{} {}: {}", ev.recv_ns, if is_a { "A" } else { "B" }, ev.line);
        }
        let (sid, name) = if is_a { (&self.sid, &self.name) } else { (&self.sid2, &self.name2) };
        if is_a {
            self.a_lines += 1;
        } else {
            self.b_lines += 1;
            self.b_bytes += ev.line.len() as u64 + 2;
        }
        match verb {
            "PING" => {
                let origin = params.first().copied().unwrap_or("");
                let pong = format!(":{sid} PONG {name} :{origin}\r\n");
                p.send(ev.conn, pong.as_bytes());
            }
            "SERVER" if src.is_none() && params.len() >= 3 => {
                self.server_name = params[0].to_string();
                self.server_sid = params[2].to_string();
                if is_a {
                    self.a_server_at = Some(ev.recv_ns);
                } else {
                    self.b_server_at = Some(ev.recv_ns);
                    // B's own burst: nothing but its end.
                    let unix = unix_now();
                    let end = format!(":{sid} SVINFO 6 6 0 :{unix}\r\n:{sid} EOB\r\n");
                    p.send(ev.conn, end.as_bytes());
                }
            }
            "ERROR" => {
                let who = if is_a { &self.name } else { &self.name2 };
                self.errors.push(format!("{who}: {}", ev.line));
            }
            "UID" if params.len() >= 9 => {
                if is_a {
                    self.uids.insert(params[0].to_string(), params[8].to_string());
                } else {
                    self.b_uids += 1;
                }
            }
            "SJOIN" if !is_a => {
                self.b_sjoin_members +=
                    params.last().map_or(0, |m| m.split(' ').filter(|x| !x.is_empty()).count()) as u64;
            }
            "EOB" if src == Some(self.server_sid.as_str()) => {
                let at = if is_a { &mut self.a_eob_at } else { &mut self.b_eob_at };
                at.get_or_insert(ev.recv_ns);
            }
            "PONG" if is_a && params.last().copied() == Some(self.sid.as_str()) => {
                self.a_pong_at.get_or_insert(ev.recv_ns);
            }
            "PRIVMSG" => self.timed(&ev),
            _ => {}
        }
    }

    fn timed(&mut self, ev: &LineEvent<'_>) {
        let Some((tag, conn)) = self.expect else { return };
        if conn != ev.conn {
            return;
        }
        if let Some((ns, t)) = parse_payload(ev.line) {
            if t == tag {
                self.got_ns = Some(ev.recv_ns.saturating_sub(ns));
            }
        }
    }

    /// An ERROR from the server, or link A gone, before the split.
    fn check(&self, pool: &Pool) -> Result<()> {
        if let Some(e) = self.errors.first() {
            return Err(format!("the server refused or dropped the link: {e}"));
        }
        let a = &pool.conns[self.a];
        if a.closed {
            let why = a.ended.as_deref().unwrap_or("closed");
            return Err(format!("the link of {} ended: {why}", self.name));
        }
        Ok(())
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Polls until `done` holds or `limit` passes; returns whether `done` held.
fn pump(pool: &mut Pool, st: &mut State, limit: Duration, mut done: impl FnMut(&State, &Pool) -> bool) -> Result<bool> {
    let deadline = Instant::now() + limit;
    loop {
        if done(st, pool) {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        pool.poll(Duration::from_millis(2), |p, ev| st.on_line(p, ev)).map_err(|e| e.to_string())?;
    }
}

/// With `--callgrind`: the server (valgrind's PID) dumps its counts so far under `phase`, so
/// that each dump holds one phase's instructions. `vgdb` is not allowed to wake the server
/// through ptrace (that leaves a server running as another user stopped); an observer's PINGs
/// keep it running until valgrind takes the command.
fn dump(o: &Opts, pool: &mut Pool, st: &mut State, phase: &str) -> Result<()> {
    let (true, Some(pid)) = (o.callgrind, o.server_pid) else { return Ok(()) };
    // vgdb finds the server only as the server's own user (hybrid runs as nobody).
    let owner = |key: &str| -> Option<u32> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        s.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let vgdb = ["vgdb".to_string(), "--max-invoke-ms=0".into(), format!("--pid={pid}"), "dump".into(), phase.into()];
    let mut cmd = match (owner("Uid:"), owner("Gid:")) {
        (Some(u), Some(g)) if u != me && me == 0 => {
            let mut c = std::process::Command::new("setpriv");
            c.args([format!("--reuid={u}"), format!("--regid={g}"), "--clear-groups".into()]).args(&vgdb);
            c
        }
        _ => {
            let mut c = std::process::Command::new(&vgdb[0]);
            c.args(&vgdb[1..]);
            c
        }
    };
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("vgdb: {e}"))?;
    let deadline = Instant::now() + PHASE_LIMIT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if !status.success() {
                return Err(format!("vgdb --pid={pid} dump {phase} failed"));
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("vgdb --pid={pid} dump {phase}: no answer within {PHASE_LIMIT:?}"));
        }
        pool.send(0, b"PING :callgrind\r\n");
        pool.poll(Duration::from_millis(10), |p, ev| st.on_line(p, ev)).map_err(|e| e.to_string())?;
    }
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e4).round() / 100.0
}

/// Server CPU (ms) between two samples.
fn cpu_ms(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    Some(ms(b?.saturating_sub(a?)))
}

pub fn link_burst(o: &Opts) -> Result<Report> {
    let n = o.users.max(1);
    let c = o.channels;
    let m = o.per_channel.min(n);
    let k_msgs = o.messages;
    let oc = o.observer_channels;
    let observers = c.div_ceil(oc).max(1);
    let chans_of = |i: usize| (i * oc)..((i + 1) * oc).min(c);
    let say = |s: &str| {
        if o.progress {
            eprintln!("link-burst: {s}");
        }
    };
    let mut rep = Report::new("link-burst", o.server_pid);
    let cpu = || o.server_pid.and_then(cpu_ns);

    // The observers, before the link: they are in the server's burst to A.
    let mut pool = Pool::new().map_err(|e| e.to_string())?;
    let nicks: Vec<String> = (0..observers).map(|i| format!("ltobs{i}")).collect();
    let mut co = o.clone();
    co.server = o.client_server.unwrap_or(o.server);
    connect_all(&mut pool, &co, &nicks, 0, PHASE_LIMIT)?;
    say(&format!("{observers} observers registered"));

    let a = pool.connect_raw(o.server, &o.peer_name).map_err(|e| super::connect_error(o.server, &e))?;
    let mut st = State {
        observers,
        a,
        b: usize::MAX,
        sid: o.peer_sid.clone(),
        name: o.peer_name.clone(),
        sid2: o.peer2_sid.clone(),
        name2: o.peer2_name.clone(),
        server_name: String::new(),
        server_sid: String::new(),
        a_server_at: None,
        a_eob_at: None,
        a_pong_at: None,
        a_lines: 0,
        uids: HashMap::new(),
        b_server_at: None,
        b_eob_at: None,
        b_lines: 0,
        b_bytes: 0,
        b_uids: 0,
        b_sjoin_members: 0,
        names_burst: 0,
        names_done: 0,
        lusers: None,
        expect: None,
        got_ns: None,
        seen: Vec::new(),
        quits: 0,
        dup_quits: 0,
        bad_reasons: 0,
        quit_reason: String::new(),
        first_quit: None,
        last_quit: None,
        errors: Vec::new(),
        trace: std::env::var_os("LINK_BURST_TRACE").is_some_and(|v| v == "1"),
    };
    let hello = |pw: &str, sid: &str, name: &str| {
        format!("PASS {pw} TS 6 :{sid}\r\nCAPAB :{CAPAB}\r\nSERVER {name} 1 {sid} + :rustircd-loadtest link peer\r\n")
    };

    // 1. Handshake and burst in.
    let t_hello = now_ns();
    pool.send(a, hello(&o.link_password, &o.peer_sid, &o.peer_name).as_bytes());
    let ok = pump(&mut pool, &mut st, Duration::from_secs(30), |s, p| {
        s.a_server_at.is_some() || !s.errors.is_empty() || p.conns[a].closed
    })?;
    st.check(&pool)?;
    if !ok {
        return Err("no SERVER from the server within 30 s".into());
    }
    let handshake_ns = st.a_server_at.unwrap_or(t_hello).saturating_sub(t_hello);
    let (bytes, lines) = burst(&o.peer_sid, n, c, m, unix_now());
    say(&format!(
        "linked to {} ({}); sending a burst of {lines} lines, {} bytes",
        st.server_name,
        st.server_sid,
        bytes.len()
    ));
    let written = Cell::new(None);
    dump(o, &mut pool, &mut st, "setup")?;
    let (cpu0, own0) = (cpu(), own_cpu());
    let t0 = now_ns();
    pool.send(a, &bytes);
    let ok = pump(&mut pool, &mut st, BURST_LIMIT, |s, p| {
        if written.get().is_none() && p.unsent(a) == 0 {
            written.set(Some(now_ns()));
        }
        s.a_pong_at.is_some() || !s.errors.is_empty() || p.conns[a].closed
    })?;
    let (cpu1, own1) = (cpu(), own_cpu());
    st.check(&pool)?;
    if !ok {
        return Err(format!("no PONG to the post-burst PING within {BURST_LIMIT:?}"));
    }
    dump(o, &mut pool, &mut st, "burst_in")?;
    let burst_in = st.a_pong_at.unwrap_or(t0).saturating_sub(t0);
    let write_ns = written.get().unwrap_or(t0).saturating_sub(t0);
    // Right after the PONG: does an observer's LUSERS count everyone? (The PONG says the
    // link's own shard applied the burst; this asks another connection's.)
    st.lusers = None;
    pool.send(0, b"LUSERS\r\n");
    pump(&mut pool, &mut st, PHASE_LIMIT, |s, _| s.lusers.is_some())?;
    let lusers_after_pong = st.lusers.unwrap_or(0);
    rep.set("users", n, None);
    rep.set("channels", c, None);
    rep.set("per_channel", m, None);
    rep.set("observers", observers, None);
    rep.set("server_name", st.server_name.clone(), None);
    rep.set("handshake_us", handshake_ns / 1000, None);
    rep.set("burst_lines", lines, None);
    rep.set("burst_bytes", bytes.len(), None);
    rep.set(
        "burst_in_ms",
        ms(burst_in),
        Some(format!(
            "burst in: {lines} lines ({} KiB) → PONG after {:.1} ms (the burst was all written after {:.1} ms); handshake {}",
            bytes.len() / 1024,
            ms(burst_in),
            ms(write_ns),
            fmt_us(handshake_ns / 1000)
        )),
    );
    rep.set("burst_in_write_ms", ms(write_ns), None);
    if let Some(cms) = cpu_ms(cpu0, cpu1) {
        rep.set("burst_in_server_cpu_ms", cms, Some(format!("server CPU during the burst in: {cms:.1} ms")));
    }
    rep.set("burst_in_generator_cpu_ms", ((own1 - own0) * 1e5).round() / 100.0, None);
    rep.set(
        "lusers_after_pong",
        lusers_after_pong,
        Some(format!("LUSERS right after the PONG: {lusers_after_pong} users (expected {})", n + observers)),
    );
    let their_eob = st.a_eob_at.map(|e| ms(e.saturating_sub(st.a_server_at.unwrap_or(e))));
    rep.set("server_burst_to_a_lines", st.a_lines, None);
    if let Some(e) = their_eob {
        rep.set("server_burst_to_a_ms", e, None);
    }

    // 2. The observers join every channel; their NAMES must show every burst member.
    let tj = now_ns();
    for i in 0..observers {
        let mut joins = String::new();
        for ch in chans_of(i) {
            joins += &format!("JOIN #lb{ch}\r\n");
        }
        pool.send(i, joins.as_bytes());
    }
    let ok = pump(&mut pool, &mut st, PHASE_LIMIT, |s, _| s.names_done >= c)?;
    st.check(&pool)?;
    if !ok {
        return Err(format!("observers got {} of {c} NAMES ends within {PHASE_LIMIT:?}", st.names_done));
    }
    let want_names = (c * m) as u64;
    rep.set("joins_ms", ms(now_ns() - tj), None);
    rep.set("names_burst_members", st.names_burst, None);
    if st.names_burst != want_names {
        return Err(format!(
            "NAMES showed {} burst members in the {c} channels, expected {want_names}",
            st.names_burst
        ));
    }
    dump(o, &mut pool, &mut st, "joins")?;
    say(&format!("burst in {:.1} ms; observers joined {c} channels and see all {want_names} members", ms(burst_in)));

    // 3. Burst out: a second peer links and takes the server's whole burst.
    if o.burst_out {
        let b = pool.connect_raw(o.server, &o.peer2_name).map_err(|e| super::connect_error(o.server, &e))?;
        st.b = b;
        let cpu0 = cpu();
        let t = now_ns();
        pool.send(b, hello(&o.link_password, &o.peer2_sid, &o.peer2_name).as_bytes());
        let ok = pump(&mut pool, &mut st, BURST_LIMIT, |s, p| {
            s.b_eob_at.is_some() || !s.errors.is_empty() || p.conns[b].closed
        })?;
        let cpu1 = cpu();
        st.check(&pool)?;
        if st.b_eob_at.is_none() && pool.conns[b].closed {
            let why = pool.conns[b].ended.as_deref().unwrap_or("closed");
            return Err(format!("the link of {} ended before the server's EOB: {why}", o.peer2_name));
        }
        if !ok {
            return Err(format!(
                "no EOB from the server to {} within {BURST_LIMIT:?} ({} lines)",
                o.peer2_name, st.b_lines
            ));
        }
        let out = st.b_eob_at.unwrap_or(t).saturating_sub(t);
        let hs = st.b_server_at.unwrap_or(t).saturating_sub(t);
        rep.set(
            "burst_out_ms",
            ms(out),
            Some(format!(
                "burst out: {} lines ({} KiB, {} UIDs, {} SJOIN members) until the server's EOB: {:.1} ms (its SERVER after {})",
                st.b_lines,
                st.b_bytes / 1024,
                st.b_uids,
                st.b_sjoin_members,
                ms(out),
                fmt_us(hs / 1000)
            )),
        );
        rep.set("burst_out_lines", st.b_lines, None);
        rep.set("burst_out_bytes", st.b_bytes, None);
        rep.set("burst_out_uids", st.b_uids, None);
        rep.set("burst_out_sjoin_members", st.b_sjoin_members, None);
        if let Some(cms) = cpu_ms(cpu0, cpu1) {
            rep.set("burst_out_server_cpu_ms", cms, Some(format!("server CPU during the burst out: {cms:.1} ms")));
        }
        if st.b_uids != (n + observers) as u64 {
            return Err(format!("the burst out had {} UIDs, expected {}", st.b_uids, n + observers));
        }
        dump(o, &mut pool, &mut st, "burst_out")?;
        pool.close(b);
        // Let the server take B's departure before messages are timed.
        pool.run_until(Duration::from_millis(300), |_, _| {}, |_| false).map_err(|e| e.to_string())?;
        dump(o, &mut pool, &mut st, "b_gone")?;
        say(&format!("burst out {:.1} ms", ms(out)));
    }

    // 4. Per-hop propagation, one message at a time.
    let obs_nick = pool.conns[0].nick.clone();
    let obs_uid =
        st.uids.get(&obs_nick).cloned().ok_or_else(|| format!("no UID for {obs_nick} in the server's burst"))?;
    let first_chan = chans_of(0).start;
    let obs_chans = chans_of(0).len().max(1);
    let mut tag = 0u64;
    let dirs = ["client_to_peer_privmsg", "peer_to_client_privmsg", "client_to_peer_channel", "peer_to_client_channel"];
    let mut lost_total = 0;
    for (d, label) in dirs.iter().enumerate() {
        let mut hist = histogram();
        let mut lost = 0;
        for i in 0..k_msgs {
            tag += 1;
            let user = i % n;
            let ch = first_chan + i % obs_chans;
            let text = payload(tag);
            let (line, from, to) = match d {
                0 => (format!("PRIVMSG lb{user} :{text}\r\n"), 0, a),
                1 => (format!(":{} PRIVMSG {obs_uid} :{text}\r\n", uid(&o.peer_sid, user)), a, 0),
                2 => (format!("PRIVMSG #lb{ch} :{text}\r\n"), 0, a),
                _ => (
                    format!(":{} PRIVMSG #lb{ch} :{text}\r\n", uid(&o.peer_sid, members(ch, m, n).next().unwrap_or(0))),
                    a,
                    0,
                ),
            };
            st.expect = Some((tag, to));
            st.got_ns = None;
            pool.send(from, line.as_bytes());
            pump(&mut pool, &mut st, MESSAGE_LIMIT, |s, _| s.got_ns.is_some())?;
            st.check(&pool)?;
            match st.got_ns {
                Some(ns) => {
                    hist.record((ns / 1000).max(1)).ok();
                }
                None => lost += 1,
            }
        }
        st.expect = None;
        lost_total += lost;
        rep.latency(label, &hist);
        if lost > 0 {
            rep.note(format!("{label}: {lost} of {k_msgs} messages never arrived"));
        }
    }
    rep.set("messages_per_direction", k_msgs, None);
    rep.set("messages_lost", lost_total, None);

    dump(o, &mut pool, &mut st, "messages")?;

    // 5. The split.
    // Each observer must see each burst user sharing one of its channels quit once.
    let mut expected = 0u64;
    for i in 0..observers {
        let mut shared = vec![false; n];
        for ch in chans_of(i) {
            for u in members(ch, m, n) {
                shared[u] = true;
            }
        }
        expected += shared.iter().filter(|&&w| w).count() as u64;
    }
    st.seen = vec![vec![false; n]; observers];
    st.quit_reason = format!("{} {}", st.server_name, o.peer_name);
    let cpu0 = cpu();
    let t = now_ns();
    if o.split_squit {
        let line = format!("SQUIT {} :loadtest split\r\n", st.server_sid);
        pool.send(a, line.as_bytes());
    } else {
        pool.close(a);
    }
    let completed = pump(&mut pool, &mut st, PHASE_LIMIT, |s, _| s.quits >= expected)?;
    let cpu1 = cpu();
    dump(o, &mut pool, &mut st, "split")?;
    // Late duplicates would show within this.
    pool.run_until(Duration::from_millis(300), |p, ev| st.on_line(p, ev), |_| false).map_err(|e| e.to_string())?;
    let last = st.last_quit.map_or(0, |l| l.saturating_sub(t));
    let first = st.first_quit.map_or(0, |f| f.saturating_sub(t));
    let how = if o.split_squit { "SQUIT" } else { "link closed" };
    rep.set("split", how, None);
    rep.set("split_completed", completed, None);
    rep.set("split_quits_expected", expected, None);
    rep.set("split_quits_seen", st.quits, None);
    rep.set("split_quits_duplicate", st.dup_quits, None);
    rep.set("split_quits_bad_reason", st.bad_reasons, None);
    rep.set("split_first_quit_ms", ms(first), None);
    rep.set(
        "split_last_quit_ms",
        ms(last),
        Some(format!(
            "split ({how}): {} of {expected} QUITs at the observers ({} twice, {} with another reason than {:?}); first after {:.1} ms, last after {:.1} ms",
            st.quits,
            st.dup_quits,
            st.bad_reasons,
            st.quit_reason,
            ms(first),
            ms(last)
        )),
    );
    if let Some(cms) = cpu_ms(cpu0, cpu1) {
        rep.set("split_server_cpu_ms", cms, Some(format!("server CPU during the split: {cms:.1} ms")));
    }
    say(&format!("split: last QUIT after {:.1} ms", ms(last)));
    for i in 0..pool.conns.len() {
        pool.close(i);
    }
    if !completed {
        rep.note(format!("the split did not complete within {PHASE_LIMIT:?}"));
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_follow_hybrids_scheme() {
        assert_eq!(uid("9LA", 0), "9LAAAAAAA");
        assert_eq!(uid("9LA", 1), "9LAAAAAAB");
        assert_eq!(uid("9LA", 26), "9LAAAAAA0");
        assert_eq!(uid("9LA", 36), "9LAAAAABA");
        assert_eq!(uid("9LA", 36usize.pow(5)), "9LABAAAAA");
        let all: std::collections::HashSet<String> = (0..50_000).map(|i| uid("9LA", i)).collect();
        assert_eq!(all.len(), 50_000);
    }

    #[test]
    fn the_burst_has_every_user_and_member() {
        let (b, lines) = burst("9LA", 100, 7, 30, 1_800_000_000);
        let text = String::from_utf8(b).unwrap();
        assert_eq!(text.lines().count(), lines);
        assert!(text.lines().all(|l| l.len() <= 510), "a line over 510 bytes");
        assert_eq!(text.lines().filter(|l| split(l).1 == "UID").count(), 100);
        let members: usize =
            text.lines().filter(|l| split(l).1 == "SJOIN").map(|l| split(l).2.last().unwrap().split(' ').count()).sum();
        assert_eq!(members, 7 * 30);
        assert!(text.ends_with(":9LA EOB\r\nPING :9LA\r\n"));
        let first = text.lines().nth(1).unwrap();
        let (src, verb, p) = split(first);
        assert_eq!((src, verb, p.len(), p[8]), (Some("9LA"), "UID", 11, "9LAAAAAAA"));
    }

    #[test]
    fn lines_split_into_source_verb_params() {
        let (s, v, p) = split(":0TS PONG irc.test.local :9LA");
        assert_eq!((s, v, p), (Some("0TS"), "PONG", vec!["irc.test.local", "9LA"]));
        let (s, v, p) = split("SERVER irc.x 1 0TS + :a server");
        assert_eq!((s, v, p), (None, "SERVER", vec!["irc.x", "1", "0TS", "+", "a server"]));
    }
}
