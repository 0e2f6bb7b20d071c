//! Getting lines to users: to a local connection (with its sendq enforced), to any user by UID
//! (locally, or one envelope to the shard that holds it).

use std::sync::Arc;

use super::envelope::Env;
use super::outbox::{Conn, Outbox};
use crate::state::shard::ShardState;
use crate::state::Uid;

/// Queues a line for a local connection; past the class's sendq the connection is dropped.
pub fn to_conn(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, bytes: &[u8]) {
    let Some(c) = st.clients.get_mut(&conn) else {
        return;
    };
    // A client marked for closing still gets what precedes its ERROR line; once the runtime
    // has closed it, `send` refuses.
    if let Some(queued) = out.send(conn, bytes) {
        if queued > st.cfg.classes[c.class].sendq && !c.closing {
            c.closing = true;
            st.to_close.push((conn, "SendQ exceeded".into(), true));
        }
    }
}

/// Delivers a line to a user wherever it is: its connection here, or its shard.
pub fn to_user(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, line: &Arc<[u8]>) {
    if let Some(&conn) = st.local.get(&uid) {
        to_conn(st, out, conn, line);
    } else if let Some(u) = st.directory.get(&uid) {
        let shard = u.shard;
        out.mesh(shard, Env::ToUser { uid, line: line.clone() });
    }
}

/// Sends one envelope to every other shard, built per destination.
pub fn broadcast(st: &ShardState, out: &mut dyn Outbox, mut make: impl FnMut() -> Env) {
    for s in 0..st.cores {
        if s != st.me {
            out.mesh(s, make());
        }
    }
}
