//! Building outgoing lines: tags, source, verb, parameters, CRLF, with the 512-byte limit on
//! the non-tag part enforced once, at the end, without splitting a UTF-8 character.

use super::tags;

/// Longest non-tag part, CRLF excluded (RFC 1459's 512 bytes with CRLF).
pub const MAX_BODY: usize = 510;

#[derive(Debug, Default, Clone)]
pub struct Line {
    buf: Vec<u8>,
    body_start: usize,
    tags_open: bool,
    has_verb: bool,
}

impl Line {
    pub fn new() -> Self {
        Line { buf: Vec::with_capacity(128), ..Default::default() }
    }

    /// A line written at the end of `buf` (lines already in it are kept; `finish` returns it
    /// all): a reply of many lines is built in one buffer.
    pub fn after(mut buf: Vec<u8>) -> Self {
        // Room for a typical line at once: an empty buffer grown byte-group by byte-group
        // reallocated four or five times per line (callgrind, a client's registration).
        buf.reserve(128);
        Line { body_start: buf.len(), buf, ..Default::default() }
    }

    /// Adds a tag; all tags come before the source and verb.
    pub fn tag(mut self, key: &str, value: Option<&str>) -> Self {
        debug_assert!(!self.has_verb && self.buf.len() == self.body_start);
        self.buf.push(if self.tags_open { b';' } else { b'@' });
        self.tags_open = true;
        self.buf.extend_from_slice(key.as_bytes());
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            self.buf.push(b'=');
            tags::escape_into(&mut self.buf, v);
        }
        self.body_start = self.buf.len();
        self
    }

    /// Adds a raw, already escaped tag section (`a=b;c`), as relayed from a client.
    pub fn raw_tags(mut self, raw: &str) -> Self {
        if raw.is_empty() {
            return self;
        }
        self.buf.push(if self.tags_open { b';' } else { b'@' });
        self.tags_open = true;
        self.buf.extend_from_slice(raw.as_bytes());
        self.body_start = self.buf.len();
        self
    }

    fn open_body(&mut self) {
        if self.tags_open && self.buf.len() == self.body_start {
            self.buf.push(b' ');
            self.body_start = self.buf.len();
        }
    }

    pub fn source(mut self, s: &str) -> Self {
        self.open_body();
        self.buf.push(b':');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(b' ');
        self
    }

    /// A user's `nick!user@host` as the source, written in place (no mask string first).
    pub fn source_mask(mut self, nick: &str, user: &str, host: &str) -> Self {
        self.open_body();
        self.buf.push(b':');
        for (part, sep) in [(nick, b'!'), (user, b'@'), (host, b' ')] {
            self.buf.extend_from_slice(part.as_bytes());
            self.buf.push(sep);
        }
        self
    }

    pub fn verb(mut self, v: &str) -> Self {
        self.open_body();
        self.buf.extend_from_slice(v.as_bytes());
        self.has_verb = true;
        self
    }

    /// A parameter; written with `:` when it has to be (empty, has a space, starts with `:`),
    /// in which case it must be the last.
    pub fn param(mut self, p: &str) -> Self {
        self.buf.push(b' ');
        if p.is_empty() || p.starts_with(':') || has_any(p.as_bytes(), b' ', b' ', b' ') {
            self.buf.push(b':');
        }
        self.push_clean(p);
        self
    }

    /// The last parameter, always written with `:` (the convention for text).
    pub fn trailing(mut self, t: &str) -> Self {
        self.buf.extend_from_slice(b" :");
        self.push_clean(t);
        self
    }

    /// Parameters may not smuggle line breaks or NULs into the stream.
    fn push_clean(&mut self, p: &str) {
        if has_any(p.as_bytes(), b'\r', b'\n', 0) {
            self.buf.extend(p.bytes().filter(|b| !matches!(b, b'\r' | b'\n' | 0)));
        } else {
            self.buf.extend_from_slice(p.as_bytes());
        }
    }

    /// The finished line, CRLF included.
    pub fn finish(mut self) -> Vec<u8> {
        truncate_body(&mut self.buf, self.body_start);
        self.buf.extend_from_slice(b"\r\n");
        self.buf
    }
}

/// Cuts `buf[body_start..]` to [`MAX_BODY`] bytes at a character boundary.
/// Whether `s` holds any of three bytes: memchr's vector search for long strings, a plain loop
/// for the short parameters most lines are made of (where the search's setup costs more than
/// it saves; a registration writes ~150 of them).
fn has_any(s: &[u8], a: u8, b: u8, c: u8) -> bool {
    if s.len() >= 32 {
        memchr::memchr3(a, b, c, s).is_some()
    } else {
        s.iter().any(|&x| x == a || x == b || x == c)
    }
}

pub fn truncate_body(buf: &mut Vec<u8>, body_start: usize) {
    if buf.len() - body_start > MAX_BODY {
        let mut end = body_start + MAX_BODY;
        while end > body_start && (buf[end] & 0xC0) == 0x80 {
            end -= 1;
        }
        buf.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_mask_is_the_mask_written_in_place() {
        let l = Line::new().source_mask("dan", "~d", "h.example").verb("QUIT").trailing("a.net b.net").finish();
        assert_eq!(l, b":dan!~d@h.example QUIT :a.net b.net\r\n");
        let tagged = Line::new().tag("time", Some("x")).source_mask("n", "u", "h").verb("PING").finish();
        assert_eq!(tagged, b"@time=x :n!u@h PING\r\n");
    }

    #[test]
    fn builds_lines() {
        let l = Line::new().source("srv").verb("001").param("nick").trailing("Welcome home").finish();
        assert_eq!(l, b":srv 001 nick :Welcome home\r\n");
        let l = Line::new().tag("time", Some("x y")).tag("k", None).verb("PING").param("a").finish();
        assert_eq!(l, b"@time=x\\sy;k PING a\r\n");
        let l = Line::new().verb("AWAY").param("").finish();
        assert_eq!(l, b"AWAY :\r\n");
    }

    #[test]
    fn truncates_at_char_boundary() {
        let text = "é".repeat(400);
        let l = Line::new().source("s").verb("PRIVMSG").param("#c").trailing(&text).finish();
        assert!(l.len() <= 512);
        assert!(std::str::from_utf8(&l).is_ok());
        assert!(l.ends_with(b"\r\n"));
    }

    #[test]
    fn strips_line_breaks_from_params() {
        let l = Line::new().verb("PRIVMSG").param("#c").trailing("a\r\nQUIT\0").finish();
        assert_eq!(l, b"PRIVMSG #c :aQUIT\r\n");
    }
}
