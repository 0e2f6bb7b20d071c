//! The TS6 wire format as ircd-hybrid 8.2 speaks it (`shared/docs/ts6.md`), socket-free:
//! SID/UID syntax, typed views of the server-to-server lines a link burst is made of
//! (`SERVER`, `SID`, `SVINFO`, `UID`, `SJOIN`, `BMASK`, `TBURST`, `TMODE`), and builders for the
//! lines we send that split at 512 bytes. Nothing here decides anything: a parser only says
//! whether a line is well formed, and each view renders back (`Display`) to the line it came
//! from, as hybrid writes it. `TB` (the charybdis topic burst) is not part of hybrid 8.2's
//! dialect (§1: the `TB` token is implicit, `TBURST` is used), so it has no parser.

use std::fmt;

use super::Message;

/// Longest line without its CRLF (512 with it, §1).
pub const MAX_LINE: usize = 510;

/// What is wrong with a server-to-server line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ts6Error {
    /// The parser was given a line of another verb.
    WrongVerb,
    /// Fewer parameters than the verb requires (hybrid drops the line; a 3-argument
    /// `SERVER` from a charybdis-style peer lands here).
    NotEnoughParams {
        need: usize,
        got: usize,
    },
    /// More parameters than the verb has.
    TooManyParams,
    BadSid,
    BadUid,
    /// A number (hop count, TS, version) that is not a decimal number.
    BadNumber(&'static str),
    /// Flags or modes that do not start with `+`.
    BadFlags,
    BadChannel,
    /// An empty field where a word is required (nick, user, host, name...).
    Empty(&'static str),
    /// SJOIN: the number of `k`/`l` parameters does not match the mode letters.
    ModeArgs,
    /// SJOIN: a member that is not prefixes followed by a UID.
    BadMember,
    /// BMASK: a list other than `b`, `e`, `I`.
    BadList,
    /// TMODE: a mode parameter that is empty, holds a space or starts with `:` (hybrid writes
    /// them as middle parameters, which cannot carry one).
    BadModeParam,
}

impl fmt::Display for Ts6Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ts6Error::WrongVerb => f.write_str("wrong verb"),
            Ts6Error::NotEnoughParams { need, got } => write!(f, "not enough parameters ({got} of {need})"),
            Ts6Error::TooManyParams => f.write_str("too many parameters"),
            Ts6Error::BadSid => f.write_str("bogus server ID"),
            Ts6Error::BadUid => f.write_str("bogus user ID"),
            Ts6Error::BadNumber(what) => write!(f, "bad number for {what}"),
            Ts6Error::BadFlags => f.write_str("flags/modes must start with +"),
            Ts6Error::BadChannel => f.write_str("bad channel name"),
            Ts6Error::Empty(what) => write!(f, "empty {what}"),
            Ts6Error::ModeArgs => f.write_str("mode parameters do not match the mode letters"),
            Ts6Error::BadMember => f.write_str("bad SJOIN member"),
            Ts6Error::BadList => f.write_str("list mode must be b, e or I"),
            Ts6Error::BadModeParam => f.write_str("mode parameter must be a word"),
        }
    }
}

impl std::error::Error for Ts6Error {}

/// A TS6 server ID: `[0-9][A-Z0-9][A-Z0-9]` (§1).
pub use super::names::valid_sid;

/// A TS6 user ID: a SID, then `[A-Z]`, then five of `[A-Z0-9]` (§1). Checked on bytes, so
/// non-ASCII input is refused without slicing inside a character.
pub fn valid_uid(uid: &str) -> bool {
    let b = uid.as_bytes();
    b.len() == 9
        && b[0].is_ascii_digit()
        && b[1..3].iter().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        && b[3].is_ascii_uppercase()
        && b[4..].iter().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

/// The prefix characters a SJOIN member may carry, stacked (§3.3).
pub const MEMBER_PREFIXES: &str = "@%+&~";

fn check_verb(m: &Message<'_>, verb: &str) -> Result<(), Ts6Error> {
    if m.verb.eq_ignore_ascii_case(verb) {
        Ok(())
    } else {
        Err(Ts6Error::WrongVerb)
    }
}

fn need(m: &Message<'_>, n: usize) -> Result<(), Ts6Error> {
    if m.params.len() < n {
        Err(Ts6Error::NotEnoughParams { need: n, got: m.params.len() })
    } else {
        Ok(())
    }
}

fn exact(m: &Message<'_>, n: usize) -> Result<(), Ts6Error> {
    need(m, n)?;
    if m.params.len() > n {
        Err(Ts6Error::TooManyParams)
    } else {
        Ok(())
    }
}

fn num<T: std::str::FromStr>(s: &str, what: &'static str) -> Result<T, Ts6Error> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(Ts6Error::BadNumber(what));
    }
    s.parse().map_err(|_| Ts6Error::BadNumber(what))
}

fn word<'a>(s: &'a str, what: &'static str) -> Result<&'a str, Ts6Error> {
    if s.is_empty() {
        Err(Ts6Error::Empty(what))
    } else {
        Ok(s)
    }
}

fn plus(s: &str) -> Result<&str, Ts6Error> {
    if s.starts_with('+') {
        Ok(s)
    } else {
        Err(Ts6Error::BadFlags)
    }
}

fn channel(s: &str) -> Result<&str, Ts6Error> {
    if s.len() >= 2 && s.starts_with('#') && !s.bytes().any(|c| matches!(c, b',' | 7 | 0)) {
        Ok(s)
    } else {
        Err(Ts6Error::BadChannel)
    }
}

fn source(f: &mut fmt::Formatter<'_>, src: Option<&str>) -> fmt::Result {
    match src {
        Some(s) => write!(f, ":{s} "),
        None => Ok(()),
    }
}

