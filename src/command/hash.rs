//! Hash commands (Redis 7.4): HSET HGET HMGET HMSET HGETALL HDEL HEXISTS HLEN HKEYS HVALS
//! HINCRBY HINCRBYFLOAT HSETNX HSTRLEN HRANDFIELD HSCAN, and hash-field expiry: HEXPIRE
//! HPEXPIRE HEXPIREAT HPEXPIREAT HTTL HPTTL HEXPIRETIME HPEXPIRETIME HPERSIST.
//!
//! A field whose TTL has passed is invisible to every read at once. It is reclaimed by the
//! next write to its hash (every write command here first drops the hash's expired
//! fields, an O(1) check when none is due) or by the server's sweep
//! ([`Keyspace::expire_fields`](crate::store::Keyspace::expire_fields)); both record the
//! new value, so mirrors and the fast-restart log follow. Reads never reclaim: a read may
//! run on a mirror, and a mirror changes nothing on its own. As in Redis, HLEN counts an
//! expired field until it is reclaimed.

use std::borrow::Cow;

use bytes::Bytes;

use super::ctx::ExecCtx;
use super::{CmdError, Exec};
use crate::protocol::args::{parse_f64, parse_i64};
use crate::protocol::{Args, Proto, Reply};
use crate::server::notify::Class;
use crate::store::{HashV, Str, pattern};

/// Largest absolute field expiry, unix ms (Redis's `HFE_MAX_ABS_TIME_MSEC`: 2^46 - 1).
const MAX_FIELD_EXPIRE: i64 = (1 << 46) - 1;

/// Most elements a negative HRANDFIELD count may ask for: the reply is built whole, so
/// an absurd count must not make the server allocate without bound.
const MAX_RANDOM_REPEATS: u64 = 1 << 26;

/// The hash at `key` for a read (hit/miss counted), `None` if missing.
fn read<'d>(ctx: &'d mut ExecCtx<'_>, key: &[u8]) -> Result<Option<Cow<'d, HashV>>, CmdError> {
    Ok(ctx.db.read::<HashV>(key)?)
}

/// After a write that reclaimed `expired` fields of `key`: the events Redis sends for a
/// lazily expired field (`hexpired`, and `del` when the hash is gone).
fn notify_reclaimed(ctx: &mut ExecCtx<'_>, key: &[u8], expired: usize) -> Result<(), CmdError> {
    if expired > 0 {
        ctx.notify(Class::Hash, "hexpired", key);
        if !ctx.db.exists(key)? {
            ctx.notify(Class::Generic, "del", key);
        }
    }
    Ok(())
}

fn bulk(s: &Str) -> Reply {
    Reply::Bulk(s.to_bytes())
}

/// `HSET key field value [field value ...]` and `HMSET` (same, replying OK).
#[derive(Debug)]
pub struct HSet<'a> {
    key: &'a [u8],
    pairs: Vec<&'a [u8]>,
}

impl<'a> HSet<'a> {
    fn parse_as(args: &mut Args<'a>, name: &str) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        let pairs = args.rest();
        if pairs.is_empty() || pairs.len() % 2 == 1 {
            return Err(CmdError::WrongArity(name.to_string()));
        }
        Ok(HSet { key, pairs })
    }

    /// Sets every pair (clearing their TTLs); how many fields were new.
    fn run(&self, ctx: &mut ExecCtx<'_>) -> Result<i64, CmdError> {
        let now = ctx.db.now;
        let (created, expired) = ctx
            .db
            .update::<HashV, _>(self.key, true, |h| {
                let expired = h.expire_fields(now);
                let created = self
                    .pairs
                    .chunks_exact(2)
                    .filter(|p| h.insert(p[0], p[1]))
                    .count();
                ((created, expired), true)
            })?
            .unwrap_or_default();
        notify_reclaimed(ctx, self.key, expired)?;
        ctx.notify(Class::Hash, "hset", self.key);
        Ok(created as i64)
    }
}

impl<'a> Exec<'a> for HSet<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        HSet::parse_as(args, "hset")
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(Reply::Int(self.run(ctx)?))
    }
}

