//! Event-reordering tests (issue 12): random scripts of users on different shards joining,
//! parting, talking, renaming, kicking, setting modes and topics, and quitting, run by
//! [`Sim::run_script`] with mesh messages delivered in a random order (FIFO within each pair
//! of shards, anything across pairs) and interleaved at random with the users' input. After
//! all is delivered, what every user received is parsed and checked against the guarantees of
//! `docs/architecture.md`:
//!
//! - every shard agrees and nothing is held back ([`Sim::check_consistent`]);
//! - every command of every user is processed, once, in order (each step ends with a `PING`
//!   whose `PONG` marks the end of the step's replies), and every JOIN is answered (366, an
//!   error numeric naming the channel, or nothing because the user was already there);
//! - every observer sees what one sender did at most once and in the sender's order (JOIN,
//!   PRIVMSG, PART, NICK, KICK, MODE, TOPIC, QUIT form a subsequence of the sender's script);
//! - a client that keeps its channels' state from what it was shown (JOIN/PART/KICK/QUIT,
//!   NAMES, MODE +o/+v, TOPIC) ends with every shard's state, and is shown nothing about a
//!   channel it is not in.
//!
//! Three properties fail today, each through a bug these tests found, and are `#[ignore]`d so
//! that the suite stays green: the client's view (`random_interleavings_client_view`) and a
//! QUIT shown once (`random_interleavings_quit_once`); the three `#[ignore]`d tests at the end
//! reproduce the bugs in a few deliveries each.
//!
//! The scheduler may read a client's input while messages for its shard wait, which the
//! runtime avoids only for causal order (`docs/architecture.md`, "Causal order across
//! shards"); a script's steps do not depend on what their clients were shown, so every
//! interleaving here is one the runtime can produce (messages not yet delivered being still in
//! their sender's batch).
//!
//! A failure prints the seed and the script; `REORDER_SEED=<seed> cargo test --lib
//! sim::reorder::replay -- --nocapture` runs that seed alone and prints what each user got.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use super::{Sim, SplitMix64, Step};
use crate::commands::envelope::{Answer, Ordered, Request};
use crate::commands::{Conn, Env};
use crate::config::Config;

/// What a sender does that an observer may be shown.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Join(String),
    Part(String, String),
    /// A PRIVMSG's text (unique per sender), to a channel or a user.
    Msg(String),
    Nick(String),
    /// Channel, kicked user, reason.
    Kick(String, usize, String),
    /// Channel, mode change (`+o`, `-v`, `+m`...), the user it is about (`NONE` for flags).
    Mode(String, String, usize),
    Topic(String, String),
    Quit,
}

const NONE: usize = usize::MAX;

struct ScriptUser {
    shard: usize,
    conn: Conn,
    nick: String,
    /// A counter making message texts, reasons, topics and nicks unique.
    k: u32,
    quit: bool,
}

/// One script line with what it may show others, and whether a PONG ends it.
struct Planned {
    user: usize,
    line: String,
    evs: Vec<Ev>,
    joins: Vec<String>,
    ping: Option<String>,
    /// Done before the script (u0 creating the channels), with `feed`.
    setup: bool,
}

struct Case {
    seed: u64,
    cores: usize,
    chans: Vec<String>,
    users: Vec<ScriptUser>,
    plan: Vec<Planned>,
}

fn config() -> Arc<Config> {
    let mut cfg = Config::embedded();
    for c in &mut cfg.classes {
        // No fake lag (time-based, and the sim runs no timers) and no per-address limits
        // (every user comes from 127.0.0.1).
        c.exempt = true;
    }
    Arc::new(cfg)
}

/// A channel name whose home is `shard` (of `cores`), other than those in `taken`.
fn homed_at(sim: &Sim, shard: usize, cores: usize, taken: &[String]) -> String {
    let cm = sim.shards[0].0.cm;
    (0..).map(|i| format!("#h{i}")).find(|n| cm.fold(n).owner(cores) == shard && !taken.contains(n)).expect("some name")
}

