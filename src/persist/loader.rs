//! Recovery: replays the base snapshot and then every log into the keyspace.
//!
//! ```text
//!  scan (one thread): every file, record by record (CRC32C, decode) ─▶ where the good
//!        records end, the next lsn, and what to do about damage:
//!        - the last log ends inside a record, or with a last record whose CRC fails, or
//!          with zeros: a torn tail (a crash mid-write). It is cut off with a warning
//!          naming the file and offset, and the server starts with every complete record.
//!        - anything else (a bad record with good ones after it, a damaged base or older
//!          log) is corruption: the server refuses to start, unless `--repair`, which
//!          backs the files up and keeps everything before the damage.
//!  apply (one thread per core): each replays every record, but only the effects on its
//!        own shards ─▶ the keyspace
//! ```
//! Splitting by shard is exact: a key's records all go to one thread, in order, and a
//! FlushAll or ClearCache clears each shard when its thread reaches it.
//!
//! Effects replay through the same [`Db`] commands use, so cache limits, tiers and eviction
//! apply as they did when the data was written. A deadline that passed while the server was
//! down deletes the key; idle (TTI) clocks start again at load.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::PersistError;
use super::files::{self, BASE_HEADER, BASE_MAGIC, LOG_HEADER, LOG_MAGIC, Manifest};
use super::record::{self, EffectRef, Frame, Record};
use crate::store::{Db, Keyspace, SHARDS, ShardSet, Ttl};

/// Records applied under one acquisition of the shard locks (at most): large enough that
/// locking costs nothing...
const RECORDS_PER_LOCK: usize = 4096;
/// ... and held at most this long, so INFO (which locks every shard) gets in while loading.
const LOCK_HOLD: Duration = Duration::from_millis(2);

/// Loading progress, for INFO persistence.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes of all files to load.
    pub total: AtomicU64,
    /// Bytes loaded so far.
    pub loaded: AtomicU64,
}

/// What loading found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The lsn the next record gets.
    pub next_lsn: u64,
    /// Records replayed (a base chunk counts as one).
    pub records: u64,
    /// Keys set by the replay (before later deletions).
    pub sets: u64,
    /// Writes a full cache refused during replay (a cache shrunk since they were made).
    pub refused: u64,
    /// Where the last log's complete records end: appending resumes there.
    pub log_len: u64,
    /// The manifest, changed if a repair dropped files.
    pub manifest: Manifest,
}

/// What is wrong at a spot in a file.
#[derive(Debug)]
struct Damage {
    file: PathBuf,
    offset: u64,
    why: String,
}

/// A mapped file and the range of it that holds good records.
struct Part {
    /// A base written by a process that placed keys in shards as this one does: each of
    /// its records holds keys of one shard, so a replay thread skips records of other
    /// threads' shards by their first key.
    by_shard: bool,
    map: memmap2::Mmap,
    start: usize,
    end: usize,
}

