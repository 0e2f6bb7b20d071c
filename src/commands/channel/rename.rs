//! RENAME (IRCv3 `draft/channel-rename`): `RENAME <channel> <new name> [:<reason>]`.
//!
//! A channel's home is the hash of its name, so a renamed channel changes homes. It moves in
//! three requests of the renamer's shard, each to one home, so that every event still carries
//! one home's number (docs/architecture.md, "Channel rename"):
//! 1. `Reserve` — the new name's home keeps the name free (a JOIN of it meanwhile gets 437);
//! 2. `Rename` — the old home checks the renamer's rights, takes the channel (and its history)
//!    out and numbers its leaving, [`Mutation::Moved`], which nobody is shown;
//! 3. `Arrive` — once every shard applied that, the new home takes the channel in and numbers
//!    [`Mutation::Arrived`]: members see `RENAME`, or without the capability a PART and a JOIN
//!    with the topic and names.

use std::sync::Arc;

use super::super::{CmdResult, Ctx};
use super::{submit, ChanRequest, Outcome};
use crate::commands::capabilities::bits;
use crate::commands::delivery::meta;
use crate::commands::envelope::{Env, Request};
use crate::commands::history::store::Entry;
use crate::commands::identity::fail;
use crate::commands::outbox::{Conn, Outbox};
use crate::commands::outgoing::Shared;
use crate::err;
use crate::local::shard::ShardState;
use crate::proto::names::valid_channel;
use crate::proto::{Folded, Line, Message};
use crate::state::channel::{Channel, Mutation};
use crate::state::Uid;

/// What the old home hands the new one: the channel (already under its new name) and its log.
#[derive(Clone, Debug)]
pub struct Handover {
    pub state: Channel,
    pub from: Arc<str>,
    pub mask: Arc<str>,
    pub reason: Arc<str>,
    pub log: Vec<Entry>,
}

pub fn rename(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let (old, new) = (msg.params[0], msg.params[1]);
    let reason: String = msg.param(2).unwrap_or("").chars().take(ctx.st.cfg.limits.topiclen).collect();
    let folded = ctx.st.cm.fold(old);
    let uid = ctx.me().uid;
    let Some(view) = ctx.st.channels.get(&folded) else {
        return Err(err!(ERR_NOSUCHCHANNEL, old));
    };
    let old: Arc<str> = view.ch.name.clone();
    match view.ch.status(&uid) {
        None => return Err(err!(ERR_NOTONCHANNEL, old)),
        Some(s) if !s.is_op() => return Err(err!(ERR_CHANOPRIVSNEEDED, old)),
        _ => {}
    }
    let cannot = |ctx: &mut Ctx<'_>, text: &str| fail(ctx, "RENAME", "CANNOT_RENAME", &[&old, new], text);
    if let Some(why) = linked_refusal(ctx.st, &view.ch) {
        cannot(ctx, why);
        return Ok(());
    }
    if !valid_channel(new, ctx.st.cfg.limits.channellen) {
        cannot(ctx, "That is not a valid channel name");
        return Ok(());
    }
    if new.as_bytes()[0] != old.as_bytes()[0] {
        cannot(ctx, "A channel cannot change its type");
        return Ok(());
    }
    if *new == *old {
        cannot(ctx, "That is the channel's name already");
        return Ok(());
    }
    let new_folded = ctx.st.cm.fold(new);
    if new_folded != folded && ctx.st.channels.contains_key(&new_folded) {
        fail(ctx, "RENAME", "CHANNEL_NAME_IN_USE", &[&old, new], "Channel name is already taken");
        return Ok(());
    }
    let Some(me) = ctx.st.directory.get(&uid) else { return Ok(()) };
    let mask: Arc<str> = me.mask().into();
    submit(ctx, vec![ChanRequest::Reserve { name: new.into(), old, mask, reason: reason.into() }]);
    Ok(())
}

/// Why a channel cannot be renamed while this server is linked, if it cannot. TS6 has no
/// rename: the other servers are told of one as every member leaving the old name and the
/// channel appearing under the new one (`link::relay`), which holds only when none of its
/// members is theirs, and when none of them would create the new name meanwhile — services
/// create channels only on command; a server with users might (a JOIN of it, crossing the
/// rename, would find the name taken at the new home), so a link to one refuses renames.
fn linked_refusal(st: &ShardState, ch: &Channel) -> Option<&'static str> {
    if st.servers.iter().any(|s| !crate::commands::link::is_service(st, &s.name)) {
        return Some("Channels cannot be renamed while this server is linked to other servers");
    }
    if ch.members.keys().any(|u| u.sid() != st.cfg.server.sid.as_str()) {
        return Some("Channels with members on other servers (services too) cannot be renamed");
    }
    None
}

/// Seconds between two renames of one channel: each shows every member without the
/// capability a PART, a JOIN and the whole NAMES list (the spec asks for a limit).
pub const COOLDOWN: u64 = 30;