/// Which form introduced a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntroKind {
    /// `SERVER <name> 1 <SID> +<flags> :<desc>`, the handshake line of a direct peer.
    Server,
    /// `:<uplink SID> SID <name> <hop> <SID> +<flags> :<desc>`, a server behind a peer.
    Sid,
}

/// `SERVER` (handshake, §2) or `SID` (introduction, §3.1): both carry 5 parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIntro<'a> {
    pub kind: IntroKind,
    pub source: Option<&'a str>,
    pub name: &'a str,
    pub hop: u32,
    pub sid: &'a str,
    /// `+` or `+h` (hidden).
    pub flags: &'a str,
    pub desc: &'a str,
}

impl<'a> ServerIntro<'a> {
    pub fn hidden(&self) -> bool {
        self.flags.contains('h')
    }

    fn parse(m: &Message<'a>, kind: IntroKind) -> Result<Self, Ts6Error> {
        check_verb(m, if kind == IntroKind::Server { "SERVER" } else { "SID" })?;
        exact(m, 5)?;
        let p = &m.params;
        let sid = p[2];
        if !valid_sid(sid) {
            return Err(Ts6Error::BadSid);
        }
        Ok(ServerIntro {
            kind,
            source: m.source,
            name: word(p[0], "server name")?,
            hop: num(p[1], "hop count")?,
            sid,
            flags: plus(p[3])?,
            desc: p[4],
        })
    }
}

/// `SERVER <name> <hop> <SID> +<flags> :<desc>` (§2; a source prefix is tolerated, Anope sends one).
pub fn parse_server<'a>(m: &Message<'a>) -> Result<ServerIntro<'a>, Ts6Error> {
    ServerIntro::parse(m, IntroKind::Server)
}

/// The charybdis form, `SERVER <name> <hop> :[(H) ]<desc>` (solanum's ts6 doc; Atheme sends
/// it): the SID is the one its `PASS <pw> TS 6 :<SID>` gave. `(H) ` before the description
/// marks a hidden server.
pub fn parse_server_charybdis<'a, 'm: 'a>(m: &Message<'m>, sid: &'a str) -> Result<ServerIntro<'a>, Ts6Error> {
    check_verb(m, "SERVER")?;
    exact(m, 3)?;
    if !valid_sid(sid) {
        return Err(Ts6Error::BadSid);
    }
    let p = &m.params;
    let (flags, desc) = match p[2].strip_prefix("(H) ") {
        Some(d) => ("+h", d),
        None => ("+", p[2]),
    };
    Ok(ServerIntro {
        kind: IntroKind::Server,
        source: m.source,
        name: word(p[0], "server name")?,
        hop: num(p[1], "hop count")?,
        sid,
        flags,
        desc,
    })
}

/// `:<uplink> SID <name> <hop> <SID> +<flags> :<desc>` (§3.1).
pub fn parse_sid<'a>(m: &Message<'a>) -> Result<ServerIntro<'a>, Ts6Error> {
    ServerIntro::parse(m, IntroKind::Sid)
}

impl fmt::Display for ServerIntro<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        source(f, self.source)?;
        let verb = if self.kind == IntroKind::Server { "SERVER" } else { "SID" };
        write!(f, "{verb} {} {} {} {} :{}", self.name, self.hop, self.sid, self.flags, self.desc)
    }
}

/// `SVINFO <TS_CURRENT> <TS_MIN> 0 :<now>` (§2). Whether the versions and clock are
/// acceptable is the handshake's decision, not the parser's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svinfo<'a> {
    pub source: Option<&'a str>,
    pub ts_current: u32,
    pub ts_min: u32,
    /// Always `0` from hybrid; kept so the line renders back.
    pub zero: u32,
    pub now: u64,
}

pub fn parse_svinfo<'a>(m: &Message<'a>) -> Result<Svinfo<'a>, Ts6Error> {
    check_verb(m, "SVINFO")?;
    exact(m, 4)?;
    let p = &m.params;
    Ok(Svinfo {
        source: m.source,
        ts_current: num(p[0], "TS_CURRENT")?,
        ts_min: num(p[1], "TS_MIN")?,
        zero: num(p[2], "SVINFO zero")?,
        now: num(p[3], "SVINFO time")?,
    })
}

impl fmt::Display for Svinfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        source(f, self.source)?;
        write!(f, "SVINFO {} {} {} :{}", self.ts_current, self.ts_min, self.zero, self.now)
    }
}

/// `:<SID> UID <nick> <hop> <nickTS> +<umodes> <user> <host> <realhost> <ip> <UID> <account> :<gecos>`
/// — hybrid 8.2's RHOST form: 11 parameters (12 tokens with the verb, §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidIntro<'a> {
    pub source: Option<&'a str>,
    pub nick: &'a str,
    pub hop: u32,
    pub ts: u64,
    pub umodes: &'a str,
    pub user: &'a str,
    pub host: &'a str,
    pub realhost: &'a str,
    /// Textual IP, `0` or `0.0.0.0` when none.
    pub ip: &'a str,
    pub uid: &'a str,
    /// Services account, `*` when not logged in.
    pub account: &'a str,
    pub gecos: &'a str,
}

impl UidIntro<'_> {
    pub fn logged_in(&self) -> Option<&str> {
        (self.account != "*").then_some(self.account)
    }
}

