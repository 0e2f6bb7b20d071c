//! A connection's life: accepted, fed bytes (framed into lines, queued while the client waits
//! for another shard), and closed — with `ERROR`, the QUIT seen by others, the nick released.
//! Also PING, PONG and QUIT.

use std::net::SocketAddr;
use std::time::Instant;

use super::channel::leave_network;
use super::envelope::Env;
use super::outbox::{Conn, Outbox};
use super::{run_line, CmdResult, Ctx};
use crate::proto::framer::Frame;
use crate::proto::{Line, Message, Numeric};
use crate::state::client::Client;
use crate::state::shard::ShardState;

/// A new connection: it joins the first class that matches its address, or is told why not.
pub fn accept(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    peer: SocketAddr,
    secure: bool,
    now: Instant,
    unix: u64,
) {
    let ip = crate::state::client::display_ip(peer);
    let class = st.cfg.class_for(&ip);
    let refuse = |st: &mut ShardState, out: &mut dyn Outbox, why: &str| {
        log::info!("Client refused: [{peer}] shard={} reason={why}", st.me);
        let line = Line::new().verb("ERROR").trailing(&format!("Closing Link: {ip} ({why})")).finish();
        out.send(conn, &line);
        out.close(conn);
    };
    let Some(class) = class else {
        return refuse(st, out, "No connection class for your host");
    };
    // max_clients is per class across the process: this shard's count and the others' last
    // reported ones.
    let elsewhere: usize = st.remote_classes.iter().map(|v| v.get(class).copied().unwrap_or(0) as usize).sum();
    if st.class_counts[class] + elsewhere >= st.cfg.classes[class].max_clients {
        return refuse(st, out, "Too many connections in your class");
    }
    st.class_counts[class] += 1;
    let uid = st.uids.allocate();
    let mut client = Box::new(Client::new(conn, uid, peer, class, now, unix));
    client.secure = secure;
    st.clients.insert(conn, client);
    let tls = if secure { " tls" } else { "" };
    log::info!("Client connected: [{peer}] shard={} class={}{tls}", st.me, st.cfg.classes[class].name);
}

/// Bytes from a connection.
pub fn data(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, bytes: &[u8], now: Instant, unix: u64) {
    let Some(c) = st.clients.get_mut(&conn) else {
        return;
    };
    if c.closing {
        return;
    }
    let mut framer = std::mem::take(&mut c.framer);
    framer.feed(bytes, |frame| on_frame(st, out, conn, frame, now, unix));
    if let Some(c) = st.clients.get_mut(&conn) {
        c.framer = framer;
        if !c.closing && c.framer.buffered() + c.queued_bytes > st.cfg.classes[c.class].recvq {
            c.closing = true;
            st.to_close.push((conn, "Excess Flood".into(), false));
        }
    }
}

fn on_frame(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, frame: Frame<'_>, now: Instant, unix: u64) {
    let Some(c) = st.clients.get_mut(&conn) else {
        return;
    };
    if c.closing {
        return;
    }
    c.last_active = now;
    c.ping_sent = None;
    match frame {
        Frame::TooLong => {
            let mut ctx = Ctx { st, out, conn, now, unix };
            ctx.reply(Numeric::ERR_INPUTTOOLONG, &[]);
            ctx.flush();
        }
        Frame::Line(line) => {
            if c.wait.is_some() || !c.queue.is_empty() {
                c.queued_bytes += line.len();
                c.queue.push_back(line.into());
                return;
            }
            let mut ctx = Ctx { st, out, conn, now, unix };
            run_line(&mut ctx, line);
            ctx.flush();
            super::delivery::finish_label(st, out, conn);
        }
    }
}

