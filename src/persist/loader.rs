//! Recovery: replays the base snapshot and then every log into the keyspace.
//!
//! Each file is checked record by record (CRC32C). What is wrong decides what happens:
//! - the last log ends inside a record, or with a last record whose CRC fails, or with
//!   zeros: a torn tail (a crash mid-write). It is cut off with a warning naming the file
//!   and offset, and the server starts with every complete record.
//! - anything else (a bad record with good ones after it, a damaged base or older log) is
//!   corruption: the server refuses to start, unless `--repair`, which backs the files up
//!   and keeps everything before the damage.
//!
//! Effects replay through the same [`Db`] commands use, so cache limits, tiers and eviction
//! apply as they did when the data was written. A deadline that passed while the server was
//! down deletes the key; idle (TTI) clocks start again at load.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::PersistError;
use super::files::{self, BASE_HEADER, BASE_MAGIC, LOG_HEADER, LOG_MAGIC, Manifest};
use super::record::{self, EffectRef, Frame, Record};
use crate::store::{Db, Keyspace, ShardSet, Ttl};

/// Records applied under one acquisition of the shard locks: large enough that locking
/// costs nothing, small enough that INFO gets in while loading.
const RECORDS_PER_LOCK: usize = 4096;

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

/// Replays the files of `manifest` in `dir` into `ks` (whose effects are not recorded:
/// they are on disk already). With `repair`, damage is cut off instead of refused.
pub fn load(
    dir: &Path,
    manifest: Manifest,
    ks: &Keyspace,
    repair: bool,
    progress: &Progress,
) -> Result<Loaded, PersistError> {
    let paths = manifest.paths(dir);
    progress
        .total
        .store(files::size_of(dir, &manifest), Ordering::Relaxed);
    let mut out = Loaded {
        next_lsn: 1,
        manifest,
        ..Loaded::default()
    };
    let now = crate::store::now_ms();
    let last = paths.len() - 1;
    // Bytes of the files already loaded.
    let mut done = 0u64;
    for (n, path) in paths.iter().enumerate() {
        let is_base = n == 0 && out.manifest.base.is_some();
        let is_last = n == last;
        let map = map_file(path)?;
        let data: &[u8] = &map;
        let header = if is_base { BASE_HEADER } else { LOG_HEADER };
        let magic = if is_base { BASE_MAGIC } else { LOG_MAGIC };
        if data.len() < header || data[..8] != magic {
            let damage = Damage {
                file: path.clone(),
                offset: 0,
                why: "not a Terrace fast-restart file (bad header)".into(),
            };
            refuse_or_repair(dir, &mut out, n, damage, repair)?;
            return Ok(out);
        }
        if is_base {
            let mut lsn = [0u8; 8];
            lsn.copy_from_slice(&data[8..16]);
            out.next_lsn = out.next_lsn.max(u64::from_le_bytes(lsn));
        }
        let mut pos = header;
        let mut db = ks.db(ShardSet::All, now, false);
        let mut in_lock = 0;
        let damage = loop {
            let rest = &data[pos..];
            if rest.is_empty() {
                break None;
            }
            let (payload, len) = match record::frame(rest) {
                Frame::Ok { payload, len } => (payload, len),
                bad => break Some((bad_kind(&bad, rest), is_last && !is_base)),
            };
            let rec = match Record::parse(payload) {
                Ok(r) => r,
                Err(e) => break Some((format!("undecodable record: {e}"), false)),
            };
            if let Err(e) = apply(&mut db, ks.caches(), &rec, now, &mut out) {
                break Some((format!("undecodable record: {e}"), false));
            }
            if !is_base {
                out.next_lsn = out.next_lsn.max(rec.lsn + 1);
            }
            out.records += 1;
            pos += len;
            in_lock += 1;
            if in_lock == RECORDS_PER_LOCK {
                drop(db);
                progress.loaded.store(done + pos as u64, Ordering::Relaxed);
                db = ks.db(ShardSet::All, now, false);
                in_lock = 0;
            }
        };
        drop(db);
        if let Some((why, maybe_torn)) = damage {
            let rest = &data[pos..];
            if maybe_torn && is_torn(rest) {
                tracing::warn!(
                    "fast-restart log {}: dropping a torn record at offset {pos} ({} bytes to the end): the server stopped in the middle of writing it",
                    path.display(),
                    rest.len()
                );
                out.log_len = pos as u64;
            } else {
                let damage = Damage {
                    file: path.clone(),
                    offset: pos as u64,
                    why,
                };
                if !is_base {
                    out.log_len = pos as u64;
                }
                refuse_or_repair(dir, &mut out, n, damage, repair)?;
                progress
                    .loaded
                    .store(progress.total.load(Ordering::Relaxed), Ordering::Relaxed);
                return Ok(out);
            }
        } else {
            out.log_len = data.len() as u64;
        }
        done += data.len() as u64;
        progress.loaded.store(done, Ordering::Relaxed);
    }
    progress
        .loaded
        .store(progress.total.load(Ordering::Relaxed), Ordering::Relaxed);
    Ok(out)
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

/// Applies one record's effects.
fn apply(
    db: &mut Db<'_>,
    caches: &crate::cache::Caches,
    rec: &Record<'_>,
    now: u64,
    out: &mut Loaded,
) -> Result<(), record::DecodeError> {
    for e in rec.effects() {
        let ok = match e? {
            EffectRef::Set {
                key,
                value,
                expire_at,
            } => {
                if expire_at != 0 && expire_at <= now {
                    db.del(key).is_ok()
                } else {
                    out.sets += 1;
                    match db.set(key, value.to_value(), Ttl::At(expire_at)) {
                        Ok(()) => true,
                        Err(crate::store::WriteError::CacheFull { .. }) => {
                            out.refused += 1;
                            true
                        }
                        Err(_) => false,
                    }
                }
            }
            EffectRef::Del { key } => db.del(key).is_ok(),
            EffectRef::Expire { key, at } => {
                let at = (at != 0).then_some(at);
                db.set_expire(key, at).is_ok()
            }
            EffectRef::FlushAll => {
                db.flush();
                true
            }
            EffectRef::ClearCache { cache } => {
                match caches.by_name(cache.as_bytes()) {
                    Some(c) => {
                        db.clear_cache(c);
                    }
                    None => tracing::warn!(
                        "fast-restart log clears cache '{cache}', which is no longer configured; ignored"
                    ),
                }
                true
            }
        };
        debug_assert!(ok, "the loader holds every shard");
    }
    Ok(())
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
