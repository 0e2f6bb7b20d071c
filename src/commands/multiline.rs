//! Multiline messages (IRCv3 `draft/multiline`): `BATCH +<id> draft/multiline <target>`, then
//! PRIVMSG (or NOTICE) lines tagged `batch=<id>` (`draft/multiline-concat` joins a line to the
//! previous one), then `BATCH -<id>`. The lines are gathered on the client and sent as one
//! message (one msgid, one time) when the batch closes: as a batch to recipients with the
//! capability, as separate messages to the others (`outgoing::Multi`). Limits are in the
//! capability's value; past one, or on a malformed batch, `FAIL BATCH ...` and the batch is
//! dropped.

use super::capabilities::{bits, MULTILINE_MAX_BYTES, MULTILINE_MAX_LINES};
use super::{CmdResult, Ctx};
use crate::proto::Message;

/// A multiline message being gathered.
#[derive(Debug)]
pub struct Gathering {
    id: Box<str>,
    target: Box<str>,
    /// PRIVMSG or NOTICE: the first line's verb (all must have it).
    verb: Option<Box<str>>,
    /// The client-only tags of the BATCH line: the message's.
    tags: Option<Box<str>>,
    /// The label of the BATCH line: the whole batch's answer carries it.
    label: Option<String>,
    lines: Vec<(Box<str>, bool)>,
    bytes: usize,
}

/// The BATCH command of a client: only `draft/multiline` batches are taken.
pub fn batch(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let reference = msg.params[0];
    if ctx.me().caps & bits::MULTILINE == 0 {
        fail(ctx, "MULTILINE_INVALID", None, "Negotiate draft/multiline first");
        return Ok(());
    }
    if let Some(id) = reference.strip_prefix('+') {
        let (Some("draft/multiline"), Some(target)) = (msg.param(1), msg.param(2)) else {
            fail(ctx, "MULTILINE_INVALID", None, "Only draft/multiline batches with a target are taken");
            return Ok(());
        };
        if id.is_empty() || ctx.me().rare().multiline.is_some() {
            ctx.me_mut().rare_mut().multiline = None;
            fail(ctx, "MULTILINE_INVALID", None, "A batch is already open");
            return Ok(());
        }
        let tags = super::message::keep_client_tags(msg.tags.unwrap_or("")).ok().flatten();
        // The label answers the whole batch, when it closes: no ACK for this line.
        let label = ctx.me_mut().rare_mut().label.take();
        let g =
            Gathering { id: id.into(), target: target.into(), verb: None, tags, label, lines: Vec::new(), bytes: 0 };
        ctx.me_mut().rare_mut().multiline = Some(Box::new(g));
        return Ok(());
    }
    let Some(id) = reference.strip_prefix('-') else {
        fail(ctx, "MULTILINE_INVALID", None, "Not a batch reference");
        return Ok(());
    };
    let Some(g) = ctx.me_mut().rare_mut().multiline.take() else {
        fail(ctx, "MULTILINE_INVALID", None, "No batch is open");
        return Ok(());
    };
    if &*g.id != id {
        fail(ctx, "MULTILINE_INVALID", None, "That batch is not open");
        return Ok(());
    }
    if let Err(why) = check(&g) {
        fail(ctx, "MULTILINE_INVALID", None, why);
        return Ok(());
    }
    if let Some(label) = g.label {
        ctx.me_mut().rare_mut().label = Some(label);
    }
    let verb = g.verb.as_deref().unwrap_or("PRIVMSG").to_string();
    super::message::send_multiline(ctx, &verb, &g.target, g.lines, g.tags)
}

/// A line of a client with an open batch, or tagged with one: taken into the batch (true), or
/// refused with a FAIL (true, the batch dropped); false when it is not part of one.
pub fn take_line(ctx: &mut Ctx<'_>, msg: &Message<'_>, verb: &str) -> bool {
    let tag = msg.tag("batch");
    let open = ctx.me().rare().multiline.is_some();
    if tag.is_none() {
        return false;
    }
    let Some(g) = ctx.me_mut().rare_mut().multiline.as_mut().filter(|_| open) else {
        fail(ctx, "MULTILINE_INVALID", None, "No such batch is open");
        return true;
    };
    let (target, text) = (msg.param(0).unwrap_or(""), msg.param(1).unwrap_or(""));
    let concat = msg.tag("draft/multiline-concat").is_some();
    let same_verb = g.verb.as_deref().is_none_or(|v| v == verb);
    if tag.as_deref() != Some(&*g.id) || target != &*g.target || verb == "TAGMSG" || !same_verb {
        ctx.me_mut().rare_mut().multiline = None;
        fail(ctx, "MULTILINE_INVALID", None, "A line does not belong to the open batch");
        return true;
    }
    g.verb.get_or_insert_with(|| verb.into());
    g.bytes += text.len();
    g.lines.push((text.into(), concat));
    let (lines, bytes) = (g.lines.len(), g.bytes);
    if lines > MULTILINE_MAX_LINES {
        ctx.me_mut().rare_mut().multiline = None;
        let max = MULTILINE_MAX_LINES.to_string();
        fail(ctx, "MULTILINE_MAX_LINES", Some(&max), "Too many lines in a multiline message");
    } else if bytes > MULTILINE_MAX_BYTES {
        ctx.me_mut().rare_mut().multiline = None;
        let max = MULTILINE_MAX_BYTES.to_string();
        fail(ctx, "MULTILINE_MAX_BYTES", Some(&max), "Too many bytes in a multiline message");
    }
    true
}

/// A closed batch's content: some text, and no concatenation onto a blank line.
fn check(g: &Gathering) -> Result<(), &'static str> {
    if g.lines.iter().all(|(t, _)| t.is_empty()) {
        return Err("A multiline message needs some text");
    }
    if g.lines.iter().any(|(t, concat)| *concat && t.is_empty()) {
        return Err("draft/multiline-concat on a blank line");
    }
    Ok(())
}

fn fail(ctx: &mut Ctx<'_>, code: &str, limit: Option<&str>, text: &str) {
    super::identity::fail(ctx, "BATCH", code, limit.as_slice(), text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gathering(lines: &[(&str, bool)]) -> Gathering {
        Gathering {
            id: "1".into(),
            target: "#c".into(),
            verb: None,
            tags: None,
            label: None,
            lines: lines.iter().map(|(t, c)| (Box::from(*t), *c)).collect(),
            bytes: 0,
        }
    }

    #[test]
    fn a_batch_needs_text_and_no_concat_on_blank_lines() {
        assert!(check(&gathering(&[("a", false), ("", false), ("b", true)])).is_ok());
        assert!(check(&gathering(&[("", false)])).is_err());
        assert!(check(&gathering(&[("a", false), ("", true)])).is_err());
    }
}
