//! Parsing one IRC line (CR/LF already removed) into its parts, borrowing from the line.
//! Follows the ircdocs parser-tests: one or more spaces separate parameters, a parameter
//! starting with `:` takes the rest of the line, tags come first behind `@`.

use smallvec::SmallVec;

use super::tags::{self, TagIter};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// The raw tag section, without the leading `@` (values still escaped).
    pub tags: Option<&'a str>,
    pub source: Option<&'a str>,
    pub verb: &'a str,
    pub params: SmallVec<[&'a str; 8]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing but spaces (clients may send empty lines; they are ignored).
    Empty,
    /// Tags or a source with no command after them.
    NoVerb,
}

fn skip_spaces(s: &str) -> &str {
    s.trim_start_matches(' ')
}

fn split_word(s: &str) -> (&str, &str) {
    // A byte scan: words are short, and `str::find` sets up a searcher for each.
    match s.bytes().position(|b| b == b' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

impl<'a> Message<'a> {
    pub fn parse(line: &'a str) -> Result<Self, ParseError> {
        let mut rest = skip_spaces(line);
        if rest.is_empty() {
            return Err(ParseError::Empty);
        }
        let mut tags = None;
        if let Some(r) = rest.strip_prefix('@') {
            let (t, r) = split_word(r);
            tags = Some(t);
            rest = skip_spaces(r);
        }
        let mut source = None;
        if let Some(r) = rest.strip_prefix(':') {
            let (s, r) = split_word(r);
            source = Some(s);
            rest = skip_spaces(r);
        }
        let (verb, r) = split_word(rest);
        if verb.is_empty() {
            return Err(ParseError::NoVerb);
        }
        rest = r;
        let mut params = SmallVec::new();
        loop {
            rest = skip_spaces(rest);
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                params.push(trailing);
                break;
            }
            let (p, r) = split_word(rest);
            params.push(p);
            rest = r;
        }
        Ok(Message { tags, source, verb, params })
    }

    /// The tags, unescaped, in order.
    pub fn tags(&self) -> TagIter<'a> {
        tags::iter(self.tags.unwrap_or(""))
    }

    /// The value of one tag (`Some("")` for a tag without value).
    pub fn tag(&self, key: &str) -> Option<std::borrow::Cow<'a, str>> {
        self.tags().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn param(&self, i: usize) -> Option<&'a str> {
        self.params.get(i).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_forms() {
        let m = Message::parse(":nick!u@h PRIVMSG #c :hello world").unwrap();
        assert_eq!(m.source, Some("nick!u@h"));
        assert_eq!(m.verb, "PRIVMSG");
        assert_eq!(&m.params[..], &["#c", "hello world"]);
        assert_eq!(Message::parse("   "), Err(ParseError::Empty));
        assert_eq!(Message::parse(":src"), Err(ParseError::NoVerb));
        assert_eq!(Message::parse("@a=b"), Err(ParseError::NoVerb));
    }

    #[test]
    fn many_params_spill_over_inline_storage() {
        let line = (0..40).map(|i| i.to_string()).collect::<Vec<_>>().join(" ");
        let m = Message::parse(&line).unwrap();
        assert_eq!(m.verb, "0");
        assert_eq!(m.params.len(), 39);
    }
}
