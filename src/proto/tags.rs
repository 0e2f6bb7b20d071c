//! IRCv3 message tags: iteration with unescaping, and escaping for output.

use std::borrow::Cow;

pub struct TagIter<'a> {
    rest: &'a str,
}

pub fn iter(raw: &str) -> TagIter<'_> {
    TagIter { rest: raw }
}

impl<'a> Iterator for TagIter<'a> {
    type Item = (&'a str, Cow<'a, str>);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (item, rest) = match self.rest.find(';') {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, ""),
            };
            self.rest = rest;
            if item.is_empty() {
                continue;
            }
            return Some(match item.find('=') {
                Some(i) => (&item[..i], unescape(&item[i + 1..])),
                None => (item, Cow::Borrowed("")),
            });
        }
    }
}

/// `\:` → `;`, `\s` → space, `\\` → `\`, `\r`, `\n`; any other escaped char is itself; a
/// lone trailing backslash is dropped.
pub fn unescape(v: &str) -> Cow<'_, str> {
    if !v.contains('\\') {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    Cow::Owned(out)
}

/// Appends a tag value with the escapes a receiver's [`unescape`] reverses.
pub fn escape_into(out: &mut Vec<u8>, v: &str) {
    for b in v.bytes() {
        match b {
            b';' => out.extend_from_slice(b"\\:"),
            b' ' => out.extend_from_slice(b"\\s"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// Whether a tag key is well formed: `[+][vendor/]name`, name of letters, digits and hyphens.
pub fn valid_key(k: &str) -> bool {
    let k = k.strip_prefix('+').unwrap_or(k);
    let name = match k.rfind('/') {
        Some(i) => {
            let vendor = &k[..i];
            if vendor.is_empty() || !vendor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
                return false;
            }
            &k[i + 1..]
        }
        None => k,
    };
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trip() {
        let v = "a;b c\\d\r\ne";
        let mut out = Vec::new();
        escape_into(&mut out, v);
        let esc = String::from_utf8(out).unwrap();
        assert_eq!(esc, "a\\:b\\sc\\\\d\\r\\ne");
        assert_eq!(unescape(&esc), v);
    }

    #[test]
    fn keys() {
        assert!(valid_key("+example.com/foo-bar"));
        assert!(valid_key("time"));
        assert!(!valid_key("+/x"));
        assert!(!valid_key("a b"));
        assert!(!valid_key(""));
    }
}
