//! An account's private history across rustircd servers. A server keeps a private message for
//! each side when either side is its user (`record::private`), so a user who logs in on
//! another server of the network would find there only what passed through it. When one of
//! our users gets an account (at registration, or later from services), its shard asks the
//! network for it:
//!
//! `:<UID> ENCAP * HISTACC`
//!
//! and each rustircd server whose directory shows that user logged in answers from the
//! account's log (at most `max_query` messages, the newest), one line each:
//!
//! `:<SID> ENCAP <asker> HISTPM <UID> <peer nick> <peer account or *> :@msgid=…;time=…[;+tags] <line>`
//!
//! which the account's log here adds unless it has that msgid. The ask names the user, not the
//! account: a server answers only for a user the network told it is logged in, so no server
//! can ask for an account none of its users holds. Servers are trusted as TS6 trusts them (a
//! server may log its own users in, `ENCAP LOGIN`); what crosses is what the account's holder
//! is about to read. An answer that overtakes the news of the login (it can, between shards)
//! is not made: the user then reads only what this server kept.

use std::sync::Arc;

use super::codec::LogKey;
use super::record::account_key;
use super::store::{Entry, Kind, Peer};
use crate::commands::envelope::{Env, Request};
use crate::commands::link::{our_sid, to_all_links, to_link};
use crate::commands::outbox::Outbox;
use crate::local::shard::ShardState;
use crate::proto::{Folded, Line};
use crate::state::servers::Sid;
use crate::state::{Location, Uid};

/// One of this shard's users has an account now: the network is asked for its history.
pub fn logged_in(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid) {
    // `tags`: a direct rustircd peer; without one no server could answer.
    if !st.cfg.history.enabled || !st.servers.iter().any(|s| s.tags) {
        return;
    }
    let line = Line::new().source(uid.as_str()).verb("ENCAP").param("*").param("HISTACC").finish();
    to_all_links(st, out, None, line.into());
}

/// `:<UID> ENCAP * HISTACC` (passed on already): to the keeper of the user's account's log.
pub fn asked(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid) {
    let Some(u) = st.directory.get(&uid) else { return };
    if matches!(u.location, Location::Local(_)) {
        return;
    }
    let Some(account) = u.account.clone() else {
        log::debug!("History: {uid} asks for its account's history, but is not logged in here");
        return;
    };
    let key = account_key(st.cm, &account);
    let owner = key.owner(st.cores);
    if owner == st.me {
        serve(st, out, &key, uid);
    } else {
        out.to_shard(owner, Env::Request(Request::HistoryAccount { key, uid }));
    }
}

/// At the account's log: its newest messages, to the user's server.
pub fn serve(st: &mut ShardState, out: &mut dyn Outbox, key: &Folded, uid: Uid) {
    let to = Sid::of(&uid);
    let (Some(log), Some(to_name)) = (st.history.users.get(key), st.servers.get(&to).map(|s| s.name.clone())) else {
        return;
    };
    let sid = our_sid(st).to_string();
    let kept: Vec<&Entry> = log
        .entries()
        .filter(|e| e.line.multi.is_none() && matches!(e.kind, Kind::Message | Kind::Tagmsg) && e.peer.is_some())
        .collect();
    let skip = kept.len().saturating_sub(st.cfg.history.max_query);
    let lines: Vec<Vec<u8>> = kept[skip..]
        .iter()
        .filter_map(|e| {
            let p = e.peer.as_ref()?;
            let account = p.account.as_ref().map_or("*", |a| a.as_str());
            let head = format!("HISTPM {uid} {} {account}", p.nick);
            super::sync::encap_line(&sid, &to_name, &head, e)
        })
        .collect();
    for line in lines {
        to_link(st, out, to, line.into());
    }
}

/// `HISTPM <UID> <peer nick> <peer account|*> :<tagged line>` for one of our users: into its
/// account's log (at the log's keeper), unless there.
pub fn entry_from_link(st: &mut ShardState, out: &mut dyn Outbox, args: &[&str]) {
    let (Some(uid), Some(nick), Some(peer_account), Some(inner)) =
        (args.first().and_then(|u| Uid::parse(u)), args.get(1), args.get(2), args.get(3))
    else {
        return;
    };
    let Some(u) = st.directory.get(&uid).filter(|u| matches!(u.location, Location::Local(_))) else { return };
    let (Some(account), true) = (u.account.clone(), crate::proto::names::valid_nick(nick, usize::MAX)) else {
        return;
    };
    let Some(mut entry) = super::sync::parse_entry(inner, |_| true) else {
        log::debug!("Link: HISTPM for {uid} not understood: dropped");
        return;
    };
    let account_of_peer = (*peer_account != "*" && !peer_account.is_empty()).then(|| st.cm.fold(peer_account));
    entry.peer =
        Some(Arc::new(Peer { nick: (*nick).into(), folded: st.cm.fold(nick), account: account_of_peer, uid: None }));
    let key = account_key(st.cm, &account);
    let owner = key.owner(st.cores);
    if owner == st.me {
        add(st, out, key, entry);
    } else {
        out.to_shard(owner, Env::Request(Request::HistoryAccountEntry { key, entry: Box::new(entry) }));
    }
}

/// At the account's log: kept unless there already or redacted, or from the future.
pub fn add(st: &mut ShardState, out: &dyn Outbox, key: Folded, entry: Entry) {
    if !st.cfg.history.enabled {
        return;
    }
    let now = out.unix_ms();
    if !super::sync::is_news(st.history.users.get(&key), &entry, now) {
        return;
    }
    let oldest = super::oldest(st, now);
    st.history.add(LogKey::User(key), entry, st.cfg.history.private_length, oldest, false);
}
