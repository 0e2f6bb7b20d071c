//! What the server says about itself: RPL_ISUPPORT, LUSERS, MOTD, VERSION, TIME, ADMIN, INFO.

use super::{CmdResult, Ctx};
use crate::config::Config;
use crate::err;
use crate::proto::{names, Line, Message, Numeric};

pub const USER_MODES: &str = "Biorsw";
pub const CHANNEL_MODES: &str = "beIiklmnopstv";
pub const CHANNEL_MODES_WITH_PARAM: &str = "beIklov";

pub fn version_string() -> String {
    format!("rustircd-{}", env!("CARGO_PKG_VERSION"))
}

/// The RPL_ISUPPORT tokens for a config, in lines of at most 13 tokens.
pub fn isupport(cfg: &Config) -> Vec<Vec<String>> {
    let l = &cfg.limits;
    let t = l.max_targets;
    let tokens = vec![
        format!("AWAYLEN={}", l.awaylen),
        "BOT=B".to_string(),
        format!("CASEMAPPING={}", cfg.server.casemapping.name()),
        format!("CHANLIMIT={}:{}", names::CHANTYPES, l.max_channels),
        "CHANMODES=beI,k,l,imnpst".to_string(),
        format!("CHANNELLEN={}", l.channellen),
        format!("CHANTYPES={}", names::CHANTYPES),
        "ELIST=CMNTU".to_string(),
        "EXCEPTS=e".to_string(),
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
        "WHOX".to_string(),
    ];
    tokens.chunks(13).map(|c| c.to_vec()).collect()
}

pub fn send_isupport(ctx: &mut Ctx<'_>) {
    let lines = ctx.st.isupport.clone();
    for tokens in &lines {
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

/// A server name parameter must be this server (the only one there is, until links exist).
fn check_target(ctx: &Ctx<'_>, msg: &Message<'_>, idx: usize) -> CmdResult {
    match msg.param(idx) {
        Some(t) if !crate::proto::mask::matches(ctx.st.cm, t, ctx.server()) => Err(err!(ERR_NOSUCHSERVER, t)),
        _ => Ok(()),
    }
}

pub fn motd(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    check_target(ctx, msg, 0)?;
    send_motd(ctx);
    Ok(())
}

pub fn lusers(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    check_target(ctx, msg, 1)?;
    send_lusers(ctx);
    Ok(())
}

pub fn version(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    check_target(ctx, msg, 0)?;
    let server = ctx.server().to_string();
    let comment = format!("thread-per-core, {} shards", ctx.st.cores);
    ctx.reply(Numeric::RPL_VERSION, &[&version_string(), &server, &comment]);
    send_isupport(ctx);
    Ok(())
}

pub fn time(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    check_target(ctx, msg, 0)?;
    let server = ctx.server().to_string();
    ctx.reply(Numeric::RPL_TIME, &[&server, &crate::clock::format_utc(ctx.unix)]);
    Ok(())
}

pub fn admin(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    check_target(ctx, msg, 0)?;
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

/// `LINKS [[<server>] <mask>]`: this server, until servers link.
pub fn links(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let mask = msg.params.last().copied().unwrap_or("*");
    let cfg = ctx.st.cfg.clone();
    if crate::proto::mask::matches(ctx.st.cm, mask, &cfg.server.name) {
        ctx.reply(Numeric::RPL_LINKS, &[&cfg.server.name, &cfg.server.name, &format!("0 {}", cfg.server.description)]);
    }
    ctx.reply(Numeric::RPL_ENDOFLINKS, &[mask]);
    Ok(())
}

pub fn info(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    check_target(ctx, msg, 0)?;
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
