//! STATS: `STATS <letter> [mask]` — one report per letter, always ended by 219 (also for
//! letters the server does not know). Letters about the whole server gather a report from
//! every shard over the mesh first (the client's next command waits for them).
//!
//! | letter | shows | who |
//! |---|---|---|
//! | `m` | command usage (212): count, bytes, count from servers | everyone |
//! | `l` | server links (211), and for operators every connection (211) | everyone |
//! | `u` | uptime (242) | everyone |
//! | `c` | connect blocks (213) and connection statistics (249) | operators |
//! | `y` | classes: limits and current use (218) | operators |
//! | `k` / `d` | K-lines (216) / D-lines (225) | operators |
//! | `o` | oper blocks (243) | operators |
//! | `S` | one line per shard (249): core, load, mesh, rates, loop latency | operators |

use std::time::Instant;

use super::{CmdResult, Conn, Ctx, Env, Outbox};
use crate::commands::envelope::{Answer, Request};
use crate::local::client::Wait;
use crate::local::shard::ShardState;
use crate::metrics::{ShardReport, Usage};
use crate::proto::{Message, Numeric};
use crate::state::bans::{Ban, BanKind};
use crate::state::UserModes;

/// A STATS request waiting for the other shards' reports.
pub struct Pending {
    letter: char,
    oper: bool,
    mask: Option<String>,
    remaining: usize,
    reports: Vec<ShardReport>,
}

pub fn stats(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(letter) = msg.param(0).and_then(|p| p.chars().next()) else {
        return Err(crate::err!(ERR_NEEDMOREPARAMS, "STATS"));
    };
    let oper = is_oper(ctx);
    let oper_only = matches!(letter, 'k' | 'K' | 'd' | 'D' | 'o' | 'O' | 'c' | 'C' | 'y' | 'Y' | 'S' | 's');
    if oper_only && !oper {
        ctx.reply(Numeric::ERR_NOPRIVILEGES, &[]);
        ctx.reply(Numeric::RPL_ENDOFSTATS, &[&letter.to_string()]);
        return Ok(());
    }
    match letter {
        'k' | 'K' => bans(ctx, BanKind::K),
        'd' | 'D' => bans(ctx, BanKind::D),
        'o' | 'O' => opers(ctx),
        'u' | 'U' => uptime(ctx),
        'm' | 'M' | 'l' | 'L' | 'c' | 'C' | 'y' | 'Y' | 'S' | 's' => {
            let mask = msg.param(1).filter(|m| !m.is_empty()).map(str::to_string);
            let with_conns = oper && matches!(letter, 'l' | 'L');
            let mine = super::report::shard_report(ctx.st, ctx.out, with_conns);
            let others = ctx.st.cores - 1;
            let mut pending = Pending { letter, oper, mask, remaining: others, reports: vec![mine] };
            if others == 0 {
                answer(ctx, &mut pending);
                return Ok(());
            }
            let conn = ctx.conn;
            super::delivery::broadcast(ctx.st, ctx.out, || Env::Request(Request::Stats { conn, with_conns }));
            ctx.st.stats_waits.insert(conn, pending);
            ctx.me_mut().wait = Some(Wait::Answer);
            return Ok(());
        }
        _ => {}
    }
    ctx.reply(Numeric::RPL_ENDOFSTATS, &[&letter.to_string()]);
    Ok(())
}

/// Another shard wants this shard's report for a STATS of its client `conn`.
pub fn on_request(st: &mut ShardState, out: &mut dyn Outbox, from: usize, conn: Conn, with_conns: bool) {
    let report = Box::new(super::report::shard_report(st, out, with_conns));
    out.to_shard(from, Env::Answer(Answer::Stats { conn, report }));
}

/// A shard's report for a STATS of this shard's client; the last one completes the answer.
pub fn on_report(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, report: ShardReport, now: Instant, unix: u64) {
    let Some(p) = st.stats_waits.get_mut(&conn) else { return };
    p.reports.push(report);
    p.remaining -= 1;
    if p.remaining > 0 {
        return;
    }
    let Some(mut p) = st.stats_waits.remove(&conn) else { return };
    let Some(c) = st.clients.get_mut(&conn) else { return };
    if c.wait == Some(Wait::Answer) {
        c.wait = None;
    }
    let mut ctx = Ctx { st, out, conn, now, unix };
    answer(&mut ctx, &mut p);
    ctx.flush();
    super::connection::resume(st, out, conn, now, unix);
}

/// Writes the report of a gathered letter, then 219.
fn answer(ctx: &mut Ctx<'_>, p: &mut Pending) {
    p.reports.sort_by_key(|r| r.shard);
    match p.letter {
        'm' | 'M' => commands(ctx, &p.reports),
        'l' | 'L' => {
            links(ctx, &p.reports, p.oper, p.mask.as_deref());
            if p.oper {
                connections(ctx, &p.reports, p.mask.as_deref());
            }
        }
        'c' | 'C' => connect_stats(ctx, &p.reports),
        'y' | 'Y' => classes(ctx, &p.reports),
        'S' | 's' => shards(ctx, &p.reports),
        _ => {}
    }
    ctx.reply(Numeric::RPL_ENDOFSTATS, &[&p.letter.to_string()]);
}

