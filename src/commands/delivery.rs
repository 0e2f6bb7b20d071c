//! Getting lines to users: to a local connection (with its sendq enforced), a shared line as
//! each recipient's capabilities want it, to any user by UID (locally, or one envelope to the
//! shard that holds it), and the replies to a command — gathered into a labeled response when
//! the command carried a label.

use std::sync::Arc;
use std::time::Instant;

use super::capabilities::bits;
use super::envelope::Env;
use super::outbox::{Conn, Outbox};
use super::outgoing::{Meta, Shared, Variants};
use crate::commands::envelope::Ordered;
use crate::local::client::{Held, Wait};
use crate::local::shard::ShardState;
use crate::proto::Line;
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
        // A shared line is one line.
        if let Some(queued) = send_or_hold(out, c, conn, bytes, 1) {
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
    if let Some(Wait::Barrier { later, .. }) = &mut c.wait {
        later.extend_from_slice(bytes);
        return Some(later.len());
    }
    if lines == 0 {
        out.send(conn, bytes)
    } else {
        out.send_lines(conn, bytes, lines)
    }
}

/// Delivers a message to a user wherever it is: its connection here, or its shard. `at`: when
/// the message reached the server.
pub fn to_user(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, line: &Shared, need: u64, at: Instant) {
    if let Some(&conn) = st.local.get(&uid) {
        to_conn_shared(st, out, conn, line, need);
        st.metrics.message_latency.observe(at.elapsed());
    } else if let Some(u) = st.directory.get(&uid) {
        let shard = u.location.shard();
        out.mesh(shard, Env::Ordered(Ordered::ToUser { uid, line: line.clone(), need, at }));
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

/// Metadata for a new message or event from `sender`: the time, a fresh msgid, the sender's
/// account and bot flag, and any client-only tags.
pub fn meta(st: &mut ShardState, sender: Option<Uid>, client_tags: Option<Box<str>>) -> Arc<Meta> {
    st.msgids += 1;
    let u = sender.and_then(|s| st.directory.get(&s));
    Arc::new(Meta {
        time_ms: crate::clock::unix_now_ms(),
        msgid: format!("{}{:x}{:x}", st.started_unix, st.me, st.msgids).into(),
        client_tags,
        account: u.and_then(|u| u.account.clone()),
        bot: u.is_some_and(|u| u.modes.has(crate::state::UserModes::BOT)),
    })
}

/// Part of the reply to the running command of `conn`: held while the client's ban changes are
/// being saved (so its replies keep their order), then as [`deliver`] says.
pub fn reply(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, bytes: &[u8]) {
    if let Some(c) = st.clients.get_mut(&conn) {
        if let Some(Wait::Saving { held }) = &mut c.wait {
            match held.back_mut() {
                Some(Held::Bytes(b)) => b.extend_from_slice(bytes),
                _ => held.push_back(Held::Bytes(bytes.to_vec())),
            }
            return;
        }
    }
    deliver(st, out, conn, bytes);
}

/// Replies released now: gathered under the client's label if it has one, else sent.
pub fn deliver(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    if let Some(c) = st.clients.get_mut(&conn) {
        if c.label.is_some() {
            c.labeled.extend_from_slice(bytes);
            return;
        }
    }
    to_conn(st, out, conn, bytes);
}

/// The labeled command of `conn` is complete: its replies go out with the label — on the one
/// line, in a `labeled-response` batch when several, or as an ACK when none.
pub fn finish_label(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn) {
    let server = st.cfg.server.name.clone();
    let Some(c) = st.clients.get_mut(&conn) else { return };
    if c.wait.is_some() {
        return;
    }
    let Some(label) = c.label.take() else { return };
    let body = std::mem::take(&mut c.labeled);
    let lines: Vec<&[u8]> = body.split_inclusive(|&b| b == b'\n').filter(|l| l.len() > 2).collect();
    let mut escaped = Vec::new();
    crate::proto::tags::escape_into(&mut escaped, &label);
    let label_tag = String::from_utf8_lossy(&escaped).into_owned();
    let mut buf = Vec::with_capacity(body.len() + 128);
    match lines.len() {
        0 => buf.extend_from_slice(&Line::new().tag("label", Some(&label)).source(&server).verb("ACK").finish()),
        1 => add_tag(&mut buf, lines[0], &format!("label={label_tag}")),
        _ => {
            c.batches += 1;
            let id = format!("lr{}", c.batches);
            buf.extend_from_slice(
                &Line::new()
                    .tag("label", Some(&label))
                    .source(&server)
                    .verb("BATCH")
                    .param(&format!("+{id}"))
                    .param("labeled-response")
                    .finish(),
            );
            for l in &lines {
                add_tag(&mut buf, l, &format!("batch={id}"));
            }
            buf.extend_from_slice(&Line::new().source(&server).verb("BATCH").param(&format!("-{id}")).finish());
        }
    }
    to_conn(st, out, conn, &buf);
}

/// Adds a tag in front of a line's own tags.
fn add_tag(buf: &mut Vec<u8>, line: &[u8], tag: &str) {
    buf.push(b'@');
    buf.extend_from_slice(tag.as_bytes());
    match line.strip_prefix(b"@") {
        Some(rest) => {
            buf.push(b';');
            buf.extend_from_slice(rest);
        }
        None => {
            buf.push(b' ');
            buf.extend_from_slice(line);
        }
    }
}

/// Whether a client wants replies labeled at all (labeled-response negotiated).
pub fn labels(caps: u64) -> bool {
    caps & bits::LABELED_RESPONSE != 0
}
