//! Set commands: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SMOVE
//! SINTER SINTERCARD SUNION SDIFF SINTERSTORE SUNIONSTORE SDIFFSTORE SSCAN.
//!
//! Every access goes through `Db::read`/`Db::update` (WRONGTYPE, tiers, accounting,
//! effects). Replies that Redis 7 sends as sets (SMEMBERS, SINTER, SPOP with a count, ...)
//! are [`Reply::Set`]: a RESP3 set, an array in RESP2.

use bytes::Bytes;

use super::{CmdError, Exec, ExecCtx};
use crate::protocol::Reply;
use crate::protocol::args::{Args, parse_i64};
use crate::server::notify::Class;
use crate::store::types::{scan_hash, scan_page};
use crate::store::{Coll, Kind, SetV, Str, Ttl};

/// A set reply of members.
fn set_reply<'s>(members: impl IntoIterator<Item = &'s Str>) -> Reply {
    Reply::Set(
        members
            .into_iter()
            .map(|m| Reply::Bulk(m.to_bytes()))
            .collect(),
    )
}

/// WRONGTYPE unless `key` is missing or a set.
fn check_set(ctx: &mut ExecCtx<'_>, key: &[u8]) -> Result<bool, CmdError> {
    match ctx.db.kind_of(key)? {
        None => Ok(false),
        Some(Kind::Set) => Ok(true),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Runs `f` on the set at `key` (`None` when missing): a read lookup, or a write's look
/// without counting when `write` (the inputs of a STORE form, as Redis's
/// `lookupKeyWrite`).
fn with_set<R>(
    ctx: &mut ExecCtx<'_>,
    key: &[u8],
    write: bool,
    f: impl FnOnce(Option<&SetV>) -> R,
) -> Result<R, CmdError> {
    let s = if write {
        ctx.db.peek_coll::<SetV>(key)?
    } else {
        ctx.db.read::<SetV>(key)?
    };
    Ok(f(s.as_deref()))
}

/// Parses a `numkeys` argument the way SINTERCARD and ZINTERCARD do.
pub(crate) fn numkeys(args: &mut Args<'_>) -> Result<usize, CmdError> {
    let n = parse_i64(args.bytes()?)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| CmdError::err("numkeys should be greater than 0"))?;
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n > args.remaining() {
        return Err(CmdError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    Ok(n)
}

/// Parses `[LIMIT limit]` after the keys of SINTERCARD/ZINTERCARD (0: no limit).
pub(crate) fn card_limit(args: &mut Args<'_>) -> Result<usize, CmdError> {
    let mut limit = 0;
    while !args.is_empty() {
        if args.remaining() >= 2 && args.eat("LIMIT") {
            let l = parse_i64(args.bytes()?)
                .ok()
                .filter(|l| *l >= 0)
                .ok_or_else(|| CmdError::err("LIMIT can't be negative"))?;
            limit = usize::try_from(l).unwrap_or(usize::MAX);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(limit)
}

/// `SADD key member [member ...]`
#[derive(Debug)]
pub struct SAdd<'a> {
    key: &'a [u8],
    members: Vec<&'a [u8]>,
}

impl<'a> Exec<'a> for SAdd<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(SAdd {
            key: args.bytes()?,
            members: args.rest(),
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let added = ctx
            .db
            .update::<SetV, usize>(self.key, true, |s| {
                let n = self.members.iter().filter(|m| s.insert(m)).count();
                (n, n > 0)
            })?
            .unwrap_or(0);
        if added > 0 {
            ctx.notify(Class::Set, "sadd", self.key);
        }
        Ok(Reply::Int(added as i64))
    }
}

/// `SREM key member [member ...]`
#[derive(Debug)]
pub struct SRem<'a> {
    key: &'a [u8],
    members: Vec<&'a [u8]>,
}

impl<'a> Exec<'a> for SRem<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(SRem {
            key: args.bytes()?,
            members: args.rest(),
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let (removed, emptied) = ctx
            .db
            .update::<SetV, _>(self.key, false, |s| {
                let n = self.members.iter().filter(|m| s.remove(m)).count();
                ((n, s.is_empty()), n > 0)
            })?
            .unwrap_or((0, false));
        if removed > 0 {
            ctx.notify(Class::Set, "srem", self.key);
            if emptied {
                ctx.notify(Class::Generic, "del", self.key);
            }
        }
        Ok(Reply::Int(removed as i64))
    }
}

/// `SMEMBERS key`
#[derive(Debug)]
pub struct SMembers<'a> {
    key: &'a [u8],
}

impl<'a> Exec<'a> for SMembers<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(SMembers { key: args.bytes()? })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        with_set(ctx, self.key, false, |s| {
            set_reply(s.into_iter().flat_map(SetV::iter))
        })
    }
}

