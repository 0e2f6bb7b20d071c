//! The chat history on disk, so that a restart keeps it. Shards never touch the files: they
//! send their changes ([`DbOp`]) over a channel to the one writer thread.
//!
//! Entries live in segment files, `<data_dir>/history.segments/<seq>.seg` (format 2, see
//! `codec`, "Batches"): every 250 ms at most the writer appends what came as one frame of
//! records (`P` adds an entry, `D` takes one out) to the newest segment, and fsyncs it; a crash
//! loses at most the last ~250 ms, and a frame the crash cut short fails its check and ends its
//! segment at start-up. A segment is closed at ~1 MiB. Start-up replays the segments in order
//! (a `D` cancels the `P` before it; a later `P` of the same log, time and msgid replaces it).
//! Every 60 s at most, a compaction copies the live entries of every segment holding anything
//! dead (and of small ones) into new segments and deletes the old files, in order: what a log
//! pushed out, what expired or was redacted is then gone from the disk, not only hidden.
//!
//! Read markers stay in `<data_dir>/history.redb` (redb, as before). A store of the previous
//! format (one redb key per entry) is migrated at open: its entries are copied into a segment,
//! then taken out of the redb file in one transaction, which is then compacted.
//!
//! A channel's log comes back only if the channel was open (`state::channel::Closed`) as of
//! its log's latest record of its modes (`s` keys in `history.redb`): whoever creates the
//! channel first after a restart gets its log, and could not have joined (or seen) a closed
//! one. A closed channel's log is erased at start (`D` records, then a compaction before the
//! server serves), and so is one written before these records were (unknown counts as closed:
//! an older version's logs cannot say whether their channel was +s or +k).

use std::collections::{BTreeMap, HashMap};

use ahash::{AHashMap, AHashSet};
use std::fs::{self, File};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::commands::history::codec::{self, LogKey, LogRef, Record};
use crate::commands::history::store::{DbOp, Entry};
use crate::proto::{CaseMapping, Folded};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("history");
pub const FILE: &str = "history.redb";
pub const SEGMENTS: &str = "history.segments";
/// Commits at most this often: a busy server makes ~4 fsyncs a second, not one per message; a
/// crash loses at most the last quarter second.
const COMMIT_EVERY: Duration = Duration::from_millis(250);
/// Compacts at most this often (when something is dead): a redacted or expired entry is gone
/// from the disk within about this long.
pub const COMPACT_EVERY: Duration = Duration::from_secs(60);
/// A segment is closed once this big. A compaction rewrites whole segments: smaller ones
/// copy fewer live entries for each dead one, more of them cost more files.
const SEGMENT_MAX: u64 = 1 << 20;
/// A segment smaller than this is merged with others at the next compaction.
const SEGMENT_SMALL: u64 = SEGMENT_MAX / 8;
/// Frames a compaction (or the migration) writes hold about this much.
const FRAME_MAX: usize = 256 << 10;
/// redb's page cache (its default is 1 GiB); it holds only the read markers now.
const CACHE: usize = 4 << 20;

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

pub fn segments_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(SEGMENTS)
}

/// The store opened: where shards send changes, what each shard loads, and the writer.
pub struct Opened {
    pub sink: Sender<DbOp>,
    /// Per shard, its logs' entries, each log's oldest first.
    pub loaded: Vec<Vec<(LogKey, Entry)>>,
    /// Every read marker (every shard keeps them all).
    pub markers: Vec<(Folded, Folded, u64)>,
    /// Entries that could not be read (another version, damage, a torn write): skipped.
    pub skipped: usize,
    /// Entries copied from a store of the previous format (one redb key per entry).
    pub migrated: usize,
    /// Channels whose log was not restored (closed, or of unknown modes), erased from the
    /// disk: each with the letters that closed it (None: unknown) and its entry count.
    pub erased: Vec<(Folded, Option<Box<str>>, usize)>,
    pub writer: JoinHandle<()>,
}

/// Opens (or creates) the store, migrates an old one, reads it whole and starts the writer.
pub fn open(data_dir: &Path, cm: CaseMapping, cores: usize) -> Result<Opened, String> {
    let file = path(data_dir);
    let err = |e: &dyn std::fmt::Display| format!("history store {}: {e}", file.display());
    std::fs::create_dir_all(segments_dir(data_dir)).map_err(|e| err(&e))?;
    let mut db = Database::builder().set_cache_size(CACHE).create(&file).map_err(|e| err(&e))?;
    let mut segs = Segments::new(segments_dir(data_dir));
    let migrated = migrate(&mut db, &mut segs, cm).map_err(|e| err(&e))?;
    let records = load_records(&db, cm).map_err(|e| err(&e))?;
    let (mut loaded, mut skipped) = segs.replay(cm, cores).map_err(|e| err(&e))?;
    skipped += records.skipped;
    let erased = erase_closed(&db, &mut segs, &mut loaded, records.closed);
    let (sink, rx) = crossbeam_channel::unbounded();
    let writer = std::thread::Builder::new()
        .name("history-db".into())
        .spawn(move || write_loop(db, segs, rx))
        .map_err(|e| err(&e))?;
    Ok(Opened { sink, loaded, markers: records.markers, skipped, migrated, erased, writer })
}