/// `HMSET key field value [field value ...]` (deprecated form of HSET; replies OK).
#[derive(Debug)]
pub struct HMSet<'a>(HSet<'a>);

impl<'a> Exec<'a> for HMSet<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(HMSet(HSet::parse_as(args, "hmset")?))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.0.run(ctx)?;
        Ok(Reply::Ok)
    }
}

/// `HSETNX key field value`
#[derive(Debug)]
pub struct HSetNx<'a> {
    key: &'a [u8],
    field: &'a [u8],
    value: &'a [u8],
}

impl<'a> Exec<'a> for HSetNx<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(HSetNx {
            key: args.bytes()?,
            field: args.bytes()?,
            value: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let now = ctx.db.now;
        let (set, expired) = ctx
            .db
            .update::<HashV, _>(self.key, true, |h| {
                let expired = h.expire_fields(now);
                if h.value(self.field, now).is_some() {
                    return ((false, expired), expired > 0);
                }
                h.insert(self.field, self.value);
                ((true, expired), true)
            })?
            .unwrap_or_default();
        notify_reclaimed(ctx, self.key, expired)?;
        if set {
            ctx.notify(Class::Hash, "hset", self.key);
        }
        Ok(Reply::Int(i64::from(set)))
    }
}

/// `HGET key field`
#[derive(Debug)]
pub struct HGet<'a> {
    key: &'a [u8],
    field: &'a [u8],
}

impl<'a> Exec<'a> for HGet<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(HGet {
            key: args.bytes()?,
            field: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let now = ctx.db.now;
        let h = read(ctx, self.key)?;
        Ok(h.and_then(|h| h.value(self.field, now).map(bulk))
            .unwrap_or(Reply::Nil))
    }
}

/// `HMGET key field [field ...]`
#[derive(Debug)]
pub struct HMGet<'a> {
    key: &'a [u8],
    fields: Vec<&'a [u8]>,
}

impl<'a> Exec<'a> for HMGet<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(HMGet {
            key: args.bytes()?,
            fields: args.rest(),
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let now = ctx.db.now;
        let h = read(ctx, self.key)?;
        Ok(Reply::Array(
            self.fields
                .iter()
                .map(|f| {
                    h.as_ref()
                        .and_then(|h| h.value(f, now))
                        .map_or(Reply::Nil, bulk)
                })
                .collect(),
        ))
    }
}

/// What HGETALL, HKEYS and HVALS return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Both,
    Fields,
    Values,
}

fn get_all(ctx: &mut ExecCtx<'_>, key: &[u8], part: Part) -> Result<Reply, CmdError> {
    let now = ctx.db.now;
    let Some(h) = read(ctx, key)? else {
        return Ok(match part {
            Part::Both => Reply::Map(Vec::new()),
            _ => Reply::Array(Vec::new()),
        });
    };
    let live = h.live(now);
    Ok(match part {
        Part::Both => Reply::Map(live.map(|(k, v)| (bulk(k), bulk(v))).collect()),
        Part::Fields => Reply::Array(live.map(|(k, _)| bulk(k)).collect()),
        Part::Values => Reply::Array(live.map(|(_, v)| bulk(v)).collect()),
    })
}

macro_rules! key_cmd {
    ($name:ident, $doc:literal, |$ctx:ident, $key:ident| $body:expr) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $name<'a> {
            key: &'a [u8],
        }

        impl<'a> Exec<'a> for $name<'a> {
            fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
                Ok($name { key: args.bytes()? })
            }
            fn exec(self, $ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
                let $key = self.key;
                $body
            }
        }
    };
}

key_cmd!(
    HGetAll,
    "`HGETALL key`: a map in RESP3, a flat array in RESP2.",
    |ctx, key| get_all(ctx, key, Part::Both)
);
key_cmd!(HKeys, "`HKEYS key`", |ctx, key| get_all(
    ctx,
    key,
    Part::Fields
));
key_cmd!(HVals, "`HVALS key`", |ctx, key| get_all(
    ctx,
    key,
    Part::Values
));
key_cmd!(
    HLen,
    "`HLEN key`: counts a field whose TTL passed until it is reclaimed, as Redis does.",
    |ctx, key| Ok(Reply::Int(read(ctx, key)?.map_or(0, |h| {
        use crate::store::Coll;
        h.len() as i64
    })))
);

