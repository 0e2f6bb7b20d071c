//! What the server says about itself and its network: RPL_ISUPPORT, LUSERS, MOTD, VERSION,
//! TIME, ADMIN, INFO, LINKS, MAP.

use super::{CmdResult, Ctx};
use crate::config::Config;
use crate::err;
use crate::local::shard::ShardState;
use crate::proto::{names, Line, Message, Numeric};
use crate::state::servers::{Server, Servers, Sid};

pub const USER_MODES: &str = "Biorsw";
pub const CHANNEL_MODES: &str = "CIMRSbceiklmnopstv";
pub const CHANNEL_MODES_WITH_PARAM: &str = "beIklov";

pub fn version_string() -> String {
    format!("rustircd-{}", env!("CARGO_PKG_VERSION"))
}

/// The RPL_ISUPPORT tokens for a config, in lines of at most 13 tokens.
pub fn isupport(cfg: &Config) -> Vec<Vec<String>> {
    let l = &cfg.limits;
    let t = l.max_targets;
    let mut tokens = vec![
        format!("AWAYLEN={}", l.awaylen),
        "BOT=B".to_string(),
        format!("CASEMAPPING={}", cfg.server.casemapping.name()),
        format!("CHANLIMIT={}:{}", names::CHANTYPES, l.max_channels),
        "CHANMODES=beI,k,l,CMRScimnpst".to_string(),
        format!("CHANNELLEN={}", l.channellen),
        format!("CHANTYPES={}", names::CHANTYPES),
        "ELIST=CMNTU".to_string(),
        "EXCEPTS=e".to_string(),
        // `$a`/`$a:<mask>` (account) and `$m:<mask>` (mute): the prefix, then the types.
        "EXTBAN=$,am".to_string(),
        "ACCOUNTEXTBAN=a".to_string(),
        "INVEX=I".to_string(),
        format!("KICKLEN={}", l.kicklen),
        "KNOCK".to_string(),
        "LINELEN=512".to_string(),
        format!("MAXLIST=beI:{}", l.max_list_entries),
        format!("MAXTARGETS={t}"),
        format!("MODES={}", l.max_modes),
        format!("MONITOR={}", l.monitor),
        format!("NAMELEN={}", l.realnamelen),
        format!("NETWORK={}", cfg.server.network),
        format!("NICKLEN={}", l.nicklen),
        "PREFIX=(ov)@+".to_string(),
        "SAFELIST".to_string(),
        "STATUSMSG=@+".to_string(),
        format!("TARGMAX=JOIN:,KICK:{t},LIST:1,MONITOR:,NAMES:,NOTICE:{t},PART:,PRIVMSG:{t},WHOIS:1"),
        format!("TOPICLEN={}", l.topiclen),
        format!("USERLEN={}", l.userlen),
        // Clients must send UTF-8: other bytes are refused (FAIL ... INVALID_UTF8, commands/mod.rs).
        "UTF8ONLY".to_string(),
        "WHOX".to_string(),
    ];
    tokens.extend(super::history::isupport(cfg));
    tokens.chunks(13).map(|c| c.to_vec()).collect()
}

pub fn send_isupport(ctx: &mut Ctx<'_>) {
    let lines = ctx.st.isupport.clone();
    for tokens in lines.iter() {
        let params: Vec<&str> = tokens.iter().map(String::as_str).collect();
        ctx.reply(Numeric::RPL_ISUPPORT, &params);
    }
}

