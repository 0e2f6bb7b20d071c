//! The ban file (`<data_dir>/bans.txt`), owned by the main thread. Every change rewrites it
//! whole through a temporary file that is fsynced and renamed over the old one, then the
//! directory is fsynced: after a crash or kill -9 the file is either the old list or the new
//! one, never a torn mix.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::state::bans::Ban;

pub const FILE: &str = "bans.txt";

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// Reads the ban file; a missing file is an empty list. Lines that do not parse are reported
/// (file and line) and skipped; the rest load. Expired bans are dropped.
pub fn load(data_dir: &Path, now: u64) -> (Vec<Ban>, Vec<String>) {
    let p = path(data_dir);
    let text = match fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Vec::new(), Vec::new()),
        Err(e) => return (Vec::new(), vec![format!("{}: {e}", p.display())]),
    };
    let mut bans = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match Ban::from_line(line) {
            Some(b) if b.live(now) => bans.push(b),
            Some(_) => {}
            None => errors.push(format!("{}:{}: not a ban line, skipped", p.display(), i + 1)),
        }
    }
    (bans, errors)
}

/// Writes `bans` as the whole ban file, atomically.
pub fn save(data_dir: &Path, bans: &[Ban]) -> std::io::Result<()> {
    fs::create_dir_all(data_dir)?;
    let mut text = String::from("# rustircd bans: K|D set_at expires(0=never) setter mask :reason\n");
    for b in bans {
        text.push_str(&b.to_line());
        text.push('\n');
    }
    let tmp = data_dir.join(format!(".{FILE}.tmp"));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path(data_dir))?;
    // The rename itself is durable only once the directory is.
    fs::File::open(data_dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::bans::BanKind;

    #[test]
    fn save_then_load() {
        let dir = std::env::temp_dir().join(format!("rustircd-persist-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(load(&dir, 0), (Vec::new(), Vec::new()), "no file yet: no bans");
        let b = |mask: &str, expires| Ban {
            kind: BanKind::K,
            mask: mask.into(),
            reason: "spam: lots".into(),
            setter: "op".into(),
            set_at: 10,
            expires,
        };
        save(&dir, &[b("*@a", 0), b("*@b", 50)]).unwrap();
        assert_eq!(load(&dir, 20).0, vec![b("*@a", 0), b("*@b", 50)]);
        assert_eq!(load(&dir, 60).0, vec![b("*@a", 0)], "expired bans are dropped");
        fs::write(path(&dir), "K 1 0 op *@x :r\nnonsense\n").unwrap();
        let (bans, errs) = load(&dir, 0);
        assert_eq!(bans.len(), 1);
        assert!(errs[0].ends_with("bans.txt:2: not a ban line, skipped"), "{errs:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
