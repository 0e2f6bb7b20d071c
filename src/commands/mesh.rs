//! Messages from other shards (and this one, for uniformity), applied to this shard's state.

use std::time::Instant;

use super::delivery::to_conn;
use super::envelope::Env;
use super::outbox::Outbox;
use super::registration::nick_result;
use crate::state::shard::ShardState;

pub fn on_mesh(st: &mut ShardState, out: &mut dyn Outbox, from: usize, env: Env, now: Instant, unix: u64) {
    match env {
        Env::NickClaim { nick, uid, conn } => {
            let granted = st.nicks.claim(nick.clone(), uid);
            out.mesh(from, Env::NickResult { nick, uid, conn, granted });
        }
        Env::NickResult { nick, uid, conn, granted } => nick_result(st, out, conn, nick, uid, granted, now, unix),
        Env::NickRelease { nick, uid } => st.nicks.release(&nick, uid),
        Env::UserIntro(user) => {
            st.directory.insert(*user);
            st.max_global = st.max_global.max(st.directory.len());
        }
        Env::UserNick { uid, nick, folded, ts, line: _ } => {
            st.directory.rename(&uid, nick, folded, ts);
        }
        Env::UserModes { uid, modes } => st.directory.set_modes(&uid, modes),
        Env::UserAway { uid, away } => {
            if let Some(u) = st.directory.get_mut(&uid) {
                u.away = away;
            }
        }
        Env::UserQuit { uid, line: _ } => {
            st.directory.remove(&uid);
        }
        Env::ToUser { uid, line } => {
            if let Some(&conn) = st.local.get(&uid) {
                to_conn(st, out, conn, &line);
            }
        }
        Env::Counts { unregistered } => st.unregistered[from] = unregistered,
    }
}
