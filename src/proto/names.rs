//! What makes a valid nickname, channel name, username and hostname.

/// Characters allowed in nicknames besides letters and digits (RFC 2812 "special").
fn is_special(b: u8) -> bool {
    matches!(b, b'[' | b']' | b'\\' | b'`' | b'_' | b'^' | b'{' | b'|' | b'}')
}

/// RFC 2812 nickname: a letter or special first, then letters, digits, specials or `-`.
pub fn valid_nick(nick: &str, max_len: usize) -> bool {
    let b = nick.as_bytes();
    match b.first() {
        Some(&c) if c.is_ascii_alphabetic() || is_special(c) => {}
        _ => return false,
    }
    b.len() <= max_len && b.iter().all(|&c| c.is_ascii_alphanumeric() || is_special(c) || c == b'-')
}

/// Channel types this server supports (`CHANTYPES`).
pub const CHANTYPES: &str = "#";

/// A channel name: a `#`, then anything but space, comma, BEL and NUL (and no CR/LF, which
/// cannot arrive), at most `max_len` bytes in all.
pub fn valid_channel(name: &str, max_len: usize) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b.len() <= max_len
        && CHANTYPES.as_bytes().contains(&b[0])
        && !b[1..].iter().any(|&c| matches!(c, b' ' | b',' | 7 | 0 | b'\r' | b'\n'))
}

pub fn is_channel_name(s: &str) -> bool {
    s.bytes().next().is_some_and(|c| CHANTYPES.as_bytes().contains(&c))
}

/// The username from USER, cleaned as servers do: characters that would break `nick!user@host`
/// are dropped, the rest cut to `max_len`. `None` when nothing usable remains.
pub fn clean_username(raw: &str, max_len: usize) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '!' | '@' | '*' | '?' | ',' | ':'))
        .take(max_len)
        .collect();
    (!s.is_empty()).then_some(s)
}

/// A hostname fit for a server name or a client's resolved host: dot-separated labels of
/// letters, digits and inner hyphens, at least two labels.
pub fn valid_hostname(host: &str) -> bool {
    host_labels(host).is_some_and(|n| n >= 2)
}

/// A name reverse DNS may give a client: like [`valid_hostname`], one label allowed
/// (`localhost`).
pub fn valid_client_host(host: &str) -> bool {
    host_labels(host).is_some()
}

/// The number of labels of a well-formed hostname.
fn host_labels(host: &str) -> Option<usize> {
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    let mut labels = 0;
    for label in host.split('.') {
        let b = label.as_bytes();
        if b.is_empty() || b.len() > 63 || b[0] == b'-' || b[b.len() - 1] == b'-' {
            return None;
        }
        if !b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-') {
            return None;
        }
        labels += 1;
    }
    Some(labels)
}

/// A server name as used in `[server] name`: a hostname, or a name with at least one dot.
pub fn valid_server_name(name: &str) -> bool {
    valid_hostname(name)
        || (name.contains('.')
            && name.len() <= 63
            && name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_')))
}

/// A server name a TS6 link may carry (a `[[links]]` peer, a `[server] services` name): a dot,
/// only letters, digits, `.` and `-`, at most 63 bytes. Hybrid refuses a SERVER name without a
/// dot or over HOSTLEN (63) as "Bogus server name".
pub fn valid_ts6_server_name(name: &str) -> bool {
    name.len() <= 63
        && name.contains('.')
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-'))
}

/// A TS6 server ID: a digit, then two digits or uppercase letters.
pub fn valid_sid(sid: &str) -> bool {
    let b = sid.as_bytes();
    b.len() == 3 && b[0].is_ascii_digit() && b[1..].iter().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks() {
        for ok in ["a", "Nick", "[x]", "a-b", "_x_", "x123", "`^{|}"] {
            assert!(valid_nick(ok, 30), "{ok}");
        }
        for bad in ["", "1abc", "-x", "a b", "a!b", "a@b", "a,b", "#c", "é", "abcdefghijk"] {
            assert!(!valid_nick(bad, 10), "{bad}");
        }
    }

    #[test]
    fn channels() {
        assert!(valid_channel("#rust", 50));
        assert!(valid_channel("#é☃", 50));
        assert!(!valid_channel("#", 50));
        assert!(!valid_channel("rust", 50));
        assert!(!valid_channel("#a,b", 50));
        assert!(!valid_channel("#a b", 50));
        assert!(!valid_channel("#a\x07", 50));
        assert!(!valid_channel(&format!("#{}", "x".repeat(50)), 50));
    }

    #[test]
    fn usernames_and_sids() {
        assert_eq!(clean_username("bob", 10).as_deref(), Some("bob"));
        assert_eq!(clean_username("b@o!b", 10).as_deref(), Some("bob"));
        assert_eq!(clean_username("@@", 10), None);
        assert_eq!(clean_username("abcdefghijklmnop", 10).as_deref(), Some("abcdefghij"));
        assert!(valid_sid("0RC"));
        assert!(!valid_sid("ABC"));
        assert!(!valid_sid("0rc"));
    }

    #[test]
    fn ts6_server_names() {
        for ok in ["irc.b.lab", "services.lab", "a.b", "hub-1.example.net", &format!("{}.net", "x".repeat(59))] {
            assert!(valid_ts6_server_name(ok), "{ok}");
        }
        let long = format!("{}.net", "x".repeat(60));
        for bad in ["", "localhost", "irc_b.lab", "irc b.lab", "irc.b.lab:7000", "*.lab", "irc.é.lab", long.as_str()] {
            assert!(!valid_ts6_server_name(bad), "{bad}");
        }
    }
}
