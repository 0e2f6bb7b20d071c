//! Wildcard masks (`*` any run, `?` one character) as used by bans, K-lines and WHO, matched
//! under the server's casemapping; and splitting `nick!user@host`.

use super::casemap::CaseMapping;

/// Whether `text` matches `mask` (`*` = any run, `?` = exactly one character), comparing bytes
/// under `cm`. Iterative with one backtrack point: linear in practice, never exponential.
pub fn matches(cm: CaseMapping, mask: &str, text: &str) -> bool {
    let m = mask.as_bytes();
    let t = text.as_bytes();
    let (mut mi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if mi < m.len() && m[mi] == b'*' {
            star = Some((mi, ti));
            mi += 1;
        } else if mi < m.len() && (m[mi] == b'?' || cm.fold_byte(m[mi]) == cm.fold_byte(t[ti])) {
            // `?` matches one character, not one byte: skip a whole UTF-8 sequence.
            if m[mi] == b'?' {
                ti += utf8_len(t[ti]);
            } else {
                ti += 1;
            }
            mi += 1;
        } else if let Some((smi, sti)) = star {
            mi = smi + 1;
            ti = sti + 1;
            star = Some((smi, sti + 1));
        } else {
            return false;
        }
    }
    while mi < m.len() && m[mi] == b'*' {
        mi += 1;
    }
    mi == m.len()
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// The parts of `nick!user@host`; a missing part is empty.
pub fn split_userhost(s: &str) -> (&str, &str, &str) {
    let (rest, host) = match s.find('@') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    match rest.find('!') {
        Some(i) => (&rest[..i], &rest[i + 1..], host),
        None => (rest, "", host),
    }
}

/// Completes a partial ban mask the way servers do: `nick` → `nick!*@*`, `user@host` →
/// `*!user@host`, `nick!user` → `nick!user@*`.
pub fn normalize_ban_mask(mask: &str) -> String {
    // The mute extban's mask is completed like any other (`$m:bob` → `$m:bob!*@*`), unless it
    // is an extban itself; other extbans (`$a`, `$a:<account mask>`) are kept as written.
    if let Some(inner) = mask.strip_prefix("$m:") {
        return format!("$m:{}", normalize_ban_mask(inner));
    }
    if mask.starts_with('$') {
        return mask.to_string();
    }
    let has_bang = mask.contains('!');
    let has_at = mask.contains('@');
    match (has_bang, has_at) {
        (true, true) => mask.to_string(),
        (true, false) => format!("{mask}@*"),
        (false, true) => format!("*!{mask}"),
        (false, false) => format!("{mask}!*@*"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let cm = CaseMapping::Ascii;
        assert!(matches(cm, "*", ""));
        assert!(matches(cm, "a*b", "aXXb"));
        assert!(matches(cm, "a*b*c", "abbbc"));
        assert!(!matches(cm, "a*b", "aXXc"));
        assert!(matches(cm, "?", "é"));
        assert!(matches(cm, "NICK!*@*", "nick!u@h"));
        // pathological pattern stays fast
        let text = "a".repeat(5000);
        assert!(!matches(cm, &"*a".repeat(50).replace("a", "a*b"), &text));
    }

    #[test]
    fn rfc1459_masks() {
        assert!(matches(CaseMapping::Rfc1459, "x[y]*", "X{Y}z"));
        assert!(!matches(CaseMapping::Ascii, "x[y]*", "X{Y}z"));
    }

    #[test]
    fn ban_masks() {
        assert_eq!(normalize_ban_mask("bob"), "bob!*@*");
        assert_eq!(normalize_ban_mask("*@host"), "*!*@host");
        assert_eq!(normalize_ban_mask("bob!id"), "bob!id@*");
        assert_eq!(normalize_ban_mask("a!b@c"), "a!b@c");
        assert_eq!(normalize_ban_mask("$a:alice*"), "$a:alice*");
        assert_eq!(normalize_ban_mask("$m:bob"), "$m:bob!*@*");
        assert_eq!(normalize_ban_mask("$m:*@host"), "$m:*!*@host");
        assert_eq!(normalize_ban_mask("$m:bar!*@*"), "$m:bar!*@*");
        assert_eq!(normalize_ban_mask("$m:$a:acct"), "$m:$a:acct");
    }
}