fn is_oper(ctx: &Ctx<'_>) -> bool {
    ctx.st.directory.get(&ctx.me().uid).is_some_and(|u| u.modes.has(UserModes::OPER))
}

/// `STATS m`: 212 `<command> <count> <bytes> <remote count>` for every command used.
fn commands(ctx: &mut Ctx<'_>, reports: &[ShardReport]) {
    for (i, spec) in super::COMMANDS.iter().enumerate() {
        let total = reports.iter().filter_map(|r| r.usage.get(i)).fold(Usage::default(), |a, u| Usage {
            count: a.count + u.count,
            bytes: a.bytes + u.bytes,
            remote: a.remote + u.remote,
        });
        if total.count > 0 {
            let (count, bytes, remote) = (total.count.to_string(), total.bytes.to_string(), total.remote.to_string());
            ctx.reply(Numeric::RPL_STATSCOMMANDS, &[spec.name, &count, &bytes, &remote]);
        }
    }
}

/// `STATS l`: 211 per server link of every shard, as hybrid shows them: `<name>[<ip>] <sendq>
/// <sent messages> <sent Kbytes> <received messages> <received Kbytes> <seconds open> :<state;
/// the peer's capabilities>` (the address for operators only). A mask narrows them by name.
fn links(ctx: &mut Ctx<'_>, reports: &[ShardReport], oper: bool, mask: Option<&str>) {
    let cm = ctx.st.cm;
    for l in reports.iter().flat_map(|r| &r.links) {
        if mask.is_some_and(|m| !crate::proto::mask::matches(cm, m, &l.name)) {
            continue;
        }
        let t = l.traffic;
        let name = if oper { format!("{}[{}]", l.name, l.ip) } else { l.name.clone() };
        let fields = [
            name,
            t.queued.to_string(),
            l.lines_out.to_string(),
            (t.bytes_out / 1024).to_string(),
            l.lines_in.to_string(),
            (t.bytes_in / 1024).to_string(),
            l.open.as_secs().to_string(),
            format!("{}; caps: {}", l.state, l.caps),
        ];
        let params: Vec<&str> = fields.iter().map(String::as_str).collect();
        ctx.reply(Numeric::RPL_STATSLINKINFO, &params);
    }
}

/// `STATS l` for operators, after the links: 211 per connection, as RFC 2812 has it: `<name> <sendq> <sent
/// messages> <sent Kbytes> <received messages> <received Kbytes> <seconds open>`. The listing
/// stops at half the operator's sendq, and says so; a mask narrows it.
fn connections(ctx: &mut Ctx<'_>, reports: &[ShardReport], mask: Option<&str>) {
    let budget = ctx.st.cfg.classes[ctx.me().class].sendq / 2;
    let cm = ctx.st.cm;
    let mut used = 0;
    let mut left = 0;
    for c in reports.iter().flat_map(|r| &r.conns) {
        if mask.is_some_and(|m| !crate::proto::mask::matches(cm, m, &c.name)) {
            continue;
        }
        if used > budget {
            left += 1;
            continue;
        }
        let t = c.traffic;
        let fields = [
            c.name.clone(),
            t.queued.to_string(),
            t.records_out.to_string(),
            (t.bytes_out / 1024).to_string(),
            c.lines_in.to_string(),
            (t.bytes_in / 1024).to_string(),
            c.open.as_secs().to_string(),
        ];
        used += fields.iter().map(|f| f.len() + 1).sum::<usize>() + 40;
        let params: Vec<&str> = fields.iter().map(String::as_str).collect();
        ctx.reply(Numeric::RPL_STATSLINKINFO, &params);
    }
    if left > 0 {
        let text = format!("{left} more connections not shown; narrow the list with STATS l <mask>");
        ctx.reply(Numeric::RPL_STATSDEBUG, &["l", &text]);
    }
}

/// `STATS c`: 213 `C <host> <flags> <name> <port> <class>` per `[[links]]` block (host `*`
/// and port 0 without an address; flags `A` autoconnect, `T` TLS, `*` none; the class `default`
/// when the block names none), then the connection statistics (249).
fn connect_stats(ctx: &mut Ctx<'_>, reports: &[ShardReport]) {
    let cfg = ctx.st.cfg.clone();
    for l in &cfg.links {
        let (host, port) = l.address.map_or(("*".to_string(), "0".to_string()), |a| {
            (crate::local::client::display_ip(a), a.port().to_string())
        });
        let mut flags = String::new();
        if l.autoconnect {
            flags.push('A');
        }
        if l.tls {
            flags.push('T');
        }
        if flags.is_empty() {
            flags.push('*');
        }
        let class = l.class.and_then(|c| cfg.classes.get(c)).map_or("default", |c| c.name.as_str());
        ctx.reply(Numeric::RPL_STATSCLINE, &["C", &host, &flags, &l.name, &port, class]);
    }
    let sum = |f: &dyn Fn(&ShardReport) -> u64| reports.iter().map(f).sum::<u64>();
    let text = format!(
        "Connections: {} now ({} registered), {} accepted, {} refused at admission (bans, limits, throttle), \
         {} refused for capacity, {} failed TLS handshakes, {} failed WebSocket upgrades, highest {} users",
        sum(&|r| r.connections),
        sum(&|r| r.users),
        sum(&|r| r.io.accepted),
        sum(&|r| r.counters.refused),
        sum(&|r| r.io.refused_full),
        sum(&|r| r.io.handshake_failures),
        sum(&|r| r.io.upgrade_failures),
        ctx.st.max_global,
    );
    ctx.reply(Numeric::RPL_STATSDEBUG, &["c", &text]);
    let text = format!(
        "Disconnected for flooding: {} Excess Flood, {} SendQ exceeded",
        sum(&|r| r.counters.excess_flood),
        sum(&|r| r.counters.sendq_exceeded),
    );
    ctx.reply(Numeric::RPL_STATSDEBUG, &["c", &text]);
}