/// What `history.redb` holds beside the entries.
#[derive(Default)]
struct Records {
    markers: Vec<(Folded, Folded, u64)>,
    /// Per channel log, the letters that closed the channel (empty: open).
    closed: AHashMap<Folded, Box<str>>,
    skipped: usize,
}

fn load_records(db: &Database, cm: CaseMapping) -> Result<Records, redb::Error> {
    let mut r = Records::default();
    let tx = db.begin_read()?;
    let table = match tx.open_table(TABLE) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(r),
        Err(e) => return Err(e.into()),
    };
    for row in table.range(b"r".as_slice()..b"s".as_slice())? {
        let (k, v) = row?;
        match codec::marker_of(k.value(), v.value(), cm) {
            Some(m) => r.markers.push(m),
            None => r.skipped += 1,
        }
    }
    for row in table.range(b"s".as_slice()..b"t".as_slice())? {
        let (k, v) = row?;
        match codec::closed_of(k.value(), v.value(), cm) {
            Some((chan, letters)) => {
                r.closed.insert(chan, letters);
            }
            None => r.skipped += 1,
        }
    }
    Ok(r)
}

/// Takes the logs of channels not known to be open out of what is loaded, and off the disk
/// (`D` records, then a compaction, before the server serves); and the records of channels
/// without a log out of `history.redb`. Returns the channels erased. A failure is logged: the
/// next start tries again.
fn erase_closed(
    db: &Database,
    segs: &mut Segments,
    loaded: &mut [Vec<(LogKey, Entry)>],
    closed: AHashMap<Folded, Box<str>>,
) -> Vec<(Folded, Option<Box<str>>, usize)> {
    let mut dropped: AHashMap<Folded, (Option<Box<str>>, usize)> = AHashMap::default();
    let mut with_entries: AHashSet<Folded> = AHashSet::default();
    for shard in loaded.iter_mut() {
        shard.retain(|(log, e)| {
            let LogKey::Channel(chan) = log else { return true };
            let letters = closed.get(chan);
            if letters.is_none_or(|s| !s.is_empty()) {
                dropped.entry(chan.clone()).or_insert_with(|| (letters.cloned(), 0)).1 += 1;
                segs.delete(log, e.time_ms(), e.msgid().unwrap_or_default());
                return false;
            }
            if !with_entries.contains(chan) {
                with_entries.insert(chan.clone());
            }
            true
        });
    }
    if !dropped.is_empty() {
        if let Err(e) = segs.flush().and_then(|()| segs.compact().map(drop)) {
            log::warn!("History store: closed channels' logs not erased from the disk: {e}");
        }
    }
    let gone: Vec<Vec<u8>> =
        closed.into_keys().filter(|c| !with_entries.contains(c)).map(|c| codec::closed_key(&c)).collect();
    if let Err(e) = remove_keys(db, &gone) {
        log::warn!("History store: records of channels without a log not erased: {e}");
    }
    let mut erased: Vec<_> = dropped.into_iter().map(|(chan, (letters, n))| (chan, letters, n)).collect();
    erased.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    erased
}

/// Takes these keys out of `history.redb` (at start, before the writer runs).
fn remove_keys(db: &Database, keys: &[Vec<u8>]) -> Result<(), redb::Error> {
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

/// A store of the previous format (`e` keys, one per entry, in `history.redb`): its entries
/// go into a new segment (synced), then out of the redb file in one transaction (the markers
/// stay), which is then compacted. A crash between the two copies them again at the next
/// start: the same entries twice, the later copy winning, the earlier one compacted away.
fn migrate(db: &mut Database, segs: &mut Segments, cm: CaseMapping) -> Result<usize, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let mut out = SegmentWriter::default();
    let mut batch = Vec::new();
    let mut n = 0;
    {
        let tx = db.begin_read().map_err(|x| e(&x))?;
        let table = match tx.open_table(TABLE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(x) => return Err(e(&x)),
        };
        for row in table.range(b"e".as_slice()..b"f".as_slice()).map_err(|x| e(&x))? {
            let (k, v) = row.map_err(|x| e(&x))?;
            let Some(log) = codec::log_of(k.value(), cm) else { continue };
            codec::put_record_bytes(&mut batch, log.as_ref(), v.value());
            n += 1;
            if batch.len() >= FRAME_MAX {
                out.frame(&batch);
                batch.clear();
            }
        }
    }
    if n == 0 {
        return Ok(0);
    }
    out.frame(&batch);
    let seq = segs.take_seq();
    segs.write_segment(seq, &out.buf).map_err(|x| e(&x))?;
    let tx = db.begin_write().map_err(|x| e(&x))?;
    {
        let mut t = tx.open_table(TABLE).map_err(|x| e(&x))?;
        let old: Vec<Vec<u8>> = t
            .range(b"e".as_slice()..b"f".as_slice())
            .map_err(|x| e(&x))?
            .filter_map(|r| r.ok().map(|(k, _)| k.value().to_vec()))
            .collect();
        for k in old {
            t.remove(k.as_slice()).map_err(|x| e(&x))?;
        }
    }
    tx.commit().map_err(|x| e(&x))?;
    // The file shrinks to the markers; the entries' bytes go with the pages they were in.
    if let Err(x) = db.compact() {
        log::warn!("History store: compacting history.redb after the migration: {x}");
    }
    log::info!("History store: {n} entries migrated from the previous format");
    Ok(n)
}

