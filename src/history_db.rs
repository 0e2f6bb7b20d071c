//! The chat history on disk, `<data_dir>/history.redb`, so that a restart keeps it. redb (one
//! file, one dependency) was chosen over fjall by measurement (docs/performance.md, "History
//! on disk"). Shards never touch the file: they send their changes ([`DbOp`]) over a channel to
//! the one writer thread, which commits what has come every 250 ms at most (one fsync per
//! commit: a crash loses at most the last ~250 ms). At start the file is read once, whole, and
//! each shard is given the entries of the logs it keeps.
//!
//! A channel's log comes back only if the channel was open (`state::channel::Closed`) as of
//! its log's latest record of its modes: whoever creates the channel first after a restart
//! gets its log, and could not have joined (or seen) a closed one. A closed channel's log is
//! erased at start, and so is one written before these records were (unknown counts as
//! closed: an older version's logs cannot say whether their channel was +s or +k).

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ahash::{AHashMap, AHashSet};
use crossbeam_channel::{Receiver, Sender};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::commands::history::codec::{self, LogKey};
use crate::commands::history::store::{DbOp, Entry};
use crate::proto::{CaseMapping, Folded};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("history");
pub const FILE: &str = "history.redb";
/// Commits at most this often: a busy server makes ~4 fsyncs a second, not one per message; a
/// crash loses at most the last quarter second.
const COMMIT_EVERY: Duration = Duration::from_millis(250);
/// redb's page cache (its default is 1 GiB); the writer only appends and deletes.
const CACHE: usize = 16 << 20;

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// The store opened: where shards send changes, what each shard loads, and the writer.
pub struct Opened {
    pub sink: Sender<DbOp>,
    /// Per shard, its logs' entries in key order (each log's oldest first).
    pub loaded: Vec<Vec<(LogKey, Entry)>>,
    /// Every read marker (every shard keeps them all).
    pub markers: Vec<(Folded, Folded, u64)>,
    /// Entries that could not be read (another version, damage): skipped.
    pub skipped: usize,
    /// Channels whose log was not restored (closed, or of unknown modes), erased from the
    /// file: each with the letters that closed it (None: unknown) and its entry count.
    pub erased: Vec<(Folded, Option<Box<str>>, usize)>,
    pub writer: JoinHandle<()>,
}

/// Opens (or creates) the store, reads it whole and starts the writer.
pub fn open(data_dir: &Path, cm: CaseMapping, cores: usize) -> Result<Opened, String> {
    let file = path(data_dir);
    let err = |e: &dyn std::fmt::Display| format!("history store {}: {e}", file.display());
    std::fs::create_dir_all(data_dir).map_err(|e| err(&e))?;
    let db = Database::builder().set_cache_size(CACHE).create(&file).map_err(|e| err(&e))?;
    let mut loaded = load(&db, cm, cores).map_err(|e| err(&e))?;
    // Not loaded either way; a file that refuses the erasure is asked again at the next start.
    if let Err(e) = erase(&db, &loaded.erase) {
        log::warn!("history store {}: closed channels' logs not erased: {e}", file.display());
    }
    let mut erased: Vec<_> = loaded.dropped.drain().map(|(chan, (letters, n))| (chan, letters, n)).collect();
    erased.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let (sink, rx) = crossbeam_channel::unbounded();
    let writer =
        std::thread::Builder::new().name("history-db".into()).spawn(move || write_loop(db, rx)).map_err(|e| err(&e))?;
    let Loaded { per_shard: loaded, markers, skipped, .. } = loaded;
    Ok(Opened { sink, loaded, markers, skipped, erased, writer })
}

#[derive(Default)]
struct Loaded {
    per_shard: Vec<Vec<(LogKey, Entry)>>,
    markers: Vec<(Folded, Folded, u64)>,
    skipped: usize,
    /// Channels not restored: the letters that closed them (None: unknown), entries.
    dropped: AHashMap<Folded, (Option<Box<str>>, usize)>,
    /// Keys to go from the file: the entries and records of channels not restored, and the
    /// records of channels without entries.
    erase: Vec<Vec<u8>>,
}

fn load(db: &Database, cm: CaseMapping, cores: usize) -> Result<Loaded, redb::Error> {
    let mut l = Loaded { per_shard: (0..cores).map(|_| Vec::new()).collect(), ..Loaded::default() };
    let tx = db.begin_read()?;
    let table = match tx.open_table(TABLE) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(l),
        Err(e) => return Err(e.into()),
    };
    // First what closes each channel: its record (an `s` key) sorts after its entries.
    let mut closed: AHashMap<Folded, Box<str>> = AHashMap::default();
    for row in table.range::<&[u8]>(b"s".as_slice()..b"t".as_slice())? {
        let (k, v) = row?;
        match codec::closed_of(k.value(), v.value(), cm) {
            Some((chan, letters)) => {
                closed.insert(chan, letters);
            }
            None => l.skipped += 1,
        }
    }
    let mut with_entries: AHashSet<Folded> = AHashSet::default();
    for row in table.iter()? {
        let (k, v) = row?;
        let (k, v) = (k.value(), v.value());
        match k.first() {
            Some(b'r') => {
                match codec::marker_of(k, v, cm) {
                    Some(m) => l.markers.push(m),
                    None => l.skipped += 1,
                }
                continue;
            }
            Some(b's') => continue,
            _ => {}
        }
        let Some(log) = codec::log_of(k, cm) else {
            l.skipped += 1;
            continue;
        };
        if let LogKey::Channel(chan) = &log {
            let letters = closed.get(chan);
            if letters.is_none_or(|s| !s.is_empty()) {
                l.dropped.entry(chan.clone()).or_insert_with(|| (letters.cloned(), 0)).1 += 1;
                l.erase.push(k.to_vec());
                continue;
            }
            if !with_entries.contains(chan) {
                with_entries.insert(chan.clone());
            }
        }
        match codec::decode(v, cm) {
            Some(e) => l.per_shard[log.name().owner(cores)].push((log, e)),
            None => l.skipped += 1,
        }
    }
    l.erase.extend(closed.into_keys().filter(|c| !with_entries.contains(c)).map(|c| codec::closed_key(&c)));
    Ok(l)
}

