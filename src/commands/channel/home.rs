//! The home side: a channel's home decides each request against the authoritative state and
//! numbers the accepted change in its sequence.

use std::sync::Arc;

use super::*;
use crate::commands::context::Reply;
use crate::commands::envelope::Answer;
use crate::commands::envelope::Env;
use crate::commands::outbox::{Conn, Outbox};
use crate::local::shard::ShardState;
use crate::proto::Folded;
use crate::state::channel::{Channel, Mutation};
use crate::state::{Location, Uid};

/// A request reached this shard as the channel's home.
pub fn at_home(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    from: usize,
    conn: Conn,
    uid: Uid,
    req: ChanRequest,
    unix: u64,
) {
    let outcome = match req {
        ChanRequest::Reserve { .. } | ChanRequest::Rename { .. } | ChanRequest::Arrive(_) => {
            rename::at_home(st, out, uid, req, unix)
        }
        req => match decide(st, from, uid, req, unix) {
            Ok((chan, name, mutation, line, notes)) => {
                let seq = st.seq.issue();
                Outcome::Accepted { home: st.me as u16, seq, chan, name, mutation, line, notes, then: None }
            }
            Err(replies) => Outcome::Refused(replies),
        },
    };
    out.to_shard(from, Env::Answer(Answer::Chan { conn, uid, outcome }));
}

type Decision = Result<(Folded, Arc<str>, Mutation, Arc<[u8]>, Vec<Reply>), Vec<Reply>>;

fn decide(st: &mut ShardState, from: usize, uid: Uid, req: ChanRequest, unix: u64) -> Decision {
    let folded = st.cm.fold(req.name());
    let cores = st.cores;
    let decision = match req {
        ChanRequest::Join { name, .. } if st.reserved.contains(&folded) => {
            // A channel is being renamed to this name (`rename`).
            return Err(vec![crate::err!(ERR_UNAVAILRESOURCE, name)]);
        }
        ChanRequest::Join { name, key, mask, ip_mask, account, secure, invited } => {
            let ch =
                st.homes.entry(folded.clone()).or_insert_with(|| Channel::new(name.clone(), folded.clone(), 0, cores));
            // The directory says where the joiner is; a user is introduced to every shard
            // before it can ask anything, so the sender's shard is only a fallback.
            let at = st.directory.get(&uid).map_or(Location::local(from), |u| u.location);
            let who = join::Joiner { mask: &mask, ip_mask: &ip_mask, account: account.as_deref(), secure, invited };
            join::decide(ch, st.cm, uid, at, key.as_deref(), &who, unix)
                .map(|(m, line)| (ch.name.clone(), m, line, Vec::new()))
        }
        ChanRequest::Part { mask, reason, .. } => match st.homes.get(&folded) {
            None => Err(vec![crate::err!(ERR_NOSUCHCHANNEL, req_name(&folded))]),
            Some(ch) => {
                part::decide(ch, uid, &mask, reason.as_deref()).map(|(m, line)| (ch.name.clone(), m, line, Vec::new()))
            }
        },
        ChanRequest::Kick { name, mask, target, target_nick, reason } => match st.homes.get(&folded) {
            None => Err(vec![crate::err!(ERR_NOSUCHCHANNEL, name)]),
            Some(ch) => kick::decide(ch, uid, &mask, target, &target_nick, &reason)
                .map(|(m, line)| (ch.name.clone(), m, line, Vec::new())),
        },
        ChanRequest::Topic { name, mask, text } => match st.homes.get(&folded) {
            None => Err(vec![crate::err!(ERR_NOSUCHCHANNEL, name)]),
            Some(ch) => {
                topic::decide(ch, uid, &mask, &text, unix).map(|(m, line)| (ch.name.clone(), m, line, Vec::new()))
            }
        },
        ChanRequest::Remote(r) => {
            let r = *r;
            if !matches!(r, remote::RemoteChan::Sjoin { .. }) && !st.homes.contains_key(&folded) {
                return Err(Vec::new());
            }
            let name = r.name().clone();
            let ch = st.homes.entry(folded.clone()).or_insert_with(|| Channel::new(name, folded.clone(), 0, cores));
            let dir = &st.directory;
            let nick_of = |u: &Uid| dir.get(u).map_or_else(|| u.to_string(), |x| x.nick.to_string());
            match remote::decide(ch, r, &st.cfg.server.name, &nick_of) {
                Some((m, line)) => Ok((ch.name.clone(), m, line.into(), Vec::new())),
                None => Err(Vec::new()),
            }
        }
        ChanRequest::Metadata { name, changes, answer, .. } => match st.homes.get(&folded) {
            None => Err(vec![crate::err!(ERR_NOSUCHCHANNEL, name)]),
            Some(ch) => crate::commands::metadata::decide(ch, uid, changes, answer)
                .map(|(m, line, notes)| (ch.name.clone(), m, line, notes)),
        },
        ChanRequest::Reserve { .. } | ChanRequest::Rename { .. } | ChanRequest::Arrive(_) => {
            unreachable!("rename::at_home decides these")
        }
        ChanRequest::Mode { name, mask, changes } => match st.homes.get(&folded) {
            None => Err(vec![crate::err!(ERR_NOSUCHCHANNEL, name)]),
            Some(ch) => {
                let limits = &st.cfg.limits;
                mode::decide(ch, uid, &mask, &changes, limits.max_list_entries, limits.max_modes, unix)
                    .map(|(m, line, notes)| (ch.name.clone(), m, line, notes))
            }
        },
    };
    let (name, mutation, line, notes) = match decision {
        Ok(d) => d,
        Err(e) => {
            // A join refused on a channel that did not exist leaves nothing behind.
            if st.homes.get(&folded).is_some_and(|c| c.members.is_empty()) {
                st.homes.remove(&folded);
            }
            return Err(e);
        }
    };
    let ch = st.homes.get_mut(&folded).expect("decided on an existing channel");
    if !ch.apply(&mutation) {
        st.homes.remove(&folded);
        crate::commands::history::record::channel_gone(st, &folded);
    } else if matches!(mutation, Mutation::Modes(_) | Mutation::Burst { .. }) {
        let closed = crate::state::channel::Closed::of(ch);
        crate::commands::history::record::channel_modes(st, &folded, closed);
    }
    Ok((folded, name, mutation, line, notes))
}

fn req_name(f: &Folded) -> String {
    f.as_str().to_string()
}

/// Departing users' channels at this home: remove each, and number the removal of them all once.
pub fn quit_at_home(st: &mut ShardState, out: &mut dyn Outbox, from: usize, users: Vec<(Uid, Vec<Folded>)>) {
    for (uid, chans) in &users {
        for chan in chans {
            if let Some(ch) = st.homes.get_mut(chan) {
                if !ch.apply(&Mutation::Leave { uid: *uid }) {
                    st.homes.remove(chan);
                    crate::commands::history::record::channel_gone(st, chan);
                }
            }
        }
    }
    let seq = st.seq.issue();
    let uids = users.into_iter().map(|(u, _)| u).collect();
    out.to_shard(from, Env::Answer(Answer::Quit { uids, home: st.me as u16, seq }));
}
