//! The ircdocs parser-tests vectors (CC0, copied into tests/data/parser-tests): every case of
//! msg-split, msg-join, userhost-split, mask-match and validate-hostname.

use std::collections::BTreeMap;

use rustircd::proto::mask;
use rustircd::proto::names::valid_hostname;
use rustircd::proto::{CaseMapping, Line, Message};
use serde::Deserialize;

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = format!("{}/tests/data/parser-tests/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[derive(Deserialize, Default)]
struct Atoms {
    #[serde(default)]
    tags: Option<serde_yaml::Mapping>,
    source: Option<String>,
    verb: String,
    #[serde(default)]
    params: Vec<String>,
}

fn tag_map(m: &Option<serde_yaml::Mapping>) -> BTreeMap<String, String> {
    m.iter().flatten().map(|(k, v)| (k.as_str().unwrap().to_string(), v.as_str().unwrap_or("").to_string())).collect()
}

#[derive(Deserialize)]
struct Split {
    tests: Vec<SplitCase>,
}
#[derive(Deserialize)]
struct SplitCase {
    input: String,
    atoms: Atoms,
}

#[test]
fn msg_split() {
    let cases: Split = load("msg-split.yaml");
    assert!(cases.tests.len() > 20);
    for c in &cases.tests {
        let m = Message::parse(&c.input).unwrap_or_else(|e| panic!("{:?}: {e:?}", c.input));
        assert_eq!(m.verb, c.atoms.verb, "verb of {:?}", c.input);
        assert_eq!(m.source.map(str::to_string), c.atoms.source, "source of {:?}", c.input);
        let params: Vec<String> = m.params.iter().map(|s| s.to_string()).collect();
        assert_eq!(params, c.atoms.params, "params of {:?}", c.input);
        let tags: BTreeMap<String, String> = m.tags().map(|(k, v)| (k.to_string(), v.into_owned())).collect();
        assert_eq!(tags, tag_map(&c.atoms.tags), "tags of {:?}", c.input);
    }
}

#[derive(Deserialize)]
struct Join {
    tests: Vec<JoinCase>,
}
#[derive(Deserialize)]
struct JoinCase {
    atoms: Atoms,
    matches: Vec<String>,
}

#[test]
fn msg_join() {
    let cases: Join = load("msg-join.yaml");
    for c in &cases.tests {
        let mut l = Line::new();
        for (k, v) in c.atoms.tags.iter().flatten() {
            l = l.tag(k.as_str().unwrap(), v.as_str());
        }
        if let Some(s) = &c.atoms.source {
            l = l.source(s);
        }
        l = l.verb(&c.atoms.verb);
        for p in &c.atoms.params {
            l = l.param(p);
        }
        let bytes = l.finish();
        let out = std::str::from_utf8(&bytes).unwrap().strip_suffix("\r\n").unwrap().to_string();
        assert!(c.matches.contains(&out), "{out:?} is none of {:?}", c.matches);
    }
}

#[derive(Deserialize)]
struct Userhost {
    tests: Vec<UserhostCase>,
}
#[derive(Deserialize)]
struct UserhostCase {
    source: String,
    atoms: BTreeMap<String, String>,
}

#[test]
fn userhost_split() {
    let cases: Userhost = load("userhost-split.yaml");
    for c in &cases.tests {
        let (n, u, h) = mask::split_userhost(&c.source);
        let get = |k: &str| c.atoms.get(k).cloned().unwrap_or_default();
        assert_eq!((n, u, h), (get("nick").as_str(), get("user").as_str(), get("host").as_str()), "{:?}", c.source);
    }
}

#[derive(Deserialize)]
struct Masks {
    tests: Vec<MaskCase>,
}
#[derive(Deserialize)]
struct MaskCase {
    mask: String,
    matches: Vec<String>,
    fails: Vec<String>,
}

#[test]
fn mask_match() {
    let cases: Masks = load("mask-match.yaml");
    for c in &cases.tests {
        for m in &c.matches {
            assert!(mask::matches(CaseMapping::Ascii, &c.mask, m), "{:?} should match {m:?}", c.mask);
        }
        for f in &c.fails {
            assert!(!mask::matches(CaseMapping::Ascii, &c.mask, f), "{:?} should not match {f:?}", c.mask);
        }
    }
}

#[derive(Deserialize)]
struct Hosts {
    tests: Vec<HostCase>,
}
#[derive(Deserialize)]
struct HostCase {
    host: String,
    valid: bool,
}

#[test]
fn validate_hostname() {
    let cases: Hosts = load("validate-hostname.yaml");
    for c in &cases.tests {
        assert_eq!(valid_hostname(&c.host), c.valid, "{:?}", c.host);
    }
}