/// Takes these keys out of the file (at start, before the writer runs).
fn erase(db: &Database, keys: &[Vec<u8>]) -> Result<(), redb::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    let tx = db.begin_write()?;
    {
        let mut t = tx.open_table(TABLE)?;
        for k in keys {
            t.remove(k.as_slice())?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Until every shard has dropped its sender: wait for a change, gather what else comes within
/// the commit interval, write it in one transaction.
fn write_loop(db: Database, rx: Receiver<DbOp>) {
    let mut last = Instant::now() - COMMIT_EVERY;
    while let Ok(first) = rx.recv() {
        std::thread::sleep((last + COMMIT_EVERY).saturating_duration_since(Instant::now()));
        let ops: Vec<DbOp> = std::iter::once(first).chain(rx.try_iter()).collect();
        if let Err(e) = commit(&db, &ops) {
            log::warn!("History store: {} change(s) not written: {e}", ops.len());
        }
        last = Instant::now();
    }
}

fn commit(db: &Database, ops: &[DbOp]) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    {
        let mut t = tx.open_table(TABLE)?;
        for op in ops {
            match op {
                DbOp::Put(log, e) => {
                    let k = codec::key(log, e.time_ms(), e.msgid().unwrap_or_default());
                    t.insert(k.as_slice(), codec::encode(e).as_slice())?;
                }
                DbOp::Delete(log, time_ms, msgid) => {
                    t.remove(codec::key(log, *time_ms, msgid).as_slice())?;
                }
                DbOp::Marker(key, target, ms) => {
                    t.insert(codec::marker_key(key, target).as_slice(), ms.to_le_bytes().as_slice())?;
                }
                DbOp::MarkerGone(key, target) => {
                    t.remove(codec::marker_key(key, target).as_slice())?;
                }
                DbOp::Closed(chan, Some(closed)) => {
                    t.insert(codec::closed_key(chan).as_slice(), codec::encode_closed(*closed).as_slice())?;
                }
                DbOp::Closed(chan, None) => {
                    t.remove(codec::closed_key(chan).as_slice())?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::commands::history::store::Kind;
    use crate::commands::outgoing::{Meta, Shared};
    use crate::state::channel::{Channel, Closed, ModeChange, Mutation};

    fn entry(i: u64) -> Entry {
        let meta = Meta {
            time_ms: 1000 + i,
            msgid: format!("m{i}").into(),
            client_tags: None,
            account: None,
            bot: false,
            sender: None,
        };
        Entry {
            line: Shared::with_meta(format!("x{i}\r\n").into_bytes().into(), Arc::new(meta)),
            kind: Kind::Message,
            peer: None,
        }
    }

    /// An open channel's log loads; a closed one's, and one written before the records of
    /// channel modes (no record: unknown), are left out and erased, as is a record without a
    /// log. Private logs and read markers are not touched.
    #[test]
    fn only_open_channels_logs_load_and_the_others_are_erased() {
        let dir = std::env::temp_dir().join(format!("rustircd-history-db-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cm = CaseMapping::Rfc1459;
        let db = Database::create(path(&dir)).unwrap();
        let chan = |n: &str| LogKey::Channel(cm.fold(n));
        let mut keyed = Channel::new("#keyed".into(), cm.fold("#keyed"), 1, 1);
        keyed.apply(&Mutation::Modes(vec![ModeChange::Key(Some("pw".into()))]));
        let user = LogKey::User(cm.fold("a:acct"));
        commit(
            &db,
            &[
                DbOp::Put(chan("#open"), entry(1)),
                DbOp::Closed(cm.fold("#open"), Some(Closed::OPEN)),
                DbOp::Put(chan("#keyed"), entry(2)),
                DbOp::Put(chan("#keyed"), entry(3)),
                DbOp::Closed(cm.fold("#keyed"), Some(Closed::of(&keyed))),
                DbOp::Put(chan("#old"), entry(4)),
                DbOp::Closed(cm.fold("#empty"), Some(Closed::OPEN)),
                DbOp::Put(user.clone(), entry(5)),
                DbOp::Marker(cm.fold("a:acct"), cm.fold("#keyed"), 7),
            ],
        )
        .unwrap();
        let names = |l: &Loaded| {
            let mut v: Vec<String> = l.per_shard.iter().flatten().map(|(k, _)| k.name().to_string()).collect();
            v.sort();
            v
        };
        let l = load(&db, cm, 2).unwrap();
        assert_eq!(names(&l), ["#open", "a:acct"]);
        assert_eq!(l.dropped.get(&cm.fold("#keyed")), Some(&(Some("k".into()), 2)));
        assert_eq!(l.dropped.get(&cm.fold("#old")), Some(&(None, 1)));
        assert_eq!((l.dropped.len(), l.erase.len(), l.markers.len(), l.skipped), (2, 5, 1, 0));
        erase(&db, &l.erase).unwrap();
        let again = load(&db, cm, 2).unwrap();
        assert_eq!(names(&again), ["#open", "a:acct"]);
        assert!(again.dropped.is_empty() && again.erase.is_empty());
        assert_eq!(again.markers.len(), 1);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
