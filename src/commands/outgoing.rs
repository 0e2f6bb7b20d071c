//! A line shown to many people, built once, with what each recipient's capabilities add to it:
//! `@time` (server-time), `@msgid`, client-only tags and `@bot` (message-tags), `@account`
//! (account-tag), and the extended-join form of a JOIN. Fan-out renders one variant per
//! distinct set of those capabilities, not one per member.

use std::sync::Arc;

use smallvec::SmallVec;

use super::capabilities::bits;
use crate::proto::tags;

/// What travels with a line to every recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Milliseconds since the epoch (server-time).
    pub time_ms: u64,
    pub msgid: Box<str>,
    /// Client-only tags (`+name=value;...`), already escaped, as the sender wrote them.
    pub client_tags: Option<Box<str>>,
    pub account: Option<Arc<str>>,
    /// The sender is a bot (`+B`).
    pub bot: bool,
    /// Who sent it (a server link names the sender by UID).
    pub sender: Option<crate::state::Uid>,
}

/// A line for many recipients.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The line without tags, CRLF included (a multiline message: its lines as separate
    /// messages, blank ones left out — what servers and clients without multiline see).
    pub body: Arc<[u8]>,
    pub meta: Option<Arc<Meta>>,
    /// For JOIN: the extended-join form (`JOIN #chan account :realname`).
    pub join_ext: Option<Arc<[u8]>>,
    /// A multiline message (draft/multiline): shown as a batch to clients that take one.
    pub multi: Option<Arc<Multi>>,
}

/// The lines of a multiline message, with what its batch names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multi {
    /// `nick!user@host`.
    pub source: Box<str>,
    pub verb: Box<str>,
    pub target: Box<str>,
    /// Each line's text, and whether it continues the previous one (`draft/multiline-concat`).
    pub lines: Vec<(Box<str>, bool)>,
}

impl Multi {
    /// The body every other recipient gets: one message per non-blank line.
    pub fn fallback(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (text, _) in self.lines.iter().filter(|(t, _)| !t.is_empty()) {
            let l = crate::proto::Line::after(out).source(&self.source).verb(&self.verb).param(&self.target);
            out = l.trailing(text).finish();
        }
        out
    }
}

/// The capabilities that change how a shared line looks.
pub const RENDER_CAPS: u64 = bits::SERVER_TIME | bits::MESSAGE_TAGS | bits::ACCOUNT_TAG | bits::EXTENDED_JOIN;
/// And for a multiline message.
pub const MULTI_CAPS: u64 = RENDER_CAPS | bits::BATCH | bits::MULTILINE;

impl Shared {
    /// A line with no metadata (shown the same to everyone).
    pub fn plain(body: Arc<[u8]>) -> Shared {
        Shared { body, meta: None, join_ext: None, multi: None }
    }

    pub fn with_meta(body: Arc<[u8]>, meta: Arc<Meta>) -> Shared {
        Shared { body, meta: Some(meta), join_ext: None, multi: None }
    }

    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The line as a client with `caps` receives it.
    pub fn render(&self, caps: u64, out: &mut Vec<u8>) {
        if let Some(m) = &self.multi {
            return self.render_multi(m, caps, out);
        }
        self.write_tags(caps, out, true);
        let body = match (&self.join_ext, caps & bits::EXTENDED_JOIN != 0) {
            (Some(ext), true) => ext,
            _ => &self.body,
        };
        out.extend_from_slice(body);
    }

    /// The tags a client with `caps` gets, then a space (nothing when none); `msgid`: whether
    /// the msgid is among them.
    fn write_tags(&self, caps: u64, out: &mut Vec<u8>, msgid: bool) {
        let start = out.len();
        let mut first = true;
        let mut tag = |out: &mut Vec<u8>, key: &str, value: Option<&str>| {
            out.push(if first { b'@' } else { b';' });
            first = false;
            out.extend_from_slice(key.as_bytes());
            if let Some(v) = value {
                out.push(b'=');
                tags::escape_into(out, v);
            }
        };
        if let Some(m) = &self.meta {
            if caps & bits::ACCOUNT_TAG != 0 {
                if let Some(a) = &m.account {
                    tag(out, "account", Some(a));
                }
            }
            if caps & bits::MESSAGE_TAGS != 0 {
                if m.bot {
                    tag(out, "bot", None);
                }
                if msgid {
                    tag(out, "msgid", Some(&m.msgid));
                }
            }
            if caps & bits::SERVER_TIME != 0 {
                tag(out, "time", Some(&crate::clock::format_iso_ms(m.time_ms)));
            }
            if caps & bits::MESSAGE_TAGS != 0 {
                if let Some(ct) = &m.client_tags {
                    // already escaped: copied as received
                    out.push(if first { b'@' } else { b';' });
                    out.extend_from_slice(ct.as_bytes());
                }
            }
        }
        if out.len() > start {
            out.push(b' ');
        }
    }

