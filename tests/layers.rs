//! The layers of `docs/architecture.md` hold: no module imports one above it. Read from the
//! sources, as the architecture's grep lines do.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable source folder") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Lines of the files under `dir` (or the file `dir`) that mention any of `forbidden`.
fn offenders(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files = Vec::new();
    if root.is_dir() {
        rust_files(&root, &mut files);
    } else {
        files.push(root);
    }
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            if forbidden.iter().any(|w| line.contains(w)) {
                found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn state_imports_nothing_above_it() {
    let up = ["crate::commands", "crate::local", "crate::metrics", "crate::glue", "shards::"];
    assert_eq!(offenders("src/state", &up), Vec::<String>::new());
}

#[test]
fn metrics_imports_nothing_of_the_core() {
    let up = ["crate::commands", "crate::local", "crate::state", "crate::glue", "shards::"];
    assert_eq!(offenders("src/metrics", &up), Vec::<String>::new());
}

#[test]
fn only_the_glue_and_main_name_the_runtime() {
    for dir in ["src/commands", "src/local", "src/state", "src/proto", "src/config", "src/metrics"] {
        assert_eq!(offenders(dir, &["shards::", "use shards"]), Vec::<String>::new(), "{dir}");
    }
}

#[test]
fn main_uses_the_glue_not_the_core() {
    let core = ["commands::", "local::", "state::"];
    assert_eq!(offenders("src/main.rs", &core), Vec::<String>::new());
}