/// The user a nick (`u3`, `u3x7`) or username (`~u3`) stands for.
fn user_of(name: &str) -> Option<usize> {
    let rest = name.trim_start_matches(['~', '@', '+', '%', '&', '~']);
    let digits: String = rest.strip_prefix('u')?.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Users, channels (one homed at each shard, one more), the first user in all of them as their
/// operator, then a random script of `steps` steps.
fn make_case(seed: u64, cores: usize, steps: usize) -> (Sim, Case) {
    let mut sim = Sim::new(config(), cores, true);
    let mut rng = SplitMix64::new(seed ^ 0x005e_ed5c_4197);
    let mut chans = Vec::new();
    for s in 0..cores {
        let c = homed_at(&sim, s, cores, &chans);
        chans.push(c);
    }
    let extra = homed_at(&sim, rng.below(cores), cores, &chans);
    chans.push(extra);
    let n_users = if cores == 2 { 4 } else { 5 };
    let mut users = Vec::new();
    for i in 0..n_users {
        let shard = i % cores;
        let nick = format!("u{i}");
        // multi-prefix: NAMES shows every status (a voiced operator too), as the client's view
        // of its channels needs.
        let conn = sim.connect(shard);
        let reg =
            format!("CAP LS 302\r\nNICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nCAP REQ :multi-prefix\r\nCAP END\r\n");
        sim.feed(shard, conn, reg.as_bytes());
        users.push(ScriptUser { shard, conn, nick, k: 0, quit: false });
    }
    let setup = format!("JOIN {}", chans.join(","));
    sim.feed(0, users[0].conn, format!("{setup}\r\n").as_bytes());
    let evs = chans.iter().map(|c| Ev::Join(c.clone())).collect();
    let mut plan = vec![Planned { user: 0, line: setup, evs, joins: vec![], ping: None, setup: true }];
    for step in 0..steps {
        let live: Vec<usize> = (0..users.len()).filter(|&i| !users[i].quit).collect();
        if live.is_empty() {
            break;
        }
        let i = live[rng.below(live.len())];
        let ch = chans[rng.below(chans.len())].clone();
        let other = rng.below(users.len());
        let target = users[other].nick.clone();
        let u = &mut users[i];
        u.k += 1;
        let tag = format!("{i}.{}", u.k);
        let roll = rng.below(100);
        let (line, evs, joins) = match roll {
            0..=24 => (format!("PRIVMSG {ch} :m{tag}"), vec![Ev::Msg(format!("m{tag}"))], vec![]),
            25..=29 => (format!("PRIVMSG {target} :d{tag}"), vec![Ev::Msg(format!("d{tag}"))], vec![]),
            30..=44 => (format!("JOIN {ch}"), vec![Ev::Join(ch.clone())], vec![ch]),
            45..=48 => {
                let ch2 = chans[rng.below(chans.len())].clone();
                if ch2 == ch {
                    (format!("JOIN {ch}"), vec![Ev::Join(ch.clone())], vec![ch])
                } else {
                    let evs = vec![Ev::Join(ch.clone()), Ev::Join(ch2.clone())];
                    (format!("JOIN {ch},{ch2}"), evs, vec![ch, ch2])
                }
            }
            49..=58 => (format!("PART {ch} :p{tag}"), vec![Ev::Part(ch, format!("p{tag}"))], vec![]),
            59..=65 => {
                u.nick = format!("u{i}x{}", u.k);
                (format!("NICK {}", u.nick), vec![Ev::Nick(u.nick.clone())], vec![])
            }
            66..=73 => (format!("KICK {ch} {target} :k{tag}"), vec![Ev::Kick(ch, other, format!("k{tag}"))], vec![]),
            74..=83 => {
                let m = ["+o", "-o", "+v", "-v"][rng.below(4)];
                (format!("MODE {ch} {m} {target}"), vec![Ev::Mode(ch, m.into(), other)], vec![])
            }
            84..=86 => {
                let m = ["+m", "-m", "-t", "+t"][rng.below(4)];
                (format!("MODE {ch} {m}"), vec![Ev::Mode(ch, m.into(), NONE)], vec![])
            }
            87..=94 => (format!("TOPIC {ch} :t{tag}"), vec![Ev::Topic(ch, format!("t{tag}"))], vec![]),
            _ if step < steps / 3 || live.len() <= 2 => {
                (format!("PRIVMSG {ch} :m{tag}"), vec![Ev::Msg(format!("m{tag}"))], vec![])
            }
            _ => {
                u.quit = true;
                (format!("QUIT :q{tag}"), vec![Ev::Quit], vec![])
            }
        };
        let ping = (!u.quit).then(|| format!("s{}", plan.len()));
        plan.push(Planned { user: i, line, evs, joins, ping, setup: false });
    }
    for u in &mut users {
        u.quit = false;
    }
    (sim, Case { seed, cores, chans, users, plan })
}

impl Case {
    fn steps(&self) -> Vec<Step> {
        self.plan
            .iter()
            .filter(|p| !p.setup)
            .map(|p| {
                let u = &self.users[p.user];
                let mut line = format!("{}\r\n", p.line);
                if let Some(t) = &p.ping {
                    let _ = write!(line, "PING :{t}\r\n");
                }
                Step { shard: u.shard, conn: u.conn, line }
            })
            .collect()
    }

    fn script_text(&self) -> String {
        let mut s = format!(
            "seed {} ({} shards; channels {:?}; u<i> on shard i%{}; u0 joined all channels first)\n",
            self.seed, self.cores, self.chans, self.cores
        );
        for (n, p) in self.plan.iter().enumerate() {
            let _ = writeln!(s, "  {n:2}: u{} (shard {}): {}", p.user, self.users[p.user].shard, p.line);
        }
        s
    }
}

/// An IRC line: source, verb, parameters.
struct Parsed<'a> {
    source: Option<&'a str>,
    verb: &'a str,
    params: Vec<&'a str>,
}

