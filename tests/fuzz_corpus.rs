//! Replays the committed fuzz corpora (`fuzz/corpus/`) through the fuzz targets' own checks,
//! so every input the fuzzers found interesting stays a regression test without cargo fuzz.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
        n += 1;
    }
    assert!(n > 10, "{target}: the corpus is missing ({n} inputs)");
}

#[test]
fn parse_corpus() {
    replay("parse", rustircd::fuzzing::parse);
}

#[test]
fn dispatch_corpus() {
    replay("dispatch", rustircd::fuzzing::dispatch);
}

#[test]
fn s2s_corpus() {
    replay("s2s", rustircd::fuzzing::s2s);
}
