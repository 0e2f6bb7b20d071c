//! What the fuzz targets run (`fuzz/`), kept in the library so that `cargo test` replays the
//! committed corpus through exactly the same checks (`tests/fuzz_corpus.rs`).

use std::sync::Arc;

use crate::config::Config;
use crate::proto::framer::{Frame, Framer};
use crate::proto::{Line, Message};
use crate::sim::Sim;

/// The framer and the parser on arbitrary bytes: no panic; framed lines hold no CR, LF or
/// NUL; and a parsed message serializes to a line that parses back to the same message.
pub fn parse(data: &[u8]) {
    // Framing in two pieces at every split the input suggests.
    let split = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let mut framer = Framer::default();
    let mut lines = Vec::new();
    for part in [&data[..split], &data[split..]] {
        framer.feed(part, |f| {
            if let Frame::Line(l) = f {
                assert!(!l.is_empty() && !l.contains(&b'\r') && !l.contains(&b'\n') && !l.contains(&0));
                lines.push(l.to_vec());
            }
        });
    }
    for raw in lines {
        let text = String::from_utf8_lossy(&raw);
        let Ok(msg) = Message::parse(&text) else { continue };
        let _ = msg.tags().count();
        // Re-serialized, the message reads back the same (verb and parameters). Only real
        // verbs (letters or digits) can: "@x" after the tags would read back as tags.
        if !msg.verb.bytes().all(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        let mut line = Line::new();
        if let Some(src) = msg.source {
            line = line.source(src);
        }
        line = line.verb(msg.verb);
        if let Some((last, mid)) = msg.params.split_last() {
            if mid.iter().all(|p| !p.is_empty() && !p.starts_with(':') && !p.contains(' ')) {
                for p in mid {
                    line = line.param(p);
                }
                line = line.trailing(last);
                let out = line.finish();
                if out.len() - 2 + 4 > crate::proto::line::MAX_BODY {
                    // Possibly cut to the 512-byte limit (at a character boundary, so up to 3
                    // bytes short of it): what is left need not be the same message.
                    continue;
                }
                let again = String::from_utf8_lossy(&out);
                let back = Message::parse(again.trim_end_matches(['\r', '\n'])).expect("a serialized message parses");
                assert_eq!(back.verb, msg.verb);
                assert_eq!(back.params, msg.params);
            }
        }
    }
}

pub(crate) const CONFIG: &str = r#"
[server]
name = "irc.fuzz.local"
sid = "0FZ"
[[classes]]
name = "all"
hosts = ["*"]
exempt = true
[[opers]]
name = "op"
password = "pw"
allow_plaintext = true
privileges = ["all"]
[[links]]
name = "peer.fuzz"
sid = "2FZ"
send_password = "out"
accept_password = "in"
hub_mask = ["*"]
"#;

/// The command dispatcher on arbitrary input: two shards (the in-process simulator), a few
/// clients (registered, one an operator, one not) spread over them, and a linked TS6 server
/// (with a user in a channel), and the input fed to them interleaved — the server link's as
/// server lines. Nothing may panic, and once all is delivered the shards must agree.
pub fn dispatch(data: &[u8]) {
    static CFG: std::sync::OnceLock<Arc<Config>> = std::sync::OnceLock::new();
    let cfg =
        CFG.get_or_init(|| Arc::new(Config::parse("fuzz", CONFIG, None).expect("the fuzz config is valid"))).clone();
    let mut sim = Sim::new(cfg, 2, false);
    let mut conns =
        vec![(0, sim.client(0, "alice")), (1, sim.client(1, "bob")), (0, sim.client(0, "carol")), (1, sim.connect(1))];
    sim.feed(1, conns[1].1, b"OPER op pw\r\nJOIN #a,#b\r\n");
    sim.feed(0, conns[0].1, b"JOIN #a\r\n");
    let link = sim.connect(1);
    sim.feed(1, link, LINK);
    sim.pump();
    conns.push((1, link));
    // Each chunk: one byte picks the client, the rest (up to the next 0xFF) is its input.
    for chunk in data.split(|&b| b == 0xFF) {
        let Some((&who, bytes)) = chunk.split_first() else { continue };
        let (shard, conn) = conns[who as usize % conns.len()];
        sim.feed(shard, conn, bytes);
        if who == 0xFE {
            // A new connection now and then.
            let s = conns.len() % 2;
            conns.push((s, sim.connect(s)));
        }
    }
    sim.pump();
    sim.check_consistent();
}

/// A TS6 peer linking in (as hybrid does), with a user that joins `#a`.
pub(crate) const LINK: &[u8] =
    b"PASS in TS 6 :2FZ\r\nCAPAB :EOB TBURST ENCAP RHOST\r\nSERVER peer.fuzz 1 2FZ + :fuzz\r\n\
:2FZ SVINFO 6 6 0 :0\r\n:2FZ UID dave 1 1 +i dave h h 10.0.0.1 2FZAAAAAA * :Dave\r\n\
:2FZ SJOIN 1 #a +nt :@2FZAAAAAA\r\n:2FZ EOB\r\n";

/// The TS6 server-to-server wire format (`proto::ts6`) on arbitrary lines (framed as a
/// connection would frame them). For every line: the ID validators agree with each other on
/// each word; every typed parser runs, on the line as sent (another verb must be refused as
/// such) and with its own verb put in, and nothing panics. A parsed line renders back
/// (`Display`) to a line that parses to the same value and renders identically. The builders,
/// given what a line carried (`uid_line` its UID, `sjoin_lines` its SJOIN members,
/// `bmask_lines` its BMASK masks), produce lines of at most 510 bytes (unless one field alone
/// does not fit) that parse back and together carry the same thing.
pub fn s2s(data: &[u8]) {
    let mut framer = Framer::default();
    let mut lines = Vec::new();
    // The last line need not be terminated.
    for part in [data, b"\n"] {
        framer.feed(part, |f| {
            if let Frame::Line(l) = f {
                lines.push(l.to_vec());
            }
        });
    }
    for raw in lines {
        let text = String::from_utf8_lossy(&raw);
        for word in text.split(' ') {
            s2s_ids(word);
        }
        let Ok(msg) = Message::parse(&text) else { continue };
        s2s_line(&msg);
    }
}

/// The SID/UID validators and `Member::parse` on one word.
fn s2s_ids(w: &str) {
    use crate::proto::ts6::{self, Member};
    use crate::state::Uid;

    let valid = ts6::valid_uid(w);
    let uid = Uid::parse(w);
    assert_eq!(uid.is_some(), valid, "valid_uid and Uid::parse disagree on {w:?}");
    if let Some(u) = uid {
        assert_eq!(u.as_str(), w);
        assert_eq!(u.to_string(), w);
        assert_eq!(u.sid(), &w[..3]);
        assert!(ts6::valid_sid(u.sid()), "{w:?}");
        assert!(u.shard(3) < 3);
        assert_eq!(Uid::parse(u.as_str()), Some(u));
    }
    if ts6::valid_sid(w) {
        assert!(w.len() == 3 && w.is_ascii(), "{w:?}");
    }
    match Member::parse(w) {
        Ok(m) => {
            assert_eq!(m.to_string(), w);
            assert!(ts6::valid_uid(m.uid), "{w:?}");
            assert!(m.prefixes.chars().all(|c| ts6::MEMBER_PREFIXES.contains(c)), "{w:?}");
            assert_eq!(Member::parse(&m.to_string()), Ok(m));
        }
        Err(e) => {
            assert_eq!(e, ts6::Ts6Error::BadMember);
            let uid = w.trim_start_matches(|c| ts6::MEMBER_PREFIXES.contains(c));
            assert!(!ts6::valid_uid(uid), "{w:?} refused");
        }
    }
}

/// Parses `$m` with `$parse`; a value renders back to a line that parses to the same value
/// and renders the same again. Evaluates to the parse result.
macro_rules! s2s_round_trip {
    ($m:expr, $parse:path) => {{
        let r = $parse($m);
        match &r {
            Ok(v) => {
                let line = v.to_string();
                let again = Message::parse(&line).unwrap_or_else(|e| panic!("{line:?} does not parse: {e:?}"));
                let w = $parse(&again).unwrap_or_else(|e| panic!("{line:?} does not parse back: {e}"));
                assert_eq!(*v, w, "{line:?}");
                assert_eq!(w.to_string(), line);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        r
    }};
}

/// Every typed parser on one message: as sent, then with the parser's verb.
fn s2s_line(msg: &Message<'_>) {
    use crate::proto::ts6;

    const VERBS: [&str; 8] = ["SERVER", "SID", "SVINFO", "UID", "SJOIN", "TMODE", "BMASK", "TBURST"];
    for verb in VERBS {
        let mine = msg.verb.eq_ignore_ascii_case(verb);
        let renamed = Message { verb, ..msg.clone() };
        for m in [msg, &renamed] {
            let wrong = match verb {
                "SERVER" => s2s_round_trip!(m, ts6::parse_server).err(),
                "SID" => s2s_round_trip!(m, ts6::parse_sid).err(),
                "SVINFO" => s2s_round_trip!(m, ts6::parse_svinfo).err(),
                "UID" => {
                    let r = s2s_round_trip!(m, ts6::parse_uid);
                    if let Ok(u) = &r {
                        s2s_uid_line(u);
                    }
                    r.err()
                }
                "SJOIN" => {
                    let r = s2s_round_trip!(m, ts6::parse_sjoin);
                    if let Ok(s) = &r {
                        s2s_sjoin_lines(s);
                    }
                    r.err()
                }
                "TMODE" => s2s_round_trip!(m, ts6::parse_tmode).err(),
                "BMASK" => {
                    let r = s2s_round_trip!(m, ts6::parse_bmask);
                    if let Ok(b) = &r {
                        s2s_bmask_lines(b);
                    }
                    r.err()
                }
                "TBURST" => s2s_round_trip!(m, ts6::parse_tburst).err(),
                _ => unreachable!(),
            } == Some(ts6::Ts6Error::WrongVerb);
            assert_eq!(wrong, !m.verb.eq_ignore_ascii_case(verb), "{verb} on {:?}", m.verb);
            if mine {
                // The renamed copy is the same message.
                break;
            }
        }
    }
}

/// `uid_line`: at most 510 bytes when everything but the gecos fits (else without a gecos);
/// the same user, the gecos cut (at a character boundary) only when the line would not fit.
fn s2s_uid_line(u: &crate::proto::ts6::UidIntro<'_>) {
    use crate::proto::ts6::{self, MAX_LINE};

    let full = u.to_string();
    let head = full.len() - u.gecos.len();
    let out = ts6::uid_line(u);
    if full.len() <= MAX_LINE {
        assert_eq!(out, full);
        return;
    }
    if head <= MAX_LINE {
        assert!(out.len() <= MAX_LINE && out.len() + 4 > MAX_LINE, "{} bytes from {}", out.len(), full.len());
    } else {
        assert_eq!(out.len(), head, "only the gecos may go");
    }
    let m = Message::parse(&out).unwrap_or_else(|e| panic!("uid_line {out:?}: {e:?}"));
    let back = ts6::parse_uid(&m).unwrap_or_else(|e| panic!("uid_line {out:?}: {e}"));
    assert!(u.gecos.starts_with(back.gecos), "{out:?}");
    assert_eq!(ts6::UidIntro { gecos: u.gecos, ..back }, *u, "{out:?}");
}

/// The source to build with: the line's own, or a SID.
fn s2s_sid(source: Option<&str>) -> &str {
    source.unwrap_or("0FZ")
}

/// `sjoin_lines` from a parsed SJOIN: every line parses back with the same channel, TS and
/// modes; together they carry the members in order; a line is over 510 bytes only when it
/// holds at most one member (the fixed part leaves no room), and every line but the last is
/// full (the next member would not have fit).
fn s2s_sjoin_lines(s: &crate::proto::ts6::Sjoin<'_>) {
    use crate::proto::ts6::{self, MAX_LINE};

    let sid = s2s_sid(s.source);
    let lines = ts6::sjoin_lines(sid, s.ts, s.channel, s.modes, &s.mode_args, &s.members);
    assert!(!lines.is_empty());
    let mut back = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let m = Message::parse(l).unwrap_or_else(|e| panic!("sjoin_lines {l:?}: {e:?}"));
        let p = ts6::parse_sjoin(&m).unwrap_or_else(|e| panic!("sjoin_lines {l:?}: {e}"));
        assert_eq!(
            (p.source, p.ts, p.channel, p.modes, &p.mode_args),
            (Some(sid), s.ts, s.channel, s.modes, &s.mode_args)
        );
        assert_eq!(p.to_string(), *l);
        assert!(l.len() <= MAX_LINE || p.members.len() <= 1, "{} bytes, {} members", l.len(), p.members.len());
        assert!(!p.members.is_empty() || lines.len() == 1, "an empty line among several");
        if let Some(next) = lines.get(i + 1) {
            let first = Message::parse(next).unwrap().params.last().unwrap().split(' ').next().unwrap().len();
            assert!(l.len() + 1 + first > MAX_LINE, "line {i} not full");
        }
        back.extend(p.members);
    }
    assert_eq!(back, s.members);
}

/// `bmask_lines` from a parsed BMASK, as for SJOIN; no masks, no lines.
fn s2s_bmask_lines(b: &crate::proto::ts6::Bmask<'_>) {
    use crate::proto::ts6::{self, MAX_LINE};

    let sid = s2s_sid(b.source);
    let lines = ts6::bmask_lines(sid, b.ts, b.channel, b.list, &b.masks);
    assert_eq!(lines.is_empty(), b.masks.is_empty());
    let mut back = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let m = Message::parse(l).unwrap_or_else(|e| panic!("bmask_lines {l:?}: {e:?}"));
        let p = ts6::parse_bmask(&m).unwrap_or_else(|e| panic!("bmask_lines {l:?}: {e}"));
        assert_eq!((p.source, p.ts, p.channel, p.list), (Some(sid), b.ts, b.channel, b.list));
        assert_eq!(p.to_string(), *l);
        assert!(!p.masks.is_empty());
        assert!(l.len() <= MAX_LINE || p.masks.len() == 1, "{} bytes, {} masks", l.len(), p.masks.len());
        if let Some(next) = lines.get(i + 1) {
            let first = Message::parse(next).unwrap().params.last().unwrap().split(' ').next().unwrap().len();
            assert!(l.len() + 1 + first > MAX_LINE, "line {i} not full");
        }
        back.extend(p.masks);
    }
    assert_eq!(back, b.masks);
}