/// `STATS y`: 218 `Y <class> <ping frequency> <connect timeout> <max clients> <sendq>
/// <recvq> :<in use now> ...` per class.
fn classes(ctx: &mut Ctx<'_>, reports: &[ShardReport]) {
    let classes = ctx.st.cfg.classes.clone();
    for (i, k) in classes.iter().enumerate() {
        let now: u64 = reports.iter().filter_map(|r| r.classes.get(i)).sum();
        let text = format!(
            "{now} connected; per IP {}, per CIDR {}, throttle {} per {}s{}",
            k.max_per_ip,
            k.max_per_cidr,
            k.throttle_count,
            k.throttle_window.as_secs(),
            if k.exempt { ", exempt from throttling and flood control" } else { "" }
        );
        let fields = [
            k.ping_frequency.as_secs().to_string(),
            k.connection_timeout.as_secs().to_string(),
            k.max_clients.to_string(),
            k.sendq.to_string(),
            k.recvq.to_string(),
        ];
        ctx.reply(
            Numeric::RPL_STATSYLINE,
            &["Y", &k.name, &fields[0], &fields[1], &fields[2], &fields[3], &fields[4], &text],
        );
    }
}

/// `STATS S`: one 249 line per shard.
fn shards(ctx: &mut Ctx<'_>, reports: &[ShardReport]) {
    for r in reports {
        let cpu = r.cpu.map_or("?".into(), |c| c.to_string());
        let text = format!(
            "shard {} core {cpu}: {} connections ({} asleep), {} users, {} channels homed, mesh queue {} out {} in, \
             {} msgs/s in, {} msgs/s out, loop latency {} us, sequenced held {} (oldest {} ms, stalls {})",
            r.shard,
            r.connections,
            r.io.asleep,
            r.users,
            r.channels_homed,
            r.mesh_out_waiting,
            r.mesh_in_waiting,
            r.rate_in,
            r.rate_out,
            r.turn_max.as_micros(),
            r.seq_held,
            r.seq_oldest_wait.as_millis(),
            r.counters.seq_stalls,
        );
        ctx.reply(Numeric::RPL_STATSDEBUG, &["S", &text]);
    }
}

fn bans(ctx: &mut Ctx<'_>, kind: BanKind) {
    let list: Vec<Ban> = ctx.st.bans.iter().filter(|b| b.kind == kind && b.live(ctx.unix)).cloned().collect();
    for b in list {
        let reason = describe(&b, ctx.unix);
        match kind {
            BanKind::K => {
                let (user, host) = b.mask.split_once('@').unwrap_or(("*", &b.mask));
                ctx.reply(Numeric::RPL_STATSKLINE, &["K", host, "*", user, &reason]);
            }
            BanKind::D => ctx.reply(Numeric::RPL_STATSDLINE, &["D", &b.mask, &reason]),
        }
    }
}

/// The reason with who set the ban, and how long it has left when temporary.
fn describe(b: &Ban, now: u64) -> String {
    let left = if b.expires > 0 {
        format!(", {} min. left", b.expires.saturating_sub(now).div_ceil(60))
    } else {
        String::new()
    };
    format!("{} (set by {} at {}{left})", b.reason, b.setter, crate::clock::format_utc(b.set_at))
}

fn opers(ctx: &mut Ctx<'_>) {
    let blocks: Vec<(String, String, String)> = ctx
        .st
        .cfg
        .opers
        .iter()
        .flat_map(|o| o.hosts.iter().map(|h| (h.clone(), o.name.clone(), o.privileges.join(","))))
        .collect();
    for (host, name, privs) in blocks {
        ctx.reply(Numeric::RPL_STATSOLINE, &["O", &host, "*", &name, &privs]);
    }
}

fn uptime(ctx: &mut Ctx<'_>) {
    let up = ctx.unix.saturating_sub(ctx.st.started_unix);
    let text = format!("Server Up {} days, {}:{:02}:{:02}", up / 86_400, up % 86_400 / 3600, up % 3600 / 60, up % 60);
    ctx.reply(Numeric::RPL_STATSUPTIME, &[&text]);
}