/// LUSERS counts come from this shard's copy of the directory (every registered user of every
/// shard) and the unregistered counts each shard broadcasts.
pub fn send_lusers(ctx: &mut Ctx<'_>) {
    let st = &*ctx.st;
    let total = st.directory.len();
    let invisible = st.directory.invisible();
    let opers = st.directory.opers();
    let unknown: usize = st
        .unregistered
        .iter()
        .enumerate()
        .map(|(i, n)| if i == st.me { st.local_unregistered() } else { *n as usize })
        .sum();
    let channels = st.channels.len();
    // Local: this server's users, whatever shard holds them; global: the network's.
    let local = st.directory.locals();
    let servers = st.servers.len() + 1;
    let peers = st.servers.iter().filter(|s| s.uplink.is_none()).count();
    let max_global = st.max_global.max(total);
    let max_local = st.max_local.max(local);
    ctx.reply(
        Numeric::RPL_LUSERCLIENT,
        &[&format!("There are {} users and {invisible} invisible on {servers} servers", total - invisible)],
    );
    if opers > 0 {
        ctx.reply(Numeric::RPL_LUSEROP, &[&opers.to_string()]);
    }
    if unknown > 0 {
        ctx.reply(Numeric::RPL_LUSERUNKNOWN, &[&unknown.to_string()]);
    }
    if channels > 0 {
        ctx.reply(Numeric::RPL_LUSERCHANNELS, &[&channels.to_string()]);
    }
    ctx.reply(Numeric::RPL_LUSERME, &[&format!("I have {local} clients and {peers} servers")]);
    let (t, l, ml, mg) = (total.to_string(), local.to_string(), max_local.to_string(), max_global.to_string());
    ctx.reply(Numeric::RPL_LOCALUSERS, &[&l, &ml, &format!("Current local users {local}, max {max_local}")]);
    ctx.reply(Numeric::RPL_GLOBALUSERS, &[&t, &mg, &format!("Current global users {total}, max {max_global}")]);
}

pub fn send_motd(ctx: &mut Ctx<'_>) {
    let cfg = ctx.st.cfg.clone();
    match &cfg.server.motd {
        None => ctx.reply(Numeric::ERR_NOMOTD, &[]),
        Some(lines) => {
            ctx.reply(Numeric::RPL_MOTDSTART, &[&format!("- {} Message of the Day - ", cfg.server.name)]);
            for l in lines {
                ctx.reply(Numeric::RPL_MOTD, &[&format!("- {l}")]);
            }
            ctx.reply(Numeric::RPL_ENDOFMOTD, &[]);
        }
    }
}

/// A server name parameter: this server (true: answer here), another server of the network
/// (the query goes to it, `:<UID> <VERB> ... :<SID>`, and its numerics come back; false), or
/// none (402).
fn check_target(ctx: &mut Ctx<'_>, msg: &Message<'_>, idx: usize) -> Result<bool, crate::commands::Reply> {
    let Some(t) = msg.param(idx).filter(|t| !t.is_empty()) else { return Ok(true) };
    if crate::proto::mask::matches(ctx.st.cm, t, ctx.server()) || ctx.st.links.contains_key(&ctx.conn) {
        return Ok(true);
    }
    let cm = ctx.st.cm;
    let Some(sid) = ctx
        .st
        .servers
        .find(t)
        .or_else(|| ctx.st.servers.iter().find(|s| crate::proto::mask::matches(cm, t, &s.name)))
        .map(|s| s.sid)
    else {
        return Err(err!(ERR_NOSUCHSERVER, t));
    };
    let uid = ctx.me().uid;
    let mut l = Line::new().source(uid.as_str()).verb(msg.verb);
    for p in msg.params.iter().take(idx) {
        l = l.param(p);
    }
    let line = l.trailing(sid.as_str()).finish();
    crate::commands::link::to_link(ctx.st, ctx.out, sid, line.into());
    Ok(false)
}

pub fn motd(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if !check_target(ctx, msg, 0)? {
        return Ok(());
    }
    send_motd(ctx);
    Ok(())
}

pub fn lusers(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if !check_target(ctx, msg, 1)? {
        return Ok(());
    }
    send_lusers(ctx);
    Ok(())
}

pub fn version(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if !check_target(ctx, msg, 0)? {
        return Ok(());
    }
    let server = ctx.server().to_string();
    let comment = format!("thread-per-core, {} shards", ctx.st.cores);
    ctx.reply(Numeric::RPL_VERSION, &[&version_string(), &server, &comment]);
    send_isupport(ctx);
    Ok(())
}

pub fn time(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if !check_target(ctx, msg, 0)? {
        return Ok(());
    }
    let server = ctx.server().to_string();
    ctx.reply(Numeric::RPL_TIME, &[&server, &crate::clock::format_utc(ctx.unix)]);
    Ok(())
}

