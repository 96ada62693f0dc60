//! `DEBUG DIGEST` and `DEBUG DIGEST-VALUE key...`: order-independent digests of the data,
//! as Redis's test suite uses them to compare a primary with its replicas. Both are
//! keyless admin commands, so a mirror answers them from its own copy.
//!
//! `DEBUG CONTROL-ISOLATE 1|0` is fault injection for the failover tests: this server stops
//! (or resumes) all control-plane traffic, as if its group port were cut off from the other
//! members, while its clients and mirrors still reach it.

use super::ctx::ExecCtx;
use super::{CmdError, Exec};
use crate::protocol::{Args, Reply};
use crate::store::{EntryRef, ShardSet, ValueRef};

/// Fixed seeds: two processes digest equal data equally.
const SEEDS: [u64; 4] = [0x7465_7272, 0x6163_6521, 0x6469_6765, 0x7374_2121];

/// `DEBUG DIGEST | DIGEST-VALUE key...`
#[derive(Debug)]
pub enum Debug<'a> {
    /// The whole data set.
    Digest,
    /// These keys' values.
    DigestValue(Vec<&'a [u8]>),
    /// Cut this server off the control plane (true) or reconnect it.
    ControlIsolate(bool),
}

impl<'a> Exec<'a> for Debug<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let sub = args.keyword()?;
        match sub.as_str() {
            "DIGEST" => {
                args.end()?;
                Ok(Debug::Digest)
            }
            "DIGEST-VALUE" => Ok(Debug::DigestValue(args.rest())),
            "CONTROL-ISOLATE" => {
                let on = args.bytes()?;
                args.end()?;
                match on {
                    b"1" => Ok(Debug::ControlIsolate(true)),
                    b"0" => Ok(Debug::ControlIsolate(false)),
                    _ => Err(CmdError::err("CONTROL-ISOLATE takes 1 or 0")),
                }
            }
            _ => Err(CmdError::err(format!(
                "unknown subcommand or wrong number of arguments for '{sub}'. Try DEBUG HELP."
            ))),
        }
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let ks = &ctx.server.keyspace;
        let hasher = ahash::RandomState::with_seeds(SEEDS[0], SEEDS[1], SEEDS[2], SEEDS[3]);
        let entry_hash = |key: &[u8], e: &EntryRef<'_>| match e.value() {
            ValueRef::Str(v) => hasher.hash_one((key, v, e.expire_at())),
            v => hasher.hash_one((
                key,
                v.kind().tag(),
                value_digest(&hasher, &v.to_value()),
                e.expire_at(),
            )),
        };
        match self {
            Debug::ControlIsolate(on) => match ctx.server.repl.control() {
                Some(cp) => {
                    cp.isolation.set(on);
                    tracing::warn!(
                        "DEBUG CONTROL-ISOLATE: control-plane traffic {}",
                        if on { "cut" } else { "restored" }
                    );
                    Ok(Reply::Ok)
                }
                None => Err(CmdError::err("this server runs no control plane")),
            },
            Debug::Digest => {
                let (mut sum, mut xor, mut n) = (0u64, 0u64, 0u64);
                let now = crate::store::now_ms();
                for shard in 0..crate::store::SHARDS {
                    ks.visit_shard(shard, now, |k, e| {
                        let h = entry_hash(k, &e);
                        sum = sum.wrapping_add(h);
                        xor ^= h.rotate_left(17);
                        n += 1;
                    });
                }
                Ok(Reply::status(if n == 0 {
                    "0".repeat(40)
                } else {
                    format!("{sum:016x}{xor:016x}{:08x}", n as u32)
                }))
            }
            Debug::DigestValue(keys) => {
                let now = crate::store::now_ms();
                let mut out = Vec::with_capacity(keys.len());
                for k in keys {
                    let mut db = ks.db(ShardSet::One(ks.shard_of(k)), now, false);
                    let d = match db.peek(k).map_err(|_| CmdError::Internal("lock".into()))? {
                        Some(e) => format!("{:040x}", entry_hash(k, &e)),
                        None => "0".repeat(40),
                    };
                    out.push(Reply::status(d));
                }
                Ok(Reply::Array(out))
            }
        }
    }
}

/// A digest of a collection that does not depend on its storage order (a mirror's hash
/// may hold the same fields in another order): element digests combined by addition, as
/// Redis's DEBUG DIGEST mixes set members; lists are ordered, so their digest is too.
fn value_digest(hasher: &ahash::RandomState, v: &crate::store::Value) -> u64 {
    use crate::store::Value;
    match v {
        Value::Str(s) => hasher.hash_one(s.as_slice()),
        Value::Hash(h) => h.iter().fold(0u64, |acc, (k, f)| {
            acc.wrapping_add(hasher.hash_one((k.as_slice(), f.value.as_slice(), f.expire_at)))
        }),
        Value::List(l) => hasher.hash_one(l.iter().map(|s| s.as_slice()).collect::<Vec<_>>()),
        Value::Set(s) => s.iter().fold(0u64, |acc, m| {
            acc.wrapping_add(hasher.hash_one(m.as_slice()))
        }),
        Value::ZSet(z) => hasher.hash_one(
            z.iter()
                .map(|(m, sc)| (m.as_slice(), sc.to_bits()))
                .collect::<Vec<_>>(),
        ),
    }
}
