//! IRCv3 capability negotiation: `CAP LS [302]`, `LIST`, `REQ`, `END`. Capabilities are rows
//! of [`CAPS`]; a client's enabled set is a bit mask. Sending `CAP LS` or `CAP REQ` before
//! registration holds registration until `CAP END`.

use super::registration::try_register;
use super::{CmdResult, Ctx};
use crate::config::Config;
use crate::err;
use crate::proto::{Line, Message};

/// One bit per capability in a client's enabled set.
pub mod bits {
    pub const CAP_NOTIFY: u64 = 1 << 0;
    pub const MESSAGE_TAGS: u64 = 1 << 1;
    pub const SERVER_TIME: u64 = 1 << 2;
    pub const ECHO_MESSAGE: u64 = 1 << 3;
    pub const MULTI_PREFIX: u64 = 1 << 4;
    pub const USERHOST_IN_NAMES: u64 = 1 << 5;
    pub const AWAY_NOTIFY: u64 = 1 << 6;
    pub const EXTENDED_JOIN: u64 = 1 << 7;
    pub const ACCOUNT_NOTIFY: u64 = 1 << 8;
    pub const ACCOUNT_TAG: u64 = 1 << 9;
    pub const CHGHOST: u64 = 1 << 10;
    pub const INVITE_NOTIFY: u64 = 1 << 11;
    pub const SETNAME: u64 = 1 << 12;
    pub const BATCH: u64 = 1 << 13;
    pub const LABELED_RESPONSE: u64 = 1 << 14;
    pub const STANDARD_REPLIES: u64 = 1 << 15;
    pub const EXTENDED_MONITOR: u64 = 1 << 16;
    pub const STS: u64 = 1 << 17;
}

pub struct CapDef {
    pub name: &'static str,
    pub bit: u64,
    /// The value advertised to `CAP LS 302` clients (`secure`: the client is on TLS); `None`
    /// from it means the capability is not offered now (sts without TLS).
    pub value: Option<fn(&Config, bool) -> Option<String>>,
    /// Clients may not REQ it (sts is a policy, not a mode).
    pub requestable: bool,
}

const fn offer(name: &'static str, bit: u64) -> CapDef {
    CapDef { name, bit, value: None, requestable: true }
}

/// The capabilities this server offers. A capability is listed only once it works across
/// shards exactly as on one shard.
pub static CAPS: &[CapDef] = &[
    offer("account-notify", bits::ACCOUNT_NOTIFY),
    offer("account-tag", bits::ACCOUNT_TAG),
    offer("away-notify", bits::AWAY_NOTIFY),
    offer("batch", bits::BATCH),
    offer("cap-notify", bits::CAP_NOTIFY),
    offer("chghost", bits::CHGHOST),
    offer("echo-message", bits::ECHO_MESSAGE),
    offer("extended-join", bits::EXTENDED_JOIN),
    offer("extended-monitor", bits::EXTENDED_MONITOR),
    offer("invite-notify", bits::INVITE_NOTIFY),
    offer("labeled-response", bits::LABELED_RESPONSE),
    offer("message-tags", bits::MESSAGE_TAGS),
    offer("multi-prefix", bits::MULTI_PREFIX),
    offer("server-time", bits::SERVER_TIME),
    offer("setname", bits::SETNAME),
    offer("standard-replies", bits::STANDARD_REPLIES),
    CapDef { name: "sts", bit: bits::STS, value: Some(sts_value), requestable: false },
    offer("userhost-in-names", bits::USERHOST_IN_NAMES),
];

/// `sts`: on a plain connection, where the TLS port is and for how long to stick to it; on a TLS
/// connection, the duration alone. Not offered without a TLS listener.
fn sts_value(cfg: &Config, secure: bool) -> Option<String> {
    let port = cfg.tls_port()?;
    let duration = cfg.tls.as_ref().map_or(0, |t| t.sts_duration.as_secs());
    Some(if secure { format!("duration={duration}") } else { format!("port={port},duration={duration}") })
}