pub fn admin(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if !check_target(ctx, msg, 0)? {
        return Ok(());
    }
    let cfg = ctx.st.cfg.clone();
    let s = &cfg.server;
    if s.admin_location.is_empty() && s.admin_location2.is_empty() && s.admin_email.is_empty() {
        return Err(err!(ERR_NOADMININFO, s.name));
    }
    let me = ctx.me().target().to_string();
    let line = Line::new()
        .source(&s.name)
        .verb(Numeric::RPL_ADMINME.as_str())
        .param(&me)
        .param(&s.name)
        .trailing("Administrative info")
        .finish();
    ctx.send(&line);
    ctx.reply(Numeric::RPL_ADMINLOC1, &[&s.admin_location]);
    ctx.reply(Numeric::RPL_ADMINLOC2, &[&s.admin_location2]);
    ctx.reply(Numeric::RPL_ADMINEMAIL, &[&s.admin_email]);
    Ok(())
}

fn is_oper(ctx: &Ctx<'_>) -> bool {
    ctx.st.directory.get(&ctx.me().uid).is_some_and(|u| u.modes.has(crate::state::UserModes::OPER))
}

/// The servers of the network other than this one, depth first from this one (each after its
/// uplink, siblings by name), with their depth (1: our direct peers).
pub fn network_tree(servers: &Servers) -> Vec<(usize, &Server)> {
    fn walk<'a>(servers: &'a Servers, up: Option<Sid>, depth: usize, out: &mut Vec<(usize, &'a Server)>) {
        let mut kids: Vec<&Server> = servers.iter().filter(|s| s.uplink == up).collect();
        kids.sort_by(|a, b| a.name.cmp(&b.name));
        for k in kids {
            out.push((depth, k));
            walk(servers, Some(k.sid), depth + 1, out);
        }
    }
    let mut out = Vec::with_capacity(servers.len());
    walk(servers, None, 1, &mut out);
    out
}

/// `LINKS [[<server>] <mask>]`: every server of the network whose name matches the mask, this
/// one first: `364 <name> <uplink> :<hops> <description>` (hybrid's form), then 365. Servers
/// flagged `+h` (hidden) are listed to operators only, their description marked `(H)`.
pub fn links(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let mask = msg.params.last().copied().filter(|m| !m.is_empty()).unwrap_or("*");
    let oper = is_oper(ctx);
    let cfg = ctx.st.cfg.clone();
    let me = cfg.server.name.as_str();
    let mut rows: Vec<(String, String, String)> = vec![(me.into(), me.into(), format!("0 {}", cfg.server.description))];
    for (_, s) in network_tree(&ctx.st.servers) {
        if s.hidden && !oper {
            continue;
        }
        let up = s.uplink.and_then(|u| ctx.st.servers.get(&u)).map_or(me, |u| &u.name);
        let desc = if s.hidden { format!("(H) {}", s.desc) } else { s.desc.to_string() };
        rows.push((s.name.to_string(), up.to_string(), format!("{} {desc}", s.hop)));
    }
    for (name, up, text) in rows {
        if crate::proto::mask::matches(ctx.st.cm, mask, &name) {
            ctx.reply(Numeric::RPL_LINKS, &[&name, &up, &text]);
        }
    }
    ctx.reply(Numeric::RPL_ENDOFLINKS, &[mask]);
    Ok(())
}

/// Where MAP puts `| Users:` (Solanum's column).
const MAP_USER_COL: usize = 50;

/// `MAP` (operators): the network as a tree from this server, one `015` per server with its SID
/// and users (and their share of the network's), then `017` — Solanum's layout:
///
/// ```text
/// irc.a.net[0AA] ----------------------------------- | Users:     3 (60.0%)
///  |- irc.b.net[1BB] ------------------------------- | Users:     1 (20.0%)
///  |   `- services.net[3SV] ------------------------ | Users:     0 ( 0.0%)
///  `- irc.c.net[2CC] ------------------------------- | Users:     1 (20.0%)
/// ```
pub fn map(ctx: &mut Ctx<'_>, _msg: &Message<'_>) -> CmdResult {
    if !is_oper(ctx) {
        return Err(err!(ERR_NOPRIVILEGES));
    }
    for l in map_lines(ctx.st) {
        ctx.reply(Numeric::RPL_MAP, &[&l]);
    }
    ctx.reply(Numeric::RPL_MAPEND, &[]);
    Ok(())
}