/// `SISMEMBER key member`
#[derive(Debug)]
pub struct SIsMember<'a> {
    key: &'a [u8],
    member: &'a [u8],
}

impl<'a> Exec<'a> for SIsMember<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(SIsMember {
            key: args.bytes()?,
            member: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        with_set(ctx, self.key, false, |s| {
            Reply::Int(i64::from(s.is_some_and(|s| s.contains(self.member))))
        })
    }
}

/// `SMISMEMBER key member [member ...]`
#[derive(Debug)]
pub struct SMIsMember<'a> {
    key: &'a [u8],
    members: Vec<&'a [u8]>,
}

impl<'a> Exec<'a> for SMIsMember<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(SMIsMember {
            key: args.bytes()?,
            members: args.rest(),
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        with_set(ctx, self.key, false, |s| {
            Reply::Array(
                self.members
                    .iter()
                    .map(|m| Reply::Int(i64::from(s.is_some_and(|s| s.contains(m)))))
                    .collect(),
            )
        })
    }
}

/// `SCARD key`
#[derive(Debug)]
pub struct SCard<'a> {
    key: &'a [u8],
}

impl<'a> Exec<'a> for SCard<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(SCard { key: args.bytes()? })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        with_set(ctx, self.key, false, |s| {
            Reply::Int(s.map_or(0, |s| s.len() as i64))
        })
    }
}

/// `SPOP key [count]`
#[derive(Debug)]
pub struct SPop<'a> {
    key: &'a [u8],
    count: Option<usize>,
}

impl<'a> Exec<'a> for SPop<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        let count = match args.next_opt() {
            None => None,
            Some(c) => Some(positive(c)?),
        };
        if !args.is_empty() {
            return Err(CmdError::Syntax);
        }
        Ok(SPop { key, count })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let want = self.count.unwrap_or(1);
        let popped = if want == 0 {
            // Still a type check, as Redis does.
            check_set(ctx, self.key)?;
            Some((Vec::new(), false))
        } else {
            ctx.db.update::<SetV, _>(self.key, false, |s| {
                let mut out = Vec::with_capacity(want.min(s.len()));
                while out.len() < want && !s.is_empty() {
                    if let Some(m) = s.take_index(fastrand::usize(..s.len())) {
                        out.push(m.to_bytes());
                    }
                }
                ((out, s.is_empty()), true)
            })?
        };
        let (popped, emptied) = popped.unwrap_or_default();
        if !popped.is_empty() {
            ctx.notify(Class::Set, "spop", self.key);
            if emptied {
                ctx.notify(Class::Generic, "del", self.key);
            }
        }
        Ok(match self.count {
            None => Reply::opt_bulk(popped.into_iter().next()),
            Some(_) => Reply::Set(popped.into_iter().map(Reply::Bulk).collect()),
        })
    }
}

/// Parses a count that must be 0 or more (SPOP, ZPOPMIN): Redis's
/// `getPositiveLongFromObjectOrReply`, whose error covers non-integers too.
pub(crate) fn positive(b: &[u8]) -> Result<usize, CmdError> {
    parse_i64(b)
        .ok()
        .and_then(|c| usize::try_from(c).ok())
        .ok_or_else(|| CmdError::err("value is out of range, must be positive"))
}

/// Picks `count` distinct positions out of `0..len` (all of them when `count >= len`).
pub(crate) fn distinct_positions(len: usize, count: usize) -> Vec<usize> {
    if count >= len {
        return (0..len).collect();
    }
    if count.saturating_mul(4) < len {
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let i = fastrand::usize(..len);
            if seen.insert(i) {
                out.push(i);
            }
        }
        return out;
    }
    let mut all: Vec<usize> = (0..len).collect();
    for i in 0..count {
        let j = fastrand::usize(i..len);
        all.swap(i, j);
    }
    all.truncate(count);
    all
}

