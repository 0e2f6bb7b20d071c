//! Getting lines to users. This file: the last hop, to a local connection (its sendq
//! enforced; held behind the client's own change while it waits for every shard), a shared
//! line rendered as each recipient's capabilities want it. `route`: to a user or a channel's
//! members wherever they are. `reply`: the replies to a command, labeled when it carried a label.

mod reply;
mod route;

pub use reply::{deliver, finish_label, in_batch, labels, reply};
pub use route::{broadcast, channel_here, route, to_channel, to_invitee, to_user, Route};

use std::sync::Arc;

use super::outbox::{Conn, Outbox};
use super::outgoing::{Meta, Shared, Variants};
use crate::local::client::Wait;
use crate::local::shard::ShardState;
use crate::state::Uid;

/// Queues bytes for a local connection; past the class's sendq the connection is dropped.
pub fn to_conn(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, bytes: &[u8]) {
    let Some(c) = st.clients.get_mut(&conn) else {
        return;
    };
    // A client marked for closing still gets what precedes its ERROR line; once the runtime
    // has closed it, `send` refuses.
    if let Some(queued) = send_or_hold(out, c, conn, bytes, 0) {
        if queued > st.cfg.classes[c.class].sendq && !c.closing {
            c.closing = true;
            st.to_close.push((conn, "SendQ exceeded".into(), true));
            st.metrics.c.sendq_exceeded += 1;
        }
    }
}

/// A shared line for one local connection, if it has the capabilities `need` asks for.
pub fn to_conn_shared(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, line: &Shared, need: u64) {
    let Some(c) = st.clients.get(&conn) else { return };
    if c.caps & need != need {
        return;
    }
    let mut buf = Vec::with_capacity(line.len() + 64);
    line.render(c.caps, &mut buf);
    to_conn(st, out, conn, &buf);
}

/// A shared line for many local connections: rendered once per distinct capability set.
pub fn to_conns_shared(st: &mut ShardState, out: &mut dyn Outbox, conns: &[Conn], line: &Shared, need: u64) {
    let mut variants = Variants::default();
    let mut sent = 0;
    for &conn in conns {
        // One lookup per member: the client is borrowed from `st.clients` while the other
        // fields of `st` are used beside it.
        let Some(c) = st.clients.get_mut(&conn) else { continue };
        if c.caps & need != need {
            continue;
        }
        let bytes = variants.get(line, c.caps);
        sent += 1;
        // A shared line is one line (a multiline message's are counted).
        let lines = if line.multi.is_some() { 0 } else { 1 };
        if let Some(queued) = send_or_hold(out, c, conn, bytes, lines) {
            if queued > st.cfg.classes[c.class].sendq && !c.closing {
                c.closing = true;
                st.to_close.push((conn, "SendQ exceeded".into(), true));
                st.metrics.c.sendq_exceeded += 1;
            }
        }
    }
    let renders = variants.renders() as u64;
    st.metrics.c.render_misses += renders;
    st.metrics.c.render_hits += (sent as u64).saturating_sub(renders);
}

/// Queues bytes for the socket — or, while the client waits for its own change to reach every
/// shard (`Wait::Barrier`), after that change (its `later`). Returns what is queued for it.
/// `lines`: how many lines `bytes` holds when known (0: count them).
fn send_or_hold(
    out: &mut dyn Outbox,
    c: &mut crate::local::client::Client,
    conn: Conn,
    bytes: &[u8],
    lines: u64,
) -> Option<usize> {
    if let Some(Wait::Barrier(b)) = &mut c.wait {
        b.later.extend_from_slice(bytes);
        return Some(b.later.len());
    }
    if lines == 0 {
        out.send(conn, bytes)
    } else {
        out.send_lines(conn, bytes, lines)
    }
}

/// Metadata for a new message or event from `sender`: the time, a fresh msgid, the sender's
/// account and bot flag, and any client-only tags.
pub fn meta(st: &mut ShardState, out: &dyn Outbox, sender: Option<Uid>, client_tags: Option<Box<str>>) -> Arc<Meta> {
    meta_from(st, out, sender, client_tags, None)
}

/// The same for a message that already has its msgid and time (from another rustircd server).
pub fn meta_from(
    st: &mut ShardState,
    out: &dyn Outbox,
    sender: Option<Uid>,
    client_tags: Option<Box<str>>,
    known: Option<(Box<str>, u64)>,
) -> Arc<Meta> {
    let now = out.unix_ms();
    // A peer's clock running ahead must not put its messages after everything said here.
    let known = known.map(|(id, t)| (id, t.min(now + crate::commands::history::sync::CLOCK_AHEAD_MS)));
    let (msgid, time_ms) = known.unwrap_or_else(|| {
        st.msgids += 1;
        (msgid(&st.cfg.server.sid, st.started_unix, st.me as u64, st.msgids), now)
    });
    let u = sender.and_then(|s| st.directory.get(&s));
    Arc::new(Meta {
        time_ms,
        msgid,
        client_tags,
        account: u.and_then(|u| u.account.clone()),
        bot: u.is_some_and(|u| u.modes.has(crate::state::UserModes::BOT)),
        sender,
    })
}

/// A msgid, unique across the network and restarts: the server's SID, its start time (8 hex
/// digits until 2106), the shard (2 hex digits) and the shard's count (hex) — as
/// `format!("{sid}{:08x}{:02x}{:x}")` writes them, without its cost on every message. Fixed
/// widths keep two servers, shards or counts from ever writing the same text.
fn msgid(sid: &str, started: u64, shard: u64, n: u64) -> Box<str> {
    // Written backwards from the end of a buffer that holds the longest (3 + 16 + 16 + 16).
    let mut buf = [0u8; 51];
    let mut i = buf.len();
    for (mut v, width) in [(n, 1), (shard, 2), (started, 8)] {
        let mut digits = 0;
        while v != 0 || digits < width {
            i -= 1;
            buf[i] = b"0123456789abcdef"[(v & 15) as usize];
            v >>= 4;
            digits += 1;
        }
    }
    let sid = &sid.as_bytes()[..sid.len().min(3)];
    i -= sid.len();
    buf[i..i + sid.len()].copy_from_slice(sid);
    String::from_utf8_lossy(&buf[i..]).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn msgids_read_as_format_wrote_them() {
        for (a, b, c) in [(0, 0, 0), (1_764_633_600, 1, 0xff), (u64::MAX, 15, u64::MAX), (9, 10, 16)] {
            assert_eq!(&*super::msgid("0RC", a, b, c), format!("0RC{a:08x}{b:02x}{c:x}"));
        }
    }
}