/// `HDEL key field [field ...]`
#[derive(Debug)]
pub struct HDel<'a> {
    key: &'a [u8],
    fields: Vec<&'a [u8]>,
}

impl<'a> Exec<'a> for HDel<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(HDel {
            key: args.bytes()?,
            fields: args.rest(),
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let now = ctx.db.now;
        let (deleted, expired) = ctx
            .db
            .update::<HashV, _>(self.key, false, |h| {
                let expired = h.expire_fields(now);
                let deleted = self.fields.iter().filter(|f| h.remove(f)).count();
                ((deleted, expired), deleted + expired > 0)
            })?
            .unwrap_or_default();
        notify_reclaimed(ctx, self.key, expired)?;
        if deleted > 0 {
            ctx.notify(Class::Hash, "hdel", self.key);
            if expired == 0 && !ctx.db.exists(self.key)? {
                ctx.notify(Class::Generic, "del", self.key);
            }
        }
        Ok(Reply::Int(deleted as i64))
    }
}

/// `HEXISTS key field`
#[derive(Debug)]
pub struct HExists<'a> {
    key: &'a [u8],
    field: &'a [u8],
}

impl<'a> Exec<'a> for HExists<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(HExists {
            key: args.bytes()?,
            field: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let now = ctx.db.now;
        let there = read(ctx, self.key)?.is_some_and(|h| h.value(self.field, now).is_some());
        Ok(Reply::Int(i64::from(there)))
    }
}

/// `HSTRLEN key field`
#[derive(Debug)]
pub struct HStrLen<'a> {
    key: &'a [u8],
    field: &'a [u8],
}

impl<'a> Exec<'a> for HStrLen<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(HStrLen {
            key: args.bytes()?,
            field: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let now = ctx.db.now;
        let len = read(ctx, self.key)?
            .and_then(|h| h.value(self.field, now).map(|v| v.len()))
            .unwrap_or(0);
        Ok(Reply::Int(len as i64))
    }
}

/// `HINCRBY key field increment` (keeps the field's TTL, as Redis 7.4 does).
#[derive(Debug)]
pub struct HIncrBy<'a> {
    key: &'a [u8],
    field: &'a [u8],
    by: i64,
}

impl<'a> Exec<'a> for HIncrBy<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(HIncrBy {
            key: args.bytes()?,
            field: args.bytes()?,
            by: args.i64()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let now = ctx.db.now;
        let (r, expired) = ctx
            .db
            .update::<HashV, _>(self.key, true, |h| {
                let expired = h.expire_fields(now);
                let cur = match h.value(self.field, now) {
                    Some(v) => match parse_i64(v) {
                        Ok(n) => n,
                        Err(_) => {
                            let e = CmdError::err("hash value is not an integer");
                            return ((Err(e), expired), expired > 0);
                        }
                    },
                    None => 0,
                };
                let Some(new) = cur.checked_add(self.by) else {
                    let e = CmdError::Overflow;
                    return ((Err(e), expired), expired > 0);
                };
                let mut buf = itoa::Buffer::new();
                h.insert_keep_ttl(self.field, buf.format(new).as_bytes(), now);
                ((Ok(new), expired), true)
            })?
            .unwrap_or((Ok(0), 0));
        notify_reclaimed(ctx, self.key, expired)?;
        let new = r?;
        ctx.notify(Class::Hash, "hincrby", self.key);
        Ok(Reply::Int(new))
    }
}

/// `HINCRBYFLOAT key field increment` (keeps the field's TTL; the result is formatted as
/// INCRBYFLOAT's).
#[derive(Debug)]
pub struct HIncrByFloat<'a> {
    key: &'a [u8],
    field: &'a [u8],
    by: f64,
}