/// Parses the count of SRANDMEMBER/ZRANDMEMBER: (how many, distinct?). Redis refuses
/// only i64::MIN (`-LONG_MAX` is the floor).
pub(crate) fn rand_count(b: &[u8]) -> Result<(usize, bool), CmdError> {
    let c = parse_i64(b)?;
    if c == i64::MIN {
        return Err(CmdError::err(
            "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    Ok((
        usize::try_from(c.unsigned_abs()).unwrap_or(usize::MAX),
        c >= 0,
    ))
}

/// `SRANDMEMBER key [count]`
#[derive(Debug)]
pub struct SRandMember<'a> {
    key: &'a [u8],
    count: Option<(usize, bool)>,
}

impl<'a> Exec<'a> for SRandMember<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        let count = args.next_opt().map(rand_count).transpose()?;
        if !args.is_empty() {
            return Err(CmdError::Syntax);
        }
        Ok(SRandMember { key, count })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        with_set(ctx, self.key, false, |s| {
            let Some((n, distinct)) = self.count else {
                return Reply::opt_bulk(
                    s.filter(|s| !s.is_empty())
                        .and_then(|s| s.get_index(fastrand::usize(..s.len())))
                        .map(Str::to_bytes),
                );
            };
            let Some(s) = s.filter(|s| !s.is_empty()) else {
                return Reply::Array(Vec::new());
            };
            let pick = |i: usize| {
                s.get_index(i)
                    .map_or(Reply::Nil, |m| Reply::Bulk(m.to_bytes()))
            };
            if distinct {
                Reply::Array(
                    distinct_positions(s.len(), n)
                        .into_iter()
                        .map(pick)
                        .collect(),
                )
            } else {
                Reply::Array((0..n).map(|_| pick(fastrand::usize(..s.len()))).collect())
            }
        })
    }
}

/// `SMOVE source destination member`
#[derive(Debug)]
pub struct SMove<'a> {
    src: &'a [u8],
    dst: &'a [u8],
    member: &'a [u8],
}

impl<'a> Exec<'a> for SMove<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(SMove {
            src: args.bytes()?,
            dst: args.bytes()?,
            member: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        if !check_set(ctx, self.src)? {
            return Ok(Reply::Int(0));
        }
        check_set(ctx, self.dst)?;
        if self.src == self.dst {
            return with_set(ctx, self.src, true, |s| {
                Reply::Int(i64::from(s.is_some_and(|s| s.contains(self.member))))
            });
        }
        let Some((true, emptied)) = ctx.db.update::<SetV, _>(self.src, false, |s| {
            let gone = s.remove(self.member);
            ((gone, s.is_empty()), gone)
        })?
        else {
            return Ok(Reply::Int(0));
        };
        ctx.notify(Class::Set, "srem", self.src);
        if emptied {
            ctx.notify(Class::Generic, "del", self.src);
        }
        let added = ctx
            .db
            .update::<SetV, bool>(self.dst, true, |s| {
                let a = s.insert(self.member);
                (a, a)
            })?
            .unwrap_or(false);
        if added {
            ctx.notify(Class::Set, "sadd", self.dst);
        }
        Ok(Reply::Int(1))
    }
}

/// Which set operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// Computes `op` over the sets at `keys` (missing keys are empty sets). WRONGTYPE if any
/// key holds another type, checked before anything is computed, as Redis does.
fn compute(ctx: &mut ExecCtx<'_>, op: Op, keys: &[&[u8]], write: bool) -> Result<SetV, CmdError> {
    let mut missing = false;
    for k in keys {
        missing |= !check_set(ctx, k)?;
    }
    let mut out = SetV::default();
    let Some((first, rest)) = keys.split_first() else {
        return Ok(out);
    };
    match op {
        Op::Inter if missing => {}
        Op::Inter => {
            let mut left: Vec<Str> = with_set(ctx, first, write, |s| {
                s.map(|s| s.iter().cloned().collect())
            })?
            .unwrap_or_default();
            for k in rest {
                if left.is_empty() {
                    break;
                }
                with_set(ctx, k, write, |s| {
                    left.retain(|m| s.is_some_and(|s| s.contains(m)));
                })?;
            }
            for m in &left {
                out.insert(m);
            }
        }
        Op::Union => {
            for k in keys {
                with_set(ctx, k, write, |s| {
                    for m in s.into_iter().flat_map(SetV::iter) {
                        out.insert(m);
                    }
                })?;
            }
        }
        Op::Diff => {
            if let Some(s) = with_set(ctx, first, write, |s| s.cloned())? {
                out = s;
            }
            for k in rest {
                if out.is_empty() {
                    break;
                }
                with_set(ctx, k, write, |s| {
                    for m in s.into_iter().flat_map(SetV::iter) {
                        out.remove(m);
                    }
                })?;
            }
        }
    }
    Ok(out)
}

