//! LIST: `LIST [<channels>|<filters>]` with the ELIST filters `CMNTU`: `>N`/`<N` members,
//! `C>N`/`C<N` created more/less than N minutes ago, `T>N`/`T<N` topic set more/less than N
//! minutes ago, masks (`#ch*`) and negated masks (`!*an1`).

use super::super::{CmdResult, Ctx};
use crate::local::shard::View;
use crate::proto::{mask, Message, Numeric};

#[derive(Default)]
struct Filter {
    min_users: Option<usize>,
    max_users: Option<usize>,
    created_before: Option<u64>,
    created_after: Option<u64>,
    topic_before: Option<u64>,
    topic_after: Option<u64>,
    masks: Vec<String>,
    not_masks: Vec<String>,
}

fn minutes(s: &str) -> Option<u64> {
    s.parse::<u64>().ok().map(|m| m * 60)
}

impl Filter {
    fn parse(arg: &str, now: u64) -> Filter {
        let mut f = Filter::default();
        for item in arg.split(',').filter(|i| !i.is_empty()) {
            let ago = |s: &str| minutes(s).map(|m| now.saturating_sub(m));
            if let Some(n) = item.strip_prefix('>').and_then(|n| n.parse().ok()) {
                f.min_users = Some(n);
            } else if let Some(n) = item.strip_prefix('<').and_then(|n| n.parse().ok()) {
                f.max_users = Some(n);
            } else if let Some(t) = item.strip_prefix("C>").and_then(ago) {
                f.created_before = Some(t);
            } else if let Some(t) = item.strip_prefix("C<").and_then(ago) {
                f.created_after = Some(t);
            } else if let Some(t) = item.strip_prefix("T>").and_then(ago) {
                f.topic_before = Some(t);
            } else if let Some(t) = item.strip_prefix("T<").and_then(ago) {
                f.topic_after = Some(t);
            } else if let Some(m) = item.strip_prefix('!') {
                f.not_masks.push(m.to_string());
            } else {
                f.masks.push(item.to_string());
            }
        }
        f
    }

    fn accepts(&self, v: &View, cm: crate::proto::CaseMapping) -> bool {
        let n = v.ch.members.len();
        let topic_at = v.ch.topic.as_ref().map(|t| t.set_at);
        !(self.min_users.is_some_and(|m| n <= m)
            || self.max_users.is_some_and(|m| n >= m)
            || self.created_before.is_some_and(|t| v.ch.created >= t)
            || self.created_after.is_some_and(|t| v.ch.created <= t)
            || self.topic_before.is_some_and(|t| topic_at.is_none_or(|at| at >= t))
            || self.topic_after.is_some_and(|t| topic_at.is_none_or(|at| at <= t))
            || (!self.masks.is_empty() && !self.masks.iter().any(|m| mask::matches(cm, m, &v.ch.name)))
            || self.not_masks.iter().any(|m| mask::matches(cm, m, &v.ch.name)))
    }
}

pub fn list(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let uid = ctx.me().uid;
    let filter = Filter::parse(msg.param(0).unwrap_or(""), ctx.unix);
    let cm = ctx.st.cm;
    ctx.reply(Numeric::RPL_LISTSTART, &["Channel"]);
    let mut rows: Vec<(String, usize, String)> = ctx
        .st
        .channels
        .values()
        .filter(|v| (!v.ch.is_secret() || v.ch.members.contains_key(&uid)) && filter.accepts(v, cm))
        .map(|v| {
            let (modes, _) = v.ch.mode_string(false);
            let topic = v.ch.topic.as_ref().map_or(String::new(), |t| t.text.to_string());
            (v.ch.name.to_string(), v.ch.members.len(), format!("[{modes}] {topic}"))
        })
        .collect();
    rows.sort();
    for (name, n, text) in rows {
        ctx.reply(Numeric::RPL_LIST, &[&name, &n.to_string(), &text]);
    }
    ctx.reply(Numeric::RPL_LISTEND, &[]);
    Ok(())
}