/// Replays the files of `manifest` in `dir` into `ks` (whose effects are not recorded:
/// they are on disk already). With `repair`, damage is cut off instead of refused.
pub fn load(
    dir: &Path,
    manifest: Manifest,
    ks: &Keyspace,
    repair: bool,
    progress: &Progress,
) -> Result<Loaded, PersistError> {
    progress
        .total
        .store(files::size_of(dir, &manifest), Ordering::Relaxed);
    let mut out = Loaded {
        next_lsn: 1,
        manifest,
        ..Loaded::default()
    };
    let mut sizes = BaseSizes::new(ks);
    let parts = scan(dir, &mut out, repair, &mut sizes)?;
    sizes.reserve(ks);
    let now = crate::store::now_ms();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, SHARDS);
    let counts = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let parts = &parts;
                std::thread::Builder::new()
                    .name(format!("loader-{t}"))
                    .spawn_scoped(scope, move || {
                        let mine = (0..SHARDS).filter(|s| s % threads == t).collect();
                        // Progress follows the first thread; the others keep its pace.
                        let progress = (t == 0).then_some(progress);
                        replay(parts, ks, mine, now, progress)
                    })
            })
            .collect();
        // Every thread is joined before an error returns: the scope requires it anyway.
        let joined: Vec<Result<Counts, String>> = handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().map_err(|_| "a replay thread panicked".to_string()),
                Err(e) => Err(format!("cannot start a replay thread: {e}")),
            })
            .collect();
        joined.into_iter().collect::<Result<Vec<Counts>, String>>()
    })
    .map_err(PersistError::Io)?;
    for c in counts {
        if let Some((n, offset)) = c.bad {
            // CRC-valid but undecodable: written by a newer version, or a bug. Nothing to
            // repair: refuse rather than start without the rest of the data.
            let paths = out.manifest.paths(dir);
            return Err(PersistError::Corrupt {
                file: paths
                    .get(n)
                    .map_or_else(String::new, |p| p.display().to_string()),
                offset: offset as u64,
                why: "a record whose effects do not decode (written by a newer Terrace?)".into(),
            });
        }
        out.sets += c.sets;
        out.refused += c.refused;
    }
    progress
        .loaded
        .store(progress.total.load(Ordering::Relaxed), Ordering::Relaxed);
    Ok(out)
}

/// Checks every file record by record; returns the good range of each file to replay,
/// having cut a torn tail, refused corruption or repaired it.
fn scan(
    dir: &Path,
    out: &mut Loaded,
    repair: bool,
    sizes: &mut BaseSizes<'_>,
) -> Result<Vec<Part>, PersistError> {
    let paths = out.manifest.paths(dir);
    let last = paths.len().saturating_sub(1);
    let mut parts = Vec::new();
    for (n, path) in paths.iter().enumerate() {
        let is_base = n == 0 && out.manifest.base.is_some();
        let map = map_file(path)?;
        let (header, magic) = if is_base {
            (BASE_HEADER, BASE_MAGIC)
        } else {
            (LOG_HEADER, LOG_MAGIC)
        };
        if map.len() < header || map[..8] != magic {
            let damage = Damage {
                file: path.clone(),
                offset: 0,
                why: "not a Terrace fast-restart file (bad header)".into(),
            };
            refuse_or_repair(dir, out, n, damage, repair)?;
            return Ok(parts);
        }
        let mut by_shard = false;
        if is_base {
            let mut lsn = [0u8; 8];
            lsn.copy_from_slice(&map[8..16]);
            out.next_lsn = out.next_lsn.max(u64::from_le_bytes(lsn));
            by_shard = map[16..24] == sizes.router_probe;
        }
        let mut pos = header;
        let damage = loop {
            let rest = &map[pos..];
            if rest.is_empty() {
                break None;
            }
            let (payload, len) = match record::frame(rest) {
                Frame::Ok { payload, len } => (payload, len),
                bad => break Some((bad_kind(&bad, rest), !is_base && n == last)),
            };
            match check_record(payload, is_base.then_some(&mut *sizes)) {
                Ok(lsn) if !is_base => out.next_lsn = out.next_lsn.max(lsn + 1),
                Ok(_) => {}
                Err(why) => break Some((why, false)),
            }
            out.records += 1;
            pos += len;
        };
        out.log_len = pos as u64;
        // A torn tail is cut with a warning; the good records before any damage replay.
        let damage = damage.filter(|(_, maybe_torn)| {
            let torn = *maybe_torn && is_torn(&map[pos..]);
            if torn {
                tracing::warn!(
                    "fast-restart log {}: dropping a torn record at offset {pos} ({} bytes to the end): the server stopped in the middle of writing it",
                    path.display(),
                    map.len() - pos
                );
            }
            !torn
        });
        parts.push(Part {
            by_shard,
            map,
            start: header,
            end: pos,
        });
        let Some((why, _)) = damage else {
            continue;
        };
        let damage = Damage {
            file: path.clone(),
            offset: pos as u64,
            why,
        };
        refuse_or_repair(dir, out, n, damage, repair)?;
        return Ok(parts);
    }
    Ok(parts)
}