fn parse(line: &str) -> Parsed<'_> {
    let mut rest = line;
    let mut source = None;
    if let Some(r) = rest.strip_prefix(':') {
        let (s, r) = r.split_once(' ').unwrap_or((r, ""));
        source = Some(s);
        rest = r;
    }
    let (verb, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut params = Vec::new();
    while !rest.is_empty() {
        if let Some(t) = rest.strip_prefix(':') {
            params.push(t);
            break;
        }
        let (p, r) = rest.split_once(' ').unwrap_or((rest, ""));
        params.push(p);
        rest = r;
    }
    Parsed { source, verb, params }
}

/// A channel as a client keeps it from what it is shown.
#[derive(Default, Debug, PartialEq, Eq)]
struct Tracked {
    /// User → (op, voice).
    members: BTreeMap<usize, (bool, bool)>,
    topic: Option<String>,
}

/// Which properties to check (the order, answers and consistency always are).
#[derive(Clone, Copy, Debug)]
struct Checks {
    /// No QUIT shown twice to one observer (a NICK, PART, KICK, TOPIC or message twice always
    /// fails).
    quit_once: bool,
    /// The client's own model of its channels (see the module's documentation).
    view: bool,
}

impl Checks {
    const ALL: Checks = Checks { quit_once: true, view: true };
}