/// A rename's request reached this shard as a home: the answer, numbered if it is a change.
pub fn at_home(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, req: ChanRequest, unix: u64) -> Outcome {
    match req {
        ChanRequest::Reserve { name, old, mask, reason } => reserve(st, name, old, mask, reason),
        ChanRequest::Rename { name, new, mask, reason } => hand_over(st, out, uid, name, new, mask, reason, unix),
        ChanRequest::Arrive(h) => arrive(st, *h, unix),
        _ => unreachable!("not a rename request"),
    }
}

fn reserve(st: &mut ShardState, name: Arc<str>, old: Arc<str>, mask: Arc<str>, reason: Arc<str>) -> Outcome {
    let folded = st.cm.fold(&name);
    // A change of case only: the name is the channel's own.
    if folded != st.cm.fold(&old) && (st.homes.contains_key(&folded) || !st.reserved.insert(folded)) {
        return in_use(&old, &name);
    }
    Outcome::Proceed(Box::new(ChanRequest::Rename { name: old, new: name, mask, reason }))
}

#[allow(clippy::too_many_arguments)]
fn hand_over(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    uid: Uid,
    name: Arc<str>,
    new: Arc<str>,
    mask: Arc<str>,
    reason: Arc<str>,
    unix: u64,
) -> Outcome {
    let folded = st.cm.fold(&name);
    let new_folded = st.cm.fold(&new);
    let cannot = |text| Outcome::Fail {
        command: "RENAME",
        code: "CANNOT_RENAME",
        context: vec![name.clone(), new.clone()],
        text,
    };
    let refusal = match st.homes.get(&folded) {
        None => Some(Outcome::Refused(vec![err!(ERR_NOSUCHCHANNEL, name)])),
        Some(ch) => match ch.status(&uid) {
            None => Some(Outcome::Refused(vec![err!(ERR_NOTONCHANNEL, name)])),
            Some(s) if !s.is_op() => Some(Outcome::Refused(vec![err!(ERR_CHANOPRIVSNEEDED, name)])),
            _ if ch.renamed != 0 && ch.renamed + COOLDOWN > unix => {
                Some(cannot("This channel was renamed a moment ago; try again later"))
            }
            // A link may have come up, or a member of another server joined, since the
            // renamer's shard looked.
            _ => linked_refusal(st, ch).map(cannot),
        },
    };
    if let Some(r) = refusal {
        if new_folded != folded {
            let home = new_folded.owner(st.cores);
            if home == st.me {
                st.reserved.remove(&new_folded);
            } else {
                out.to_shard(home, Env::Request(Request::Unreserve { name: new_folded }));
            }
        }
        return r;
    }
    // A change of case keeps the name, which must stay free until the channel is back.
    if new_folded == folded {
        st.reserved.insert(folded.clone());
    }
    let mut state = st.homes.remove(&folded).expect("checked above");
    // A lock is services' for the name registered with them, not for the new one.
    state.mlock = None;
    let old_name = state.name.clone();
    state.name = new.clone();
    state.folded = new_folded;
    let log = crate::commands::history::record::channel_handed_over(st, &folded);
    let seq = st.seq.issue();
    let then = ChanRequest::Arrive(Box::new(Handover { state, from: old_name.clone(), mask, reason, log }));
    Outcome::Accepted {
        home: st.me as u16,
        seq,
        chan: folded,
        name: old_name,
        mutation: Mutation::Moved { to: new },
        line: Arc::from(&b""[..]),
        notes: Vec::new(),
        then: Some(Box::new(then)),
    }
}

fn arrive(st: &mut ShardState, h: Handover, unix: u64) -> Outcome {
    let Handover { mut state, from, mask, reason, log } = h;
    state.renamed = unix;
    let folded = state.folded.clone();
    st.reserved.remove(&folded);
    if st.homes.contains_key(&folded) {
        // The reservation kept JOINs out; only a link could get here first, and renames are
        // refused while linked to anything but services (`linked_refusal`).
        log::error!("RENAME {from} -> {}: the name was taken meanwhile; the channel is lost", state.name);
        return in_use(&from, &state.name);
    }
    let closed = crate::state::channel::Closed::of(&state);
    crate::commands::history::record::channel_taken_in(st, &folded, &from, &state.name, closed, log);
    let line = Line::new().source(&mask).verb("RENAME").param(&from).param(&state.name).trailing(&reason).finish();
    let name = state.name.clone();
    let mut here = state.clone();
    if drop_departed(st, &mut here) {
        st.homes.insert(folded.clone(), here);
    } else {
        crate::commands::history::record::channel_gone(st, &folded);
    }
    let seq = st.seq.issue();
    Outcome::Accepted {
        home: st.me as u16,
        seq,
        chan: folded,
        name,
        mutation: Mutation::Arrived { from, reason, state: Box::new(state) },
        line: line.into(),
        notes: Vec::new(),
        then: None,
    }
}

fn in_use(old: &str, new: &str) -> Outcome {
    Outcome::Fail {
        command: "RENAME",
        code: "CHANNEL_NAME_IN_USE",
        context: vec![old.into(), new.into()],
        text: "Channel name is already taken",
    }
}

