//! Fast-restart records and files.
//!
//! Input: byte 0 chooses what the rest is.
//! - even: a record payload (what a frame's CRC covers): decoded effect by effect, every
//!   tag (Set with packed collections, Patch, ListOps, ...); one that decodes whole must
//!   encode and decode again to the same effects.
//! - odd: the body of a data file after its header, loaded by the real loader into a
//!   keyspace. Bit 1: frames get their right CRC first (so the fuzzer reaches the decoder
//!   behind it); bit 2: `--repair`; bit 3: the body is a base snapshot (bit 4: one made by
//!   a process with this keyspace's shard routing) followed by an empty log. The load
//!   must succeed or report the damage, never panic.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use terrace::cache::Caches;
use terrace::persist::files::{self, BASE_MAGIC, LOG_MAGIC, Manifest};
use terrace::persist::loader::{self, Progress};
use terrace::persist::record::{self, EffectRef, Frame, Record};
use terrace::store::Keyspace;
use terrace::store::SHARDS;

fn payload(data: &[u8]) {
    let Ok(rec) = Record::parse(data) else {
        return;
    };
    let mut effects = Vec::new();
    for e in rec.effects() {
        let Ok(e) = e else {
            return;
        };
        match e {
            EffectRef::Patch { removed, .. } => {
                let _ = record::removed_of(removed).count();
            }
            EffectRef::ListOps { ops, .. } => {
                let _ = record::list_ops_of(ops).count();
            }
            _ => {}
        }
        effects.push(e.to_effect());
    }
    // Decoded whole: what the writer makes of it must read back the same.
    let mut out = Vec::new();
    record::encode(&mut out, rec.lsn, &effects);
    let Frame::Ok { payload, len } = record::frame(&out) else {
        panic!("an encoded record does not frame");
    };
    assert_eq!(len, out.len());
    let again = Record::parse(payload).and_then(|r| r.to_effects());
    assert_eq!(
        again.as_ref(),
        Ok(&effects),
        "re-encoded record reads back otherwise"
    );
}

/// Gives every frame that fits in `body` its right CRC.
fn fix_crcs(body: &mut [u8]) {
    let mut pos = 0;
    while let Some(head) = body.get(pos..pos + record::FRAME_HEADER) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let start = pos + record::FRAME_HEADER;
        let Some(p) = body.get(start..start + len).filter(|_| len > 0) else {
            return;
        };
        let crc = crc32c::crc32c(p);
        body[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
        pos = start + len;
    }
}

fn load(mode: u8, data: &[u8]) {
    let mut body = data.to_vec();
    if mode & 2 != 0 {
        fix_crcs(&mut body);
    }
    let repair = mode & 4 != 0;
    let as_base = mode & 8 != 0;
    let dir = terrace_fuzz::scratch_dir("record");
    let config = terrace_fuzz::config();
    let ks = Keyspace::new(false, Arc::new(Caches::new(&config.caches)));
    let manifest = if as_base {
        let mut file = BASE_MAGIC.to_vec();
        file.extend_from_slice(&7u64.to_le_bytes());
        let probe = if mode & 16 != 0 {
            ks.router_probe()
        } else {
            [0; 8]
        };
        file.extend_from_slice(&probe);
        file.extend_from_slice(&body);
        write(&files::base_path(&dir, 1), &file);
        write(&files::log_path(&dir, 2), &LOG_MAGIC);
        Manifest {
            base: Some(1),
            logs: vec![2],
        }
    } else {
        let mut file = LOG_MAGIC.to_vec();
        file.extend_from_slice(&body);
        write(&files::log_path(&dir, 1), &file);
        Manifest {
            base: None,
            logs: vec![1],
        }
    };
    if let Err(e) = manifest.store(&dir) {
        panic!("cannot write the manifest: {e}");
    }
    if let Ok(loaded) = loader::load(&dir, manifest, &ks, repair, &Progress::default()) {
        assert!(loaded.next_lsn >= 1);
        // Whatever loaded reads back.
        for s in 0..SHARDS {
            ks.visit_shard(s, 1, |_, e| {
                let _ = e.value().to_value();
            });
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn write(path: &std::path::Path, bytes: &[u8]) {
    if let Err(e) = std::fs::write(path, bytes) {
        panic!("cannot write {}: {e}", path.display());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        payload(rest);
    } else {
        load(mode, rest);
    }
});