/// Runs the lines a client sent while it waited, until it waits again.
pub fn resume(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, now: Instant, unix: u64) {
    // The command that waited is complete now.
    super::delivery::finish_label(st, out, conn);
    loop {
        let Some(c) = st.clients.get_mut(&conn) else {
            return;
        };
        if c.closing || c.wait.is_some() {
            return;
        }
        let Some(line) = c.queue.pop_front() else {
            return;
        };
        c.queued_bytes -= line.len();
        let mut ctx = Ctx { st, out, conn, now, unix };
        run_line(&mut ctx, &line);
        ctx.flush();
        super::delivery::finish_label(st, out, conn);
    }
}

/// Marks a connection for closing at the end of the current event.
pub fn close_later(st: &mut ShardState, conn: Conn, reason: impl Into<String>) {
    if let Some(c) = st.clients.get_mut(&conn) {
        if !c.closing {
            c.closing = true;
            st.to_close.push((conn, reason.into(), false));
        }
    }
}

/// Ends every event: closes the connections marked during it (ERROR, unless their output is
/// discarded; then the user leaves the network), and tells the other shards when this one's
/// count of unregistered connections changed (LUSERS shows the sum at once).
pub fn finish(st: &mut ShardState, out: &mut dyn Outbox) {
    close_marked(st, out);
    let unregistered = st.local_unregistered() as u32;
    let classes: Vec<u32> = st.class_counts.iter().map(|&n| n as u32).collect();
    if unregistered != st.sent_unregistered || classes != st.sent_classes {
        st.sent_unregistered = unregistered;
        st.sent_classes = classes.clone();
        super::delivery::broadcast(st, out, || Env::Counts { unregistered, classes: classes.clone() });
    }
}

fn close_marked(st: &mut ShardState, out: &mut dyn Outbox) {
    while let Some((conn, reason, abort)) = st.to_close.pop() {
        let Some(c) = st.clients.get(&conn) else { continue };
        if abort {
            out.abort(conn);
            leave_network(st, out, conn, &reason, None, crate::clock::unix_now());
            continue;
        }
        let line = Line::new().verb("ERROR").trailing(&format!("Closing Link: {} ({reason})", c.host)).finish();
        if c.registered {
            // The goodbye waits until every shard has seen the user leave (see `depart`).
            leave_network(st, out, conn, &reason, Some(line), crate::clock::unix_now());
        } else {
            out.send(conn, &line);
            out.close(conn);
            leave_network(st, out, conn, &reason, None, crate::clock::unix_now());
        }
    }
}

/// The peer went away (EOF or error): the same as a close, without the ERROR line.
pub fn disconnected(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, reason: &str) {
    if st.clients.get(&conn).is_some_and(|c| c.departing.is_none()) {
        leave_network(st, out, conn, reason, None, crate::clock::unix_now());
    }
}

/// Frees a nick at its owner shard.
pub fn release_nick(st: &mut ShardState, out: &mut dyn Outbox, nick: crate::proto::Folded, uid: crate::state::Uid) {
    let owner = nick.owner(st.cores);
    if owner == st.me {
        st.nicks.release(&nick, uid);
    } else {
        out.mesh(owner, Env::NickRelease { nick, uid });
    }
}

/// `PING <token>`: answered with PONG carrying the token.
pub fn ping(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(token) = msg.param(0) else {
        return Err(crate::err!(ERR_NOORIGIN));
    };
    let server = ctx.server().to_string();
    let line = Line::new().source(&server).verb("PONG").param(&server).trailing(token).finish();
    ctx.send(&line);
    Ok(())
}

/// `PONG`: any line already counts as life; nothing more to do.
pub fn pong(_ctx: &mut Ctx<'_>, _msg: &Message<'_>) -> CmdResult {
    Ok(())
}

/// `QUIT [:reason]`
pub fn quit(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let reason = match msg.param(0) {
        Some(r) if !r.is_empty() => format!("Quit: {r}"),
        _ => "Client Quit".to_string(),
    };
    let conn = ctx.conn;
    close_later(ctx.st, conn, reason);
    Ok(())
}