/// Checks what user `me` received; returns the violations found.
fn check_observer(case: &Case, sim: &Sim, me: usize, checks: Checks, bad: &mut Vec<String>) {
    let u = &case.users[me];
    let text = sim.text(u.shard, u.conn);
    let mut chans: BTreeMap<String, Tracked> = BTreeMap::new();
    // Each sender's steps.
    let scripts: Vec<Vec<&Planned>> =
        (0..case.users.len()).map(|s| case.plan.iter().filter(|p| p.user == s).collect()).collect();
    // Per sender: the steps before `.0` are passed; `.1`: what the last of them may still show.
    let mut cursor: Vec<(usize, Vec<Ev>)> = vec![(0, Vec::new()); case.users.len()];
    let mut seen: Vec<Vec<Ev>> = vec![Vec::new(); case.users.len()];
    // My steps expecting a PONG, in order; the one being answered; its JOIN answers so far.
    let mine: Vec<&Planned> = scripts[me].iter().copied().filter(|p| p.ping.is_some()).collect();
    let mut next_pong = 0;
    let mut answered: BTreeSet<String> = BTreeSet::new();
    let mut member_at_some_point: BTreeSet<String> = chans.keys().cloned().collect();
    let mut names: BTreeMap<String, BTreeMap<usize, (bool, bool)>> = BTreeMap::new();
    let mut closed = false;
    let say = |bad: &mut Vec<String>, what: String| bad.push(format!("u{me}: {what}"));
    let view = |bad: &mut Vec<String>, what: String| {
        if checks.view {
            bad.push(format!("u{me} [client view]: {what}"))
        }
    };
    for raw in text.split("\r\n").filter(|l| !l.is_empty()) {
        let l = parse(raw);
        if closed {
            say(bad, format!("line after ERROR: {raw}"));
        }
        let sender = l.source.and_then(|s| s.split_once('!')).and_then(|(_, r)| user_of(r.split('@').next()?));
        let chan = l.params.first().map(|c| c.to_string()).unwrap_or_default();
        // The event, for the per-sender check.
        let ev = match (l.verb, sender) {
            (_, None) => None,
            ("JOIN", _) => Some(Ev::Join(chan.clone())),
            ("PART", _) => Some(Ev::Part(chan.clone(), l.params.get(1).unwrap_or(&"").to_string())),
            ("PRIVMSG", _) => Some(Ev::Msg(l.params.get(1).unwrap_or(&"").to_string())),
            ("NICK", _) => Some(Ev::Nick(chan.clone())),
            ("KICK", _) => Some(Ev::Kick(
                chan.clone(),
                l.params.get(1).and_then(|n| user_of(n)).unwrap_or(NONE),
                l.params.get(2).unwrap_or(&"").to_string(),
            )),
            ("MODE", _) => Some(Ev::Mode(
                chan.clone(),
                l.params.get(1).unwrap_or(&"").to_string(),
                l.params.get(2).and_then(|n| user_of(n)).unwrap_or(NONE),
            )),
            ("TOPIC", _) => Some(Ev::Topic(chan.clone(), l.params.get(1).unwrap_or(&"").to_string())),
            ("QUIT", _) => Some(Ev::Quit),
            _ => None,
        };
        if let (Some(ev), Some(s)) = (ev, sender) {
            // Everything but JOIN and MODE is unique in a script: seen again, it is shown twice
            // (and left out of the order check, which would report it too).
            let twice = seen[s].contains(&ev) && !matches!(ev, Ev::Join(_) | Ev::Mode(..));
            if twice && (checks.quit_once || ev != Ev::Quit) {
                say(bad, format!("shown twice from u{s}: {raw}"));
            }
            seen[s].push(ev.clone());
            // Greedy subsequence match against the sender's script: stay in the current step
            // while it has the event, else the first later step that has it.
            let (at, left) = &mut cursor[s];
            if twice {
            } else if let Some(k) = left.iter().position(|e| *e == ev) {
                left.remove(k);
            } else if let Some(off) = scripts[s].iter().skip(*at).position(|p| p.evs.contains(&ev)) {
                *at += off + 1;
                *left = scripts[s][*at - 1].evs.clone();
                let k = left.iter().position(|e| *e == ev).expect("found");
                left.remove(k);
            } else {
                say(bad, format!("out of u{s}'s order (or not from its script): {raw}"));
            }
        }
        // The client's view of its channels.
        let in_chan = chans.contains_key(&chan);
        match (l.verb, sender) {
            ("JOIN", Some(s)) if s == me => {
                if in_chan {
                    view(bad, format!("own JOIN to a channel already joined: {raw}"));
                }
                let mut t = Tracked::default();
                t.members.insert(me, (false, false));
                chans.insert(chan.clone(), t);
                member_at_some_point.insert(chan.clone());
            }
            ("JOIN", Some(s)) => match chans.get_mut(&chan) {
                Some(t) => {
                    if t.members.insert(s, (false, false)).is_some() {
                        view(bad, format!("JOIN of a member: {raw}"));
                    }
                }
                None => view(bad, format!("shown outside {chan}: {raw}")),
            },
            ("PART", Some(s)) | ("KICK", Some(s)) => {
                let gone = if l.verb == "PART" { s } else { l.params.get(1).and_then(|n| user_of(n)).unwrap_or(NONE) };
                match chans.get_mut(&chan) {
                    Some(t) => {
                        if l.verb == "KICK" && !t.members.get(&s).is_some_and(|m| m.0) {
                            view(bad, format!("KICK by a non-operator (as this client knows the channel): {raw}"));
                        }
                        if gone == me {
                            chans.remove(&chan);
                        } else if t.members.remove(&gone).is_none() {
                            view(bad, format!("{} of a non-member: {raw}", l.verb));
                        }
                    }
                    None => view(bad, format!("shown outside {chan}: {raw}")),
                }
            }
            ("QUIT", Some(s)) if s != me => {
                // From every channel (no short cut).
                let shared = chans.values_mut().filter_map(|t| t.members.remove(&s)).count();
                if shared == 0 {
                    view(bad, format!("QUIT of a user sharing no channel: {raw}"));
                }
            }
            ("NICK", Some(s)) if s != me && !chans.values().any(|t| t.members.contains_key(&s)) => {
                view(bad, format!("NICK of a user sharing no channel: {raw}"));
            }
            ("TOPIC", Some(_)) => match chans.get_mut(&chan) {
                Some(t) => t.topic = l.params.get(1).map(|s| s.to_string()),
                None => view(bad, format!("shown outside {chan}: {raw}")),
            },
            ("PRIVMSG", Some(_)) if chan.starts_with('#') && !in_chan => {
                view(bad, format!("shown outside {chan}: {raw}"));
            }
            ("MODE", Some(s)) if chan.starts_with('#') => match chans.get_mut(&chan) {
                Some(t) => {
                    if !t.members.get(&s).is_some_and(|m| m.0) {
                        view(bad, format!("MODE by a non-operator (as this client knows the channel): {raw}"));
                    }
                    let mut plus = true;
                    let mut args = l.params.iter().skip(2);
                    for c in l.params.get(1).unwrap_or(&"").chars() {
                        match c {
                            '+' => plus = true,
                            '-' => plus = false,
                            'o' | 'v' => {
                                let who = args.next().and_then(|n| user_of(n)).unwrap_or(NONE);
                                match t.members.get_mut(&who) {
                                    Some(m) if c == 'o' => m.0 = plus,
                                    Some(m) => m.1 = plus,
                                    None => view(bad, format!("MODE on a non-member: {raw}")),
                                }
                            }
                            _ => {}
                        }
                    }
                }
                None => view(bad, format!("shown outside {chan}: {raw}")),
            },
            ("332", None) => {
                if let Some(t) = l.params.get(1).and_then(|c| chans.get_mut(*c)) {
                    t.topic = l.params.get(2).map(|s| s.to_string());
                }
            }
            ("353", None) => {
                let c = l.params.get(2).unwrap_or(&"").to_string();
                let list = names.entry(c).or_default();
                for n in l.params.get(3).unwrap_or(&"").split(' ').filter(|n| !n.is_empty()) {
                    if let Some(who) = user_of(n) {
                        list.insert(who, (n.contains('@'), n.contains('+')));
                    }
                }
            }
            ("366", None) => {
                let c = l.params.get(1).unwrap_or(&"").to_string();
                answered.insert(c.clone());
                let list = names.remove(&c).unwrap_or_default();
                match chans.get_mut(&c) {
                    Some(t) => {
                        t.members.extend(list);
                    }
                    None => view(bad, format!("names of {c} without own JOIN before")),
                }
            }
            ("ERROR", None) => closed = true,
            ("PONG", None) => {
                let token = l.params.get(1).unwrap_or(&"");
                match mine.get(next_pong) {
                    Some(p) if p.ping.as_deref() == Some(token) => {
                        for c in &p.joins {
                            if !answered.contains(c) && !member_at_some_point.contains(c) {
                                say(bad, format!("JOIN {c} (step {token}) got neither 366 nor an error"));
                            }
                        }
                        next_pong += 1;
                    }
                    _ => say(
                        bad,
                        format!("unexpected PONG {token}, expected {:?}", mine.get(next_pong).map(|p| &p.ping)),
                    ),
                }
                answered.clear();
                member_at_some_point = chans.keys().cloned().collect();
            }
            (n, None) if n.len() == 3 && n.starts_with(['4']) => {
                // An error about a channel answers a JOIN of it.
                if let Some(c) = l.params.get(1) {
                    answered.insert(c.to_string());
                }
            }
            _ => {}
        }
        if ev_is_member_change(l.verb) {
            member_at_some_point.extend(chans.keys().cloned());
        }
    }
    if next_pong != mine.len() {
        say(bad, format!("commands left unanswered: {} of {} PONGs", next_pong, mine.len()));
    }
    let quitter = scripts[me].iter().any(|p| p.evs.contains(&Ev::Quit));
    if quitter != closed {
        say(bad, format!("quit {quitter} but closed {closed}"));
    }
    if quitter {
        return;
    }
    // The client's view against the state every shard agrees on.
    let st = &sim.shards[0].0;
    let mut real: BTreeMap<String, Tracked> = BTreeMap::new();
    for view in st.channels.values() {
        let c = &view.ch;
        let ids: BTreeMap<usize, (bool, bool)> = c
            .members
            .iter()
            .filter_map(|(uid, m)| {
                let p = m.status.all_prefixes();
                Some((user_of(&st.directory.get(uid)?.nick)?, (p.contains('@'), p.contains('+'))))
            })
            .collect();
        if !ids.contains_key(&me) {
            continue;
        }
        real.insert(c.name.to_string(), Tracked { members: ids, topic: c.topic.as_ref().map(|t| t.text.to_string()) });
    }
    if chans != real {
        view(bad, format!("the client's view of its channels {chans:?} is not the server's {real:?}"));
    }
}

