//! The replies to a command: held while the client's ban changes are saved, gathered under its
//! label when it carried one (one line, a `labeled-response` batch, or an ACK).

use super::to_conn;
use crate::commands::capabilities::bits;
use crate::commands::outbox::{Conn, Outbox};
use crate::local::client::{Held, Wait};
use crate::local::shard::ShardState;
use crate::proto::Line;

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
        if let Some(r) = c.rare_if_any().filter(|r| r.label.is_some()) {
            r.labeled.extend_from_slice(bytes);
            return;
        }
    }
    to_conn(st, out, conn, bytes);
}

/// The labeled command of `conn` is complete: its replies go out with the label — on the one
/// line, in a `labeled-response` batch when several, or as an ACK when none.
pub fn finish_label(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn) {
    let Some(c) = st.clients.get_mut(&conn) else { return };
    if c.wait.is_some() {
        return;
    }
    let Some(r) = c.rare_if_any() else { return };
    let Some(label) = r.label.take() else { return };
    // Only now: this runs after every command, and most carry no label.
    let server = st.cfg.server.name.clone();
    let body = std::mem::take(&mut r.labeled);
    let lines: Vec<&[u8]> = body.split_inclusive(|&b| b == b'\n').filter(|l| l.len() > 2).collect();
    let mut escaped = Vec::new();
    crate::proto::tags::escape_into(&mut escaped, &label);
    let label_tag = String::from_utf8_lossy(&escaped).into_owned();
    let mut buf = Vec::with_capacity(body.len() + 128);
    match lines.len() {
        // The answer is one batch (a chathistory or multiline batch): the label goes on its
        // opening line (labeled-response), no batch around it.
        n if n >= 2 && one_batch(&lines) => {
            add_tag(&mut buf, lines[0], &format!("label={label_tag}"));
            for l in &lines[1..] {
                buf.extend_from_slice(l);
            }
        }
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
                tag_line(&mut buf, l, &id);
            }
            buf.extend_from_slice(&Line::new().source(&server).verb("BATCH").param(&format!("-{id}")).finish());
        }
    }
    to_conn(st, out, conn, &buf);
}

/// A line of the batch `id`: tagged with it — but a line of a batch inside it (a chathistory
/// batch's entries, a multiline message's lines) belongs to that batch only; the inner batch's
/// opening line carries the outer tag.
fn tag_line(buf: &mut Vec<u8>, line: &[u8], id: &str) {
    if has_batch_tag(line) {
        buf.extend_from_slice(line);
    } else {
        add_tag(buf, line, &format!("batch={id}"));
    }
}

/// `lines` as one batch for the client `conn` when it takes batches (else as they are): a
/// fresh reference (`prefix` and the client's count), `BATCH +ref kind params...` and
/// `BATCH -ref` from the server around them, each line tagged (see [`tag_line`]).
pub fn in_batch(st: &mut ShardState, conn: Conn, prefix: &str, kind: &str, params: &[&str], lines: &[u8]) -> Vec<u8> {
    let Some(c) = st.clients.get_mut(&conn).filter(|c| c.caps & bits::BATCH != 0) else { return lines.to_vec() };
    c.batches += 1;
    let id = format!("{prefix}{}", c.batches);
    let server = &st.cfg.server.name;
    let mut l = Line::new().source(server).verb("BATCH").param(&format!("+{id}")).param(kind);
    for p in params {
        l = l.param(p);
    }
    let mut out = l.finish();
    for line in lines.split_inclusive(|&b| b == b'\n') {
        tag_line(&mut out, line, &id);
    }
    out.extend_from_slice(&Line::new().source(server).verb("BATCH").param(&format!("-{id}")).finish());
    out
}

/// Whether these lines are exactly one batch: `BATCH +id`, lines of it, `BATCH -id`.
fn one_batch(lines: &[&[u8]]) -> bool {
    let verb_and_ref = |l: &[u8]| -> Option<(Vec<u8>, Vec<u8>)> {
        let mut words = l.split(|&b| b == b' ').filter(|w| !w.starts_with(b"@") && !w.starts_with(b":"));
        Some((words.next()?.to_vec(), words.next()?.to_vec()))
    };
    let (Some((v1, open)), Some((v2, close))) = (verb_and_ref(lines[0]), verb_and_ref(lines[lines.len() - 1])) else {
        return false;
    };
    let trim = |r: &[u8]| r.strip_suffix(b"\r\n").unwrap_or(r).to_vec();
    let (open, close) = (trim(&open), trim(&close));
    if v1 != b"BATCH" || v2 != b"BATCH" || !open.starts_with(b"+") || close.get(1..) != open.get(1..) {
        return false;
    }
    let tag = [b"batch=".as_slice(), &open[1..]].concat();
    lines[1..lines.len() - 1].iter().all(|l| {
        let Some(rest) = l.strip_prefix(b"@") else { return false };
        let tags = rest.split(|&b| b == b' ').next().unwrap_or_default();
        tags.split(|&b| b == b';').any(|t| t == tag.as_slice())
    })
}

/// Whether a line's tags include `batch`.
pub fn has_batch_tag(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"@") else { return false };
    let tags = rest.split(|&b| b == b' ').next().unwrap_or_default();
    tags.split(|&b| b == b';').any(|t| t == b"batch" || t.starts_with(b"batch="))
}

/// Adds a tag in front of a line's own tags.
pub fn add_tag(buf: &mut Vec<u8>, line: &[u8], tag: &str) {
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
