//! LIST: `LIST [<channels>|<filters>]` with ELIST `U` filters (`>N`, `<N` members).

use super::super::{CmdResult, Ctx};
use crate::proto::{Message, Numeric};

pub fn list(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let uid = ctx.me().uid;
    let mut min_users: Option<usize> = None;
    let mut max_users: Option<usize> = None;
    let mut names: Vec<crate::proto::Folded> = Vec::new();
    if let Some(arg) = msg.param(0).filter(|a| !a.is_empty()) {
        for item in arg.split(',') {
            if let Some(n) = item.strip_prefix('>').and_then(|n| n.parse().ok()) {
                min_users = Some(n);
            } else if let Some(n) = item.strip_prefix('<').and_then(|n| n.parse().ok()) {
                max_users = Some(n);
            } else if !item.is_empty() {
                names.push(ctx.st.cm.fold(item));
            }
        }
    }
    ctx.reply(Numeric::RPL_LISTSTART, &["Channel"]);
    let mut rows: Vec<(String, usize, String)> = Vec::new();
    let mut consider = |v: &crate::state::shard::View| {
        let n = v.ch.members.len();
        let member = v.ch.members.contains_key(&uid);
        if v.ch.is_secret() && !member {
            return;
        }
        if min_users.is_some_and(|m| n <= m) || max_users.is_some_and(|m| n >= m) {
            return;
        }
        let (modes, _) = v.ch.mode_string(false);
        let topic = v.ch.topic.as_ref().map_or(String::new(), |t| t.text.to_string());
        rows.push((v.ch.name.to_string(), n, format!("[{modes}] {topic}")));
    };
    if names.is_empty() {
        ctx.st.channels.values().for_each(&mut consider);
    } else {
        for f in &names {
            if let Some(v) = ctx.st.channels.get(f) {
                consider(v);
            }
        }
    }
    rows.sort();
    for (name, n, text) in rows {
        ctx.reply(Numeric::RPL_LIST, &[&name, &n.to_string(), &text]);
    }
    ctx.reply(Numeric::RPL_LISTEND, &[]);
    Ok(())
}