fn ev_is_member_change(verb: &str) -> bool {
    matches!(verb, "JOIN" | "PART" | "KICK")
}

/// Runs one case; the violations, or the panic's message if the server panicked or
/// `check_consistent` failed.
fn run_case(seed: u64, cores: usize, steps: usize, checks: Checks) -> (Case, Sim, Vec<String>) {
    let (mut sim, case) = make_case(seed, cores, steps);
    let script = case.steps();
    let mut bad = Vec::new();
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sim.run_script(seed, &script);
        sim.pump();
        sim.check_consistent();
    }));
    if let Err(e) = ran {
        let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
        bad.push(format!("panic: {}", msg.unwrap_or_default()));
        return (case, sim, bad);
    }
    for me in 0..case.users.len() {
        check_observer(&case, &sim, me, checks, &mut bad);
    }
    (case, sim, bad)
}

fn run_many(cores: usize, seeds: std::ops::Range<u64>, steps: usize, checks: Checks) {
    let (mut failures, mut summary) = (Vec::new(), String::new());
    // REORDER_SEEDS=<n> runs n seeds from the same start instead (a longer soak).
    let n = std::env::var("REORDER_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(seeds.end - seeds.start);
    for seed in seeds.start..seeds.start + n {
        let (case, _, bad) = run_case(seed, cores, steps, checks);
        if !bad.is_empty() {
            let _ = writeln!(summary, "seed {seed}: {}", bad[0]);
            failures.push(format!("{}{}\n", case.script_text(), bad.join("\n")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} seeds failed ({cores} shards, {steps} steps; replay one with REORDER_SEED=<seed> \
         REORDER_CORES={cores} REORDER_STEPS={steps} cargo test --lib sim::reorder::replay -- \
         --nocapture):\n{summary}\nThe first:\n{}",
        failures.len(),
        failures[0]
    );
}

#[test]
fn random_interleavings_two_shards() {
    run_many(2, 0..250, 40, Checks { quit_once: false, view: false });
}

#[test]
fn random_interleavings_three_shards() {
    run_many(3, 1000..1250, 50, Checks { quit_once: false, view: false });
}

/// `REORDER_SEED=<seed> [REORDER_CORES=3] [REORDER_STEPS=50]`: one case, with the script and
/// what each user received.
#[test]
fn replay() {
    let Some(seed) = std::env::var("REORDER_SEED").ok().and_then(|s| s.parse().ok()) else { return };
    let var = |k: &str, d: usize| std::env::var(k).ok().and_then(|s| s.parse().ok()).unwrap_or(d);
    let (case, sim, bad) = run_case(seed, var("REORDER_CORES", 2), var("REORDER_STEPS", 40), Checks::ALL);
    println!("{}", case.script_text());
    for (i, u) in case.users.iter().enumerate() {
        println!("--- u{i} (shard {}):\n{}", u.shard, sim.text(u.shard, u.conn));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The client's view of its channels over many interleavings: what each client learned from
/// its lines must match the servers' final state. It found the three bugs below (73 of 250
/// two-shard seeds failed), all fixed: events overtaking a joiner's held JOIN line
/// (`held_join_line_lets_later_events_overtake_it`), a QUIT shown twice
/// (`quit_shown_again_after_joining_a_channel_of_a_pending_part`) and a QUIT lost
/// (`quit_lost_when_the_observer_parts_the_last_shared_channel_meanwhile`). Known and left:
/// a MODE giving status to a user whose QUIT an observer was already shown (the home numbered
/// the MODE before the departure's part) is still shown — 1 of 6,000 three-shard seeds
/// (`REORDER_SEEDS=6000`, seed 2932); a KICK in the same window is now answered 441 and shown
/// to nobody.
#[test]
fn random_interleavings_client_view() {
    run_many(2, 0..250, 40, Checks { quit_once: false, view: true });
    run_many(3, 1000..1250, 50, Checks { quit_once: false, view: true });
}

/// QUIT shown at most once to each observer, over many interleavings. It found
/// `quit_shown_again_after_joining_a_channel_of_a_pending_part` (fixed).
#[test]
fn random_interleavings_quit_once() {
    run_many(2, 0..2000, 40, Checks { quit_once: true, view: false });
    run_many(3, 1000..1250, 50, Checks { quit_once: true, view: false });
}

fn delivered(sim: &mut Sim, pairs: &[(usize, usize)]) {
    for &(from, to) in pairs {
        assert!(sim.deliver_one(from, to), "nothing waits from {from} to {to}");
    }
}

/// A bug the random interleavings found (seeds 92 and 308 of the two-shard runs). Fixed: what
/// reaches a client while its own change waits for every shard is held with it and sent after
/// it (`Wait::Barrier::later`).
///
/// A joiner's own JOIN line and NAMES are held until every other shard acknowledged the join,
/// but its shard already counts it a member: changes of the channel applied meanwhile are shown
/// to it *before* its own JOIN line, and the NAMES, built when the join was applied, does not
/// reflect them. Here `o` (shard 0) joins `#x` (home 0); before shard 1 acknowledges, `q`
/// (shard 0, in `#x`) quits. `o` receives `:q QUIT`, then its JOIN and a NAMES listing `q`: its
/// client keeps `q` in `#x` for good. (With a JOIN instead of the QUIT — `b` joining after `a`
/// on the home's shard — `a` is shown `b`'s JOIN before its own and a NAMES without `b`.)
#[test]
fn held_join_line_lets_later_events_overtake_it() {
    let mut sim = Sim::new(config(), 2, true);
    let x = homed_at(&sim, 0, 2, &[]);
    let q = sim.client(0, "q");
    let o = sim.client(0, "o");
    sim.feed(0, q, format!("JOIN {x}\r\n").as_bytes());
    sim.feed_only(0, o, format!("JOIN {x}\r\n").as_bytes());
    // The request to the home (shard 0 itself) and its answer: o's join is applied on shard 0;
    // its announcement to shard 1 waits.
    delivered(&mut sim, &[(0, 0), (0, 0)]);
    sim.feed_only(0, q, b"QUIT :bye\r\n");
    // q's departure, at its home and back, all on shard 0.
    while sim.deliver_one(0, 0) {}
    sim.pump();
    sim.check_consistent();
    let t = sim.text(0, o);
    let join = t.find(&format!(":o!~o@127.0.0.1 JOIN {x}")).expect("o joined");
    let quit = t.find(":q!~q@127.0.0.1 QUIT").expect("o was shown q's QUIT");
    assert!(join < quit, "o was shown q's QUIT before its own JOIN:\n{t}");
    // Its NAMES may list q only if q's QUIT comes after it.
    if let Some(names) = t.find(&format!(" 353 o = {x} :@q o")) {
        assert!(names < quit, "o's NAMES lists q after q's QUIT:\n{t}");
    }
}

/// A bug the random interleavings found (seed 1103 of the three-shard runs; 12 of 5,000
/// two-shard seeds show it too, some through the held JOIN line above). Fixed: an observer is
/// shown the QUIT with the first part applied on its shard, and NAMES leaves out a user whose
/// departure has begun there.
///
/// `q` (shard 0) is in `#x` (home 1) and `#y` (home 2); `o` (shard 1) shares only `#x`. `q`
/// quits: home 1's part arrives first and removes `q` from `#x`, so `o` is shown the QUIT. Then
/// `o` joins `#y`, and home 2 decides that join before `q`'s request to leave reaches it: `o`'s
/// NAMES lists `q`, and home 2's part later shows `o` the same QUIT a second time.
#[test]
fn quit_shown_again_after_joining_a_channel_of_a_pending_part() {
    let mut sim = Sim::new(config(), 3, true);
    let x = homed_at(&sim, 1, 3, &[]);
    let y = homed_at(&sim, 2, 3, &[]);
    let q = sim.client(0, "q");
    let o = sim.client(1, "o");
    sim.feed(0, q, format!("JOIN {x},{y}\r\n").as_bytes());
    sim.feed(1, o, format!("JOIN {x}\r\n").as_bytes());
    sim.feed_only(0, q, b"QUIT :bye\r\n");
    // Home 1 takes q's request and answers; shard 0 applies that part and tells shard 1, which
    // applies it: o is shown the QUIT. The request to home 2 is still on its way.
    assert!(sim.deliver_until(0, 1, |e| matches!(e, Env::Request(Request::Quit { .. }))));
    assert!(sim.deliver_until(1, 0, |e| matches!(e, Env::Answer(Answer::Quit { .. }))));
    assert!(sim.deliver_until(0, 1, |e| matches!(e, Env::Ordered(Ordered::Chan(_)))));
    assert_eq!(sim.text(1, o).matches(" QUIT :Quit: bye").count(), 1);
    // o joins #y; home 2 decides it before q's request arrives.
    sim.feed_only(1, o, format!("JOIN {y}\r\n").as_bytes());
    assert!(sim.deliver_until(1, 2, |e| matches!(e, Env::Request(Request::Chan { .. }))));
    assert!(sim.deliver_until(2, 1, |e| matches!(e, Env::Answer(Answer::Chan { .. }))));
    sim.pump();
    sim.check_consistent();
    let t = sim.text(1, o);
    assert_eq!(t.matches(":q!~q@127.0.0.1 QUIT :Quit: bye").count(), 1, "o was shown q's QUIT twice:\n{t}");
}

/// A bug the random interleavings found (seed 49 of the two-shard runs); fixed as the one
/// above.
///
/// `q` (shard 0) and `o` (shard 1) share `#a` (home 0) and `#b` (home 1). `o` parts `#b` and
/// home 1 numbers that part; then `q` quits. Home 0's part of the departure reaches shard 1
/// while `o` is still in `#b` there, so it does not show the QUIT (`q` still holds `#b`, a
/// channel shared with `o`); home 1's part comes after `o` left `#b`, so it does not either.
/// `o` is never told that `q` left, and its client keeps `q` in `#a` for good.
#[test]
fn quit_lost_when_the_observer_parts_the_last_shared_channel_meanwhile() {
    let mut sim = Sim::new(config(), 2, true);
    let a = homed_at(&sim, 0, 2, &[]);
    let b = homed_at(&sim, 1, 2, &[]);
    let q = sim.client(0, "q");
    let o = sim.client(1, "o");
    sim.feed(0, q, format!("JOIN {a},{b}\r\n").as_bytes());
    sim.feed(1, o, format!("JOIN {a},{b}\r\n").as_bytes());
    sim.feed_only(1, o, format!("PART {b}\r\n").as_bytes());
    // Home 1 (shard 1 itself) numbers o's part; shard 1 has not applied it yet.
    assert!(sim.deliver_until(1, 1, |e| matches!(e, Env::Request(Request::Chan { .. }))));
    sim.feed_only(0, q, b"QUIT :bye\r\n");
    // Home 0 (shard 0 itself) removes q from #a; shard 0 applies that part and tells shard 1,
    // after its request to home 1.
    assert!(sim.deliver_until(0, 0, |e| matches!(e, Env::Request(Request::Quit { .. }))));
    assert!(sim.deliver_until(0, 0, |e| matches!(e, Env::Answer(Answer::Quit { .. }))));
    assert!(sim.deliver_until(0, 1, |e| matches!(e, Env::Ordered(Ordered::Chan(_)))));
    sim.pump();
    sim.check_consistent();
    let t = sim.text(1, o);
    assert_eq!(t.matches(":q!~q@127.0.0.1 QUIT :Quit: bye").count(), 1, "o was not shown q's QUIT:\n{t}");
}
