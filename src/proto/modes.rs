//! Splitting a MODE command's mode string and parameters into single changes, by the parameter
//! rules that `CHANMODES=beI,k,l,CMRScimnpst` and `PREFIX=(ov)@+` advertise.

/// How a channel mode takes its parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeKind {
    /// Type A (b, e, I): a mask to add or remove; none means "show the list".
    List,
    /// Type B (k): a parameter when set; when unset, one is taken if given.
    Key,
    /// Type C (l): a parameter when set only.
    SetParam,
    /// Type D (C, M, R, S, c, i, m, n, p, s, t): never a parameter.
    Flag,
    /// Prefix modes (o, v): always a nick.
    Prefix,
}

pub fn channel_mode_kind(c: char) -> Option<ModeKind> {
    match c {
        'b' | 'e' | 'I' => Some(ModeKind::List),
        'k' => Some(ModeKind::Key),
        'l' => Some(ModeKind::SetParam),
        'C' | 'M' | 'R' | 'S' | 'c' | 'i' | 'm' | 'n' | 'p' | 's' | 't' => Some(ModeKind::Flag),
        'o' | 'v' => Some(ModeKind::Prefix),
        _ => None,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawChange {
    pub add: bool,
    pub letter: char,
    pub kind: ModeKind,
    /// The parameter, if the mode takes one here and one was given.
    pub param: Option<String>,
}

/// The changes in `modes` with their parameters, and the letters this server does not know.
/// A mode that needs a parameter and has none left is kept with `param: None` (the caller
/// decides: a list query, or ERR_NEEDMOREPARAMS-style silence).
pub fn parse_channel_modes(modes: &str, params: &[&str]) -> (Vec<RawChange>, Vec<char>) {
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    let mut add = true;
    let mut params = params.iter();
    for c in modes.chars() {
        match c {
            '+' => add = true,
            '-' => add = false,
            c => match channel_mode_kind(c) {
                None => unknown.push(c),
                Some(kind) => {
                    let takes = match kind {
                        ModeKind::List | ModeKind::Prefix | ModeKind::Key => true,
                        ModeKind::SetParam => add,
                        ModeKind::Flag => false,
                    };
                    let param = if takes { params.next().map(|s| s.to_string()) } else { None };
                    out.push(RawChange { add, letter: c, kind, param });
                }
            },
        }
    }
    (out, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_follow_the_type_rules() {
        let (ch, unknown) = parse_channel_modes("+ntlk-l+ov-kXb", &["10", "key", "alice", "bob", "oldkey"]);
        let got: Vec<(bool, char, Option<&str>)> = ch.iter().map(|c| (c.add, c.letter, c.param.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                (true, 'n', None),
                (true, 't', None),
                (true, 'l', Some("10")),
                (true, 'k', Some("key")),
                (false, 'l', None),
                (true, 'o', Some("alice")),
                (true, 'v', Some("bob")),
                (false, 'k', Some("oldkey")),
                (false, 'b', None),
            ]
        );
        assert_eq!(unknown, vec!['X']);
    }

    #[test]
    fn the_issue_16_flags_take_no_parameter() {
        let (ch, unknown) = parse_channel_modes("+CcSRM-C+l", &["5"]);
        let got: Vec<(bool, char, Option<&str>)> = ch.iter().map(|c| (c.add, c.letter, c.param.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                (true, 'C', None),
                (true, 'c', None),
                (true, 'S', None),
                (true, 'R', None),
                (true, 'M', None),
                (false, 'C', None),
                (true, 'l', Some("5")),
            ]
        );
        assert!(unknown.is_empty());
        assert!(ch.iter().take(6).all(|c| c.kind == ModeKind::Flag));
    }

    #[test]
    fn list_without_mask_is_a_query() {
        let (ch, _) = parse_channel_modes("b", &[]);
        assert_eq!(ch[0].param, None);
        assert_eq!(ch[0].kind, ModeKind::List);
    }
}
