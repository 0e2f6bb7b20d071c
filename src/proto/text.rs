//! What a message's text carries besides words: CTCP requests and colour codes, as the channel
//! modes `+C` (no CTCP) and `+c` (no colour) look for them.

/// The CTCP command of a message (`\x01PING 123\x01` → `PING`), if it is a CTCP one: the text
/// starts with `\x01` (ircdocs CTCP). The closing `\x01` is optional, as clients send both.
pub fn ctcp_command(text: &str) -> Option<&str> {
    let body = text.strip_prefix('\x01')?;
    let end = body.find([' ', '\x01']).unwrap_or(body.len());
    Some(&body[..end])
}

/// A CTCP other than ACTION (`/me`), which `+C` refuses; ACTION stays allowed everywhere.
pub fn is_ctcp_request(text: &str) -> bool {
    ctcp_command(text).is_some_and(|c| !c.eq_ignore_ascii_case("ACTION"))
}

/// Whether the text has a colour code: mIRC colour (`\x03`) or hex colour (`\x04`). Bold,
/// italics, underline and reset are formatting, not colour, and pass `+c`.
pub fn has_colour(text: &str) -> bool {
    text.bytes().any(|b| b == 0x03 || b == 0x04)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctcp_requests_but_not_actions() {
        assert_eq!(ctcp_command("\x01PING 123\x01"), Some("PING"));
        assert_eq!(ctcp_command("\x01VERSION\x01"), Some("VERSION"));
        assert_eq!(ctcp_command("\x01VERSION"), Some("VERSION"));
        assert_eq!(ctcp_command("hello \x01PING\x01"), None, "CTCP starts the text");
        assert!(is_ctcp_request("\x01PING 123\x01"));
        assert!(is_ctcp_request("\x01\x01"), "an empty CTCP is still one");
        assert!(!is_ctcp_request("\x01ACTION waves\x01"));
        assert!(!is_ctcp_request("\x01action waves\x01"));
        assert!(!is_ctcp_request("\x01ACTION\x01"));
        assert!(is_ctcp_request("\x01ACTIONS\x01"));
        assert!(!is_ctcp_request("plain text"));
    }

    #[test]
    fn colours_but_not_formatting() {
        assert!(has_colour("\x034red"));
        assert!(has_colour("a \x0312,4blue on red\x03 b"));
        assert!(has_colour("\x04FF0000hex"));
        assert!(!has_colour("\x02bold\x02 \x1ditalic\x1d \x1funder\x1f \x0f"));
        assert!(!has_colour("héllo"));
    }
}