/// MAP's lines, from this shard's copy of the network map and directory.
fn map_lines(st: &ShardState) -> Vec<String> {
    let mut users: ahash::AHashMap<&str, usize> = ahash::AHashMap::default();
    for u in st.directory.iter() {
        *users.entry(u.uid.sid()).or_default() += 1;
    }
    let total = st.directory.len();
    let line = |head: &str, name: &str, sid: &str| {
        let mut l = format!("{head}{name}[{sid}] ");
        while l.len() < MAP_USER_COL {
            l.push('-');
        }
        let n = users.get(sid).copied().unwrap_or(0);
        let frac = (1000 * n + total / 2) / total.max(1);
        l.push_str(&format!(" | Users: {n:>5} ({:>2}.{}%)", frac / 10, frac % 10));
        l
    };
    let mut lines = vec![line("", &st.cfg.server.name, &st.cfg.server.sid)];
    // Each level indents by 4: " |- " for a server with siblings after it, " `- " for the last,
    // and below them " |  " or "    " so the branches line up.
    let tree = network_tree(&st.servers);
    let mut conts: Vec<&str> = Vec::new();
    for (i, (depth, s)) in tree.iter().enumerate() {
        let last = !tree[i + 1..].iter().take_while(|(d, _)| d >= depth).any(|(d, _)| d == depth);
        conts.truncate(depth - 1);
        let head = format!("{}{}", conts.concat(), if last { " `- " } else { " |- " });
        lines.push(line(&head, &s.name, s.sid.as_str()));
        conts.push(if last { "    " } else { " |  " });
    }
    lines
}

pub fn info(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if !check_target(ctx, msg, 0)? {
        return Ok(());
    }
    let lines = [
        format!("{} — a thread-per-core IRC server in Rust", version_string()),
        format!("Running on {} shards (one pinned executor per core, io_uring via glommio)", ctx.st.cores),
        format!("Online since {}", crate::clock::format_utc(ctx.st.started_unix)),
        "Source layout: proto (wire), state (network), commands (one module per family), server (glue), shards (runtime)".to_string(),
    ];
    for l in &lines {
        ctx.reply(Numeric::RPL_INFO, &[l]);
    }
    ctx.reply(Numeric::RPL_ENDOFINFO, &[]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(sid: &str, name: &str, uplink: Option<&str>, hop: u32) -> Server {
        let sid = Sid::parse(sid).unwrap();
        Server {
            sid,
            name: name.into(),
            hop,
            desc: "d".into(),
            hidden: false,
            uplink: uplink.and_then(Sid::parse),
            via: sid,
            shard: 0,
            synced: true,
            tags: false,
        }
    }

    #[test]
    fn map_draws_the_tree_with_user_counts() {
        let mut sim = crate::sim::Sim::new(std::sync::Arc::new(crate::config::Config::embedded()), 1, true);
        sim.client(0, "alice");
        let st = &mut sim.shards[0].0;
        // 1BB ─ 3SV ─ 5EE, 1BB ─ 4DD; 2CC: a tree with a branch under a server that has a
        // sibling after it.
        for s in [
            server("1BB", "b.net", None, 1),
            server("2CC", "c.net", None, 1),
            server("3SV", "s.net", Some("1BB"), 2),
            server("4DD", "t.net", Some("1BB"), 2),
            server("5EE", "e.net", Some("3SV"), 3),
        ] {
            assert!(st.servers.insert(s));
        }
        let me = format!("{}[{}]", st.cfg.server.name, st.cfg.server.sid);
        let heads: Vec<String> = map_lines(st).iter().map(|l| l.split(" -").next().unwrap().to_string()).collect();
        assert_eq!(
            heads,
            [
                me.as_str(),
                " |- b.net[1BB]",
                " |   |- s.net[3SV]",
                " |   |   `- e.net[5EE]",
                " |   `- t.net[4DD]",
                " `- c.net[2CC]"
            ]
        );
        let lines = map_lines(st);
        assert!(lines[0].ends_with("| Users:     1 (100.0%)"), "{}", lines[0]);
        assert!(lines.iter().all(|l| l.find(" | Users:") == Some(MAP_USER_COL)), "{lines:#?}");
        assert!(lines[1].ends_with("| Users:     0 ( 0.0%)"), "{}", lines[1]);
    }
}