/// What a member sees of the channel `chan` arriving under its new name: the `RENAME` line
/// with the capability; without it, a PART of the old name and a JOIN of the new one with its
/// topic and names, as a client that joined it would see.
pub fn lines_for(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    chan: &Folded,
    from: &str,
    reason: &str,
    line: &Shared,
) -> Vec<u8> {
    let Some(c) = st.clients.get(&conn) else { return Vec::new() };
    let caps = c.caps;
    let mut buf = Vec::new();
    if caps & bits::CHANNEL_RENAME != 0 {
        line.render(caps, &mut buf);
        return buf;
    }
    // A change of case is not worth a PART and a JOIN (the spec says so): nothing is shown.
    if st.cm.fold(from) == *chan {
        return buf;
    }
    let uid = c.uid;
    let Some(u) = st.directory.get(&uid) else { return buf };
    let (mask, account, realname) = (u.mask(), u.account.clone(), u.realname.clone());
    let Some(name) = st.channels.get(chan).map(|v| v.ch.name.clone()) else { return buf };
    // The member's own PART and JOIN, each with its own msgid and the member's tags.
    let part = Line::new().source(&mask).verb("PART").param(from).trailing(reason).finish();
    Shared::with_meta(part.into(), meta(st, &*out, Some(uid), None)).render(caps, &mut buf);
    let join_line = Line::new().source(&mask).verb("JOIN").param(&name).finish();
    let mut join = Shared::with_meta(join_line.into(), meta(st, &*out, Some(uid), None));
    let account = account.as_deref().unwrap_or("*");
    let ext = Line::new().source(&mask).verb("JOIN").param(&name).param(account).trailing(&realname).finish();
    join.join_ext = Some(ext.into());
    join.render(caps, &mut buf);
    let (now, unix) = (out.now(), out.unix_ms() / 1000);
    buf.extend_from_slice(&super::join::after_join(st, out, conn, chan, now, unix));
    buf
}

/// Shows the arrival to this shard's members of `chan` but `skip` (the renamer, answered
/// with its barrier).
pub fn show(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    chan: &Folded,
    from: &str,
    reason: &str,
    line: &Shared,
    skip: Option<Conn>,
) {
    let conns: Vec<Conn> = st.channels.get(chan).map(|v| v.local.iter().map(|(_, c)| *c).collect()).unwrap_or_default();
    for conn in conns.into_iter().filter(|c| Some(*c) != skip) {
        let buf = lines_for(st, out, conn, chan, from, reason, line);
        crate::commands::delivery::to_conn(st, out, conn, &buf);
    }
}

/// The channel arrived on this shard (its view is the handed-over state): its local members,
/// the members' channel lists, and what departed meanwhile.
pub fn arrived_here(st: &mut ShardState, chan: &Folded) {
    // The home's own copy: members it forgot between taking the channel in and now.
    if let Some(mut ch) = st.homes.remove(chan) {
        if drop_departed(st, &mut ch) {
            st.homes.insert(chan.clone(), ch);
        } else {
            crate::commands::history::record::channel_gone(st, chan);
        }
    }
    let Some(mut view) = st.channels.remove(chan) else { return };
    if !drop_departed(st, &mut view.ch) {
        return;
    }
    let members: Vec<Uid> = view.ch.members.keys().copied().collect();
    view.local = members.iter().filter_map(|u| st.local.get(u).map(|c| (*u, *c))).collect();
    for uid in &members {
        if let Some(u) = st.directory.get_mut(uid) {
            if !u.channels.contains(chan) {
                u.channels.push(chan.clone());
            }
        }
    }
    // An invitation to the new name was for another channel (or none): it does not let its
    // holder into this one.
    for c in st.clients.values_mut().filter(|c| !members.contains(&c.uid)) {
        if let Some(r) = c.rare_if_any() {
            r.invites.retain(|f| f != chan);
        }
    }
    st.channels.insert(chan.clone(), view);
}

/// Members who left the network while the channel was between homes (their departure asked
/// the old home too late, or no home): out of this copy. False when none is left. Each shard
/// drops them here or, if the arrival came first, when it forgets the user ([`scrub`]).
fn drop_departed(st: &ShardState, ch: &mut Channel) -> bool {
    let gone: Vec<Uid> = ch.members.keys().filter(|u| st.directory.get(u).is_none()).copied().collect();
    for uid in gone {
        ch.apply(&Mutation::Leave { uid });
    }
    !ch.members.is_empty()
}

/// A user is forgotten here: channels its departure did not know of (a rename's arrival after
/// it began) lose it too, in this shard's copy and, at their home, in the authoritative one.
pub fn scrub(st: &mut ShardState, uid: Uid, chans: &[Folded]) {
    for chan in chans {
        if let Some(v) = st.channels.get_mut(chan) {
            if v.ch.members.contains_key(&uid) && !v.ch.apply(&Mutation::Leave { uid }) {
                st.channels.remove(chan);
            }
        }
        if let Some(ch) = st.homes.get_mut(chan) {
            if ch.members.contains_key(&uid) && !ch.apply(&Mutation::Leave { uid }) {
                st.homes.remove(chan);
                crate::commands::history::record::channel_gone(st, chan);
            }
        }
    }
}
