//! The ban file (`<data_dir>/bans.txt`) and its one writer, [`BanStore`], shared by every
//! shard. Every write rewrites the file whole through a temporary file that is fsynced and
//! renamed over the old one, then the directory is fsynced: after a crash or kill -9 the file
//! is either the old list or the new one, never a torn mix.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::state::bans::{Ban, BanKind};

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

/// One change to the ban list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Adds a ban, replacing one of the same kind and mask.
    Add(Ban),
    Remove {
        kind: BanKind,
        mask: Arc<str>,
    },
}

impl Change {
    fn apply(self, bans: &mut Vec<Ban>) {
        let (kind, mask) = match &self {
            Change::Add(b) => (b.kind, b.mask.clone()),
            Change::Remove { kind, mask } => (*kind, mask.clone()),
        };
        bans.retain(|b| !(b.kind == kind && b.mask.eq_ignore_ascii_case(&mask)));
        if let Change::Add(b) = self {
            bans.push(b);
        }
    }
}

/// The authoritative ban list and the one writer of the ban file, for every shard (so the file
/// holds the union of their changes). Writes are group commits: changes join the list at once;
/// a caller that finds no write under way writes the whole list, and callers arriving
/// meanwhile wait and go together in the next write — one fsync for a burst, not one each.
pub struct BanStore {
    state: Mutex<Store>,
    written: Condvar,
}

struct Store {
    bans: Vec<Ban>,
    /// Changes made so far, and how many of them the last finished write covered.
    made: u64,
    covered: u64,
    writing: bool,
    /// The last finished write's outcome (a later write holds every earlier change too).
    outcome: Result<(), String>,
    /// Finished writes, for tests and the log.
    writes: u64,
}

impl BanStore {
    pub fn new(bans: Vec<Ban>) -> BanStore {
        let store = Store { bans, made: 0, covered: 0, writing: false, outcome: Ok(()), writes: 0 };
        BanStore { state: Mutex::new(store), written: Condvar::new() }
    }

    /// The list as it stands (changes not yet written included).
    pub fn bans(&self) -> Vec<Ban> {
        self.lock().bans.clone()
    }

    /// How many writes have finished.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    /// Applies `changes` and returns once a write holding them is done: `Err` says why the file
    /// could not be written (the changes stay in the list; the next write tries again). Blocks:
    /// call it off the shards' event loops.
    pub fn save(&self, dir: &Path, changes: Vec<Change>) -> Result<(), String> {
        let mut st = self.lock();
        st.made += changes.len() as u64;
        for c in changes {
            c.apply(&mut st.bans);
        }
        let mine = st.made;
        loop {
            if st.covered >= mine {
                return st.outcome.clone();
            }
            st =
                if st.writing { self.written.wait(st).unwrap_or_else(|e| e.into_inner()) } else { self.write(st, dir) };
        }
    }

    /// Writes the list as it is now; the lock is released during the disk work, so changes
    /// keep arriving and queue for the next write.
    fn write<'a>(&'a self, mut st: MutexGuard<'a, Store>, dir: &Path) -> MutexGuard<'a, Store> {
        let now = crate::clock::unix_now();
        st.bans.retain(|b| b.live(now));
        let (bans, upto, carried) = (st.bans.clone(), st.made, st.made - st.covered);
        st.writing = true;
        drop(st);
        let outcome = save(dir, &bans).map_err(|e| e.to_string());
        let p = path(dir);
        match &outcome {
            Ok(()) => log::info!("Bans saved: {} in {} ({carried} change(s) in this write)", bans.len(), p.display()),
            Err(e) => {
                log::error!("Bans NOT saved to {}: {e} ({carried} change(s) in force but not on disk)", p.display())
            }
        }
        let mut st = self.lock();
        st.writing = false;
        st.covered = upto;
        st.outcome = outcome;
        st.writes += 1;
        self.written.notify_all();
        st
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic elsewhere while holding the lock leaves a list that is still whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
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

    fn kline(mask: &str) -> Ban {
        Ban { kind: BanKind::K, mask: mask.into(), reason: "r".into(), setter: "op".into(), set_at: 1, expires: 0 }
    }

    #[test]
    fn the_store_writes_the_union_of_concurrent_changes() {
        let dir = std::env::temp_dir().join(format!("rustircd-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = Arc::new(BanStore::new(vec![kline("*@old"), kline("*@gone")]));
        let callers: Vec<_> = (0..8)
            .map(|i| {
                let (store, dir) = (store.clone(), dir.clone());
                std::thread::spawn(move || store.save(&dir, vec![Change::Add(kline(&format!("*@{i}")))]))
            })
            .collect();
        for c in callers {
            assert_eq!(c.join().unwrap(), Ok(()));
        }
        let removal = Change::Remove { kind: BanKind::K, mask: "*@GONE".into() };
        assert_eq!(store.save(&dir, vec![removal]), Ok(()));
        let mut on_disk: Vec<String> = load(&dir, 0).0.iter().map(|b| b.mask.to_string()).collect();
        on_disk.sort();
        assert_eq!(on_disk, ["*@0", "*@1", "*@2", "*@3", "*@4", "*@5", "*@6", "*@7", "*@old"]);
        assert!((1..=9).contains(&store.writes()), "{} writes", store.writes());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_is_reported_and_the_change_kept() {
        let dir = std::env::temp_dir().join(format!("rustircd-store-bad-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::write(&dir, "a file where the directory should be").unwrap();
        let store = BanStore::new(Vec::new());
        let err = store.save(&dir.join("sub"), vec![Change::Add(kline("*@x"))]).unwrap_err();
        assert!(!err.is_empty());
        assert_eq!(store.bans(), vec![kline("*@x")], "still in force");
        fs::remove_file(&dir).unwrap();
    }
}