/// Stores `set` at `dst` (deleting `dst` when it is empty, as Redis does); the reply is
/// the result's size.
fn store(
    ctx: &mut ExecCtx<'_>,
    dst: &[u8],
    set: SetV,
    event: &'static str,
) -> Result<Reply, CmdError> {
    let n = set.len();
    if n == 0 {
        if ctx.db.del(dst)? {
            ctx.notify(Class::Generic, "del", dst);
        }
    } else {
        ctx.db.set(dst, set.into_value(), Ttl::Clear)?;
        ctx.notify(Class::Set, event, dst);
    }
    Ok(Reply::Int(n as i64))
}

/// `SINTER key [key ...]`
#[derive(Debug)]
pub struct SInter<'a> {
    keys: Vec<&'a [u8]>,
}

/// `SUNION key [key ...]`
#[derive(Debug)]
pub struct SUnion<'a> {
    keys: Vec<&'a [u8]>,
}

/// `SDIFF key [key ...]`
#[derive(Debug)]
pub struct SDiff<'a> {
    keys: Vec<&'a [u8]>,
}

/// `SINTERSTORE destination key [key ...]`
#[derive(Debug)]
pub struct SInterStore<'a> {
    dst: &'a [u8],
    keys: Vec<&'a [u8]>,
}

/// `SUNIONSTORE destination key [key ...]`
#[derive(Debug)]
pub struct SUnionStore<'a> {
    dst: &'a [u8],
    keys: Vec<&'a [u8]>,
}

/// `SDIFFSTORE destination key [key ...]`
#[derive(Debug)]
pub struct SDiffStore<'a> {
    dst: &'a [u8],
    keys: Vec<&'a [u8]>,
}

macro_rules! set_op {
    ($ty:ident, $op:expr) => {
        impl<'a> Exec<'a> for $ty<'a> {
            fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
                Ok($ty { keys: args.rest() })
            }
            fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
                let s = compute(ctx, $op, &self.keys, false)?;
                Ok(set_reply(s.iter()))
            }
        }
    };
    ($ty:ident, $op:expr, $event:literal) => {
        impl<'a> Exec<'a> for $ty<'a> {
            fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
                Ok($ty {
                    dst: args.bytes()?,
                    keys: args.rest(),
                })
            }
            fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
                let s = compute(ctx, $op, &self.keys, true)?;
                store(ctx, self.dst, s, $event)
            }
        }
    };
}

set_op!(SInter, Op::Inter);
set_op!(SUnion, Op::Union);
set_op!(SDiff, Op::Diff);
set_op!(SInterStore, Op::Inter, "sinterstore");
set_op!(SUnionStore, Op::Union, "sunionstore");
set_op!(SDiffStore, Op::Diff, "sdiffstore");

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`
#[derive(Debug)]
pub struct SInterCard<'a> {
    keys: Vec<&'a [u8]>,
    limit: usize,
}

impl<'a> Exec<'a> for SInterCard<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let n = numkeys(args)?;
        let keys = (0..n).map(|_| args.bytes()).collect::<Result<_, _>>()?;
        let limit = card_limit(args)?;
        Ok(SInterCard { keys, limit })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let s = compute(ctx, Op::Inter, &self.keys, false)?;
        let n = match self.limit {
            0 => s.len(),
            l => s.len().min(l),
        };
        Ok(Reply::Int(n as i64))
    }
}

/// The arguments of SSCAN/ZSCAN after the key: `cursor [MATCH pattern] [COUNT count]`.
#[derive(Debug)]
pub(crate) struct ScanArgs<'a> {
    /// Where to resume (0: from the start).
    pub cursor: u64,
    /// MATCH pattern.
    pub pattern: Option<&'a [u8]>,
    /// COUNT hint (10 by default, as Redis).
    pub count: usize,
}

impl<'a> ScanArgs<'a> {
    /// Parses them with Redis's errors.
    pub fn parse(args: &mut Args<'a>) -> Result<ScanArgs<'a>, CmdError> {
        let cursor = super::keys::parse_cursor(args.bytes()?)?;
        let o = super::keys::scan_options(&args.rest(), |_, _| 0)?;
        Ok(ScanArgs {
            cursor,
            pattern: o.pattern,
            count: o.count,
        })
    }

    /// One page over `items` (member, payload): all of them when `compact` (Redis returns
    /// a small collection in one call), else the page at the cursor in hash order; then
    /// MATCH filters the page. Returns the reply's cursor and the kept payloads.
    pub fn page<T>(
        &self,
        compact: bool,
        items: impl Iterator<Item = (Str, T)>,
    ) -> (u64, Vec<(Str, T)>) {
        let (next, page) = if compact {
            (0, items.collect())
        } else {
            scan_page(
                items.map(|(m, t)| (scan_hash(&m), (m, t))),
                self.cursor,
                self.count,
            )
        };
        let kept = match self.pattern {
            None => page,
            Some(p) => page
                .into_iter()
                .filter(|(m, _)| crate::store::pattern::matches(p, m, false))
                .collect(),
        };
        (next, kept)
    }
}

/// The SSCAN/ZSCAN reply: the cursor, then the flat elements.
pub(crate) fn scan_reply(next: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(items),
    ])
}

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`
#[derive(Debug)]
pub struct SScan<'a> {
    key: &'a [u8],
    scan: ScanArgs<'a>,
}