impl<'a> Exec<'a> for HIncrByFloat<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        let field = args.bytes()?;
        let by = args.f64()?;
        if !by.is_finite() {
            return Err(CmdError::err("value is NaN or Infinity"));
        }
        Ok(HIncrByFloat { key, field, by })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let now = ctx.db.now;
        let (r, expired) = ctx
            .db
            .update::<HashV, _>(self.key, true, |h| {
                let expired = h.expire_fields(now);
                let cur = match h.value(self.field, now) {
                    Some(v) => match parse_f64(v) {
                        Ok(n) => n,
                        Err(_) => {
                            let e = CmdError::err("hash value is not a float");
                            return ((Err(e), expired), expired > 0);
                        }
                    },
                    None => 0.0,
                };
                let new = cur + self.by;
                if !new.is_finite() {
                    let e = CmdError::err("increment would produce NaN or Infinity");
                    return ((Err(e), expired), expired > 0);
                }
                let text = Bytes::from(super::strings::format_float(new));
                h.insert_keep_ttl(self.field, &text, now);
                ((Ok(text), expired), true)
            })?
            .unwrap_or((Ok(Bytes::new()), 0));
        notify_reclaimed(ctx, self.key, expired)?;
        let text = r?;
        ctx.notify(Class::Hash, "hincrbyfloat", self.key);
        Ok(Reply::Bulk(text))
    }
}

/// `HRANDFIELD key [count [WITHVALUES]]`
#[derive(Debug)]
pub struct HRandField<'a> {
    key: &'a [u8],
    count: Option<i64>,
    with_values: bool,
}