/// Hybrid's 11-parameter UID, or charybdis' 9 (`... <host> <ip> <UID> :<gecos>`: no real host,
/// no account; Atheme and solanum send it). The counts never overlap, so the form is told by
/// the count.
pub fn parse_uid<'a>(m: &Message<'a>) -> Result<UidIntro<'a>, Ts6Error> {
    check_verb(m, "UID")?;
    if m.params.len() == 9 {
        let p = &m.params;
        if !valid_uid(p[7]) {
            return Err(Ts6Error::BadUid);
        }
        let host = word(p[5], "host")?;
        return Ok(UidIntro {
            source: m.source,
            nick: word(p[0], "nick")?,
            hop: num(p[1], "hop count")?,
            ts: num(p[2], "nick TS")?,
            umodes: plus(p[3])?,
            user: word(p[4], "user")?,
            host,
            realhost: host,
            ip: word(p[6], "ip")?,
            uid: p[7],
            account: "*",
            gecos: p[8],
        });
    }
    exact(m, 11)?;
    let p = &m.params;
    if !valid_uid(p[8]) {
        return Err(Ts6Error::BadUid);
    }
    Ok(UidIntro {
        source: m.source,
        nick: word(p[0], "nick")?,
        hop: num(p[1], "hop count")?,
        ts: num(p[2], "nick TS")?,
        umodes: plus(p[3])?,
        user: word(p[4], "user")?,
        host: word(p[5], "host")?,
        realhost: word(p[6], "real host")?,
        ip: word(p[7], "ip")?,
        uid: p[8],
        account: word(p[9], "account")?,
        gecos: p[10],
    })
}

/// `:<SID> EUID <nick> <hop> <nickTS> +<umodes> <user> <host> <ip> <UID> <realhost> <account>
/// :<gecos>` (solanum's ts6 doc; a peer that said `EUID` in CAPAB): hybrid's fields in another
/// order, `*` for a real host equal to the host and for no account.
pub fn parse_euid<'a>(m: &Message<'a>) -> Result<UidIntro<'a>, Ts6Error> {
    check_verb(m, "EUID")?;
    exact(m, 11)?;
    let p = &m.params;
    if !valid_uid(p[7]) {
        return Err(Ts6Error::BadUid);
    }
    let host = word(p[5], "host")?;
    let realhost = word(p[8], "real host")?;
    Ok(UidIntro {
        source: m.source,
        nick: word(p[0], "nick")?,
        hop: num(p[1], "hop count")?,
        ts: num(p[2], "nick TS")?,
        umodes: plus(p[3])?,
        user: word(p[4], "user")?,
        host,
        realhost: if realhost == "*" { host } else { realhost },
        ip: word(p[6], "ip")?,
        uid: p[7],
        account: word(p[9], "account")?,
        gecos: p[10],
    })
}

impl fmt::Display for UidIntro<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        source(f, self.source)?;
        write!(
            f,
            "UID {} {} {} {} {} {} {} {} {} {} :{}",
            self.nick,
            self.hop,
            self.ts,
            self.umodes,
            self.user,
            self.host,
            self.realhost,
            self.ip,
            self.uid,
            self.account,
            self.gecos
        )
    }
}

/// One SJOIN member: its stacked prefixes (`@`, `@+`, or empty) and UID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    pub prefixes: &'a str,
    pub uid: &'a str,
}

impl<'a> Member<'a> {
    pub fn parse(s: &'a str) -> Result<Self, Ts6Error> {
        let start = s.find(|c: char| !MEMBER_PREFIXES.contains(c)).unwrap_or(s.len());
        let (prefixes, uid) = s.split_at(start);
        if !valid_uid(uid) {
            return Err(Ts6Error::BadMember);
        }
        Ok(Member { prefixes, uid })
    }

    pub fn op(&self) -> bool {
        self.prefixes.contains('@')
    }
    pub fn halfop(&self) -> bool {
        self.prefixes.contains('%')
    }
    pub fn voice(&self) -> bool {
        self.prefixes.contains('+')
    }
}

impl fmt::Display for Member<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.prefixes, self.uid)
    }
}

/// How many of `modes`' letters take a parameter in SJOIN (`k`, `l`; §3.3).
fn sjoin_mode_params(modes: &str) -> usize {
    modes.bytes().filter(|c| matches!(c, b'k' | b'l')).count()
}

/// `:<SID> SJOIN <channelTS> <#channel> +<modes> [<key>] [<limit>] :<members>` (§3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sjoin<'a> {
    pub source: Option<&'a str>,
    pub ts: u64,
    pub channel: &'a str,
    pub modes: &'a str,
    /// The `k`/`l` parameters, in the order of their letters.
    pub mode_args: Vec<&'a str>,
    pub members: Vec<Member<'a>>,
}

pub fn parse_sjoin<'a>(m: &Message<'a>) -> Result<Sjoin<'a>, Ts6Error> {
    check_verb(m, "SJOIN")?;
    need(m, 4)?;
    let p = &m.params;
    let modes = plus(p[2])?;
    let mode_args: Vec<&str> = p[3..p.len() - 1].to_vec();
    if mode_args.len() != sjoin_mode_params(modes) {
        return Err(Ts6Error::ModeArgs);
    }
    let members = p[p.len() - 1].split(' ').filter(|s| !s.is_empty()).map(Member::parse).collect::<Result<_, _>>()?;
    Ok(Sjoin { source: m.source, ts: num(p[0], "channel TS")?, channel: channel(p[1])?, modes, mode_args, members })
}

impl fmt::Display for Sjoin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        source(f, self.source)?;
        write!(f, "SJOIN {} {} {}", self.ts, self.channel, self.modes)?;
        for a in &self.mode_args {
            write!(f, " {a}")?;
        }
        f.write_str(" :")?;
        for (i, m) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