/// How many keys of each cache a base snapshot holds, so the tables can make room for
/// them before the replay: it then never rehashes a growing table (the single largest
/// cost of a load otherwise). A base record holds only Sets, so its effect count is its
/// key count; each record's share goes to the cache of its first key (a record holds
/// about a thousand keys of one shard, so the estimate is close).
struct BaseSizes<'k> {
    caches: &'k crate::cache::Caches,
    keys: Vec<u64>,
    /// This process's shard-router probe, to compare with the base's.
    router_probe: [u8; 8],
}

impl<'k> BaseSizes<'k> {
    fn new(ks: &'k Keyspace) -> BaseSizes<'k> {
        BaseSizes {
            caches: ks.caches(),
            keys: vec![0; ks.caches().len()],
            router_probe: ks.router_probe(),
        }
    }

    fn record(&mut self, first_key: &[u8], n: u64) {
        self.keys[self.caches.resolve(first_key)] += n;
    }

    fn reserve(&self, ks: &Keyspace) {
        for (c, &keys) in self.keys.iter().enumerate() {
            // A little headroom: shards differ a little, and the logs add keys.
            let per_shard = (keys + keys / 8) / SHARDS as u64;
            if per_shard > 0 {
                ks.reserve(c, per_shard as usize);
            }
        }
    }
}

/// A record's lsn, if it decodes. A log record is decoded whole; a base record (large,
/// Sets only) only as far as its first key, which `base` counts it under: the replay
/// refuses whatever else does not decode.
fn check_record(payload: &[u8], base: Option<&mut BaseSizes<'_>>) -> Result<u64, String> {
    let bad = |e: record::DecodeError| format!("undecodable record: {e}");
    let rec = Record::parse(payload).map_err(bad)?;
    match base {
        Some(b) => {
            if let Some(EffectRef::Set { key, .. }) =
                rec.effects().next().transpose().map_err(bad)?
            {
                // A Set takes at least 5 bytes: a count beyond that is a lie the replay
                // will refuse, and must not size an allocation first.
                b.record(key, rec.len().min(payload.len() as u64 / 5));
            }
        }
        None => {
            for e in rec.effects() {
                e.map_err(bad)?;
            }
        }
    }
    Ok(rec.lsn)
}

/// What one replay thread did.
#[derive(Debug, Default)]
struct Counts {
    /// The first record that did not decode: its part and offset.
    bad: Option<(usize, usize)>,
    sets: u64,
    refused: u64,
}

/// Replays every part, applying only the effects on keys of the shards `mine`.
fn replay(
    parts: &[Part],
    ks: &Keyspace,
    mine: Vec<usize>,
    now: u64,
    progress: Option<&Progress>,
) -> Counts {
    let mut counts = Counts::default();
    let mut owned = [false; SHARDS];
    for &s in &mine {
        owned[s] = true;
    }
    let lock = || ks.db(ShardSet::Some(mine.clone()), now, false);
    let mut done = 0u64;
    for (n, part) in parts.iter().enumerate() {
        let data = &part.map[..part.end];
        let mut pos = part.start;
        let mut db = lock();
        let mut locked_at = Instant::now();
        let mut in_lock = 0;
        while pos < data.len() {
            let Frame::Ok { payload, len } = record::frame(&data[pos..]) else {
                break;
            };
            let ok = match Record::parse(payload) {
                Ok(rec) if part.by_shard && !first_key_owned(&rec, ks, &owned) => true,
                Ok(rec) => apply(&mut db, ks, &owned, &rec, now, &mut counts),
                Err(_) => false,
            };
            if !ok {
                counts.bad.get_or_insert((n, pos));
                break;
            }
            pos += len;
            in_lock += 1;
            if in_lock == RECORDS_PER_LOCK
                || (in_lock.is_multiple_of(64) && locked_at.elapsed() >= LOCK_HOLD)
            {
                drop(db);
                if let Some(p) = progress {
                    p.loaded.store(done + pos as u64, Ordering::Relaxed);
                }
                // Let a command waiting for every shard (INFO) take them before the next
                // chunk: woken waiters are slower to the locks than this thread.
                let waited = Instant::now();
                while ks.waiting_for_all() > 0 && waited.elapsed() < LOCK_HOLD {
                    std::thread::sleep(Duration::from_micros(50));
                }
                db = lock();
                locked_at = Instant::now();
                in_lock = 0;
            }
        }
        done += part.map.len() as u64;
    }
    counts
}

/// Maps a file read-only.
fn map_file(path: &Path) -> Result<memmap2::Mmap, PersistError> {
    let io = |e: std::io::Error| PersistError::Io(format!("cannot read {}: {e}", path.display()));
    let f = std::fs::File::open(path).map_err(io)?;
    if f.metadata().map_err(io)?.len() == 0 {
        // An empty map is an error on some platforms; an empty file has no header anyway.
        return memmap2::MmapOptions::new()
            .len(0)
            .map_anon()
            .map(|m| m.make_read_only())
            .map_err(io)?
            .map_err(io);
    }
    // SAFETY: the data directory belongs to this server, and nothing writes its files while
    // it loads them (the log writer starts after loading); the map is dropped before this
    // function's caller touches the file again.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(io)?;
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(map)
}

/// Why a frame did not read.
fn bad_kind(f: &Frame<'_>, rest: &[u8]) -> String {
    match f {
        Frame::Incomplete => format!(
            "a record runs past the end of the file ({} bytes left)",
            rest.len()
        ),
        Frame::Bad { len: 0 } => "an impossible record length".into(),
        Frame::Bad { .. } => "CRC mismatch".into(),
        Frame::Ok { .. } => "no damage".into(),
    }
}

/// True when `rest`, starting at a frame that does not read, is a torn tail: a crash cut
/// the last write short or left it unwritten (zeros). False when a good record follows:
/// then a record in the middle is damaged, which is corruption however it looks.
fn is_torn(rest: &[u8]) -> bool {
    match record::frame(rest) {
        Frame::Bad { len } if len == rest.len() => return true,
        _ => {}
    }
    if rest.iter().all(|&b| b == 0) {
        return true;
    }
    !(1..rest.len()).any(|i| matches!(record::frame(&rest[i..]), Frame::Ok { .. }))
}

/// Whether the first effect of `rec` is a Set of a key in an `owned` shard (true when it
/// does not decode: `apply` then reports it).
fn first_key_owned(rec: &Record<'_>, ks: &Keyspace, owned: &[bool; SHARDS]) -> bool {
    match rec.effects().next() {
        Some(Ok(EffectRef::Set { key, .. })) => owned[ks.shard_of(key)],
        _ => true,
    }
}

/// Applies every effect of one record (a mirror applying the active's stream through a
/// view of every shard). False if an effect does not decode.
pub(crate) fn apply_all(db: &mut Db<'_>, ks: &Keyspace, rec: &Record<'_>, now: u64) -> bool {
    apply(db, ks, &[true; SHARDS], rec, now, &mut Counts::default())
}

/// Applies the effects of one record on keys of `owned` shards (all of a FlushAll or
/// ClearCache: the Db clears only the shards it holds). False if an effect does not
/// decode.
fn apply(
    db: &mut Db<'_>,
    ks: &Keyspace,
    owned: &[bool; SHARDS],
    rec: &Record<'_>,
    now: u64,
    counts: &mut Counts,
) -> bool {
    let mine = |key: &[u8]| owned[ks.shard_of(key)];
    for e in rec.effects() {
        let Ok(e) = e else {
            return false;
        };
        // The Db holds every shard it touches here, so none of these can fail to lock.
        match e {
            EffectRef::Set {
                key,
                value,
                expire_at,
            } if mine(key) => {
                if expire_at != 0 && expire_at <= now {
                    let _ = db.del(key);
                } else {
                    counts.sets += 1;
                    if let Err(crate::store::WriteError::CacheFull { .. }) =
                        db.set(key, value.to_value(), Ttl::At(expire_at))
                    {
                        counts.refused += 1;
                    }
                }
            }
            EffectRef::Del { key } if mine(key) => {
                let _ = db.del(key);
            }
            EffectRef::ListOps { key, from, ops } if mine(key) => {
                counts.sets += 1;
                let _ = db.list_ops(key, from, record::list_ops_of(ops));
            }
            EffectRef::Patch {
                key,
                kind,
                upserts,
                removed,
            } if mine(key) => {
                counts.sets += 1;
                let upserts = crate::store::ValueRef::Packed(kind, upserts).to_value();
                if let Err(crate::store::WriteError::CacheFull { .. }) =
                    db.patch(key, upserts, record::removed_of(removed))
                {
                    counts.refused += 1;
                }
            }
            EffectRef::Expire { key, at } if mine(key) => {
                let _ = db.set_expire(key, (at != 0).then_some(at));
            }
            EffectRef::FlushAll => {
                db.flush();
            }
            EffectRef::ClearCache { cache } => match ks.caches().by_name(cache.as_bytes()) {
                Some(c) => {
                    db.clear_cache(c);
                }
                None => tracing::warn!(
                    "fast-restart log clears cache '{cache}', which is no longer configured; ignored"
                ),
            },
            _ => {}
        }
    }
    true
}

/// Refuses to start over `damage`, or with `repair` backs the data files up and cuts
/// file `n` of the manifest at the damage, dropping every later file (what comes after
/// damage cannot be replayed in order). Loading stops there either way; `out.log_len`
/// must already say where the damaged file's good records end if it is a log.
fn refuse_or_repair(
    dir: &Path,
    out: &mut Loaded,
    n: usize,
    damage: Damage,
    repair: bool,
) -> Result<(), PersistError> {
    if !repair {
        return Err(PersistError::Corrupt {
            file: damage.file.display().to_string(),
            offset: damage.offset,
            why: damage.why,
        });
    }
    let backup = dir.join(format!("repair-backup-{}", crate::store::now_ms()));
    let io = |e: std::io::Error| PersistError::Io(format!("repair: {e}"));
    std::fs::create_dir_all(&backup).map_err(io)?;
    for p in out
        .manifest
        .paths(dir)
        .iter()
        .chain(std::iter::once(&dir.join(files::MANIFEST)))
    {
        if let Some(name) = p.file_name() {
            std::fs::copy(p, backup.join(name)).map_err(io)?;
        }
    }
    let is_base = n == 0 && out.manifest.base.is_some();
    let keep_logs = if is_base {
        0
    } else {
        n + 1 - usize::from(out.manifest.base.is_some())
    };
    let dropped = out.manifest.logs.len() - keep_logs;
    out.manifest.logs.truncate(keep_logs);
    let header = if is_base { BASE_HEADER } else { LOG_HEADER };
    let cut = damage.offset.max(header as u64);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&damage.file)
        .map_err(io)?;
    if damage.offset < header as u64 {
        // The header itself is damaged: nothing in the file is usable.
        f.set_len(0).map_err(io)?;
        if is_base {
            out.manifest.base = None;
        } else {
            out.manifest.logs.pop();
        }
    } else {
        f.set_len(cut).map_err(io)?;
    }
    f.sync_all().map_err(io)?;
    if out.manifest.logs.is_empty() {
        let seq = out.manifest.next_seq();
        files::create_log(dir, seq).map_err(io)?;
        out.manifest.logs.push(seq);
        out.log_len = LOG_HEADER as u64;
    }
    out.manifest.store(dir).map_err(io)?;
    tracing::warn!(
        "repaired {}: {} at offset {}; kept everything before it, dropped {} later log file(s); the original files are in {}",
        damage.file.display(),
        damage.why,
        damage.offset,
        dropped,
        backup.display()
    );
    Ok(())
}