/// Per shard, its logs' entries; and how many records could not be read.
pub type Loaded = (Vec<Vec<(LogKey, Entry)>>, usize);

/// Where the live `P` record of an entry is: its segment (high half) and its number among the
/// segment's `P` records.
type Loc = u64;

fn loc(seq: u32, ord: u32) -> Loc {
    (u64::from(seq) << 32) | u64::from(ord)
}

fn seq_of(l: Loc) -> u32 {
    (l >> 32) as u32
}

/// The index's keys are already hashes.
#[derive(Default)]
struct Id(u64);

impl Hasher for Id {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, b: &[u8]) {
        for &x in b {
            self.0 = (self.0 << 8) ^ u64::from(x);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<Id>>;

/// What the writer knows of a segment.
#[derive(Default, Debug, Clone, Copy)]
struct Seg {
    /// Its live `P` records.
    live: u32,
    /// Its dead records (replaced or deleted `P`s, `D`s, a torn end): a compaction rewrites it.
    dead: u32,
    /// Its `P` records so far (the next one's number).
    ords: u32,
    bytes: u64,
}

/// A segment file being put together in memory (a compaction's output, a migration).
#[derive(Default)]
struct SegmentWriter {
    buf: Vec<u8>,
}

impl SegmentWriter {
    fn frame(&mut self, batch: &[u8]) {
        if self.buf.is_empty() {
            self.buf.extend_from_slice(codec::SEGMENT_MAGIC);
        }
        if !batch.is_empty() {
            codec::frame(&mut self.buf, batch);
        }
    }
}

/// The segments and the writer's index of live entries: the hash of each live entry's log,
/// time and msgid, and where its record is. (8 + 8 bytes an entry; two entries of the same
/// hash, one chance in ~3·10^7 among a million, would be taken for one: the older one would be
/// lost at the next restart.)
pub struct Segments {
    dir: PathBuf,
    hasher: ahash::RandomState,
    index: IdMap<Loc>,
    segs: BTreeMap<u32, Seg>,
    next: u32,
    /// The segment changes go to, and its file once written to.
    active: Option<(u32, Option<File>)>,
    /// After a replay, until the writer needs it: each slot's place (`index` names slots).
    slot_locs: Option<Vec<Loc>>,
    /// The records of the commit in progress.
    batch: Vec<u8>,
    frame: Vec<u8>,
}

impl Segments {
    pub fn new(dir: PathBuf) -> Segments {
        Segments {
            dir,
            hasher: ahash::RandomState::new(),
            index: IdMap::default(),
            segs: BTreeMap::new(),
            next: 1,
            active: None,
            slot_locs: None,
            batch: Vec::new(),
            frame: Vec::new(),
        }
    }

    /// The index as the writer uses it (after a replay it names slots; see `replay`).
    pub fn index_ready(&mut self) {
        if let Some(locs) = self.slot_locs.take() {
            for v in self.index.values_mut() {
                *v = locs[*v as usize];
            }
        }
    }

    fn hash(&self, log: LogRef, time_ms: u64, msgid: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u8(log.tag);
        h.write(log.name);
        h.write_u64(time_ms);
        h.write(msgid);
        h.finish()
    }

    fn seg_path(&self, seq: u32) -> PathBuf {
        self.dir.join(format!("{seq:08x}.seg"))
    }

    fn take_seq(&mut self) -> u32 {
        self.next += 1;
        self.next - 1
    }

    fn active(&mut self) -> u32 {
        if let Some((seq, _)) = &self.active {
            return *seq;
        }
        let seq = self.take_seq();
        self.segs.insert(seq, Seg::default());
        self.active = Some((seq, None));
        seq
    }

    fn died(&mut self, l: Loc) {
        if let Some(s) = self.segs.get_mut(&seq_of(l)) {
            s.live = s.live.saturating_sub(1);
            s.dead += 1;
        }
    }

    /// Whether a compaction has something to do.
    pub fn dirty(&self) -> bool {
        self.segs.values().any(|s| s.dead > 0)
    }

    /// An entry added to a log (in the commit in progress).
    pub fn put(&mut self, log: &LogKey, e: &Entry) {
        self.index_ready();
        let seq = self.active();
        codec::put_record(&mut self.batch, log, e);
        let h = self.hash(log.as_ref(), e.time_ms(), e.msgid().unwrap_or_default().as_bytes());
        let s = self.segs.entry(seq).or_default();
        let ord = s.ords;
        s.ords += 1;
        s.live += 1;
        if let Some(old) = self.index.insert(h, loc(seq, ord)) {
            self.died(old);
        }
    }

    /// An entry taken out of a log: a `D` record, if the disk has the entry.
    pub fn delete(&mut self, log: &LogKey, time_ms: u64, msgid: &str) {
        self.index_ready();
        let h = self.hash(log.as_ref(), time_ms, msgid.as_bytes());
        let Some(old) = self.index.remove(&h) else { return };
        self.died(old);
        let seq = self.active();
        codec::delete_record(&mut self.batch, log, time_ms, msgid);
        self.segs.entry(seq).or_default().dead += 1;
    }

    /// Writes the commit in progress (one frame) and syncs it.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let seq = self.active();
        self.frame.clear();
        codec::frame(&mut self.frame, &self.batch);
        self.batch.clear();
        let path = self.seg_path(seq);
        let Some((_, file)) = &mut self.active else { unreachable!("active above") };
        let new = file.is_none();
        let (frame, dir) = (&self.frame, &self.dir);
        let written = (|| -> io::Result<()> {
            if new {
                let mut f = fs::OpenOptions::new().create(true).append(true).open(path)?;
                f.write_all(codec::SEGMENT_MAGIC)?;
                *file = Some(f);
            }
            let Some(f) = file else { unreachable!("opened above") };
            f.write_all(frame)?;
            f.sync_data()?;
            if new {
                sync_dir(dir)?;
            }
            Ok(())
        })();
        let s = self.segs.entry(seq).or_default();
        s.bytes += (self.frame.len() + if new { codec::SEGMENT_MAGIC.len() } else { 0 }) as u64;
        if written.is_err() {
            // Part of the frame may be on the disk: nothing more is appended after it (it ends
            // the segment at start-up), and the segment is rewritten at the next compaction.
            s.dead += 1;
            self.active = None;
        } else if s.bytes >= SEGMENT_MAX {
            self.active = None;
        }
        written
    }

    /// Writes a whole segment file: a temporary file, synced, renamed into place.
    fn write_segment(&mut self, seq: u32, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.dir.join(format!("{seq:08x}.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, self.seg_path(seq))?;
        sync_dir(&self.dir)
    }

    /// Rewrites every segment holding something dead, and the small ones, into new segments
    /// with only their live entries, then deletes them (oldest first, so that a crash between
    /// two deletions never leaves a `D` gone before the `P` it cancels). The segment changes go
    /// to is closed first: what comes next is numbered after the new ones. Returns the number
    /// of segments rewritten.
    pub fn compact(&mut self) -> io::Result<usize> {
        if !self.dirty() {
            return Ok(0);
        }
        self.index_ready();
        self.active = None;
        let victims: Vec<u32> =
            self.segs.iter().filter(|(_, s)| s.dead > 0 || s.bytes < SEGMENT_SMALL).map(|(&q, _)| q).collect();
        let mut outputs: Vec<(u32, Seg)> = Vec::new();
        let mut moves: Vec<(u64, Loc)> = Vec::new();
        let (mut out, mut batch, mut cur) = (SegmentWriter::default(), Vec::new(), Seg::default());
        let mut written = Vec::new();
        let result = (|| -> io::Result<()> {
            for &seq in &victims {
                let bytes = match fs::read(self.seg_path(seq)) {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                let Some(frames) = codec::frames(&bytes) else { continue };
                let mut ord = 0;
                for b in frames {
                    for (rec, raw) in codec::records(b) {
                        let Record::Put { log, time_ms, msgid, .. } = rec else { continue };
                        let (h, here) = (self.hash(log, time_ms, msgid), loc(seq, ord));
                        ord += 1;
                        if self.index.get(&h) != Some(&here) {
                            continue;
                        }
                        if outputs.len() == written.len() {
                            outputs.push((self.take_seq(), Seg::default()));
                        }
                        let Some((oseq, _)) = outputs.last() else { unreachable!("pushed above") };
                        batch.extend_from_slice(raw);
                        moves.push((h, loc(*oseq, cur.ords)));
                        cur.ords += 1;
                        cur.live += 1;
                        if batch.len() >= FRAME_MAX {
                            out.frame(&batch);
                            batch.clear();
                            if out.buf.len() as u64 >= SEGMENT_MAX {
                                self.finish_output(&mut outputs, &mut out, &mut cur, &mut written)?;
                            }
                        }
                    }
                }
            }
            if !batch.is_empty() {
                out.frame(&batch);
            }
            if !out.buf.is_empty() {
                self.finish_output(&mut outputs, &mut out, &mut cur, &mut written)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            for seq in written {
                let _ = fs::remove_file(self.seg_path(seq));
            }
            return Err(e);
        }
        for (h, l) in moves {
            self.index.insert(h, l);
        }
        for (seq, s) in outputs {
            self.segs.insert(seq, s);
        }
        for &seq in &victims {
            match fs::remove_file(self.seg_path(seq)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.segs.remove(&seq);
        }
        sync_dir(&self.dir)?;
        Ok(victims.len())
    }

    fn finish_output(
        &mut self,
        outputs: &mut [(u32, Seg)],
        out: &mut SegmentWriter,
        cur: &mut Seg,
        written: &mut Vec<u32>,
    ) -> io::Result<()> {
        let Some((seq, seg)) = outputs.last_mut() else { return Ok(()) };
        cur.bytes = out.buf.len() as u64;
        *seg = std::mem::take(cur);
        let seq = *seq;
        self.write_segment(seq, &out.buf)?;
        written.push(seq);
        out.buf.clear();
        Ok(())
    }

    /// Reads every segment in order: the live entries, per shard (each log's oldest first), and
    /// how many records could not be read. Builds the writer's index on the way.
    pub fn replay(&mut self, cm: CaseMapping, cores: usize) -> io::Result<Loaded> {
        let mut seqs = Vec::new();
        for d in fs::read_dir(&self.dir)? {
            let name = d?.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                // A compaction's output a crash interrupted: its sources are all still there.
                let _ = fs::remove_file(self.dir.join(name.as_ref()));
            } else if let Some(seq) = name.strip_suffix(".seg").and_then(|s| u32::from_str_radix(s, 16).ok()) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        // ~200 bytes a record: sized once, not grown.
        let mut total = 0;
        for &seq in &seqs {
            total += fs::metadata(self.seg_path(seq)).map_or(0, |m| m.len());
        }
        let guess = (total / 200) as usize;
        // Each entry read, its record's place and its shard, by slot (None: it went later).
        let mut slots: Vec<Option<(LogKey, Entry)>> = Vec::with_capacity(guess);
        let mut locs: Vec<Loc> = Vec::with_capacity(guess);
        let mut shards: Vec<u32> = Vec::with_capacity(if cores > 1 { guess } else { 0 });
        // Each live entry's slot while reading; then, become the writer's index, where it is.
        let mut at: IdMap<u64> = IdMap::with_capacity_and_hasher(guess, Default::default());
        // Each log's name folded once (and its shard found once), shared by its entries.
        let mut logs: AHashMap<Vec<u8>, Option<(LogKey, usize)>> = AHashMap::default();
        let mut name = Vec::new();
        let mut skipped = 0;
        let mut bytes = Vec::new();
        for &seq in &seqs {
            self.next = self.next.max(seq + 1);
            bytes.clear();
            File::open(self.seg_path(seq))?.read_to_end(&mut bytes)?;
            let Some(mut frames) = codec::frames(&bytes) else {
                log::warn!(
                    "History store: {} is not a segment of this version: left alone",
                    self.seg_path(seq).display()
                );
                continue;
            };
            self.segs.insert(seq, Seg { bytes: bytes.len() as u64, ..Seg::default() });
            for b in &mut frames {
                let mut rs = codec::records(b);
                for (rec, _) in &mut rs {
                    match rec {
                        Record::Put { log, time_ms, msgid, entry } => {
                            let h = self.hash(log, time_ms, msgid);
                            let s = self.segs.entry(seq).or_default();
                            let here = loc(seq, s.ords);
                            s.ords += 1;
                            name.clear();
                            name.push(log.tag);
                            name.extend_from_slice(log.name);
                            let key = match logs.get(name.as_slice()) {
                                Some(k) => k.clone(),
                                None => {
                                    let k = log.to_key(cm).map(|k| {
                                        let shard = k.name().owner(cores);
                                        (k, shard)
                                    });
                                    logs.insert(name.clone(), k.clone());
                                    k
                                }
                            };
                            let (Some((key, shard)), Some(e)) = (key, codec::decode(entry, cm)) else {
                                skipped += 1;
                                s.dead += 1;
                                continue;
                            };
                            s.live += 1;
                            match at.entry(h) {
                                std::collections::hash_map::Entry::Occupied(o) => {
                                    let i = *o.get() as usize;
                                    if slots[i].replace((key, e)).is_some() {
                                        self.died(locs[i]);
                                    }
                                    locs[i] = here;
                                    if cores > 1 {
                                        shards[i] = shard as u32;
                                    }
                                }
                                std::collections::hash_map::Entry::Vacant(v) => {
                                    v.insert(slots.len() as u64);
                                    slots.push(Some((key, e)));
                                    locs.push(here);
                                    if cores > 1 {
                                        shards.push(shard as u32);
                                    }
                                }
                            }
                        }
                        Record::Delete { log, time_ms, msgid } => {
                            let h = self.hash(log, time_ms, msgid);
                            self.segs.entry(seq).or_default().dead += 1;
                            if let Some(i) = at.remove(&h) {
                                if slots[i as usize].take().is_some() {
                                    self.died(locs[i as usize]);
                                }
                            }
                        }
                    }
                }
                if rs.damaged {
                    skipped += 1;
                    self.segs.entry(seq).or_default().dead += 1;
                }
            }
            if frames.torn {
                log::warn!(
                    "History store: {} ends with a torn or damaged write: skipped",
                    self.seg_path(seq).display()
                );
                skipped += 1;
                self.segs.entry(seq).or_default().dead += 1;
            }
        }
        // The writer's index: `at` names slots; the writer thread turns them into places
        // (`index_ready`), off the start-up's path.
        self.index = at;
        self.slot_locs = Some(locs);
        // In the order they were written, nearly each log's; a stable sort by time (cheap on
        // runs already in order) puts the copies a compaction moved after newer entries back
        // in their place, so that `Log::push` finds each entry's place at the end.
        let shard_of = |i: usize| if cores > 1 { shards[i] as usize } else { 0 };
        let mut counts = vec![0usize; cores];
        for (i, slot) in slots.iter().enumerate() {
            if slot.is_some() {
                counts[shard_of(i)] += 1;
            }
        }
        // Sized once: growing a vector of a million entries copies it over and over.
        let mut per_shard: Vec<Vec<(LogKey, Entry)>> = counts.iter().map(|&n| Vec::with_capacity(n)).collect();
        for (i, slot) in slots.into_iter().enumerate() {
            if let Some(le) = slot {
                per_shard[shard_of(i)].push(le);
            }
        }
        for shard in &mut per_shard {
            shard.sort_by_key(|(_, e)| e.time_ms());
        }
        Ok((per_shard, skipped))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Until every shard has dropped its sender: wait for a change, gather what else comes within
/// the commit interval, write it (one frame, one fsync; markers in one redb transaction); and
/// when something is dead, compact at most every [`COMPACT_EVERY`].
fn write_loop(db: Database, mut segs: Segments, rx: Receiver<DbOp>) {
    segs.index_ready();
    let mut last = Instant::now() - COMMIT_EVERY;
    let mut compacted = Instant::now();
    loop {
        let first = if segs.dirty() {
            match rx.recv_timeout((compacted + COMPACT_EVERY).saturating_duration_since(Instant::now())) {
                Ok(op) => Some(op),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(op) => Some(op),
                Err(_) => break,
            }
        };
        if let Some(first) = first {
            std::thread::sleep((last + COMMIT_EVERY).saturating_duration_since(Instant::now()));
            let ops: Vec<DbOp> = std::iter::once(first).chain(rx.try_iter()).collect();
            if let Err(e) = commit(&db, &mut segs, &ops) {
                log::warn!("History store: {} change(s) not written: {e}", ops.len());
            }
            last = Instant::now();
        }
        if compacted.elapsed() >= COMPACT_EVERY {
            if let Err(e) = segs.compact() {
                log::warn!("History store: compaction failed: {e}");
            }
            compacted = Instant::now();
        }
    }
}

fn commit(db: &Database, segs: &mut Segments, ops: &[DbOp]) -> Result<(), String> {
    let mut markers = false;
    for op in ops {
        match op {
            DbOp::Put(log, e) => segs.put(log, e),
            DbOp::Delete(log, time_ms, msgid) => segs.delete(log, *time_ms, msgid),
            DbOp::Marker(..) | DbOp::MarkerGone(..) | DbOp::Closed(..) => markers = true,
        }
    }
    let written = segs.flush().map_err(|e| e.to_string());
    if markers {
        commit_markers(db, ops).map_err(|e| e.to_string())?;
    }
    written
}

/// Read markers and channel records, in `history.redb`: one transaction.
fn commit_markers(db: &Database, ops: &[DbOp]) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    {
        let mut t = tx.open_table(TABLE)?;
        for op in ops {
            match op {
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
                DbOp::Put(..) | DbOp::Delete(..) => {}
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

    const CM: CaseMapping = CaseMapping::Rfc1459;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rustircd-histdb-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn entry(time_ms: u64, msgid: &str, text: &str) -> Entry {
        let meta = Meta { time_ms, msgid: msgid.into(), client_tags: None, account: None, bot: false, sender: None };
        let body = format!(":a!b@c PRIVMSG #c :{text}\r\n");
        Entry { line: Shared::with_meta(body.into_bytes().into(), Arc::new(meta)), kind: Kind::Message, peer: None }
    }

    fn chan(name: &str) -> LogKey {
        LogKey::Channel(CM.fold(name))
    }

    /// The texts of what a replay of `dir` loads (one shard), in order.
    fn replay(dir: &Path) -> (Vec<String>, usize, Segments) {
        let mut s = Segments::new(dir.to_path_buf());
        let (loaded, skipped) = s.replay(CM, 1).unwrap();
        let texts = loaded[0]
            .iter()
            .map(|(_, e)| String::from_utf8_lossy(&e.line.body).rsplit(':').next().unwrap().trim_end().to_string())
            .collect();
        (texts, skipped, s)
    }

    fn files_contain(dir: &Path, needle: &[u8]) -> bool {
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for f in fs::read_dir(d).unwrap() {
                let p = f.unwrap().path();
                if p.is_dir() {
                    todo.push(p);
                } else if fs::read(&p).unwrap().windows(needle.len()).any(|w| w == needle) {
                    return true;
                }
            }
        }
        false
    }

    #[test]
    fn a_delete_cancels_the_put_before_it() {
        let d = dir("cancel");
        let mut s = Segments::new(d.clone());
        s.put(&chan("#a"), &entry(10, "m1", "one"));
        s.put(&chan("#a"), &entry(20, "m2", "two"));
        s.put(&chan("#b"), &entry(15, "m3", "three"));
        s.flush().unwrap();
        s.delete(&chan("#a"), 10, "m1");
        // Unknown to the disk: no record at all.
        s.delete(&chan("#a"), 99, "nothing");
        // The same log, time and msgid again: replaces the first.
        s.put(&chan("#b"), &entry(15, "m3", "three again"));
        s.flush().unwrap();
        drop(s);
        let (texts, skipped, s) = replay(&d);
        assert_eq!(texts, ["three again", "two"]);
        assert_eq!(skipped, 0);
        // The replay found what is dead: the first segment is to be compacted.
        assert!(s.dirty());
        // Within one commit too, and a put after a delete comes back.
        let mut s = s;
        s.put(&chan("#c"), &entry(30, "m4", "four"));
        s.delete(&chan("#c"), 30, "m4");
        s.delete(&chan("#a"), 20, "m2");
        s.put(&chan("#a"), &entry(20, "m2", "two back"));
        s.flush().unwrap();
        drop(s);
        assert_eq!(replay(&d).0, ["three again", "two back"]);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_batch_is_skipped() {
        let d = dir("torn");
        let mut s = Segments::new(d.clone());
        s.put(&chan("#a"), &entry(10, "m1", "kept"));
        s.flush().unwrap();
        s.put(&chan("#a"), &entry(20, "m2", "torn away"));
        s.flush().unwrap();
        drop(s);
        // A crash in the middle of the second frame's write: its last bytes never reached
        // the disk.
        let seg = d.join(format!("{:08x}.seg", 1));
        let len = fs::metadata(&seg).unwrap().len();
        fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 5).unwrap();
        let (texts, skipped, mut s) = replay(&d);
        assert_eq!(texts, ["kept"]);
        assert_eq!(skipped, 1);
        // Writing goes on in a new segment; the torn one is rewritten at the next compaction.
        s.put(&chan("#a"), &entry(30, "m3", "after"));
        s.flush().unwrap();
        assert!(s.dirty());
        assert_eq!(s.compact().unwrap(), 2);
        drop(s);
        let (texts, skipped, s) = replay(&d);
        assert_eq!((texts, skipped), (vec!["kept".to_string(), "after".to_string()], 0));
        assert!(!s.dirty());
        // Garbage that is not a segment at all is left alone.
        fs::write(d.join("00000100.seg"), b"something else").unwrap();
        assert_eq!(replay(&d).0, ["kept", "after"]);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn compaction_drops_dead_entries_from_the_disk() {
        let d = dir("compact");
        let mut s = Segments::new(d.clone());
        for i in 0..200u64 {
            s.put(&chan("#a"), &entry(1000 + i, &format!("a{i}"), &format!("line {i}")));
            if i % 50 == 49 {
                s.flush().unwrap();
            }
        }
        s.put(&chan("#b"), &entry(5000, "secret", "REDACTED-SECRET-TEXT"));
        s.put(&chan("#b"), &entry(5001, "other", "stays"));
        s.flush().unwrap();
        // A redaction, and a log pushing out its oldest.
        s.delete(&chan("#b"), 5000, "secret");
        for i in 0..100u64 {
            s.delete(&chan("#a"), 1000 + i, &format!("a{i}"));
        }
        s.flush().unwrap();
        assert!(files_contain(&d, b"REDACTED-SECRET-TEXT"));
        assert!(files_contain(&d, b"line 7\r\n"));
        let before = dir_bytes(&d);
        assert!(s.compact().unwrap() >= 1);
        assert!(!s.dirty());
        assert!(!files_contain(&d, b"REDACTED-SECRET-TEXT"));
        assert!(!files_contain(&d, b"line 7\r\n"));
        assert!(dir_bytes(&d) < before * 2 / 3, "{} -> {}", before, dir_bytes(&d));
        // The index follows the moved entries: deleting one after the compaction works.
        s.delete(&chan("#a"), 1150, "a150");
        s.put(&chan("#b"), &entry(6000, "new", "new"));
        s.flush().unwrap();
        drop(s);
        let (texts, skipped, mut s) = replay(&d);
        assert_eq!(skipped, 0);
        assert_eq!(texts.len(), 100 - 1 + 2);
        assert!(!texts.iter().any(|t| t == "line 150" || t == "line 7"));
        assert_eq!(texts[texts.len() - 2..], ["stays", "new"]);
        s.compact().unwrap();
        drop(s);
        assert_eq!(replay(&d).0, texts);
        let _ = fs::remove_dir_all(&d);
    }

    fn dir_bytes(d: &Path) -> u64 {
        fs::read_dir(d).unwrap().map(|f| f.unwrap().metadata().unwrap().len()).sum()
    }

    #[test]
    fn a_store_of_the_previous_format_is_migrated() {
        let d = dir("migrate");
        let (u, t) = (CM.fold("a:acct"), CM.fold("#chan"));
        {
            let db = Database::create(path(&d)).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut t2 = tx.open_table(TABLE).unwrap();
                for (i, log) in [chan("#a"), LogKey::User(CM.fold("a:acct")), chan("#a")].iter().enumerate() {
                    let e = entry(100 + i as u64, &format!("m{i}"), &format!("old {i}"));
                    let k = codec::key(log, e.time_ms(), e.msgid().unwrap());
                    t2.insert(k.as_slice(), codec::encode(&e).as_slice()).unwrap();
                }
                t2.insert(codec::marker_key(&u, &t).as_slice(), 77u64.to_le_bytes().as_slice()).unwrap();
                // #a was open (a store of main after the records of channel modes).
                t2.insert(codec::closed_key(&CM.fold("#a")).as_slice(), codec::encode_closed(Closed::OPEN).as_slice())
                    .unwrap();
            }
            tx.commit().unwrap();
        }
        for round in 0..2 {
            let o = open(&d, CM, 2).unwrap();
            assert_eq!(o.migrated, if round == 0 { 3 } else { 0 });
            assert_eq!(o.markers, [(u.clone(), t.clone(), 77)]);
            let mut got: Vec<(LogKey, String)> = o
                .loaded
                .iter()
                .flatten()
                .map(|(l, e)| (l.clone(), String::from_utf8_lossy(&e.line.body).into_owned()))
                .collect();
            got.sort_by_key(|(_, b)| b.clone());
            assert_eq!(got.len(), 3);
            assert_eq!(got[1].0, LogKey::User(CM.fold("a:acct")));
            assert!(got[2].1.contains("old 2"));
            drop(o.sink);
            o.writer.join().unwrap();
        }
        // No entry is left in the redb file.
        let db = Database::create(path(&d)).unwrap();
        let tx = db.begin_read().unwrap();
        let table = tx.open_table(TABLE).unwrap();
        assert_eq!(table.iter().unwrap().count(), 2);
        drop((table, tx, db));
        assert!(!fs::read(path(&d)).unwrap().windows(5).any(|w| w == b"old 1"));
        let _ = fs::remove_dir_all(&d);
    }

    /// An open channel's log loads; a closed one's, and one written before the records of
    /// channel modes (no record: unknown), are left out and erased from the disk, as is a
    /// record without a log. Private logs and read markers are not touched.
    #[test]
    fn only_open_channels_logs_load_and_the_others_are_erased() {
        let d = dir("closed");
        let mut keyed = Channel::new("#keyed".into(), CM.fold("#keyed"), 1, 1);
        keyed.apply(&Mutation::Modes(vec![ModeChange::Key(Some("pw".into()))]));
        let user = LogKey::User(CM.fold("a:acct"));
        {
            let db = Database::create(path(&d)).unwrap();
            let mut segs = Segments::new(segments_dir(&d));
            fs::create_dir_all(segments_dir(&d)).unwrap();
            commit(
                &db,
                &mut segs,
                &[
                    DbOp::Put(chan("#open"), entry(1, "m1", "open talk")),
                    DbOp::Closed(CM.fold("#open"), Some(Closed::OPEN)),
                    DbOp::Put(chan("#keyed"), entry(2, "m2", "keyed talk")),
                    DbOp::Put(chan("#keyed"), entry(3, "m3", "keyed talk")),
                    DbOp::Closed(CM.fold("#keyed"), Some(Closed::of(&keyed))),
                    DbOp::Put(chan("#old"), entry(4, "m4", "old talk")),
                    DbOp::Closed(CM.fold("#empty"), Some(Closed::OPEN)),
                    DbOp::Put(user.clone(), entry(5, "m5", "private talk")),
                    DbOp::Marker(CM.fold("a:acct"), CM.fold("#keyed"), 7),
                ],
            )
            .unwrap();
        }
        let names = |o: &Opened| {
            let mut v: Vec<String> = o.loaded.iter().flatten().map(|(k, _)| k.name().to_string()).collect();
            v.sort();
            v
        };
        let o = open(&d, CM, 2).unwrap();
        assert_eq!(names(&o), ["#open", "a:acct"]);
        let erased: Vec<(String, Option<&str>, usize)> =
            o.erased.iter().map(|(c, l, n)| (c.to_string(), l.as_deref(), *n)).collect();
        assert_eq!(erased, [("#keyed".to_string(), Some("k"), 2), ("#old".to_string(), None, 1)]);
        assert_eq!((o.markers.len(), o.skipped), (1, 0));
        drop(o.sink);
        o.writer.join().unwrap();
        // Gone from the disk, not only from what loads.
        assert!(!files_contain(&d, b"keyed talk") && !files_contain(&d, b"old talk"));
        assert!(files_contain(&d, b"open talk") && files_contain(&d, b"private talk"));
        let o = open(&d, CM, 2).unwrap();
        assert_eq!(names(&o), ["#open", "a:acct"]);
        assert!(o.erased.is_empty());
        assert_eq!(o.markers.len(), 1);
        drop(o.sink);
        o.writer.join().unwrap();
        let db = Database::create(path(&d)).unwrap();
        let tx = db.begin_read().unwrap();
        // The marker and #open's record: #keyed's and #empty's are gone.
        assert_eq!(tx.open_table(TABLE).unwrap().iter().unwrap().count(), 2);
        drop(tx);
        let _ = fs::remove_dir_all(&d);
    }
}
