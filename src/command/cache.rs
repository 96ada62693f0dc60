//! Cache commands, named like module commands so they never collide with Redis's:
//! CACHE.LIST, CACHE.INFO, CACHE.SIZE, CACHE.CLEAR, CACHE.CONFIG.

use super::ctx::ExecCtx;
use super::{CmdError, Exec};
use crate::cache::{CacheId, Field, Policy, policy_report, report};
use crate::protocol::{Args, Reply};

/// The cache named by the argument, or `ERR no such cache`.
fn find(ctx: &ExecCtx<'_>, name: &[u8]) -> Result<CacheId, CmdError> {
    ctx.server
        .keyspace
        .caches()
        .by_name(name)
        .ok_or_else(|| CmdError::err(format!("no such cache '{}'", super::lossy(name, 128))))
}

fn map(fields: Vec<(&'static str, Field)>) -> Reply {
    Reply::Map(
        fields
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Field::Text(t) => Reply::bulk(t),
                    Field::Int(n) => Reply::Int(i64::try_from(n).unwrap_or(i64::MAX)),
                };
                (Reply::bulk(k), v)
            })
            .collect(),
    )
}

/// `CACHE.LIST`: the cache names, in config order.
#[derive(Debug)]
pub struct CacheList;

impl<'a> Exec<'a> for CacheList {
    fn parse(_: &mut Args<'_>) -> Result<Self, CmdError> {
        Ok(CacheList)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let caches = ctx.server.keyspace.caches();
        Ok(Reply::Array(
            caches.iter().map(|c| Reply::bulk(&c.name)).collect(),
        ))
    }
}

/// `CACHE.INFO name`
#[derive(Debug)]
pub struct CacheInfo<'a> {
    name: &'a [u8],
}

impl<'a> Exec<'a> for CacheInfo<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(CacheInfo {
            name: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let id = find(ctx, self.name)?;
        let cache = ctx.server.keyspace.caches().get(id);
        let mut fields = vec![("name", Field::Text(cache.name.clone()))];
        fields.extend(report(cache));
        Ok(map(fields))
    }
}

/// `CACHE.SIZE name`: the number of entries.
#[derive(Debug)]
pub struct CacheSize<'a> {
    name: &'a [u8],
}

impl<'a> Exec<'a> for CacheSize<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(CacheSize {
            name: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let id = find(ctx, self.name)?;
        let entries = ctx.server.keyspace.caches().get(id).stats.entries();
        Ok(Reply::Int(entries as i64))
    }
}

/// `CACHE.CLEAR name`: removes every entry of that cache only; returns how many.
#[derive(Debug)]
pub struct CacheClear<'a> {
    name: &'a [u8],
}

impl<'a> Exec<'a> for CacheClear<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(CacheClear {
            name: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let id = find(ctx, self.name)?;
        Ok(Reply::Int(ctx.db.clear_cache(id) as i64))
    }
}

/// `CACHE.CONFIG name [field value ...]`: with no pairs, the policy; otherwise sets every
/// pair (all or none: each is checked first) and evicts down to lowered limits at once.
#[derive(Debug)]
pub struct CacheConfigCmd<'a> {
    name: &'a [u8],
    pairs: Vec<&'a [u8]>,
}

impl<'a> Exec<'a> for CacheConfigCmd<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let name = args.bytes()?;
        let pairs = args.rest();
        if !pairs.len().is_multiple_of(2) {
            return Err(CmdError::WrongArity("cache.config".into()));
        }
        Ok(CacheConfigCmd { name, pairs })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let id = find(ctx, self.name)?;
        let cache = ctx.server.keyspace.caches().get(id);
        if self.pairs.is_empty() {
            return Ok(map(policy_report(cache.policy.snapshot())));
        }
        let settings = self
            .pairs
            .chunks(2)
            .map(|kv| {
                let f = String::from_utf8_lossy(kv[0]);
                let v = String::from_utf8_lossy(kv[1]);
                Policy::check(&f, &v).map_err(|e| CmdError::err(format!("CACHE.CONFIG: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for s in settings {
            cache.policy.apply(s);
        }
        // Lowered limits take effect at once, except inside EXEC: the transaction holds
        // shard locks that shrinking would wait for, so the cron (100 ms) does it then.
        if !ctx.db.holds_locks() {
            let evicted = ctx.server.keyspace.shrink_cache(id, ctx.db.now);
            ctx.server.stats.add_evicted(evicted);
        }
        Ok(Reply::Ok)
    }
}