impl<'a> Exec<'a> for HRandField<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        let Some(c) = args.next_opt() else {
            return Ok(HRandField {
                key,
                count: None,
                with_values: false,
            });
        };
        let count = parse_i64(c)?;
        if count == i64::MIN {
            return Err(CmdError::err(format!(
                "value is out of range, value must between {} and {}",
                -i64::MAX,
                i64::MAX
            )));
        }
        let with_values = match args.rest()[..] {
            [] => false,
            [w] if w.eq_ignore_ascii_case(b"withvalues") => true,
            _ => return Err(CmdError::Syntax),
        };
        if with_values && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
            return Err(CmdError::err("value is out of range"));
        }
        Ok(HRandField {
            key,
            count: Some(count),
            with_values,
        })
    }

    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let now = ctx.db.now;
        let proto = ctx.client.proto;
        let Some(h) = read(ctx, self.key)? else {
            return Ok(match self.count {
                None => Reply::Nil,
                Some(_) => Reply::Array(Vec::new()),
            });
        };
        // The live fields by position: the hash's own positions unless a field may have
        // expired, then a list of the live ones.
        let live: Option<Vec<(&Str, &Str)>> = h.is_due(now).then(|| h.live(now).collect());
        let size = live.as_ref().map_or_else(
            || {
                use crate::store::Coll;
                h.len()
            },
            Vec::len,
        );
        let at = |i: usize| -> Option<(&Str, &Str)> {
            match &live {
                Some(v) => v.get(i).copied(),
                None => h.live_index(i, now),
            }
        };
        let Some(count) = self.count else {
            if size == 0 {
                return Ok(Reply::Nil);
            }
            return Ok(at(fastrand::usize(..size)).map_or(Reply::Nil, |(k, _)| bulk(k)));
        };
        if count == 0 || size == 0 {
            return Ok(Reply::Array(Vec::new()));
        }
        let picks: Vec<usize> = if count < 0 {
            let n = count.unsigned_abs();
            if n > MAX_RANDOM_REPEATS {
                return Err(CmdError::err("value is out of range"));
            }
            (0..n).map(|_| fastrand::usize(..size)).collect()
        } else if count as u64 >= size as u64 {
            (0..size).collect()
        } else {
            // `count` distinct positions: a partial Fisher-Yates shuffle.
            let mut all: Vec<usize> = (0..size).collect();
            let n = count as usize;
            for i in 0..n {
                let j = fastrand::usize(i..size);
                all.swap(i, j);
            }
            all.truncate(n);
            all
        };
        let mut out = Vec::with_capacity(picks.len() * if self.with_values { 2 } else { 1 });
        for (k, v) in picks.into_iter().filter_map(at) {
            match (self.with_values, proto) {
                (false, _) => out.push(bulk(k)),
                (true, Proto::Resp3) => out.push(Reply::Array(vec![bulk(k), bulk(v)])),
                (true, Proto::Resp2) => out.extend([bulk(k), bulk(v)]),
            }
        }
        Ok(Reply::Array(out))
    }
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]`. Options are checked after
/// the key is looked up, as in Redis (a missing key answers an empty page whatever they
/// are). See [`HashV::scan`] for the cursor.
#[derive(Debug)]
pub struct HScan<'a> {
    key: &'a [u8],
    cursor: u64,
    opts: Vec<&'a [u8]>,
}

impl<'a> Exec<'a> for HScan<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        let cursor = super::keys::parse_cursor(args.bytes()?)?;
        Ok(HScan {
            key,
            cursor,
            opts: args.rest(),
        })
    }

    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let now = ctx.db.now;
        let empty = || Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]);
        let Some(h) = read(ctx, self.key)? else {
            return Ok(empty());
        };
        // Options after the lookup, as in Redis: a missing key answers an empty scan.
        let mut no_values = false;
        let o = super::keys::scan_options(&self.opts, |opt, _| {
            no_values |= opt.eq_ignore_ascii_case(b"NOVALUES");
            usize::from(opt.eq_ignore_ascii_case(b"NOVALUES"))
        })?;
        let (count, pat) = (o.count, o.pattern);
        let (next, page) = h.scan(self.cursor, count, now);
        let mut out = Vec::with_capacity(page.len() * 2);
        for (k, v) in page {
            if pat.is_some_and(|p| !pattern::matches(p, k, false)) {
                continue;
            }
            out.push(bulk(k));
            if !no_values {
                out.push(bulk(v));
            }
        }
        Ok(Reply::Array(vec![
            Reply::Bulk(Bytes::from(next.to_string())),
            Reply::Array(out),
        ]))
    }
}

/// The `FIELDS numfields field ...` tail of the field-expiry commands, checked as Redis
/// does (after the key's type): `at` is where `FIELDS` must be.
fn fields_arg<'a>(
    args: &[&'a [u8]],
    at: usize,
    bad_count: &'static str,
) -> Result<Vec<&'a [u8]>, CmdError> {
    if !args
        .get(at)
        .is_some_and(|a| a.eq_ignore_ascii_case(b"FIELDS"))
    {
        return Err(CmdError::err(
            "Mandatory argument FIELDS is missing or not at the right position",
        ));
    }
    let n = args
        .get(at + 1)
        .and_then(|a| parse_i64(a).ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| CmdError::err(bad_count))?;
    let fields = args.get(at + 2..).unwrap_or_default();
    if n as u64 != fields.len() as u64 {
        return Err(CmdError::err(
            "The `numfields` parameter must match the number of arguments",
        ));
    }
    Ok(fields.to_vec())
}

/// How an HEXPIRE-family command reads its time.
#[derive(Debug, Clone, Copy)]
enum Unit {
    RelSecs,
    RelMillis,
    AbsSecs,
    AbsMillis,
}

/// The body of HEXPIRE, HPEXPIRE, HEXPIREAT and HPEXPIREAT:
/// `key time [NX | XX | GT | LT] FIELDS numfields field [field ...]`. Replies per field:
/// -2 no such field, 0 condition not met, 1 expiry set, 2 deleted (the time has passed).
#[derive(Debug)]
pub struct FieldExpire<'a> {
    key: &'a [u8],
    args: Vec<&'a [u8]>,
}

/// Per-field results of HEXPIRE.
const NO_FIELD: i64 = -2;
const NOT_MET: i64 = 0;
const SET: i64 = 1;
const DELETED: i64 = 2;

impl<'a> FieldExpire<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(FieldExpire {
            key: args.bytes()?,
            args: args.rest(),
        })
    }

    fn run(self, ctx: &mut ExecCtx<'_>, unit: Unit, cmd: &str) -> Result<Reply, CmdError> {
        let now = ctx.db.now;
        let exists = ctx.db.peek_coll::<HashV>(self.key)?.is_some();
        let mut when = parse_i64(self.args.first().copied().unwrap_or_default())?;
        if when < 0 {
            return Err(CmdError::err("invalid expire time, must be >= 0"));
        }
        if matches!(unit, Unit::RelSecs | Unit::AbsSecs) {
            if when > MAX_FIELD_EXPIRE / 1000 {
                return Err(CmdError::invalid_expire(cmd));
            }
            when *= 1000;
        }
        let base = match unit {
            Unit::RelSecs | Unit::RelMillis => now as i64,
            Unit::AbsSecs | Unit::AbsMillis => 0,
        };
        if when > MAX_FIELD_EXPIRE - base {
            return Err(CmdError::invalid_expire(cmd));
        }
        let at = (when + base) as u64;
        let cond = self.args.get(1).map(|a| a.to_ascii_uppercase());
        let (cond, fields_at) = match cond.as_deref() {
            Some(c @ (b"NX" | b"XX" | b"GT" | b"LT")) => (Some(c.to_vec()), 2),
            _ => (None, 1),
        };
        let fields = fields_arg(
            &self.args,
            fields_at,
            "Parameter `numFields` should be greater than 0",
        )?;
        if !exists {
            return Ok(Reply::Array(vec![Reply::Int(NO_FIELD); fields.len()]));
        }
        let (codes, expired) = ctx
            .db
            .update::<HashV, _>(self.key, false, |h| {
                let expired = h.expire_fields(now);
                let codes: Vec<i64> = fields
                    .iter()
                    .map(|f| {
                        let Some(prev) =
                            h.get(f).filter(|x| !x.is_expired(now)).map(|x| x.expire_at)
                        else {
                            return NO_FIELD;
                        };
                        let met = match cond.as_deref() {
                            None => true,
                            Some(b"NX") => prev == 0,
                            Some(b"XX") => prev != 0,
                            Some(b"GT") => prev != 0 && at > prev,
                            Some(b"LT") => prev == 0 || at < prev,
                            Some(_) => false,
                        };
                        if !met {
                            NOT_MET
                        } else if at <= now {
                            h.remove(f);
                            DELETED
                        } else {
                            h.set_expire(f, at);
                            SET
                        }
                    })
                    .collect();
                let changed = expired > 0 || codes.iter().any(|c| *c == SET || *c == DELETED);
                ((codes, expired), changed)
            })?
            .unwrap_or_default();
        notify_reclaimed(ctx, self.key, expired)?;
        let deleted = codes.contains(&DELETED);
        if deleted && !ctx.db.exists(self.key)? {
            ctx.notify(Class::Hash, "hdel", self.key);
            ctx.notify(Class::Generic, "del", self.key);
        } else if deleted {
            ctx.notify(Class::Hash, "hdel", self.key);
        } else if codes.contains(&SET) {
            ctx.notify(Class::Hash, "hexpire", self.key);
        }
        if codes.is_empty() {
            // The hash was gone after all (its last fields expired just now).
            return Ok(Reply::Array(vec![Reply::Int(NO_FIELD); fields.len()]));
        }
        Ok(Reply::Array(codes.into_iter().map(Reply::Int).collect()))
    }
}

unit_variant!(
    HExpire,
    FieldExpire,
    Unit::RelSecs,
    "hexpire",
    "`HEXPIRE key seconds [NX | XX | GT | LT] FIELDS numfields field [field ...]`"
);
unit_variant!(
    HPExpire,
    FieldExpire,
    Unit::RelMillis,
    "hpexpire",
    "`HPEXPIRE key milliseconds [NX | XX | GT | LT] FIELDS numfields field [field ...]`"
);
unit_variant!(
    HExpireAt,
    FieldExpire,
    Unit::AbsSecs,
    "hexpireat",
    "`HEXPIREAT key unix-seconds [NX | XX | GT | LT] FIELDS numfields field [field ...]`"
);
unit_variant!(
    HPExpireAt,
    FieldExpire,
    Unit::AbsMillis,
    "hpexpireat",
    "`HPEXPIREAT key unix-ms [NX | XX | GT | LT] FIELDS numfields field [field ...]`"
);

/// What the HTTL family reports for a field with a TTL.
#[derive(Debug, Clone, Copy)]
enum Report {
    TtlSecs,
    TtlMillis,
    AtSecs,
    AtMillis,
}

/// The body of HTTL, HPTTL, HEXPIRETIME and HPEXPIRETIME: `key FIELDS numfields field
/// [field ...]`. Per field: -2 no such field, -1 no TTL, else the time (seconds are
/// rounded up, as Redis does).
#[derive(Debug)]
pub struct FieldTtl<'a> {
    key: &'a [u8],
    args: Vec<&'a [u8]>,
}

