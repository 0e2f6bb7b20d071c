//! Matching users against a channel's ban, exception and invite-exception lists, with the
//! extended bans of 005 `EXTBAN=$,am`: `$a` (any logged-in user), `$a:<account mask>` (an
//! account matching the mask), and the mute `$m:<mask>` (InspIRCd's `m:` under our `$`
//! prefix, as irctest builds it from the 005 token: a matching user may join but not speak).
//! A user is matched by its masks (`nick!user@host`, `nick!user@ip`) and its account.

use crate::proto::{mask, CaseMapping};
use crate::state::channel::ListEntry;

/// The mute extban's prefix. Its mask may be any other entry: `$m:*!*@host`, `$m:$a:acct*`.
pub const MUTE: &str = "$m:";

/// Whether one entry (a plain mask, `$a` or `$a:<mask>`) matches the user. An unknown extban
/// matches nobody.
fn matches(cm: CaseMapping, entry: &str, masks: &[&str], account: Option<&str>) -> bool {
    match entry.strip_prefix("$a") {
        Some("") => account.is_some(),
        Some(rest) => match (rest.strip_prefix(':'), account) {
            (Some(pat), Some(acct)) => mask::matches(cm, pat, acct),
            _ => false,
        },
        None if entry.starts_with('$') => false,
        None => masks.iter().any(|m| mask::matches(cm, entry, m)),
    }
}

/// Whether the user is on a list as a ban, exception or invite exception (what JOIN checks):
/// mutes are not bans there, and do not keep anyone out.
pub fn listed(cm: CaseMapping, list: &[ListEntry], masks: &[&str], account: Option<&str>) -> bool {
    list.iter().any(|e| !e.mask.starts_with(MUTE) && matches(cm, &e.mask, masks, account))
}

/// Whether a `+b $m:<mask>` mutes the user and no `+e $m:<mask>` lifts it. As on InspIRCd,
/// only a mute exception lifts a mute (a plain `+e` lifts plain bans).
pub fn muted(
    cm: CaseMapping,
    bans: &[ListEntry],
    excepts: &[ListEntry],
    masks: &[&str],
    account: Option<&str>,
) -> bool {
    let mute_listed = |list: &[ListEntry]| {
        list.iter().any(|e| e.mask.strip_prefix(MUTE).is_some_and(|inner| matches(cm, inner, masks, account)))
    };
    mute_listed(bans) && !mute_listed(excepts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(masks: &[&str]) -> Vec<ListEntry> {
        masks.iter().map(|m| ListEntry { mask: (*m).into(), set_by: "op".into(), set_at: 0 }).collect()
    }

    const MASKS: [&str; 2] = ["alice!~a@host", "alice!~a@10.0.0.1"];

    #[test]
    fn the_account_extban_matches_accounts_and_only_them() {
        let cm = CaseMapping::Ascii;
        let masks = MASKS;
        assert!(listed(cm, &list(&["$a"]), &masks, Some("alice")));
        assert!(!listed(cm, &list(&["$a"]), &masks, None));
        assert!(listed(cm, &list(&["$a:ALI*"]), &masks, Some("alice")));
        assert!(!listed(cm, &list(&["$a:bob"]), &masks, Some("alice")));
        assert!(!listed(cm, &list(&["$a:*"]), &masks, None));
        // Ordinary masks as before; an unknown extban matches nobody.
        assert!(listed(cm, &list(&["*!*@10.0.0.*"]), &masks, None));
        assert!(!listed(cm, &list(&["$x:alice"]), &masks, Some("alice")));
        assert!(!listed(cm, &list(&["$*"]), &masks, Some("alice")));
    }

    #[test]
    fn a_mute_is_no_ban_and_only_a_mute_exception_lifts_it() {
        let cm = CaseMapping::Ascii;
        let bans = list(&["$m:ALICE!*@*"]);
        assert!(!listed(cm, &bans, &MASKS, None), "a mute keeps nobody out");
        assert!(muted(cm, &bans, &[], &MASKS, None), "masks match case-insensitively");
        assert!(!muted(cm, &list(&["$m:bob!*@*"]), &[], &MASKS, None));
        assert!(!muted(cm, &list(&["alice!*@*"]), &[], &MASKS, None), "a plain ban is no mute");
        assert!(!muted(cm, &bans, &list(&["$m:*!~a@*"]), &MASKS, None), "lifted by a mute exception");
        assert!(muted(cm, &bans, &list(&["*!~a@*"]), &MASKS, None), "not by a plain exception");
        assert!(!listed(cm, &list(&["$m:*!~a@*"]), &MASKS, None), "a mute exception excepts no ban");
        // The mute's mask may be an account extban.
        assert!(muted(cm, &list(&["$m:$a:ali*"]), &[], &MASKS, Some("alice")));
        assert!(!muted(cm, &list(&["$m:$a:ali*"]), &[], &MASKS, None));
        assert!(muted(cm, &list(&["$m:$a"]), &[], &MASKS, Some("x")));
    }
}
