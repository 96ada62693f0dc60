//! Compaction (Redis's AOF rewrite): a new base snapshot replaces the old base and logs.
//!
//! ```text
//!  1. create log N+1, manifest := [base, logs.., log N+1]      (a crash here loses nothing)
//!  2. switch the writer to log N+1 at lsn S                     (writes never stop)
//!  3. snapshot every shard, one at a time, to base N.tmp with start lsn S; fsync; rename
//!  4. manifest := [base N+1, log N+1]; delete the old base and logs
//! ```
//! The snapshot is fuzzy: a shard is copied at some moment after S, so it may already hold
//! effects that log N+1 also has. Effects are idempotent whole-state records, so replaying
//! log N+1 over the snapshot gives exactly the state the server had.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::files::{self, BASE_MAGIC};
use super::record::Builder;
use crate::store::{Keyspace, SHARDS};

/// A base record holds entries of one shard, up to about this many bytes: big enough that frames and
/// CRCs cost nothing, small enough to be a sane unit of damage.
const RECORD_BYTES: usize = 64 << 10;

/// Writes base `seq` from `ks` (start lsn `start`) and returns its size. The file appears
/// under its final name only once complete and fsynced.
pub fn write_base(dir: &Path, seq: u64, start: u64, ks: &Keyspace) -> std::io::Result<u64> {
    let tmp = files::base_tmp_path(dir, seq);
    let result = write_to(&tmp, start, ks);
    let size = match result {
        Ok(size) => size,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, files::base_path(dir, seq))?;
    files::sync_dir(dir)?;
    Ok(size)
}

/// Appends the live entries of shard `shard` to `out` as records (lsn 0) of up to about
/// 64 KB, holding the shard's lock meanwhile: a base snapshot's and a full sync's unit.
pub fn snapshot_shard(ks: &Keyspace, shard: usize, out: &mut Vec<u8>) {
    let mut open: Option<Builder> = None;
    ks.visit_shard(shard, crate::store::now_ms(), |key, e| {
        let b = open.get_or_insert_with(|| Builder::begin(out, 0));
        b.set(out, key, e.value(), e.expire_at());
        if b.len(out) >= RECORD_BYTES
            && let Some(b) = open.take()
        {
            b.end(out);
        }
    });
    if let Some(b) = open.take() {
        b.end(out);
    }
}

fn write_to(path: &Path, start: u64, ks: &Keyspace) -> std::io::Result<u64> {
    let mut f = BufWriter::with_capacity(1 << 20, File::create(path)?);
    f.write_all(&BASE_MAGIC)?;
    f.write_all(&start.to_le_bytes())?;
    f.write_all(&ks.router_probe())?;
    let mut size = files::BASE_HEADER as u64;
    let mut buf = Vec::with_capacity(2 * RECORD_BYTES);
    for shard in 0..SHARDS {
        snapshot_shard(ks, shard, &mut buf);
        // Written outside the shard's lock.
        f.write_all(&buf)?;
        size += buf.len() as u64;
        buf.clear();
    }
    let f = f.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    Ok(size)
}