impl<'a> FieldTtl<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(FieldTtl {
            key: args.bytes()?,
            args: args.rest(),
        })
    }

    fn run(self, ctx: &mut ExecCtx<'_>, what: Report) -> Result<Reply, CmdError> {
        let now = ctx.db.now;
        let h = read(ctx, self.key)?;
        let fields = fields_arg(&self.args, 0, "Number of fields must be a positive integer")?;
        let code = |f: &[u8]| -> i64 {
            let Some(x) = h
                .as_ref()
                .and_then(|h| h.get(f))
                .filter(|x| !x.is_expired(now))
            else {
                return NO_FIELD;
            };
            if x.expire_at == 0 {
                return -1;
            }
            let at = i64::try_from(x.expire_at).unwrap_or(i64::MAX);
            let base = match what {
                Report::TtlSecs | Report::TtlMillis => now as i64,
                Report::AtSecs | Report::AtMillis => 0,
            };
            match what {
                Report::TtlSecs | Report::AtSecs => {
                    at.saturating_add(999).saturating_sub(base) / 1000
                }
                Report::TtlMillis | Report::AtMillis => at.saturating_sub(base),
            }
        };
        Ok(Reply::Array(
            fields.iter().map(|f| Reply::Int(code(f))).collect(),
        ))
    }
}

