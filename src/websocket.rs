//! IRC over WebSocket (IRCv3 `websocket`): which pages may connect, and which subprotocol a
//! client gets. The upgrade and the framing are the runtime's (`shards/src/ws.rs`); to the
//! core a WebSocket client is an ordinary client whose lines come and go one per message.

use crate::proto::mask;
use crate::proto::CaseMapping;

/// Binary messages: any bytes, one line each.
pub const BINARY: &str = "binary.ircv3.net";
/// Text messages: UTF-8, one line each.
pub const TEXT: &str = "text.ircv3.net";

/// The message type a connection uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Text,
    Binary,
}

/// The subprotocol for a client that offers `offered` (its preferred first): the first of them
/// we support, and its message type. When it offers neither, no subprotocol is named and text
/// messages are used (the spec leaves that fallback to the server; browsers send text).
pub fn choose(offered: &[&str]) -> (Option<&'static str>, Framing) {
    for p in offered {
        if *p == BINARY {
            return (Some(BINARY), Framing::Binary);
        }
        if *p == TEXT {
            return (Some(TEXT), Framing::Text);
        }
    }
    (None, Framing::Text)
}

/// Whether a page of `origin` (the handshake's `Origin` header) may connect: with no patterns,
/// any may (as Ergo's `allowed-origins`); otherwise one must match (`*` and `?` wildcards,
/// ASCII case ignored: `https://*.example.com`, or `*` for any).
///
/// A request without an Origin header is allowed: browsers always send one, and the check
/// exists to stop a foreign page from making its visitors' browsers connect; a program without
/// a browser could connect over plain IRC anyway. (Ergo refuses it once a list is set.)
pub fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    match origin {
        _ if allowed.is_empty() => true,
        None => true,
        Some(o) => allowed.iter().any(|p| mask::matches(CaseMapping::Ascii, p.trim(), o.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_order_of_preference_decides() {
        assert_eq!(choose(&[BINARY]), (Some(BINARY), Framing::Binary));
        assert_eq!(choose(&[TEXT]), (Some(TEXT), Framing::Text));
        assert_eq!(choose(&[BINARY, TEXT]), (Some(BINARY), Framing::Binary));
        assert_eq!(choose(&[TEXT, BINARY]), (Some(TEXT), Framing::Text));
        assert_eq!(choose(&["chat", TEXT]), (Some(TEXT), Framing::Text));
    }

    #[test]
    fn no_known_subprotocol_means_text_without_naming_one() {
        assert_eq!(choose(&[]), (None, Framing::Text));
        assert_eq!(choose(&["chat", "Text.IRCv3.net"]), (None, Framing::Text));
    }

    #[test]
    fn origins_match_patterns_and_an_empty_list_allows_all() {
        let none: Vec<String> = Vec::new();
        assert!(origin_allowed(&none, Some("https://evil.example")));
        assert!(origin_allowed(&none, None));

        let list = vec!["https://example.com".to_string(), "https://*.example.org".to_string()];
        assert!(origin_allowed(&list, Some("https://example.com")));
        assert!(origin_allowed(&list, Some("HTTPS://Example.COM")));
        assert!(origin_allowed(&list, Some("https://chat.example.org")));
        assert!(!origin_allowed(&list, Some("http://example.com")));
        assert!(!origin_allowed(&list, Some("https://example.com.evil.net")));
        assert!(!origin_allowed(&list, Some("https://example.org")));
        assert!(!origin_allowed(&list, Some("null")));
        // no browser, no page to protect
        assert!(origin_allowed(&list, None));

        let any = vec!["*".to_string()];
        assert!(origin_allowed(&any, Some("https://anything.example")));
        assert!(origin_allowed(&any, Some("null")));
    }
}
