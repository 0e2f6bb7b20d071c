//! Splitting a byte stream into lines. A connection holds a partial-line buffer only while a
//! line is incomplete. CR, LF and CRLF all end a line; NUL bytes are dropped; a line longer
//! than the limit is reported once and skipped up to its end, and the connection goes on.

/// Longest tag section a client may send (IRCv3 message-tags: 8191 bytes with `@` and space).
pub const MAX_TAGS: usize = 8191;
/// Longest line kept whole: tags plus the 512-byte message.
pub const MAX_LINE: usize = MAX_TAGS + 512;

#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Line(&'a [u8]),
    /// A line exceeded [`MAX_LINE`]; its bytes were discarded.
    TooLong,
}

#[derive(Default)]
pub struct Framer {
    partial: Vec<u8>,
    /// Inside an over-long line: skip until its end.
    discarding: bool,
}

impl Framer {
    /// Bytes held for an incomplete line.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Feeds bytes; calls `f` for every complete line (without terminator, never empty).
    pub fn feed(&mut self, mut data: &[u8], mut f: impl FnMut(Frame<'_>)) {
        while !data.is_empty() {
            let end = memchr2(data);
            let (chunk, done) = match end {
                Some(i) => (&data[..i], true),
                None => (data, false),
            };
            data = match end {
                Some(i) => &data[i + 1..],
                None => &[],
            };
            if self.discarding {
                if done {
                    self.discarding = false;
                }
                continue;
            }
            if self.partial.len() + chunk.len() > MAX_LINE {
                self.partial = Vec::new();
                self.discarding = !done;
                f(Frame::TooLong);
                continue;
            }
            if !done {
                self.append(chunk);
                continue;
            }
            if self.partial.is_empty() {
                if memchr::memchr(0, chunk).is_some() {
                    self.append(chunk);
                    self.emit(&mut f);
                } else if !chunk.is_empty() {
                    f(Frame::Line(chunk));
                }
            } else {
                self.append(chunk);
                self.emit(&mut f);
            }
        }
    }

    fn append(&mut self, chunk: &[u8]) {
        self.partial.extend(chunk.iter().copied().filter(|&b| b != 0));
    }

    fn emit(&mut self, f: &mut impl FnMut(Frame<'_>)) {
        if !self.partial.is_empty() {
            f(Frame::Line(&self.partial));
        }
        if self.partial.capacity() > 1024 {
            self.partial = Vec::new();
        } else {
            self.partial.clear();
        }
    }
}

/// Where the line ends (vectorized: every byte received passes here).
fn memchr2(d: &[u8]) -> Option<usize> {
    memchr::memchr2(b'\n', b'\r', d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(f: &mut Framer, data: &[u8]) -> Vec<String> {
        let mut v = Vec::new();
        f.feed(data, |fr| match fr {
            Frame::Line(l) => v.push(String::from_utf8_lossy(l).into_owned()),
            Frame::TooLong => v.push("<toolong>".into()),
        });
        v
    }

    #[test]
    fn splits_on_any_terminator_and_joins_partials() {
        let mut f = Framer::default();
        assert_eq!(frames(&mut f, b"A\r\nB\nC\rD"), ["A", "B", "C"]);
        assert_eq!(f.buffered(), 1);
        assert_eq!(frames(&mut f, b"E\r\n\r\n"), ["DE"]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn drops_nul_bytes() {
        let mut f = Framer::default();
        assert_eq!(frames(&mut f, b"PI\0NG x\r\n"), ["PING x"]);
    }

    #[test]
    fn over_long_lines_are_reported_once_and_skipped() {
        let mut f = Framer::default();
        let mut big = vec![b'x'; MAX_LINE + 10];
        assert_eq!(frames(&mut f, &big), ["<toolong>"]);
        assert_eq!(frames(&mut f, &big), Vec::<String>::new());
        big.clear();
        assert_eq!(frames(&mut f, b"tail\r\nPING ok\r\n"), ["PING ok"]);
        assert_eq!(f.buffered(), 0);
    }
}
