//! IRCv3 capability negotiation: `CAP LS [302]`, `LIST`, `REQ`, `END`. Capabilities are rows
//! of [`CAPS`] (`capabilities.rs`); a client's enabled set is a bit mask. Sending `CAP LS` or `CAP REQ` before
//! registration holds registration until `CAP END`.

use super::capabilities::{available, bits, find, offered, Offer, CAPS};
use super::registration::try_register;
use super::{CmdResult, Ctx};
use crate::err;
use crate::proto::{Line, Message};

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
            let mechs = ctx.st.sasl_mechs.as_ref().map(|(_, m)| m.clone());
            let offer = Offer { cfg: &ctx.st.cfg, secure, mechs: mechs.as_deref() };
            let items = offered(&offer, with_values);
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
            let mechs = ctx.st.sasl_mechs.as_ref().map(|(_, m)| m.clone());
            let cfg = ctx.st.cfg.clone();
            let offer = Offer { cfg: &cfg, secure: ctx.me().secure, mechs: mechs.as_deref() };
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
                    // Not offered now (sasl without services): only taking it off is allowed.
                    Some(c) if !remove && !available(c, &offer) => ok = false,
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
                let (conn, now, unix) = (ctx.conn, ctx.now, ctx.unix);
                super::sasl::cap_end(ctx.st, ctx.out, conn, now, unix);
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