    /// A multiline message: a `draft/multiline` batch (the tags on its opening line, the
    /// lines inside with the batch tag and `draft/multiline-concat`), or for a client without
    /// it, one message per non-blank line: the first with the msgid, each with the time and
    /// the sender's tags.
    fn render_multi(&self, m: &Multi, caps: u64, out: &mut Vec<u8>) {
        let id = format!("ml{}", self.meta.as_ref().map_or("", |m| &*m.msgid));
        if caps & (bits::MULTILINE | bits::BATCH) == bits::MULTILINE | bits::BATCH {
            self.write_tags(caps, out, true);
            let l = crate::proto::Line::after(std::mem::take(out)).source(&m.source).verb("BATCH");
            *out = l.param(&format!("+{id}")).param("draft/multiline").param(&m.target).finish();
            for (text, concat) in &m.lines {
                let mut l = crate::proto::Line::after(std::mem::take(out)).tag("batch", Some(&id[..]));
                if *concat {
                    l = l.tag("draft/multiline-concat", None);
                }
                *out = l.source(&m.source).verb(&m.verb).param(&m.target).trailing(text).finish();
            }
            let l = crate::proto::Line::after(std::mem::take(out)).source(&m.source).verb("BATCH");
            *out = l.param(&format!("-{id}")).finish();
            return;
        }
        let mut first = true;
        for line in self.body.split_inclusive(|&b| b == b'\n') {
            self.write_tags(caps, out, first);
            out.extend_from_slice(line);
            first = false;
        }
    }
}

/// Renders a shared line once per distinct set of relevant capabilities.
#[derive(Default)]
pub struct Variants {
    cache: SmallVec<[(u64, Vec<u8>); 2]>,
}

impl Variants {
    pub fn get(&mut self, line: &Shared, caps: u64) -> &[u8] {
        let key = if line.multi.is_some() {
            caps & MULTI_CAPS
        } else if line.meta.is_some() || line.join_ext.is_some() {
            caps & RENDER_CAPS
        } else {
            0
        };
        if let Some(i) = self.cache.iter().position(|(k, _)| *k == key) {
            return &self.cache[i].1;
        }
        let mut v = Vec::with_capacity(line.body.len() + 64);
        line.render(key, &mut v);
        self.cache.push((key, v));
        &self.cache.last().expect("just pushed").1
    }

    /// Distinct renderings made so far (the rest of the `get`s reused one).
    pub fn renders(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        let meta = Meta {
            time_ms: 951_782_400_123,
            msgid: "abc".into(),
            client_tags: Some("+draft/reply=x\\sy".into()),
            account: Some("acct".into()),
            bot: true,
            sender: None,
        };
        Shared::with_meta(Arc::from(&b":n!u@h PRIVMSG #c :hi\r\n"[..]), Arc::new(meta))
    }

    fn show(s: &Shared, caps: u64) -> String {
        let mut v = Vec::new();
        s.render(caps, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn tags_follow_capabilities() {
        let s = shared();
        assert_eq!(show(&s, 0), ":n!u@h PRIVMSG #c :hi\r\n");
        assert_eq!(show(&s, bits::SERVER_TIME), "@time=2000-02-29T00:00:00.123Z :n!u@h PRIVMSG #c :hi\r\n");
        assert_eq!(
            show(&s, bits::MESSAGE_TAGS | bits::ACCOUNT_TAG),
            "@account=acct;bot;msgid=abc;+draft/reply=x\\sy :n!u@h PRIVMSG #c :hi\r\n"
        );
    }

    #[test]
    fn variants_are_rendered_once_per_capability_set() {
        let s = shared();
        let mut v = Variants::default();
        let a = v.get(&s, bits::SERVER_TIME | bits::ECHO_MESSAGE).to_vec();
        let b = v.get(&s, bits::SERVER_TIME).to_vec();
        assert_eq!(a, b);
        assert_eq!(v.cache.len(), 1);
        v.get(&s, 0);
        assert_eq!(v.cache.len(), 2);
    }

    #[test]
    fn extended_join_form() {
        let mut s = Shared::plain(Arc::from(&b":n!u@h JOIN #c\r\n"[..]));
        s.join_ext = Some(Arc::from(&b":n!u@h JOIN #c * :Real Name\r\n"[..]));
        assert_eq!(show(&s, bits::EXTENDED_JOIN), ":n!u@h JOIN #c * :Real Name\r\n");
        assert_eq!(show(&s, 0), ":n!u@h JOIN #c\r\n");
    }
}
