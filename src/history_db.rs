//! The chat history on disk, `<data_dir>/history.redb`, so that a restart keeps it. redb (one
//! file, one dependency) was chosen over fjall by measurement (docs/performance.md, "History
//! on disk"). Shards never touch the file: they send their changes ([`DbOp`]) over a channel to
//! the one writer thread, which commits what has come every 250 ms at most (one fsync per
//! commit: a crash loses at most the last ~250 ms). At start the file is read once, whole, and
//! each shard is given the entries of the logs it keeps.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    pub writer: JoinHandle<()>,
}

/// Opens (or creates) the store, reads it whole and starts the writer.
pub fn open(data_dir: &Path, cm: CaseMapping, cores: usize) -> Result<Opened, String> {
    let file = path(data_dir);
    let err = |e: &dyn std::fmt::Display| format!("history store {}: {e}", file.display());
    std::fs::create_dir_all(data_dir).map_err(|e| err(&e))?;
    let db = Database::builder().set_cache_size(CACHE).create(&file).map_err(|e| err(&e))?;
    let (loaded, markers, skipped) = load(&db, cm, cores).map_err(|e| err(&e))?;
    let (sink, rx) = crossbeam_channel::unbounded();
    let writer =
        std::thread::Builder::new().name("history-db".into()).spawn(move || write_loop(db, rx)).map_err(|e| err(&e))?;
    Ok(Opened { sink, loaded, markers, skipped, writer })
}

type Loaded = (Vec<Vec<(LogKey, Entry)>>, Vec<(Folded, Folded, u64)>, usize);

fn load(db: &Database, cm: CaseMapping, cores: usize) -> Result<Loaded, redb::Error> {
    let mut per_shard: Vec<Vec<(LogKey, Entry)>> = (0..cores).map(|_| Vec::new()).collect();
    let (mut markers, mut skipped) = (Vec::new(), 0);
    let tx = db.begin_read()?;
    let table = match tx.open_table(TABLE) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok((per_shard, markers, 0)),
        Err(e) => return Err(e.into()),
    };
    for row in table.iter()? {
        let (k, v) = row?;
        let (k, v) = (k.value(), v.value());
        if k.first() == Some(&b'r') {
            match codec::marker_of(k, v, cm) {
                Some(m) => markers.push(m),
                None => skipped += 1,
            }
            continue;
        }
        match (codec::log_of(k, cm), codec::decode(v, cm)) {
            (Some(log), Some(e)) => per_shard[log.name().owner(cores)].push((log, e)),
            _ => skipped += 1,
        }
    }
    Ok((per_shard, markers, skipped))
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
            }
        }
    }
    tx.commit()?;
    Ok(())
}
