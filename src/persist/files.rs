//! The files of a data directory: the manifest, base snapshots and logs, and the
//! durable ways to create and replace them.
//!
//! ```text
//!  DATA/terrace.manifest     which files make up the data, replaced atomically
//!  DATA/terrace.base.N       a snapshot: header(magic, start lsn, router probe) + Set
//!                            records, each of one shard
//!  DATA/terrace.log.N        a log: header(magic) + records, appended to
//! ```
//! A manifest names at most one base and the logs to replay after it, in order. A file
//! the manifest does not name is a leftover of an interrupted rewrite and is deleted.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The manifest's file name.
pub const MANIFEST: &str = "terrace.manifest";
const BASE_PREFIX: &str = "terrace.base.";
const LOG_PREFIX: &str = "terrace.log.";
const TMP_SUFFIX: &str = ".tmp";
const MANIFEST_HEAD: &str = "# Terrace fast-restart manifest: the base snapshot, then the logs replayed after it, in order.";

/// First bytes of a log file (format version 1).
pub const LOG_MAGIC: [u8; 8] = *b"TRCLOG\x00\x01";
/// First bytes of a base snapshot (format version 2: version 1 had no router probe),
/// followed by its start lsn (u64 LE) and the writer's shard-router probe (8 bytes, see
/// `Keyspace::router_probe`).
pub const BASE_MAGIC: [u8; 8] = *b"TRCBAS\x00\x02";
/// Length of a log file's header.
pub const LOG_HEADER: usize = 8;
/// Length of a base file's header.
pub const BASE_HEADER: usize = 24;

/// Which files hold the data, by sequence number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The base snapshot, if any.
    pub base: Option<u64>,
    /// The logs, oldest first; the last one is appended to.
    pub logs: Vec<u64>,
}

impl Manifest {
    /// Reads `dir`'s manifest; `None` when there is none (a new data directory).
    pub fn load(dir: &Path) -> Result<Option<Manifest>, String> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let mut m = Manifest::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || format!("{} line {}: cannot parse '{line}'", path.display(), n + 1);
            let (kind, seq) = line.split_once(' ').ok_or_else(bad)?;
            let seq: u64 = seq.trim().parse().map_err(|_| bad())?;
            match kind {
                "base" if m.base.is_none() && m.logs.is_empty() => m.base = Some(seq),
                "log" if m.logs.last().is_none_or(|&l| l < seq) => m.logs.push(seq),
                _ => return Err(bad()),
            }
        }
        if m.logs.is_empty() {
            return Err(format!("{} names no log", path.display()));
        }
        Ok(Some(m))
    }

    /// Writes the manifest durably and atomically: a temporary file, fsync, rename over
    /// the old one, fsync of the directory.
    pub fn store(&self, dir: &Path) -> io::Result<()> {
        let mut text = String::from(MANIFEST_HEAD);
        text.push('\n');
        if let Some(b) = self.base {
            text.push_str(&format!("base {b}\n"));
        }
        for l in &self.logs {
            text.push_str(&format!("log {l}\n"));
        }
        let tmp = dir.join(format!("{MANIFEST}{TMP_SUFFIX}"));
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(MANIFEST))?;
        sync_dir(dir)
    }

    /// A sequence number above every file's.
    pub fn next_seq(&self) -> u64 {
        self.logs
            .iter()
            .copied()
            .chain(self.base)
            .max()
            .unwrap_or(0)
            + 1
    }

    /// Every file named, base first.
    pub fn paths(&self, dir: &Path) -> Vec<PathBuf> {
        self.base
            .map(|b| base_path(dir, b))
            .into_iter()
            .chain(self.logs.iter().map(|&l| log_path(dir, l)))
            .collect()
    }
}

/// Path of base `seq`.
pub fn base_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{BASE_PREFIX}{seq}"))
}

/// Path of log `seq`.
pub fn log_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{LOG_PREFIX}{seq}"))
}

/// Path the base `seq` is written to before it is complete.
pub fn base_tmp_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{BASE_PREFIX}{seq}{TMP_SUFFIX}"))
}

/// Creates log `seq` with its header, durably (file and directory fsynced), open for
/// appending.
pub fn create_log(dir: &Path, seq: u64) -> io::Result<File> {
    let path = log_path(dir, seq);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    f.write_all(&LOG_MAGIC)?;
    f.sync_all()?;
    sync_dir(dir)?;
    Ok(f)
}

/// Opens an existing log for appending at `len` (where its last whole record ends).
pub fn open_log(dir: &Path, seq: u64, len: u64) -> io::Result<File> {
    let f = OpenOptions::new().write(true).open(log_path(dir, seq))?;
    f.set_len(len)?;
    f.sync_all()?;
    let mut f = f;
    io::Seek::seek(&mut f, io::SeekFrom::Start(len))?;
    Ok(f)
}

/// Deletes files of `dir` that look like ours but `m` does not name (leftovers of a
/// rewrite that did not finish, or of one whose clean-up was cut short). Returns them.
pub fn remove_unnamed(dir: &Path, m: &Manifest) -> io::Result<Vec<PathBuf>> {
    let keep = m.paths(dir);
    let tmp_manifest = dir.join(format!("{MANIFEST}{TMP_SUFFIX}"));
    let mut removed = Vec::new();
    let stale = data_files(dir)?
        .into_iter()
        .chain(tmp_manifest.exists().then_some(tmp_manifest));
    for path in stale.filter(|p| !keep.contains(p)) {
        std::fs::remove_file(&path)?;
        removed.push(path);
    }
    Ok(removed)
}

/// The files of `dir` that look like ours (a base or a log).
pub fn data_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(BASE_PREFIX) || n.starts_with(LOG_PREFIX));
        if ours {
            out.push(path);
        }
    }
    Ok(out)
}

/// fsyncs a directory, making a create, rename or delete in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Total size of the files `m` names.
pub fn size_of(dir: &Path, m: &Manifest) -> u64 {
    m.paths(dir)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|md| md.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_rejects_nonsense() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Manifest::load(dir.path()), Ok(None));
        let m = Manifest {
            base: Some(3),
            logs: vec![3, 4],
        };
        m.store(dir.path()).expect("store");
        assert_eq!(Manifest::load(dir.path()), Ok(Some(m.clone())));
        assert_eq!(m.next_seq(), 5);
        for bad in [
            "log x\n",
            "log 2\nlog 1\n",
            "base 1\n",
            "log 1\nbase 1\n",
            "what 1\n",
        ] {
            std::fs::write(dir.path().join(MANIFEST), bad).expect("write");
            assert!(Manifest::load(dir.path()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn unnamed_files_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Manifest {
            base: Some(2),
            logs: vec![2],
        };
        for name in [
            "terrace.base.2",
            "terrace.log.2",
            "terrace.log.1",
            "terrace.base.3.tmp",
            "other.txt",
        ] {
            std::fs::write(dir.path().join(name), b"x").expect("write");
        }
        let mut removed: Vec<String> = remove_unnamed(dir.path(), &m)
            .expect("remove")
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(String::from))
            .collect();
        removed.sort();
        assert_eq!(removed, ["terrace.base.3.tmp", "terrace.log.1"]);
        assert!(dir.path().join("other.txt").exists());
        assert!(dir.path().join("terrace.base.2").exists());
    }
}