/// `:<U or S> TMODE <channelTS> <#chan> <modes> [args...]` (§4). The modes and their
/// parameters are words: hybrid writes them without a `:`, so one that needed it (empty, with
/// a space, or starting with `:`) would not render back and is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmode<'a> {
    pub source: Option<&'a str>,
    pub ts: u64,
    pub channel: &'a str,
    pub modes: &'a str,
    pub args: Vec<&'a str>,
}

pub fn parse_tmode<'a>(m: &Message<'a>) -> Result<Tmode<'a>, Ts6Error> {
    check_verb(m, "TMODE")?;
    need(m, 3)?;
    let p = &m.params;
    let modes = p[2];
    if !modes.starts_with(['+', '-']) || modes.len() < 2 || modes.contains(' ') {
        return Err(Ts6Error::BadFlags);
    }
    if !p[3..].iter().all(|a| !a.is_empty() && !a.contains(' ') && !a.starts_with(':')) {
        return Err(Ts6Error::BadModeParam);
    }
    Ok(Tmode { source: m.source, ts: num(p[0], "channel TS")?, channel: channel(p[1])?, modes, args: p[3..].to_vec() })
}

impl fmt::Display for Tmode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        source(f, self.source)?;
        write!(f, "TMODE {} {} {}", self.ts, self.channel, self.modes)?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// `:<SID> BMASK <channelTS> <#channel> <b|e|I> :<mask> [<mask> ...]` (§3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bmask<'a> {
    pub source: Option<&'a str>,
    pub ts: u64,
    pub channel: &'a str,
    pub list: char,
    pub masks: Vec<&'a str>,
}

pub fn parse_bmask<'a>(m: &Message<'a>) -> Result<Bmask<'a>, Ts6Error> {
    check_verb(m, "BMASK")?;
    exact(m, 4)?;
    let p = &m.params;
    let list = match p[2] {
        "b" => 'b',
        "e" => 'e',
        "I" => 'I',
        _ => return Err(Ts6Error::BadList),
    };
    Ok(Bmask {
        source: m.source,
        ts: num(p[0], "channel TS")?,
        channel: channel(p[1])?,
        list,
        masks: p[3].split(' ').filter(|s| !s.is_empty()).collect(),
    })
}

impl fmt::Display for Bmask<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        source(f, self.source)?;
        write!(f, "BMASK {} {} {} :{}", self.ts, self.channel, self.list, self.masks.join(" "))
    }
}

/// `:<SID> TBURST <channelTS> <#channel> <topicTS> <setter> :<topic>` (§3.5); the topic may be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tburst<'a> {
    pub source: Option<&'a str>,
    pub ts: u64,
    pub channel: &'a str,
    pub topic_ts: u64,
    pub setter: &'a str,
    pub topic: &'a str,
}

pub fn parse_tburst<'a>(m: &Message<'a>) -> Result<Tburst<'a>, Ts6Error> {
    check_verb(m, "TBURST")?;
    exact(m, 5)?;
    let p = &m.params;
    Ok(Tburst {
        source: m.source,
        ts: num(p[0], "channel TS")?,
        channel: channel(p[1])?,
        topic_ts: num(p[2], "topic TS")?,
        setter: word(p[3], "setter")?,
        topic: p[4],
    })
}

impl fmt::Display for Tburst<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        source(f, self.source)?;
        write!(f, "TBURST {} {} {} {} :{}", self.ts, self.channel, self.topic_ts, self.setter, self.topic)
    }
}

