//! Every server-to-server line of the lab captures (`tests/data/ts6/*.log`, copied from
//! `shared/ts6-captures/`) whose verb has a typed parser in `proto::ts6` parses with it and
//! renders back byte for byte. The only refusal expected is Atheme's 3-argument `SERVER`.

use std::collections::BTreeMap;

use rustircd::proto::ts6::{self, Ts6Error};
use rustircd::proto::Message;

/// Parses `m` with the typed parser of its verb; `None` if the verb has none.
fn typed(m: &Message<'_>) -> Option<Result<String, Ts6Error>> {
    Some(match m.verb {
        "SERVER" => ts6::parse_server(m).map(|x| x.to_string()),
        "SID" => ts6::parse_sid(m).map(|x| x.to_string()),
        "SVINFO" => ts6::parse_svinfo(m).map(|x| x.to_string()),
        "UID" => ts6::parse_uid(m).map(|x| {
            // A UID belongs to the server that introduced it.
            assert_eq!(m.source, Some(&x.uid[..3]), "UID source");
            x.to_string()
        }),
        "SJOIN" => ts6::parse_sjoin(m).map(|x| x.to_string()),
        "TMODE" => ts6::parse_tmode(m).map(|x| x.to_string()),
        "BMASK" => ts6::parse_bmask(m).map(|x| x.to_string()),
        "TBURST" => ts6::parse_tburst(m).map(|x| x.to_string()),
        _ => return None,
    })
}

/// The raw line of a capture line, or `None` for an event (`--`) line.
fn raw(line: &str) -> Option<&str> {
    let mut it = line.splitn(4, ' ');
    let (_time, _conn, dir) = (it.next()?, it.next()?, it.next()?);
    match dir {
        ">>" | "<<" => Some(it.next().unwrap_or("")),
        "--" => None,
        other => panic!("unknown direction {other:?} in {line:?}"),
    }
}

#[test]
fn captures_parse_and_render_back() {
    let dir = format!("{}/tests/data/ts6", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "{files:?}");
    let mut per_verb: BTreeMap<String, usize> = BTreeMap::new();
    let mut refused = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let Some(raw) = raw(line) else { continue };
            assert!(raw.len() <= ts6::MAX_LINE, "{name}:{}: longer than 510 bytes", n + 1);
            let m = Message::parse(raw).unwrap_or_else(|e| panic!("{name}:{}: {e:?}", n + 1));
            match typed(&m) {
                None => {}
                Some(Ok(back)) => {
                    assert_eq!(back, raw, "{name}:{}: does not render back", n + 1);
                    *per_verb.entry(m.verb.to_string()).or_default() += 1;
                }
                Some(Err(e)) => refused.push((name.clone(), raw.to_string(), e)),
            }
        }
    }
    assert_eq!(
        refused,
        [(
            "atheme-ratbox-to-hybrid.log".to_string(),
            "SERVER services.lab 1 :Atheme IRC Services".to_string(),
            Ts6Error::NotEnoughParams { need: 5, got: 3 }
        )]
    );
    for verb in ["SERVER", "SID", "SVINFO", "UID", "SJOIN", "TMODE", "BMASK", "TBURST"] {
        assert!(per_verb.get(verb).copied().unwrap_or(0) > 0, "no {verb} in the captures: {per_verb:?}");
    }
    eprintln!("typed lines per verb: {per_verb:?}");
}

#[test]
fn every_capture_line_is_timestamped() {
    let dir = format!("{}/tests/data/ts6", env!("CARGO_MANIFEST_DIR"));
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "log") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let t = line.split(' ').next().unwrap();
                assert!(t.parse::<f64>().is_ok(), "{}: {line:?}", path.display());
            }
        }
    }
}