macro_rules! field_ttl_cmd {
    ($name:ident, $what:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $name<'a>(FieldTtl<'a>);

        impl<'a> Exec<'a> for $name<'a> {
            fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
                Ok($name(FieldTtl::parse(args)?))
            }
            fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
                self.0.run(ctx, $what)
            }
        }
    };
}

field_ttl_cmd!(
    HTtl,
    Report::TtlSecs,
    "`HTTL key FIELDS numfields field [field ...]`: seconds left per field."
);
field_ttl_cmd!(
    HPTtl,
    Report::TtlMillis,
    "`HPTTL key FIELDS numfields field [field ...]`: milliseconds left per field."
);
field_ttl_cmd!(
    HExpireTime,
    Report::AtSecs,
    "`HEXPIRETIME key FIELDS numfields field [field ...]`: deadlines in unix seconds."
);
field_ttl_cmd!(
    HPExpireTime,
    Report::AtMillis,
    "`HPEXPIRETIME key FIELDS numfields field [field ...]`: deadlines in unix ms."
);

/// `HPERSIST key FIELDS numfields field [field ...]`: per field -2 no such field, -1 no
/// TTL, 1 TTL removed.
#[derive(Debug)]
pub struct HPersist<'a>(FieldTtl<'a>);

impl<'a> Exec<'a> for HPersist<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(HPersist(FieldTtl::parse(args)?))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let now = ctx.db.now;
        let key = self.0.key;
        let exists = ctx.db.peek_coll::<HashV>(key)?.is_some();
        let fields = fields_arg(
            &self.0.args,
            0,
            "Number of fields must be a positive integer",
        )?;
        if !exists {
            return Ok(Reply::Array(vec![Reply::Int(NO_FIELD); fields.len()]));
        }
        let (codes, expired) = ctx
            .db
            .update::<HashV, _>(key, false, |h| {
                let expired = h.expire_fields(now);
                let codes: Vec<i64> = fields
                    .iter()
                    .map(|f| match h.get(f).filter(|x| !x.is_expired(now)) {
                        None => NO_FIELD,
                        Some(x) if x.expire_at == 0 => -1,
                        Some(_) => {
                            h.set_expire(f, 0);
                            1
                        }
                    })
                    .collect();
                let changed = expired > 0 || codes.contains(&1);
                ((codes, expired), changed)
            })?
            .unwrap_or_default();
        notify_reclaimed(ctx, key, expired)?;
        if codes.contains(&1) {
            ctx.notify(Class::Hash, "hpersist", key);
        }
        if codes.is_empty() {
            return Ok(Reply::Array(vec![Reply::Int(NO_FIELD); fields.len()]));
        }
        Ok(Reply::Array(codes.into_iter().map(Reply::Int).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<'a, C: Exec<'a>>(items: &'a [&'a [u8]]) -> Result<C, CmdError> {
        C::parse(&mut Args::new(items))
    }

    #[test]
    fn hset_needs_pairs() {
        let odd: [&[u8]; 4] = [b"k", b"f", b"v", b"g"];
        let e = parse::<HSet>(&odd).err();
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("ERR wrong number of arguments for 'hset' command".to_string())
        );
        let e = parse::<HMSet>(&odd).err();
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("ERR wrong number of arguments for 'hmset' command".to_string())
        );
        let ok: [&[u8]; 5] = [b"k", b"f", b"v", b"g", b"w"];
        assert!(parse::<HSet>(&ok).is_ok());
    }

    #[test]
    fn hrandfield_arguments() {
        let bad: [&[u8]; 3] = [b"k", b"1", b"values"];
        assert!(matches!(parse::<HRandField>(&bad), Err(CmdError::Syntax)));
        let big: [&[u8]; 3] = [b"k", b"-9223372036854775807", b"WITHVALUES"];
        assert_eq!(
            parse::<HRandField>(&big).err().map(|e| e.to_string()),
            Some("ERR value is out of range".to_string())
        );
        let min: [&[u8]; 2] = [b"k", b"-9223372036854775808"];
        assert_eq!(
            parse::<HRandField>(&min).err().map(|e| e.to_string()),
            Some(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
                    .to_string()
            )
        );
        let nan: [&[u8]; 2] = [b"k", b"x"];
        assert!(matches!(
            parse::<HRandField>(&nan),
            Err(CmdError::NotInteger)
        ));
    }

    #[test]
    fn fields_tail_errors_match_redis() {
        let msg = |args: &[&[u8]], at| {
            fields_arg(args, at, "bad count")
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(
            msg(&[b"FIELD", b"1", b"f"], 0),
            Some("ERR Mandatory argument FIELDS is missing or not at the right position".into())
        );
        assert_eq!(
            msg(&[b"fields", b"0", b"f"], 0),
            Some("ERR bad count".into())
        );
        assert_eq!(
            msg(&[b"fields", b"x", b"f"], 0),
            Some("ERR bad count".into())
        );
        assert_eq!(
            msg(&[b"fields", b"2", b"f"], 0),
            Some("ERR The `numfields` parameter must match the number of arguments".into())
        );
        assert_eq!(
            fields_arg(&[b"NX", b"FIELDS", b"2", b"f", b"g"], 1, "x").ok(),
            Some(vec![&b"f"[..], b"g"])
        );
    }

    #[test]
    fn hincrbyfloat_refuses_infinite_increments() {
        let inf: [&[u8]; 3] = [b"k", b"f", b"inf"];
        assert_eq!(
            parse::<HIncrByFloat>(&inf).err().map(|e| e.to_string()),
            Some("ERR value is NaN or Infinity".to_string())
        );
        let nan: [&[u8]; 3] = [b"k", b"f", b"nan"];
        assert!(matches!(
            parse::<HIncrByFloat>(&nan),
            Err(CmdError::NotFloat)
        ));
    }
}