/// Our `UID` line for `u` (its `source` should be our SID). A gecos that would make the line
/// longer than 510 bytes is cut at a character boundary; nothing else is shortened. Should the
/// other fields alone not fit (the caller's to prevent), the gecos is dropped and the line,
/// longer than 510 bytes, still says the rest.
pub fn uid_line(u: &UidIntro<'_>) -> String {
    let mut line = u.to_string();
    if line.len() > MAX_LINE {
        // Up to and including the ` :` before the gecos: a character boundary.
        let head = line.len() - u.gecos.len();
        let mut cut = MAX_LINE.max(head);
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    line
}

/// [`uid_line`] in the charybdis form (9 parameters: no real host, no account), for a peer
/// that speaks it.
pub fn uid_line_charybdis(u: &UidIntro<'_>) -> String {
    let mut line = String::with_capacity(128 + u.gecos.len());
    if let Some(s) = u.source {
        line.push(':');
        line.push_str(s);
        line.push(' ');
    }
    use std::fmt::Write as _;
    let _ = write!(line, "UID {} {} {} {} {} {} {} {} :", u.nick, u.hop, u.ts, u.umodes, u.user, u.host, u.ip, u.uid);
    with_gecos(line, u.gecos)
}

/// `EUID` for `u` (see [`parse_euid`]): the real host `*` when it is the host.
pub fn euid_line(u: &UidIntro<'_>) -> String {
    let mut line = String::with_capacity(160 + u.gecos.len());
    if let Some(s) = u.source {
        line.push(':');
        line.push_str(s);
        line.push(' ');
    }
    let realhost = if u.realhost == u.host { "*" } else { u.realhost };
    use std::fmt::Write as _;
    let _ = write!(
        line,
        "EUID {} {} {} {} {} {} {} {} {} {} :",
        u.nick, u.hop, u.ts, u.umodes, u.user, u.host, u.ip, u.uid, realhost, u.account
    );
    with_gecos(line, u.gecos)
}

/// Appends the gecos to a line ending in ` :`, cut (on a character boundary) where the line
/// would pass 510 bytes.
fn with_gecos(mut line: String, gecos: &str) -> String {
    let mut cut = MAX_LINE.max(line.len()).min(line.len() + gecos.len());
    line.push_str(gecos);
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    line.truncate(cut);
    line
}

/// Joins `items` after `head` (which ends in ` :`), as many per line as fit in 510 bytes;
/// at least one line, and at least one item per line (an item never fits otherwise).
fn packed(head: &str, items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = head.to_string();
    let mut any = false;
    for item in items {
        if any && cur.len() + 1 + item.len() > MAX_LINE {
            lines.push(std::mem::replace(&mut cur, head.to_string()));
            any = false;
        }
        if any {
            cur.push(' ');
        }
        cur.push_str(&item);
        any = true;
    }
    lines.push(cur);
    lines
}

/// Our `SJOIN` lines for a channel: `:<sid> SJOIN <ts> <chan> <modes> [args] :<members>`,
/// the member list split over as many lines as needed, each repeating TS and modes (§3.3).
/// An empty member list gives one line ending in ` :`.
pub fn sjoin_lines(
    sid: &str,
    ts: u64,
    channel: &str,
    modes: &str,
    mode_args: &[&str],
    members: &[Member<'_>],
) -> Vec<String> {
    let mut head = format!(":{sid} SJOIN {ts} {channel} {modes}");
    for a in mode_args {
        head.push(' ');
        head.push_str(a);
    }
    head.push_str(" :");
    packed(&head, members.iter().map(|m| m.to_string()))
}

/// Our `BMASK` lines for one list (`b`, `e` or `I`), split to fit 510 bytes (§3.4).
/// No masks, no lines.
pub fn bmask_lines(sid: &str, ts: u64, channel: &str, list: char, masks: &[&str]) -> Vec<String> {
    if masks.is_empty() {
        return Vec::new();
    }
    packed(&format!(":{sid} BMASK {ts} {channel} {list} :"), masks.iter().map(|m| m.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(line: &str) -> Message<'_> {
        Message::parse(line).unwrap()
    }

    #[test]
    fn ids() {
        for ok in ["1AA", "2BB", "3SV", "000", "9Z9"] {
            assert!(valid_sid(ok), "{ok}");
        }
        for bad in ["", "1A", "AAA", "1aA", "1AAA", "1A-", "é1"] {
            assert!(!valid_sid(bad), "{bad}");
        }
        for ok in ["1AAAAAAAA", "2BBAAAAAB", "3SVAAAAAG", "000Z9ZZ99"] {
            assert!(valid_uid(ok), "{ok}");
        }
        // Non-ASCII of the right byte length must not panic.
        for bad in
            ["", "1AA", "1AA0AAAAA", "1AAaAAAAA", "AAAAAAAAA", "1AAAAAAAAA", "1AAAAAAA-", "12éAAAAAA", "1AAéAAAAA"]
        {
            assert!(!valid_uid(bad), "{bad}");
        }
    }

    /// Atheme's lines (scripts/atheme-lab.sh transcript, docs/sasl-plan.md).
    #[test]
    fn the_charybdis_forms_of_server_and_uid() {
        let s = parse_server_charybdis(&msg("SERVER services.test 1 :Atheme for rustircd tests"), "3SV").unwrap();
        assert_eq!(
            (s.name, s.hop, s.sid, s.desc, s.hidden()),
            ("services.test", 1, "3SV", "Atheme for rustircd tests", false)
        );
        let h = parse_server_charybdis(&msg("SERVER hidden.test 1 :(H) not shown"), "4HH").unwrap();
        assert_eq!((h.desc, h.hidden()), ("not shown", true));
        assert_eq!(parse_server_charybdis(&msg("SERVER x.test 1 :d"), "bad"), Err(Ts6Error::BadSid));
        assert!(parse_server_charybdis(&msg("SERVER x.test 1 3SV + :d"), "3SV").is_err());

        let line = ":3SV UID NickServ 1 1796191583 +ioS NickServ services.test 0 3SVAAAAAB :Nickname Services";
        let u = parse_uid(&msg(line)).unwrap();
        assert_eq!(
            (u.nick, u.user, u.host, u.realhost, u.ip, u.uid),
            ("NickServ", "NickServ", "services.test", "services.test", "0", "3SVAAAAAB")
        );
        assert_eq!((u.account, u.gecos), ("*", "Nickname Services"));
        assert_eq!(uid_line_charybdis(&u), line);
        assert!(parse_uid(&msg(":3SV UID a 1 1 +i u h 0 bad :g")).is_err());
        let euid = ":3SV EUID NickServ 1 1796191583 +ioS NickServ services.test 0 3SVAAAAAB * * :Nickname Services";
        let e = parse_euid(&msg(euid)).unwrap();
        assert_eq!(
            (e.host, e.realhost, e.ip, e.uid, e.logged_in()),
            ("services.test", "services.test", "0", "3SVAAAAAB", None)
        );
        assert_eq!(euid_line(&e), euid);
        let logged = ":0TS EUID bob 1 5 +i bob vhost.example 10.0.0.2 0TSAAAAAB real.example alice :bob";
        let e = parse_euid(&msg(logged)).unwrap();
        assert_eq!((e.host, e.realhost, e.logged_in()), ("vhost.example", "real.example", Some("alice")));
        assert_eq!(euid_line(&e), logged);
        assert!(parse_euid(&msg(":3SV EUID a 1 1 +i u h 0 3SVAAAAAB * :g")).is_err());
        // Ten parameters is neither form.
        assert!(parse_uid(&msg(":3SV UID a 1 1 +i u h 0 3SVAAAAAB x :g")).is_err());
        // A long gecos is cut at 510 bytes on a character boundary.
        let long = UidIntro { gecos: &"é".repeat(300), ..u.clone() };
        let cut = uid_line_charybdis(&long);
        assert!(cut.len() <= MAX_LINE && cut.len() > MAX_LINE - 2, "{}", cut.len());
    }

    #[test]
    fn server_and_sid() {
        let line = "SERVER irc.b.lab 1 2BB + :ts6 lab server 2BB";
        let s = parse_server(&msg(line)).unwrap();
        assert_eq!((s.name, s.hop, s.sid, s.flags, s.desc), ("irc.b.lab", 1, "2BB", "+", "ts6 lab server 2BB"));
        assert!(!s.hidden());
        assert_eq!(s.to_string(), line);
        let anope = ":3SV SERVER services.lab 1 3SV + :Services for IRC Networks";
        assert_eq!(parse_server(&msg(anope)).unwrap().to_string(), anope);
        let line = ":1AA SID services.lab 2 3SV +h :Services for IRC Networks";
        let s = parse_sid(&msg(line)).unwrap();
        assert_eq!((s.kind, s.source, s.hop, s.sid), (IntroKind::Sid, Some("1AA"), 2, "3SV"));
        assert!(s.hidden());
        assert_eq!(s.to_string(), line);

        // Atheme's charybdis-style 3-argument SERVER (the lab capture): refused as hybrid does.
        let e = parse_server(&msg("SERVER services.lab 1 :Atheme IRC Services")).unwrap_err();
        assert_eq!(e, Ts6Error::NotEnoughParams { need: 5, got: 3 });
        assert_eq!(parse_server(&msg("SERVER a.b 1 2bb + :x")), Err(Ts6Error::BadSid));
        assert_eq!(parse_server(&msg("SERVER a.b x 2BB + :x")), Err(Ts6Error::BadNumber("hop count")));
        assert_eq!(parse_server(&msg("SERVER a.b 1 2BB h :x")), Err(Ts6Error::BadFlags));
        assert_eq!(parse_server(&msg("SERVER a.b 1 2BB + x :x")), Err(Ts6Error::TooManyParams));
        assert_eq!(parse_sid(&msg("SERVER a.b 1 2BB + :x")), Err(Ts6Error::WrongVerb));
        assert_eq!(parse_sid(&msg(":1AA SID  1 2BB + :x")).unwrap_err(), Ts6Error::NotEnoughParams { need: 5, got: 4 });
    }

    #[test]
    fn svinfo() {
        let line = ":1AA SVINFO 6 6 0 :1795784873";
        let s = parse_svinfo(&msg(line)).unwrap();
        assert_eq!((s.ts_current, s.ts_min, s.now), (6, 6, 1795784873));
        assert_eq!(s.to_string(), line);
        // Atheme's unprefixed TS 6/3 parses; the version check is the handshake's.
        assert_eq!(parse_svinfo(&msg("SVINFO 6 3 0 :1795785205")).unwrap().ts_min, 3);
        assert_eq!(parse_svinfo(&msg("SVINFO 6 6 0")).unwrap_err(), Ts6Error::NotEnoughParams { need: 4, got: 3 });
        assert_eq!(parse_svinfo(&msg("SVINFO 6 -6 0 :1")), Err(Ts6Error::BadNumber("TS_MIN")));
        assert_eq!(parse_svinfo(&msg("SVINFO 6 6 0 :")), Err(Ts6Error::BadNumber("SVINFO time")));
    }

    #[test]
    fn uid() {
        let line = ":2BB UID bob 1 1795785373 +r bob 127.0.0.1 127.0.0.1 127.0.0.1 2BBAAAAAA bob :lab user bob";
        let u = parse_uid(&msg(line)).unwrap();
        assert_eq!(
            (u.nick, u.hop, u.ts, u.umodes, u.uid, u.logged_in()),
            ("bob", 1, 1795785373, "+r", "2BBAAAAAA", Some("bob"))
        );
        assert_eq!(u.to_string(), line);
        assert_eq!(uid_line(&u), line);
        let svc = ":3SV UID NickServ 2 1795785368 +io services services.lab services.lab 0.0.0.0 3SVAAAAAG * :Nickname Registration Service";
        let u = parse_uid(&msg(svc)).unwrap();
        assert_eq!((u.host, u.ip, u.logged_in()), ("services.lab", "0.0.0.0", None));

        // Hybrid 8.2 drops the 9-parameter form; it is charybdis' (Atheme, solanum), taken here
        // with no real host and no account. Ten parameters is neither.
        let charybdis = ":2BB UID bob 1 1795785373 +r bob 127.0.0.1 127.0.0.1 2BBAAAAAA :lab user bob";
        let u = parse_uid(&msg(charybdis)).unwrap();
        assert_eq!(
            (u.host, u.realhost, u.ip, u.uid, u.logged_in()),
            ("127.0.0.1", "127.0.0.1", "127.0.0.1", "2BBAAAAAA", None)
        );
        let ten = ":2BB UID bob 1 1795785373 +r bob 127.0.0.1 127.0.0.1 2BBAAAAAA x :lab user bob";
        assert_eq!(parse_uid(&msg(ten)).unwrap_err(), Ts6Error::NotEnoughParams { need: 11, got: 10 });
        let bad_uid = ":2BB UID bob 1 1 + bob h h 1.2.3.4 2BB0AAAAA * :g";
        assert_eq!(parse_uid(&msg(bad_uid)), Err(Ts6Error::BadUid));
        let bad_ts = ":2BB UID bob 1 x + bob h h 1.2.3.4 2BBAAAAAA * :g";
        assert_eq!(parse_uid(&msg(bad_ts)), Err(Ts6Error::BadNumber("nick TS")));
        let bad_modes = ":2BB UID bob 1 1 i bob h h 1.2.3.4 2BBAAAAAA * :g";
        assert_eq!(parse_uid(&msg(bad_modes)), Err(Ts6Error::BadFlags));
        let extra = ":2BB UID bob 1 1 + bob h h 1.2.3.4 2BBAAAAAA * x :g";
        assert_eq!(parse_uid(&msg(extra)), Err(Ts6Error::TooManyParams));
    }

    #[test]
    fn uid_line_cuts_long_gecos() {
        let gecos = "é".repeat(400);
        let line = format!(":1AA UID n 1 1 + u h h 1.2.3.4 1AAAAAAAA * :{gecos}");
        let m = msg(&line);
        let out = uid_line(&parse_uid(&m).unwrap());
        assert!(out.len() <= MAX_LINE && out.len() >= MAX_LINE - 1);
        assert!(parse_uid(&msg(&out)).is_ok());
    }

    #[test]
    fn uid_line_cuts_only_the_gecos() {
        // Found by fuzz/fuzz_targets/s2s.rs: when the fields before the gecos took more than
        // 510 bytes, the line was cut inside them (a 7-parameter UID). Now only the gecos goes.
        let host = "h".repeat(520);
        let line = format!(":1AA UID n 1 1 + u {host} h 1.2.3.4 1AAAAAAAA * :gecos");
        let m = msg(&line);
        let u = parse_uid(&m).unwrap();
        let out = uid_line(&u);
        assert_eq!(out, line.strip_suffix("gecos").unwrap());
        let back = parse_uid(&msg(&out)).unwrap();
        assert_eq!(back, UidIntro { gecos: "", ..u });
        // The ` :` itself at bytes 510 and 511: the cut used to leave a trailing space.
        let pad = 511 - (line.len() - host.len() - "gecos".len());
        let line = format!(":1AA UID n 1 1 + u {} h 1.2.3.4 1AAAAAAAA * :gecos", "h".repeat(pad));
        assert_eq!(line.len() - "gecos".len(), 511);
        let m = msg(&line);
        let out = uid_line(&parse_uid(&m).unwrap());
        assert_eq!(out.len(), 511);
        assert_eq!(parse_uid(&msg(&out)).unwrap().gecos, "");
    }

    #[test]
    fn sjoin() {
        let line = ":2BB SJOIN 1795785376 #tswar +nst :@2BBAAAAAA";
        let s = parse_sjoin(&msg(line)).unwrap();
        assert_eq!((s.ts, s.channel, s.modes, s.members.len()), (1795785376, "#tswar", "+nst", 1));
        assert!(s.members[0].op() && !s.members[0].voice());
        assert_eq!(s.to_string(), line);

        let line = ":1AA SJOIN 5 #c +ntkl secret 10 :@+1AAAAAAAA %1AAAAAAAB 1AAAAAAAC";
        let s = parse_sjoin(&msg(line)).unwrap();
        assert_eq!(s.mode_args, ["secret", "10"]);
        assert_eq!(s.members[0], Member { prefixes: "@+", uid: "1AAAAAAAA" });
        assert!(s.members[0].op() && s.members[0].voice() && s.members[1].halfop());
        assert_eq!(s.members[2].prefixes, "");
        assert_eq!(s.to_string(), line);

        // Services creating an empty channel.
        let line = ":3SV SJOIN 5 #c +nt :";
        let s = parse_sjoin(&msg(line)).unwrap();
        assert!(s.members.is_empty());
        assert_eq!(s.to_string(), line);

        assert_eq!(parse_sjoin(&msg(":1AA SJOIN 5 #c +ntk :@1AAAAAAAA")), Err(Ts6Error::ModeArgs));
        assert_eq!(parse_sjoin(&msg(":1AA SJOIN 5 #c +nt x :@1AAAAAAAA")), Err(Ts6Error::ModeArgs));
        assert_eq!(parse_sjoin(&msg(":1AA SJOIN 5 #c +nt :@!1AAAAAAAA")), Err(Ts6Error::BadMember));
        assert_eq!(parse_sjoin(&msg(":1AA SJOIN 5 #c +nt :@")), Err(Ts6Error::BadMember));
        assert_eq!(parse_sjoin(&msg(":1AA SJOIN 5 c +nt :@1AAAAAAAA")), Err(Ts6Error::BadChannel));
        assert_eq!(parse_sjoin(&msg(":1AA SJOIN 5 #c nt :@1AAAAAAAA")), Err(Ts6Error::BadFlags));
        assert_eq!(parse_sjoin(&msg(":1AA SJOIN x #c +nt :@1AAAAAAAA")), Err(Ts6Error::BadNumber("channel TS")));
        assert_eq!(
            parse_sjoin(&msg(":1AA SJOIN 5 #c +nt")).unwrap_err(),
            Ts6Error::NotEnoughParams { need: 4, got: 3 }
        );
    }

    #[test]
    fn sjoin_lines_split_at_512() {
        let uids: Vec<String> = (0..200).map(|i| format!("1AAAAA{i:03}")).collect();
        let members: Vec<Member<'_>> = uids
            .iter()
            .enumerate()
            .map(|(i, u)| Member { prefixes: if i % 3 == 0 { "@+" } else { "" }, uid: u })
            .collect();
        let lines = sjoin_lines("1AA", 1795785373, "#lab", "+ntkl", &["key", "10"], &members);
        assert!(lines.len() > 1);
        let mut back = Vec::new();
        for l in &lines {
            assert!(l.len() <= MAX_LINE, "{}", l.len());
            let m = msg(l);
            let s = parse_sjoin(&m).unwrap();
            assert_eq!((s.ts, s.channel, s.modes, &s.mode_args[..]), (1795785373, "#lab", "+ntkl", &["key", "10"][..]));
            assert_eq!(s.to_string(), *l);
            back.extend(s.members.iter().map(|m| m.to_string()));
        }
        let want: Vec<String> = members.iter().map(|m| m.to_string()).collect();
        assert_eq!(back, want);
        // Each line but the last is full: the next member would not have fit.
        for (i, l) in lines[..lines.len() - 1].iter().enumerate() {
            let next = msg(&lines[i + 1]).params.last().unwrap().split(' ').next().unwrap().len();
            assert!(l.len() + 1 + next > MAX_LINE);
        }
        assert_eq!(sjoin_lines("3SV", 5, "#c", "+nt", &[], &[]), [":3SV SJOIN 5 #c +nt :"]);
    }

    #[test]
    fn tmode() {
        let line = ":1AAAAAAAA TMODE 1795785373 #lab +b spam!*@*";
        let t = parse_tmode(&msg(line)).unwrap();
        assert_eq!(
            (t.source, t.ts, t.channel, t.modes, &t.args[..]),
            (Some("1AAAAAAAA"), 1795785373, "#lab", "+b", &["spam!*@*"][..])
        );
        assert_eq!(t.to_string(), line);
        let line = ":1AA TMODE 5 #c -o+v 1AAAAAAAA 1AAAAAAAB";
        assert_eq!(parse_tmode(&msg(line)).unwrap().to_string(), line);
        assert_eq!(parse_tmode(&msg(":1AA TMODE 5 #c")).unwrap_err(), Ts6Error::NotEnoughParams { need: 3, got: 2 });
        assert_eq!(parse_tmode(&msg(":1AA TMODE 5 #c m")), Err(Ts6Error::BadFlags));
        assert_eq!(parse_tmode(&msg(":1AA TMODE 5 #c +")), Err(Ts6Error::BadFlags));
        assert_eq!(parse_tmode(&msg(":1AA TMODE -5 #c +m")), Err(Ts6Error::BadNumber("channel TS")));
    }

    #[test]
    fn tmode_params_are_words() {
        // Found by fuzz/fuzz_targets/s2s.rs: a last parameter taking the rest of the line
        // rendered back as several parameters (or none).
        let line = ":1AA TMODE 5 #c +b :spam!*@*";
        assert_eq!(parse_tmode(&msg(line)).unwrap().to_string(), ":1AA TMODE 5 #c +b spam!*@*");
        assert_eq!(parse_tmode(&msg(":1AA TMODE 5 #c +b :a b")), Err(Ts6Error::BadModeParam));
        assert_eq!(parse_tmode(&msg(":1AA TMODE 5 #c +k :")), Err(Ts6Error::BadModeParam));
        assert_eq!(parse_tmode(&msg(":1AA TMODE 5 #c +k ::x")), Err(Ts6Error::BadModeParam));
        assert_eq!(parse_tmode(&msg(":1AA TMODE 5 #c +o 1AAAAAAAA :")), Err(Ts6Error::BadModeParam));
        assert_eq!(parse_tmode(&msg(":1AA TMODE 5 #c :+m n")), Err(Ts6Error::BadFlags));
    }

    #[test]
    fn bmask() {
        let line = ":1AA BMASK 1795785373 #lab b :spam!*@* *!*@evil";
        let b = parse_bmask(&msg(line)).unwrap();
        assert_eq!((b.list, &b.masks[..]), ('b', &["spam!*@*", "*!*@evil"][..]));
        assert_eq!(b.to_string(), line);
        assert_eq!(parse_bmask(&msg(":1AA BMASK 5 #c I :a!b@c")).unwrap().list, 'I');
        assert_eq!(parse_bmask(&msg(":1AA BMASK 5 #c q :a!b@c")), Err(Ts6Error::BadList));
        assert_eq!(parse_bmask(&msg(":1AA BMASK 5 #c b")).unwrap_err(), Ts6Error::NotEnoughParams { need: 4, got: 3 });

        let masks: Vec<String> = (0..100).map(|i| format!("nick{i}!*@host{i}.example.org")).collect();
        let refs: Vec<&str> = masks.iter().map(|s| s.as_str()).collect();
        let lines = bmask_lines("1AA", 5, "#c", 'e', &refs);
        assert!(lines.len() > 1);
        let mut back = Vec::new();
        for l in &lines {
            assert!(l.len() <= MAX_LINE);
            back.extend(parse_bmask(&msg(l)).unwrap().masks.iter().map(|s| s.to_string()));
        }
        assert_eq!(back, masks);
        assert!(bmask_lines("1AA", 5, "#c", 'b', &[]).is_empty());
    }

    #[test]
    fn tburst() {
        let line = ":1AA TBURST 1795785373 #lab 1795785373 alice!alice@127.0.0.1 :TS6 interop lab topic";
        let t = parse_tburst(&msg(line)).unwrap();
        assert_eq!(
            (t.ts, t.topic_ts, t.setter, t.topic),
            (1795785373, 1795785373, "alice!alice@127.0.0.1", "TS6 interop lab topic")
        );
        assert_eq!(t.to_string(), line);
        let unset = ":3SV TBURST 5 #c 6 ChanServ :";
        assert_eq!(parse_tburst(&msg(unset)).unwrap().topic, "");
        assert_eq!(parse_tburst(&msg(unset)).unwrap().to_string(), unset);
        assert_eq!(
            parse_tburst(&msg(":1AA TBURST 5 #c 6 :topic")).unwrap_err(),
            Ts6Error::NotEnoughParams { need: 5, got: 4 }
        );
        assert_eq!(parse_tburst(&msg(":1AA TBURST 5 #c x a :t")), Err(Ts6Error::BadNumber("topic TS")));
        assert_eq!(parse_tburst(&msg(":1AA TB #c 6 a :t")), Err(Ts6Error::WrongVerb));
    }
}