pub fn find(name: &str) -> Option<&'static CapDef> {
    CAPS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// The capabilities offered to a client now, as `name` or `name=value` (302).
pub fn offered(cfg: &Config, secure: bool, with_values: bool) -> Vec<String> {
    CAPS.iter()
        .filter_map(|c| match c.value {
            None => Some(c.name.to_string()),
            Some(v) => {
                let value = v(cfg, secure)?;
                Some(if with_values { format!("{}={value}", c.name) } else { c.name.to_string() })
            }
        })
        .collect()
}

/// Longest capability list per CAP line before continuing on another.
const CAP_LINE_BUDGET: usize = 400;

pub fn cap(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let sub = msg.params[0].to_ascii_uppercase();
    match sub.as_str() {
        "LS" => {
            let version = msg.param(1).and_then(|v| v.parse::<u16>().ok()).unwrap_or(0);
            let me = ctx.me_mut();
            if !me.registered {
                me.cap_negotiating = true;
            }
            me.cap_version = me.cap_version.max(version);
            let with_values = me.cap_version >= 302;
            // CAP LS 302 turns cap-notify on by itself.
            if me.cap_version >= 302 {
                me.caps |= bits::CAP_NOTIFY;
            }
            let secure = me.secure;
            let items = offered(&ctx.st.cfg, secure, with_values);
            send_list(ctx, "LS", &items, with_values);
        }
        "LIST" => {
            let caps = ctx.me().caps;
            let items: Vec<String> = CAPS.iter().filter(|c| caps & c.bit != 0).map(|c| c.name.to_string()).collect();
            let multiline = ctx.me().cap_version >= 302;
            send_list(ctx, "LIST", &items, multiline);
        }
        "REQ" => {
            let req = msg.param(1).unwrap_or("");
            let me = ctx.me_mut();
            if !me.registered {
                me.cap_negotiating = true;
            }
            let mut set = me.caps;
            let mut ok = !req.trim().is_empty();
            for item in req.split_whitespace() {
                let (remove, name) = match item.strip_prefix('-') {
                    Some(n) => (true, n),
                    None => (false, item),
                };
                match find(name) {
                    Some(c) if !c.requestable => ok = false,
                    Some(c) if remove => set &= !c.bit,
                    Some(c) => set |= c.bit,
                    None => ok = false,
                }
            }
            let verb = if ok { "ACK" } else { "NAK" };
            if ok {
                ctx.me_mut().caps = set;
            }
            let line = Line::new()
                .source(ctx.server())
                .verb("CAP")
                .param(ctx.me().target())
                .param(verb)
                .trailing(req)
                .finish();
            ctx.send(&line);
        }
        "END" => {
            let me = ctx.me_mut();
            if !me.registered && me.cap_negotiating {
                me.cap_negotiating = false;
                try_register(ctx);
            }
        }
        _ => return Err(err!(ERR_INVALIDCAPCMD, msg.params[0])),
    }
    Ok(())
}

/// `CAP <target> <sub> [*] :<items>`, split over lines when long (`*` marks "more follows",
/// for clients that understand it).
fn send_list(ctx: &mut Ctx<'_>, sub: &str, items: &[String], multiline: bool) {
    let server = ctx.server().to_string();
    let target = ctx.me().target().to_string();
    let mut chunks: Vec<String> = Vec::new();
    let mut cur = String::new();
    for it in items {
        if multiline && !cur.is_empty() && cur.len() + it.len() + 1 > CAP_LINE_BUDGET {
            chunks.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(it);
    }
    chunks.push(cur);
    let n = chunks.len();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut l = Line::new().source(&server).verb("CAP").param(&target).param(sub);
        if i + 1 < n {
            l = l.param("*");
        }
        let line = l.trailing(chunk).finish();
        ctx.send(&line);
    }
}