impl<'a> Exec<'a> for SScan<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(SScan {
            key: args.bytes()?,
            scan: ScanArgs::parse(args)?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let (next, page) = with_set(ctx, self.key, false, |s| match s {
            None => (0, Vec::new()),
            Some(s) => self
                .scan
                .page(s.is_compact(), s.iter().map(|m| (m.clone(), ()))),
        })?;
        Ok(scan_reply(
            next,
            page.into_iter()
                .map(|(m, ())| Reply::Bulk(m.to_bytes()))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<'a, T: Exec<'a>>(items: &'a [&'a [u8]]) -> Result<T, CmdError> {
        T::parse(&mut Args::new(items))
    }

    #[test]
    fn parsers_give_redis_errors() {
        let e = parse::<SPop<'_>>(&[b"k", b"-1"]).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("ERR value is out of range, must be positive")
        );
        assert!(
            matches!(parse::<SPop<'_>>(&[b"k", b"x"]), Err(CmdError::Err(m)) if m == "value is out of range, must be positive")
        );
        assert!(matches!(
            parse::<SPop<'_>>(&[b"k", b"1", b"2"]),
            Err(CmdError::Syntax)
        ));
        let msg = |r: Result<SInterCard<'_>, CmdError>| r.err().map(|e| e.to_string());
        assert_eq!(
            msg(parse(&[b"0", b"a"])).as_deref(),
            Some("ERR numkeys should be greater than 0")
        );
        assert_eq!(
            msg(parse(&[b"3", b"a", b"b"])).as_deref(),
            Some("ERR Number of keys can't be greater than number of args")
        );
        assert_eq!(
            msg(parse(&[b"1", b"a", b"LIMIT", b"-1"])).as_deref(),
            Some("ERR LIMIT can't be negative")
        );
        assert_eq!(
            msg(parse(&[b"1", b"a", b"LIMIT"])).as_deref(),
            Some("ERR syntax error")
        );
        assert!(
            matches!(parse::<SInterCard<'_>>(&[b"2", b"a", b"b", b"limit", b"3"]), Ok(c) if c.limit == 3 && c.keys.len() == 2)
        );
        assert!(
            matches!(parse::<SScan<'_>>(&[b"k", b"x"]), Err(CmdError::Err(m)) if m == "invalid cursor")
        );
        assert!(matches!(
            parse::<SScan<'_>>(&[b"k", b"0", b"COUNT", b"0"]),
            Err(CmdError::Syntax)
        ));
        assert!(matches!(
            parse::<SScan<'_>>(&[b"k", b"0", b"MATCH"]),
            Err(CmdError::Syntax)
        ));
        assert!(matches!(rand_count(b"-3"), Ok((3, false))));
        assert!(rand_count(b"-9223372036854775808").is_err());
    }

    #[test]
    fn distinct_positions_are_distinct_and_in_range() {
        for (len, count) in [(10, 3), (10, 9), (10, 10), (10, 20), (1000, 5), (0, 3)] {
            let p = distinct_positions(len, count);
            assert_eq!(p.len(), count.min(len));
            let set: std::collections::HashSet<_> = p.iter().collect();
            assert_eq!(set.len(), p.len());
            assert!(p.iter().all(|&i| i < len));
        }
    }
}
