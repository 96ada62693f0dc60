//! Sorted-set commands: ZADD ZINCRBY ZREM ZSCORE ZMSCORE ZCARD ZCOUNT ZLEXCOUNT, the ZRANGE
//! family (ZRANGE with BYSCORE/BYLEX/REV/LIMIT, the legacy ZREVRANGE, ZRANGEBYSCORE,
//! ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX, and ZRANGESTORE), ZRANK ZREVRANK, ZPOPMIN
//! ZPOPMAX ZMPOP, ZRANDMEMBER, ZREMRANGEBYSCORE/RANK/LEX, ZUNION ZINTER ZDIFF (+STORE),
//! ZINTERCARD and ZSCAN.
//!
//! Scores are [`Reply::Double`]: a RESP3 double, a bulk string in RESP2, both written by
//! `reply::format_double` as Redis 7.4 writes them. WITHSCORES replies are [member, score]
//! pairs in RESP3 and a flat array in RESP2, as in Redis.
//!
//! The blocking forms (BZPOPMIN, BZPOPMAX, BZMPOP) are not here yet: they need the
//! server's generic blocking mechanism.

use bytes::Bytes;

use super::set::{ScanArgs, card_limit, distinct_positions, positive, rand_count, scan_reply};
use super::{CmdError, Exec, ExecCtx};
use crate::protocol::args::{Args, parse_f64, parse_i64};
use crate::protocol::reply::format_double;
use crate::protocol::{Proto, Reply};
use crate::server::blocking::parse_timeout;
use crate::server::notify::Class;
use crate::store::types::zset::rank_span;
use crate::store::types::{LexBound, LexRange, ScoreRange};
use crate::store::{Coll, Kind, SetV, Str, Ttl, ZSetV};

/// Members with their scores, copied out of the store.
type Scored = Vec<(Bytes, f64)>;

fn owned<'z>(it: impl IntoIterator<Item = (&'z Str, f64)>) -> Scored {
    it.into_iter().map(|(m, s)| (m.to_bytes(), s)).collect()
}

/// A list of members, with their scores when `withscores`: [member, score] pairs in RESP3,
/// flat in RESP2.
fn scored_reply(proto: Proto, items: Scored, withscores: bool) -> Reply {
    if !withscores {
        return Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect());
    }
    match proto {
        Proto::Resp3 => Reply::Array(
            items
                .into_iter()
                .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]))
                .collect(),
        ),
        Proto::Resp2 => Reply::Array(
            items
                .into_iter()
                .flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)])
                .collect(),
        ),
    }
}

/// Always [member, score] pairs (ZMPOP, and ZPOPMIN with a count in RESP3).
fn pairs(items: Scored) -> Reply {
    Reply::Array(
        items
            .into_iter()
            .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]))
            .collect(),
    )
}

/// WRONGTYPE unless `key` is missing or a sorted set; true if it exists.
fn check_zset(ctx: &mut ExecCtx<'_>, key: &[u8]) -> Result<bool, CmdError> {
    match ctx.db.kind_of(key)? {
        None => Ok(false),
        Some(Kind::ZSet) => Ok(true),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Runs `f` on the sorted set at `key` (`None` when missing): a read lookup, or a
/// write's look without counting when `write`.
fn with_zset<R>(
    ctx: &mut ExecCtx<'_>,
    key: &[u8],
    write: bool,
    f: impl FnOnce(Option<&ZSetV>) -> R,
) -> Result<R, CmdError> {
    let z = if write {
        ctx.db.peek_coll::<ZSetV>(key)?
    } else {
        ctx.db.read::<ZSetV>(key)?
    };
    Ok(f(z.as_deref()))
}

/// Parses `min max` of a score range (`(` for exclusive, `-inf`/`+inf`).
fn score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    // Redis reads a bound with strtod and checks that it stopped at the end: an empty
    // number (`(` alone, or an empty argument) reads as 0.
    let num = |b: &[u8]| if b.is_empty() { Ok(0.0) } else { parse_f64(b) };
    let bound = |b: &[u8]| match b.strip_prefix(b"(") {
        Some(rest) => num(rest).map(|v| (v, true)),
        None => num(b).map(|v| (v, false)),
    };
    match (bound(min), bound(max)) {
        (Ok((min, min_ex)), Ok((max, max_ex))) => Ok(ScoreRange {
            min,
            min_ex,
            max,
            max_ex,
        }),
        _ => Err(CmdError::err("min or max is not a float")),
    }
}

/// Parses `min max` of a lexicographic range.
fn lex_range<'a>(min: &'a [u8], max: &'a [u8]) -> Result<LexRange<'a>, CmdError> {
    match (LexBound::parse(min), LexBound::parse(max)) {
        (Some(min), Some(max)) => Ok(LexRange { min, max }),
        _ => Err(CmdError::err("min or max not valid string range item")),
    }
}

/// Reports a removal: `event` when anything went, `del` when the key went with it.
fn removed(ctx: &mut ExecCtx<'_>, key: &[u8], n: usize, emptied: bool, event: &'static str) {
    if n > 0 {
        ctx.notify(Class::ZSet, event, key);
        if emptied {
            ctx.notify(Class::Generic, "del", key);
        }
    }
}

// ---------------------------------------------------------------------------------------
// ZADD, ZINCRBY

/// ZADD's options.
#[derive(Debug, Clone, Copy, Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What one ZADD element did.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Added {
    /// A new member.
    New(f64),
    /// An existing member's score changed.
    Updated(f64),
    /// The member was there with this score already (counted as processed).
    Same(f64),
    /// Skipped by NX/XX/GT/LT.
    Nop,
}

/// Redis's `zsetAdd`: adds or updates one member under the flags; `Err` when an increment
/// makes the score NaN.
fn zadd_one(z: &mut ZSetV, member: &[u8], score: f64, f: AddFlags) -> Result<Added, CmdError> {
    match z.score(member) {
        Some(cur) => {
            if f.nx {
                return Ok(Added::Nop);
            }
            let new = if f.incr { cur + score } else { score };
            if new.is_nan() {
                return Err(CmdError::err("resulting score is not a number (NaN)"));
            }
            if (f.lt && new >= cur) || (f.gt && new <= cur) {
                return Ok(Added::Nop);
            }
            if new == cur {
                return Ok(Added::Same(new));
            }
            z.insert(member, new);
            Ok(Added::Updated(new))
        }
        None if f.xx => Ok(Added::Nop),
        None => {
            z.insert(member, score);
            Ok(Added::New(score))
        }
    }
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`
#[derive(Debug)]
pub struct ZAdd<'a> {
    key: &'a [u8],
    flags: AddFlags,
    pairs: Vec<(f64, &'a [u8])>,
}

impl<'a> Exec<'a> for ZAdd<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        let mut f = AddFlags::default();
        loop {
            if args.eat("NX") {
                f.nx = true;
            } else if args.eat("XX") {
                f.xx = true;
            } else if args.eat("GT") {
                f.gt = true;
            } else if args.eat("LT") {
                f.lt = true;
            } else if args.eat("CH") {
                f.ch = true;
            } else if args.eat("INCR") {
                f.incr = true;
            } else {
                break;
            }
        }
        let rest = args.rest();
        if rest.is_empty() || !rest.len().is_multiple_of(2) {
            return Err(CmdError::Syntax);
        }
        if f.nx && f.xx {
            return Err(CmdError::err(
                "XX and NX options at the same time are not compatible",
            ));
        }
        if [f.gt, f.lt, f.nx].iter().filter(|&&o| o).count() > 1 {
            return Err(CmdError::err(
                "GT, LT, and/or NX options at the same time are not compatible",
            ));
        }
        if f.incr && rest.len() > 2 {
            return Err(CmdError::err(
                "INCR option supports a single increment-element pair",
            ));
        }
        let pairs = rest
            .chunks(2)
            .map(|p| Ok((parse_f64(p[0])?, p[1])))
            .collect::<Result<_, CmdError>>()?;
        Ok(ZAdd {
            key,
            flags: f,
            pairs,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let f = self.flags;
        let exists = check_zset(ctx, self.key)?;
        let (mut added, mut updated, mut last) = (0i64, 0i64, None);
        if exists || !f.xx {
            let out = ctx
                .db
                .update::<ZSetV, _>(self.key, true, |z| {
                    let mut err = None;
                    for &(score, member) in &self.pairs {
                        match zadd_one(z, member, score, f) {
                            Ok(Added::New(s)) => (added, last) = (added + 1, Some(s)),
                            Ok(Added::Updated(s)) => (updated, last) = (updated + 1, Some(s)),
                            Ok(Added::Same(s)) => last = Some(s),
                            Ok(Added::Nop) => {}
                            Err(e) => {
                                err = Some(e);
                                break;
                            }
                        }
                    }
                    (err, added + updated > 0)
                })?
                .flatten();
            if let Some(e) = out {
                return Err(e);
            }
        }
        if added + updated > 0 {
            let event = if f.incr { "zincr" } else { "zadd" };
            ctx.notify(Class::ZSet, event, self.key);
        }
        Ok(if f.incr {
            last.map_or(Reply::Nil, Reply::Double)
        } else {
            Reply::Int(if f.ch { added + updated } else { added })
        })
    }
}

/// `ZINCRBY key increment member`
#[derive(Debug)]
pub struct ZIncrBy<'a> {
    key: &'a [u8],
    by: f64,
    member: &'a [u8],
}

impl<'a> Exec<'a> for ZIncrBy<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(ZIncrBy {
            key: args.bytes()?,
            by: args.f64()?,
            member: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        check_zset(ctx, self.key)?;
        let f = AddFlags {
            incr: true,
            ..AddFlags::default()
        };
        let r = ctx
            .db
            .update::<ZSetV, _>(self.key, true, |z| {
                let r = zadd_one(z, self.member, self.by, f);
                let changed = matches!(r, Ok(Added::New(_) | Added::Updated(_)));
                (r, changed)
            })?
            .unwrap_or(Ok(Added::Nop))?;
        let score = match r {
            Added::New(s) | Added::Updated(s) => {
                ctx.notify(Class::ZSet, "zincr", self.key);
                s
            }
            Added::Same(s) => s,
            Added::Nop => return Ok(Reply::Nil),
        };
        Ok(Reply::Double(score))
    }
}

// ---------------------------------------------------------------------------------------
// Single-key reads and removals

/// `ZREM key member [member ...]`
#[derive(Debug)]
pub struct ZRem<'a> {
    key: &'a [u8],
    members: Vec<&'a [u8]>,
}

impl<'a> Exec<'a> for ZRem<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(ZRem {
            key: args.bytes()?,
            members: args.rest(),
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let (n, emptied) = ctx
            .db
            .update::<ZSetV, _>(self.key, false, |z| {
                let n = self
                    .members
                    .iter()
                    .filter(|m| z.remove(m).is_some())
                    .count();
                ((n, z.is_empty()), n > 0)
            })?
            .unwrap_or((0, false));
        removed(ctx, self.key, n, emptied, "zrem");
        Ok(Reply::Int(n as i64))
    }
}

/// `ZSCORE key member`
#[derive(Debug)]
pub struct ZScore<'a> {
    key: &'a [u8],
    member: &'a [u8],
}

impl<'a> Exec<'a> for ZScore<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(ZScore {
            key: args.bytes()?,
            member: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        with_zset(ctx, self.key, false, |z| {
            z.and_then(|z| z.score(self.member))
                .map_or(Reply::Nil, Reply::Double)
        })
    }
}

/// `ZMSCORE key member [member ...]`
#[derive(Debug)]
pub struct ZMScore<'a> {
    key: &'a [u8],
    members: Vec<&'a [u8]>,
}

impl<'a> Exec<'a> for ZMScore<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(ZMScore {
            key: args.bytes()?,
            members: args.rest(),
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        with_zset(ctx, self.key, false, |z| {
            Reply::Array(
                self.members
                    .iter()
                    .map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Nil, Reply::Double))
                    .collect(),
            )
        })
    }
}

/// `ZCARD key`
#[derive(Debug)]
pub struct ZCard<'a> {
    key: &'a [u8],
}

impl<'a> Exec<'a> for ZCard<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(ZCard { key: args.bytes()? })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        with_zset(ctx, self.key, false, |z| {
            Reply::Int(z.map_or(0, |z| z.len() as i64))
        })
    }
}

/// `ZCOUNT key min max`
#[derive(Debug)]
pub struct ZCount<'a> {
    key: &'a [u8],
    range: ScoreRange,
}

impl<'a> Exec<'a> for ZCount<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        let (min, max) = (args.bytes()?, args.bytes()?);
        Ok(ZCount {
            key,
            range: score_range(min, max)?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        with_zset(ctx, self.key, false, |z| {
            Reply::Int(z.map_or(0, |z| z.by_score(&self.range, false).count() as i64))
        })
    }
}

/// `ZLEXCOUNT key min max`
#[derive(Debug)]
pub struct ZLexCount<'a> {
    key: &'a [u8],
    range: LexRange<'a>,
}

impl<'a> Exec<'a> for ZLexCount<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        let (min, max) = (args.bytes()?, args.bytes()?);
        Ok(ZLexCount {
            key,
            range: lex_range(min, max)?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        with_zset(ctx, self.key, false, |z| {
            Reply::Int(z.map_or(0, |z| z.by_lex(&self.range, false).count() as i64))
        })
    }
}

/// `ZRANK key member [WITHSCORE]` and `ZREVRANK`.
#[derive(Debug)]
pub struct ZRank<'a> {
    key: &'a [u8],
    member: &'a [u8],
    withscore: bool,
}

/// `ZREVRANK key member [WITHSCORE]`
#[derive(Debug)]
pub struct ZRevRank<'a>(ZRank<'a>);

impl<'a> ZRank<'a> {
    fn parse_as(args: &mut Args<'a>, name: &str) -> Result<ZRank<'a>, CmdError> {
        let (key, member) = (args.bytes()?, args.bytes()?);
        if args.remaining() > 1 {
            return Err(CmdError::WrongArity(name.to_string()));
        }
        let withscore = match args.next_opt() {
            None => false,
            Some(w) if w.eq_ignore_ascii_case(b"WITHSCORE") => true,
            Some(_) => return Err(CmdError::Syntax),
        };
        Ok(ZRank {
            key,
            member,
            withscore,
        })
    }

    /// The rank is O(rank) (see `ZSetV::rank`).
    fn run(self, ctx: &mut ExecCtx<'_>, rev: bool) -> Result<Reply, CmdError> {
        let found = with_zset(ctx, self.key, false, |z| {
            let z = z?;
            let rank = z.rank(self.member)?;
            let rank = if rev { z.len() - 1 - rank } else { rank };
            Some((rank, z.score(self.member).unwrap_or(0.0)))
        })?;
        Ok(match (found, self.withscore) {
            (Some((r, _)), false) => Reply::Int(r as i64),
            (Some((r, s)), true) => Reply::Array(vec![Reply::Int(r as i64), Reply::Double(s)]),
            (None, false) => Reply::Nil,
            (None, true) => Reply::NilArray,
        })
    }
}

impl<'a> Exec<'a> for ZRank<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        ZRank::parse_as(args, "zrank")
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.run(ctx, false)
    }
}

impl<'a> Exec<'a> for ZRevRank<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(ZRevRank(ZRank::parse_as(args, "zrevrank")?))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.0.run(ctx, true)
    }
}

// ---------------------------------------------------------------------------------------
// The ZRANGE family

/// What a range selects.
#[derive(Debug, Clone, Copy)]
enum Sel<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

/// How a range is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// A parsed range request (Redis's `zrangeGenericCommand`).
#[derive(Debug, Clone, Copy)]
struct RangeReq<'a> {
    sel: Sel<'a>,
    rev: bool,
    /// LIMIT offset count (count < 0: no limit).
    limit: Option<(i64, i64)>,
    withscores: bool,
}

impl<'a> RangeReq<'a> {
    /// Parses `min max [options]` with the type and direction fixed by the legacy
    /// commands (`None`: chosen by BYSCORE/BYLEX/REV), in Redis's order of checks.
    fn parse(
        args: &mut Args<'a>,
        by: Option<By>,
        rev: Option<bool>,
        store: bool,
    ) -> Result<RangeReq<'a>, CmdError> {
        let (mut a, mut b) = (args.bytes()?, args.bytes()?);
        let (mut by_opt, mut rev_opt) = (by, rev);
        let (mut limit, mut withscores) = (None, false);
        while let Some(opt) = args.next_opt() {
            if !store && opt.eq_ignore_ascii_case(b"WITHSCORES") {
                withscores = true;
            } else if opt.eq_ignore_ascii_case(b"LIMIT") && args.remaining() >= 2 {
                limit = Some((args.i64()?, args.i64()?));
            } else if rev_opt.is_none() && opt.eq_ignore_ascii_case(b"REV") {
                rev_opt = Some(true);
            } else if by_opt.is_none() && opt.eq_ignore_ascii_case(b"BYLEX") {
                by_opt = Some(By::Lex);
            } else if by_opt.is_none() && opt.eq_ignore_ascii_case(b"BYSCORE") {
                by_opt = Some(By::Score);
            } else {
                return Err(CmdError::Syntax);
            }
        }
        let rev = rev_opt.unwrap_or(false);
        let by = by_opt.unwrap_or(By::Rank);
        // Redis checks the count only: `LIMIT offset -1` (no limit) passes, and an index
        // range then ignores the offset.
        if by == By::Rank && limit.take().is_some_and(|(_, count)| count != -1) {
            return Err(CmdError::err(
                "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        if withscores && by == By::Lex {
            return Err(CmdError::err(
                "syntax error, WITHSCORES not supported in combination with BYLEX",
            ));
        }
        if rev && by != By::Rank {
            // Reverse score and lex ranges are given as max, min.
            std::mem::swap(&mut a, &mut b);
        }
        let sel = match by {
            By::Rank => Sel::Rank(parse_i64(a)?, parse_i64(b)?),
            By::Score => Sel::Score(score_range(a, b)?),
            By::Lex => Sel::Lex(lex_range(a, b)?),
        };
        Ok(RangeReq {
            sel,
            rev,
            limit,
            withscores,
        })
    }

    /// The selected members, in reply order.
    fn select(&self, z: &ZSetV) -> Scored {
        let limited = |it: Box<dyn Iterator<Item = (&Str, f64)> + '_>| -> Scored {
            match self.limit {
                None => owned(it),
                Some((off, _)) if off < 0 => Vec::new(),
                Some((off, count)) => {
                    let off = usize::try_from(off).unwrap_or(usize::MAX);
                    let it = it.skip(off);
                    match usize::try_from(count) {
                        Ok(n) => owned(it.take(n)),
                        Err(_) => owned(it),
                    }
                }
            }
        };
        match &self.sel {
            Sel::Rank(s, e) => owned(z.by_rank(*s, *e, self.rev)),
            Sel::Score(r) => limited(z.by_score(r, self.rev)),
            Sel::Lex(r) => limited(z.by_lex(r, self.rev)),
        }
    }

    /// Reads the range from `key` (read lookup) and replies.
    fn reply(&self, ctx: &mut ExecCtx<'_>, key: &[u8]) -> Result<Reply, CmdError> {
        let items = with_zset(ctx, key, false, |z| z.map(|z| self.select(z)))?.unwrap_or_default();
        Ok(scored_reply(ctx.client.proto, items, self.withscores))
    }
}

macro_rules! range_cmd {
    ($(#[$doc:meta])* $ty:ident, $by:expr, $rev:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty<'a> {
            key: &'a [u8],
            req: RangeReq<'a>,
        }

        impl<'a> Exec<'a> for $ty<'a> {
            fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
                let key = args.bytes()?;
                Ok($ty {
                    key,
                    req: RangeReq::parse(args, $by, $rev, false)?,
                })
            }
            fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
                self.req.reply(ctx, self.key)
            }
        }
    };
}

range_cmd!(
    /// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`
    ZRange, None, None
);
range_cmd!(
    /// `ZREVRANGE key start stop [WITHSCORES]`
    ZRevRange, Some(By::Rank), Some(true)
);
range_cmd!(
    /// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`
    ZRangeByScore, Some(By::Score), Some(false)
);
range_cmd!(
    /// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`
    ZRevRangeByScore, Some(By::Score), Some(true)
);
range_cmd!(
    /// `ZRANGEBYLEX key min max [LIMIT offset count]`
    ZRangeByLex, Some(By::Lex), Some(false)
);
range_cmd!(
    /// `ZREVRANGEBYLEX key max min [LIMIT offset count]`
    ZRevRangeByLex, Some(By::Lex), Some(true)
);

/// Stores `z` at `dst` (deleting `dst` when `z` is empty, as Redis does); the reply is
/// the result's size.
fn store(
    ctx: &mut ExecCtx<'_>,
    dst: &[u8],
    z: ZSetV,
    event: &'static str,
) -> Result<Reply, CmdError> {
    let n = z.len();
    if n == 0 {
        if ctx.db.del(dst)? {
            ctx.notify(Class::Generic, "del", dst);
        }
    } else {
        ctx.db.set(dst, z.into_value(), Ttl::Clear)?;
        ctx.notify(Class::ZSet, event, dst);
    }
    Ok(Reply::Int(n as i64))
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`
#[derive(Debug)]
pub struct ZRangeStore<'a> {
    dst: &'a [u8],
    src: &'a [u8],
    req: RangeReq<'a>,
}

impl<'a> Exec<'a> for ZRangeStore<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let (dst, src) = (args.bytes()?, args.bytes()?);
        Ok(ZRangeStore {
            dst,
            src,
            req: RangeReq::parse(args, None, None, true)?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let items =
            with_zset(ctx, self.src, false, |z| z.map(|z| self.req.select(z)))?.unwrap_or_default();
        let mut out = ZSetV::default();
        for (m, s) in &items {
            out.insert(m, *s);
        }
        store(ctx, self.dst, out, "zrangestore")
    }
}

// ---------------------------------------------------------------------------------------
// Range removals

/// `ZREMRANGEBYRANK key start stop`, `ZREMRANGEBYSCORE key min max`,
/// `ZREMRANGEBYLEX key min max`.
#[derive(Debug)]
pub struct ZRemRange<'a> {
    key: &'a [u8],
    sel: Sel<'a>,
}

/// `ZREMRANGEBYRANK key start stop`
#[derive(Debug)]
pub struct ZRemRangeByRank<'a>(ZRemRange<'a>);
/// `ZREMRANGEBYSCORE key min max`
#[derive(Debug)]
pub struct ZRemRangeByScore<'a>(ZRemRange<'a>);
/// `ZREMRANGEBYLEX key min max`
#[derive(Debug)]
pub struct ZRemRangeByLex<'a>(ZRemRange<'a>);

impl ZRemRange<'_> {
    fn run(self, ctx: &mut ExecCtx<'_>, event: &'static str) -> Result<Reply, CmdError> {
        let sel = self.sel;
        let (n, emptied) = ctx
            .db
            .update::<ZSetV, _>(self.key, false, |z| {
                let gone: Vec<Str> = match &sel {
                    Sel::Rank(s, e) => match rank_span(z.len(), *s, *e) {
                        Some((start, n)) => z
                            .iter()
                            .skip(start)
                            .take(n)
                            .map(|(m, _)| m.clone())
                            .collect(),
                        None => Vec::new(),
                    },
                    Sel::Score(r) => z.by_score(r, false).map(|(m, _)| m.clone()).collect(),
                    Sel::Lex(r) => z.by_lex(r, false).map(|(m, _)| m.clone()).collect(),
                };
                for m in &gone {
                    z.remove(m);
                }
                ((gone.len(), z.is_empty()), !gone.is_empty())
            })?
            .unwrap_or((0, false));
        removed(ctx, self.key, n, emptied, event);
        Ok(Reply::Int(n as i64))
    }
}

impl<'a> Exec<'a> for ZRemRangeByRank<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(ZRemRangeByRank(ZRemRange {
            key: args.bytes()?,
            sel: Sel::Rank(args.i64()?, args.i64()?),
        }))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.0.run(ctx, "zremrangebyrank")
    }
}

impl<'a> Exec<'a> for ZRemRangeByScore<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        let (min, max) = (args.bytes()?, args.bytes()?);
        Ok(ZRemRangeByScore(ZRemRange {
            key,
            sel: Sel::Score(score_range(min, max)?),
        }))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.0.run(ctx, "zremrangebyscore")
    }
}

impl<'a> Exec<'a> for ZRemRangeByLex<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        let (min, max) = (args.bytes()?, args.bytes()?);
        Ok(ZRemRangeByLex(ZRemRange {
            key,
            sel: Sel::Lex(lex_range(min, max)?),
        }))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.0.run(ctx, "zremrangebylex")
    }
}

// ---------------------------------------------------------------------------------------
// Pops

/// Pops up to `count` members from the low (`max` false) or high end of `key`; `None`
/// when the key is missing. Reports the events. (BZPOPMIN/BZPOPMAX serve a woken client
/// with this.)
pub(crate) fn pop(
    ctx: &mut ExecCtx<'_>,
    key: &[u8],
    max: bool,
    count: usize,
) -> Result<Option<Scored>, CmdError> {
    let out = ctx.db.update::<ZSetV, _>(key, false, |z| {
        let mut out = Vec::with_capacity(count.min(z.len()));
        while out.len() < count {
            match z.pop(max) {
                Some((m, s)) => out.push((m.to_bytes(), s)),
                None => break,
            }
        }
        let changed = !out.is_empty();
        ((out, z.is_empty()), changed)
    })?;
    let Some((items, emptied)) = out else {
        return Ok(None);
    };
    removed(
        ctx,
        key,
        items.len(),
        emptied,
        if max { "zpopmax" } else { "zpopmin" },
    );
    Ok(Some(items))
}

/// `ZPOPMIN key [count]` and `ZPOPMAX key [count]`.
#[derive(Debug)]
pub struct ZPop<'a> {
    key: &'a [u8],
    count: Option<usize>,
}

/// `ZPOPMIN key [count]`
#[derive(Debug)]
pub struct ZPopMin<'a>(ZPop<'a>);
/// `ZPOPMAX key [count]`
#[derive(Debug)]
pub struct ZPopMax<'a>(ZPop<'a>);

impl<'a> ZPop<'a> {
    fn parse_as(args: &mut Args<'a>) -> Result<ZPop<'a>, CmdError> {
        let key = args.bytes()?;
        if args.remaining() > 1 {
            return Err(CmdError::Syntax);
        }
        let count = args.next_opt().map(positive).transpose()?;
        Ok(ZPop { key, count })
    }

    fn run(self, ctx: &mut ExecCtx<'_>, max: bool) -> Result<Reply, CmdError> {
        if self.count == Some(0) {
            check_zset(ctx, self.key)?;
            return Ok(Reply::Array(Vec::new()));
        }
        let items = pop(ctx, self.key, max, self.count.unwrap_or(1))?.unwrap_or_default();
        // A flat [member, score, ...] array, except with a count in RESP3.
        Ok(
            if self.count.is_some() && ctx.client.proto == Proto::Resp3 {
                pairs(items)
            } else {
                scored_reply(Proto::Resp2, items, true)
            },
        )
    }
}

impl<'a> Exec<'a> for ZPopMin<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(ZPopMin(ZPop::parse_as(args)?))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.0.run(ctx, false)
    }
}

impl<'a> Exec<'a> for ZPopMax<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(ZPopMax(ZPop::parse_as(args)?))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.0.run(ctx, true)
    }
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`
#[derive(Debug)]
pub struct ZMPop<'a> {
    keys: Vec<&'a [u8]>,
    max: bool,
    count: usize,
}

impl<'a> Exec<'a> for ZMPop<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let n = parse_i64(args.bytes()?)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| CmdError::err("numkeys should be greater than 0"))?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n >= args.remaining() {
            return Err(CmdError::Syntax);
        }
        let keys = (0..n).map(|_| args.bytes()).collect::<Result<_, _>>()?;
        let max = match args.keyword()?.as_str() {
            "MIN" => false,
            "MAX" => true,
            _ => return Err(CmdError::Syntax),
        };
        let mut count = None;
        while let Some(opt) = args.next_opt() {
            if count.is_none() && opt.eq_ignore_ascii_case(b"COUNT") && !args.is_empty() {
                let c = parse_i64(args.bytes()?)
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| CmdError::err("count should be greater than 0"))?;
                count = Some(usize::try_from(c).unwrap_or(usize::MAX));
            } else {
                return Err(CmdError::Syntax);
            }
        }
        Ok(ZMPop {
            keys,
            max,
            count: count.unwrap_or(1),
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(self.try_pop(ctx)?.unwrap_or(Reply::NilArray))
    }
}

/// `BZPOPMIN`/`BZPOPMAX key [key ...] timeout`: `[key, member, score]` from the first
/// sorted set with members, or the client waits (see `server::blocking`).
#[derive(Debug)]
pub struct BZPop<'a, const MAX: bool> {
    keys: Vec<&'a [u8]>,
    timeout: Option<std::time::Duration>,
}

/// `BZPOPMIN key [key ...] timeout`
pub type BZPopMin<'a> = BZPop<'a, false>;
/// `BZPOPMAX key [key ...] timeout`
pub type BZPopMax<'a> = BZPop<'a, true>;

impl<'a, const MAX: bool> Exec<'a> for BZPop<'a, MAX> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let mut keys = args.rest();
        let timeout = parse_timeout(keys.pop().ok_or(CmdError::Syntax)?)?;
        Ok(BZPop { keys, timeout })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        for key in &self.keys {
            // A blocked client's retry skips a key of another type (Redis keeps it blocked).
            match check_zset(ctx, key) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(CmdError::WrongType) if ctx.is_retry() => continue,
                Err(e) => return Err(e),
            }
            if let Some(mut items) = pop(ctx, key, MAX, 1)?
                && let Some((m, score)) = items.pop()
            {
                return Ok(Reply::Array(vec![
                    Reply::bulk(key),
                    Reply::Bulk(m),
                    Reply::Double(score),
                ]));
            }
        }
        ctx.block_on(self.keys.iter().copied(), self.timeout);
        Ok(Reply::NilArray)
    }
}

/// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]`
#[derive(Debug)]
pub struct BZMPop<'a> {
    timeout: Option<std::time::Duration>,
    m: ZMPop<'a>,
}

impl<'a> Exec<'a> for BZMPop<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let timeout = parse_timeout(args.bytes()?)?;
        Ok(BZMPop {
            timeout,
            m: ZMPop::parse(args)?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        if let Some(r) = self.m.try_pop(ctx)? {
            return Ok(r);
        }
        ctx.block_on(self.m.keys.iter().copied(), self.timeout);
        Ok(Reply::NilArray)
    }
}

impl ZMPop<'_> {
    /// Pops from the first key that has members: `[key, [[member, score], ...]]`, or
    /// `None` when every key is empty or missing (where BZMPOP would block).
    pub(crate) fn try_pop(&self, ctx: &mut ExecCtx<'_>) -> Result<Option<Reply>, CmdError> {
        for key in &self.keys {
            match check_zset(ctx, key) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(CmdError::WrongType) if ctx.is_retry() => continue,
                Err(e) => return Err(e),
            }
            if let Some(items) = pop(ctx, key, self.max, self.count)?
                && !items.is_empty()
            {
                return Ok(Some(Reply::Array(vec![Reply::bulk(key), pairs(items)])));
            }
        }
        Ok(None)
    }
}

// ---------------------------------------------------------------------------------------
// ZRANDMEMBER

/// `ZRANDMEMBER key [count [WITHSCORES]]`
#[derive(Debug)]
pub struct ZRandMember<'a> {
    key: &'a [u8],
    count: Option<(usize, bool)>,
    withscores: bool,
}

impl<'a> Exec<'a> for ZRandMember<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        let count = args.next_opt().map(rand_count).transpose()?;
        let withscores = match args.next_opt() {
            None => false,
            Some(w) if w.eq_ignore_ascii_case(b"WITHSCORES") && args.is_empty() => true,
            Some(_) => return Err(CmdError::Syntax),
        };
        // The reply holds twice as many items: Redis refuses counts that would overflow.
        if withscores && count.is_some_and(|(n, _)| n as u64 > (i64::MAX / 2) as u64) {
            return Err(CmdError::err("value is out of range"));
        }
        Ok(ZRandMember {
            key,
            count,
            withscores,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let proto = ctx.client.proto;
        with_zset(ctx, self.key, false, |z| {
            let Some((n, distinct)) = self.count else {
                return Reply::opt_bulk(
                    z.filter(|z| !z.is_empty())
                        .and_then(|z| z.get_index(fastrand::usize(..z.len())))
                        .map(|(m, _)| m.to_bytes()),
                );
            };
            let Some(z) = z.filter(|z| !z.is_empty()) else {
                return Reply::Array(Vec::new());
            };
            let pick = |i: usize| z.get_index(i).map(|(m, s)| (m.to_bytes(), s));
            let items: Scored = if distinct {
                distinct_positions(z.len(), n)
                    .into_iter()
                    .filter_map(pick)
                    .collect()
            } else {
                (0..n)
                    .filter_map(|_| pick(fastrand::usize(..z.len())))
                    .collect()
            };
            scored_reply(proto, items, self.withscores)
        })
    }
}

// ---------------------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF and their STORE forms, ZINTERCARD

/// One input of a set operation: sorted sets, and sets with every score 1, as in Redis.
#[derive(Debug)]
enum Src {
    Missing,
    Set(SetV),
    ZSet(ZSetV),
}

impl Src {
    fn len(&self) -> usize {
        match self {
            Src::Missing => 0,
            Src::Set(s) => s.len(),
            Src::ZSet(z) => z.len(),
        }
    }

    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::Missing => None,
            Src::Set(s) => s.contains(m).then_some(1.0),
            Src::ZSet(z) => z.score(m),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (&Str, f64)> + '_> {
        match self {
            Src::Missing => Box::new(std::iter::empty()),
            Src::Set(s) => Box::new(s.iter().map(|m| (m, 1.0))),
            Src::ZSet(z) => Box::new(z.iter()),
        }
    }
}

/// Loads every input (WRONGTYPE for anything but a set or sorted set, checked for all
/// keys before anything is computed).
fn load(ctx: &mut ExecCtx<'_>, keys: &[&[u8]], write: bool) -> Result<Vec<Src>, CmdError> {
    let mut kinds = Vec::with_capacity(keys.len());
    for k in keys {
        match ctx.db.kind_of(k)? {
            None => kinds.push(None),
            Some(k @ (Kind::Set | Kind::ZSet)) => kinds.push(Some(k)),
            Some(_) => return Err(CmdError::WrongType),
        }
    }
    let mut out = Vec::with_capacity(keys.len());
    for (k, kind) in keys.iter().zip(kinds) {
        let src = match kind {
            None => Src::Missing,
            Some(Kind::Set) => {
                let s = if write {
                    ctx.db.peek_coll::<SetV>(k)?
                } else {
                    ctx.db.read::<SetV>(k)?
                };
                s.map_or(Src::Missing, |s| Src::Set(s.into_owned()))
            }
            Some(_) => {
                let z = if write {
                    ctx.db.peek_coll::<ZSetV>(k)?
                } else {
                    ctx.db.read::<ZSetV>(k)?
                };
                z.map_or(Src::Missing, |z| Src::ZSet(z.into_owned()))
            }
        };
        out.push(src);
    }
    Ok(out)
}

/// Which operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

/// AGGREGATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, acc: f64, v: f64) -> f64 {
        match self {
            // inf + -inf is NaN: Redis makes it 0.
            Aggregate::Sum => {
                let s = acc + v;
                if s.is_nan() { 0.0 } else { s }
            }
            Aggregate::Min => acc.min(v),
            Aggregate::Max => acc.max(v),
        }
    }
}

/// `score × weight`, 0 when that is NaN (0 × inf), as Redis.
fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() { 0.0 } else { v }
}

/// The parsed arguments of ZUNION/ZINTER/ZDIFF (and STORE forms).
#[derive(Debug)]
struct Combine<'a> {
    keys: Vec<&'a [u8]>,
    weights: Vec<f64>,
    aggregate: Aggregate,
    withscores: bool,
    /// An error in the options after the keys: Redis reports it only after it has
    /// looked the keys up (WRONGTYPE first).
    bad_option: Option<CmdError>,
}

impl<'a> Combine<'a> {
    /// Parses `numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...] [WITHSCORES]` with
    /// Redis's checks for command `name`.
    fn parse(
        args: &mut Args<'a>,
        name: &str,
        op: SetOp,
        store: bool,
    ) -> Result<Combine<'a>, CmdError> {
        let n = args.i64()?;
        if n < 1 {
            return Err(CmdError::err(format!(
                "at least 1 input key is needed for '{name}' command"
            )));
        }
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > args.remaining() {
            return Err(CmdError::Syntax);
        }
        let keys: Vec<&[u8]> = (0..n).map(|_| args.bytes()).collect::<Result<_, _>>()?;
        let mut c = Combine {
            weights: vec![1.0; keys.len()],
            keys,
            aggregate: Aggregate::Sum,
            withscores: false,
            bad_option: None,
        };
        if let Err(e) = c.parse_options(args, op, store, n) {
            c.bad_option = Some(e);
        }
        Ok(c)
    }

    /// The options after the keys.
    fn parse_options(
        &mut self,
        args: &mut Args<'a>,
        op: SetOp,
        store: bool,
        n: usize,
    ) -> Result<(), CmdError> {
        while !args.is_empty() {
            if op != SetOp::Diff && args.remaining() > n && args.eat("WEIGHTS") {
                for w in self.weights.iter_mut() {
                    *w = parse_f64(args.bytes()?)
                        .map_err(|_| CmdError::err("weight value is not a float"))?;
                }
            } else if op != SetOp::Diff && args.remaining() >= 2 && args.eat("AGGREGATE") {
                self.aggregate = match args.keyword()?.as_str() {
                    "SUM" => Aggregate::Sum,
                    "MIN" => Aggregate::Min,
                    "MAX" => Aggregate::Max,
                    _ => return Err(CmdError::Syntax),
                };
            } else if !store && args.eat("WITHSCORES") {
                self.withscores = true;
            } else {
                return Err(CmdError::Syntax);
            }
        }
        Ok(())
    }

    /// Computes the result over the inputs at the keys.
    fn compute(&self, ctx: &mut ExecCtx<'_>, op: SetOp, write: bool) -> Result<ZSetV, CmdError> {
        let srcs = load(ctx, &self.keys, write)?;
        if let Some(e) = &self.bad_option {
            return Err(e.clone());
        }
        Ok(combine(op, &srcs, &self.weights, self.aggregate, None).0)
    }
}

/// The operation over `srcs`; with `count_only` the result is not built, only counted up
/// to that limit (0: no limit) — ZINTERCARD.
fn combine(
    op: SetOp,
    srcs: &[Src],
    weights: &[f64],
    agg: Aggregate,
    count_only: Option<usize>,
) -> (ZSetV, usize) {
    let mut out = ZSetV::default();
    let mut count = 0;
    match op {
        SetOp::Union => {
            let mut acc: indexmap::IndexMap<&[u8], f64, ahash::RandomState> = Default::default();
            for (src, &w) in srcs.iter().zip(weights) {
                for (m, s) in src.iter() {
                    let v = weighted(s, w);
                    acc.entry(&m[..])
                        .and_modify(|a| *a = agg.apply(*a, v))
                        .or_insert(v);
                }
            }
            for (m, s) in acc {
                out.insert(m, s);
            }
        }
        SetOp::Inter => {
            if srcs.iter().any(|s| s.len() == 0) {
                return (out, 0);
            }
            // Walk the smallest input, look the others up.
            let mut order: Vec<usize> = (0..srcs.len()).collect();
            order.sort_by_key(|&i| srcs[i].len());
            let (first, rest) = order.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
            'members: for (m, s) in srcs[first].iter() {
                let mut acc = weighted(s, weights[first]);
                for &i in rest {
                    match srcs[i].score(m) {
                        Some(s) => acc = agg.apply(acc, weighted(s, weights[i])),
                        None => continue 'members,
                    }
                }
                match count_only {
                    Some(limit) => {
                        count += 1;
                        if limit > 0 && count >= limit {
                            break;
                        }
                    }
                    None => {
                        out.insert(m, acc);
                    }
                }
            }
        }
        SetOp::Diff => {
            if let Some((first, rest)) = srcs.split_first() {
                for (m, s) in first.iter() {
                    if rest.iter().all(|r| r.score(m).is_none()) {
                        out.insert(m, s);
                    }
                }
            }
        }
    }
    let n = if count_only.is_some() {
        count
    } else {
        out.len()
    };
    (out, n)
}

macro_rules! combine_cmd {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $op:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty<'a>(Combine<'a>);

        impl<'a> Exec<'a> for $ty<'a> {
            fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
                Ok($ty(Combine::parse(args, $name, $op, false)?))
            }
            fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
                let z = self.0.compute(ctx, $op, false)?;
                Ok(scored_reply(ctx.client.proto, owned(z.iter()), self.0.withscores))
            }
        }
    };
    ($(#[$doc:meta])* $ty:ident, $name:literal, $op:expr, store) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty<'a> {
            dst: &'a [u8],
            c: Combine<'a>,
        }

        impl<'a> Exec<'a> for $ty<'a> {
            fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
                let dst = args.bytes()?;
                Ok($ty {
                    dst,
                    c: Combine::parse(args, $name, $op, true)?,
                })
            }
            fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
                let z = self.c.compute(ctx, $op, true)?;
                store(ctx, self.dst, z, $name)
            }
        }
    };
}

combine_cmd!(
    /// `ZUNION numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
    ZUnion, "zunion", SetOp::Union
);
combine_cmd!(
    /// `ZINTER numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
    ZInter, "zinter", SetOp::Inter
);
combine_cmd!(
    /// `ZDIFF numkeys key [key ...] [WITHSCORES]`
    ZDiff, "zdiff", SetOp::Diff
);
combine_cmd!(
    /// `ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE ...]`
    ZUnionStore, "zunionstore", SetOp::Union, store
);
combine_cmd!(
    /// `ZINTERSTORE destination numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE ...]`
    ZInterStore, "zinterstore", SetOp::Inter, store
);
combine_cmd!(
    /// `ZDIFFSTORE destination numkeys key [key ...]`
    ZDiffStore, "zdiffstore", SetOp::Diff, store
);

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`
#[derive(Debug)]
pub struct ZInterCard<'a> {
    keys: Vec<&'a [u8]>,
    limit: usize,
}

impl<'a> Exec<'a> for ZInterCard<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let n = args.i64()?;
        if n < 1 {
            return Err(CmdError::err(
                "at least 1 input key is needed for 'zintercard' command",
            ));
        }
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > args.remaining() {
            return Err(CmdError::Syntax);
        }
        let keys = (0..n).map(|_| args.bytes()).collect::<Result<_, _>>()?;
        Ok(ZInterCard {
            keys,
            limit: card_limit(args)?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let srcs = load(ctx, &self.keys, false)?;
        let weights = vec![1.0; srcs.len()];
        let (_, n) = combine(
            SetOp::Inter,
            &srcs,
            &weights,
            Aggregate::Sum,
            Some(self.limit),
        );
        Ok(Reply::Int(n as i64))
    }
}

// ---------------------------------------------------------------------------------------
// ZSCAN

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`
#[derive(Debug)]
pub struct ZScan<'a> {
    key: &'a [u8],
    scan: ScanArgs<'a>,
}

impl<'a> Exec<'a> for ZScan<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(ZScan {
            key: args.bytes()?,
            scan: ScanArgs::parse(args)?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let (next, page) = with_zset(ctx, self.key, false, |z| match z {
            None => (0, Vec::new()),
            Some(z) => self.scan.page(
                z.encoding() == "listpack",
                z.iter().map(|(m, s)| (m.clone(), s)),
            ),
        })?;
        // Scores are bulk strings here in both protocols, as in Redis.
        Ok(scan_reply(
            next,
            page.into_iter()
                .flat_map(|(m, s)| {
                    [
                        Reply::Bulk(m.to_bytes()),
                        Reply::Bulk(Bytes::from(format_double(s))),
                    ]
                })
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

    /// The option error a ZUNION-like command reports after its key lookups.
    fn deferred(r: Result<Combine<'_>, CmdError>) -> String {
        r.ok()
            .and_then(|c| c.bad_option)
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    fn msg<T>(r: Result<T, CmdError>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn zadd_errors_match_redis() {
        assert_eq!(
            msg(parse::<ZAdd<'_>>(&[b"z", b"nx", b"xx", b"1", b"a"])),
            "ERR XX and NX options at the same time are not compatible"
        );
        for opts in [[&b"gt"[..], b"lt"], [b"nx", b"gt"], [b"lt", b"nx"]] {
            let args = [&b"z"[..], opts[0], opts[1], b"1", b"a"];
            assert_eq!(
                msg(parse::<ZAdd<'_>>(&args)),
                "ERR GT, LT, and/or NX options at the same time are not compatible"
            );
        }
        assert_eq!(
            msg(parse::<ZAdd<'_>>(&[b"z", b"incr", b"1", b"a", b"2", b"b"])),
            "ERR INCR option supports a single increment-element pair"
        );
        assert_eq!(
            msg(parse::<ZAdd<'_>>(&[b"z", b"1", b"a", b"2"])),
            "ERR syntax error"
        );
        assert_eq!(msg(parse::<ZAdd<'_>>(&[b"z", b"nx"])), "ERR syntax error");
        assert_eq!(
            msg(parse::<ZAdd<'_>>(&[b"z", b"nan", b"a"])),
            "ERR value is not a valid float"
        );
    }

    #[test]
    fn zadd_one_follows_zset_add() {
        let mut z = ZSetV::default();
        let f = AddFlags::default();
        assert_eq!(zadd_one(&mut z, b"a", 1.0, f).ok(), Some(Added::New(1.0)));
        assert_eq!(zadd_one(&mut z, b"a", 1.0, f).ok(), Some(Added::Same(1.0)));
        let gt = AddFlags { gt: true, ..f };
        assert_eq!(zadd_one(&mut z, b"a", 0.0, gt).ok(), Some(Added::Nop));
        assert_eq!(
            zadd_one(&mut z, b"a", 5.0, gt).ok(),
            Some(Added::Updated(5.0))
        );
        assert_eq!(
            zadd_one(&mut z, b"new", -1.0, gt).ok(),
            Some(Added::New(-1.0))
        );
        let xx = AddFlags { xx: true, ..f };
        assert_eq!(zadd_one(&mut z, b"zz", 1.0, xx).ok(), Some(Added::Nop));
        let incr = AddFlags { incr: true, ..f };
        z.insert(b"i", f64::INFINITY);
        assert_eq!(
            msg(zadd_one(&mut z, b"i", f64::NEG_INFINITY, incr)),
            "ERR resulting score is not a number (NaN)"
        );
        assert_eq!(z.score(b"i"), Some(f64::INFINITY));
    }

    #[test]
    fn range_options_match_redis() {
        assert_eq!(
            msg(parse::<ZRange<'_>>(&[
                b"z", b"0", b"-1", b"LIMIT", b"0", b"1"
            ])),
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        );
        assert_eq!(
            msg(parse::<ZRange<'_>>(&[
                b"z",
                b"a",
                b"b",
                b"BYLEX",
                b"WITHSCORES"
            ])),
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
        );
        assert_eq!(
            msg(parse::<ZRange<'_>>(&[b"z", b"0", b"1", b"REV", b"REV"])),
            "ERR syntax error"
        );
        assert_eq!(
            msg(parse::<ZRevRange<'_>>(&[b"z", b"0", b"1", b"REV"])),
            "ERR syntax error"
        );
        assert_eq!(
            msg(parse::<ZRangeByScore<'_>>(&[b"z", b"0", b"1", b"BYSCORE"])),
            "ERR syntax error"
        );
        assert_eq!(
            msg(parse::<ZRangeByScore<'_>>(&[b"z", b"(1", b"x"])),
            "ERR min or max is not a float"
        );
        assert_eq!(
            msg(parse::<ZRangeByLex<'_>>(&[b"z", b"a", b"[b"])),
            "ERR min or max not valid string range item"
        );
        assert_eq!(
            msg(parse::<ZRangeByScore<'_>>(&[
                b"z", b"0", b"1", b"LIMIT", b"0"
            ])),
            "ERR syntax error"
        );
        assert_eq!(
            msg(parse::<ZRangeStore<'_>>(&[
                b"d",
                b"z",
                b"0",
                b"1",
                b"WITHSCORES"
            ])),
            "ERR syntax error"
        );
        assert_eq!(
            msg(parse::<ZRange<'_>>(&[b"z", b"x", b"1"])),
            "ERR value is not an integer or out of range"
        );
        // REV with BYSCORE takes max first.
        let r = parse::<ZRange<'_>>(&[b"z", b"(5", b"1", b"BYSCORE", b"REV"]).expect("parse");
        assert!(
            matches!(r.req.sel, Sel::Score(s) if s.min == 1.0 && !s.min_ex && s.max == 5.0 && s.max_ex)
        );
    }

    #[test]
    fn select_applies_limit_like_redis() {
        let mut z = ZSetV::default();
        for (i, m) in ["a", "b", "c", "d"].iter().enumerate() {
            z.insert(m.as_bytes(), i as f64);
        }
        let req = |limit| RangeReq {
            sel: Sel::Score(ScoreRange {
                min: f64::NEG_INFINITY,
                min_ex: false,
                max: f64::INFINITY,
                max_ex: false,
            }),
            rev: false,
            limit,
            withscores: false,
        };
        let names = |v: Scored| {
            v.iter()
                .map(|(m, _)| String::from_utf8_lossy(m).into_owned())
                .collect::<String>()
        };
        assert_eq!(names(req(None).select(&z)), "abcd");
        assert_eq!(names(req(Some((1, 2))).select(&z)), "bc");
        assert_eq!(names(req(Some((1, -1))).select(&z)), "bcd");
        assert_eq!(names(req(Some((-1, 1))).select(&z)), "");
        assert_eq!(names(req(Some((0, 0))).select(&z)), "");
        assert_eq!(names(req(Some((9, 1))).select(&z)), "");
    }

    #[test]
    fn combine_parse_errors_match_redis() {
        assert_eq!(
            msg(parse::<ZUnionStore<'_>>(&[b"d", b"0", b"z"])),
            "ERR at least 1 input key is needed for 'zunionstore' command"
        );
        assert_eq!(msg(parse::<ZUnion<'_>>(&[b"2", b"z"])), "ERR syntax error");
        assert_eq!(
            deferred(parse::<ZUnion<'_>>(&[b"1", b"z", b"WEIGHTS", b"x"]).map(|c| c.0)),
            "ERR weight value is not a float"
        );
        assert_eq!(
            deferred(parse::<ZInter<'_>>(&[b"1", b"z", b"AGGREGATE", b"foo"]).map(|c| c.0)),
            "ERR syntax error"
        );
        assert_eq!(
            deferred(parse::<ZDiff<'_>>(&[b"1", b"z", b"WEIGHTS", b"1"]).map(|c| c.0)),
            "ERR syntax error"
        );
        assert_eq!(
            deferred(parse::<ZInterStore<'_>>(&[b"d", b"1", b"z", b"WITHSCORES"]).map(|c| c.c)),
            "ERR syntax error"
        );
        assert_eq!(
            msg(parse::<ZInterCard<'_>>(&[b"0", b"z"])),
            "ERR at least 1 input key is needed for 'zintercard' command"
        );
        assert_eq!(
            msg(parse::<ZInterCard<'_>>(&[b"2", b"z"])),
            "ERR syntax error"
        );
        assert_eq!(
            msg(parse::<ZInterCard<'_>>(&[b"1", b"z", b"LIMIT", b"x"])),
            "ERR LIMIT can't be negative"
        );
        assert_eq!(
            msg(parse::<ZMPop<'_>>(&[b"0", b"z", b"MIN"])),
            "ERR numkeys should be greater than 0"
        );
        assert_eq!(
            msg(parse::<ZMPop<'_>>(&[b"2", b"z", b"MIN"])),
            "ERR syntax error"
        );
        assert_eq!(
            msg(parse::<ZMPop<'_>>(&[b"1", b"z", b"foo"])),
            "ERR syntax error"
        );
        assert_eq!(
            msg(parse::<ZMPop<'_>>(&[b"1", b"z", b"MIN", b"COUNT", b"0"])),
            "ERR count should be greater than 0"
        );
        assert_eq!(
            msg(parse::<ZMPop<'_>>(&[
                b"1", b"z", b"MIN", b"COUNT", b"1", b"COUNT", b"1"
            ])),
            "ERR syntax error"
        );
        assert_eq!(
            msg(parse::<ZPopMin<'_>>(&[b"z", b"-1"])),
            "ERR value is out of range, must be positive"
        );
        assert_eq!(
            msg(parse::<ZPopMin<'_>>(&[b"z", b"1", b"2"])),
            "ERR syntax error",
            "as redis-server answers (tests/it/differential.rs found it)"
        );
        assert_eq!(
            msg(parse::<ZRank<'_>>(&[b"z", b"a", b"foo"])),
            "ERR syntax error"
        );
        assert_eq!(
            msg(parse::<ZRandMember<'_>>(&[
                b"z",
                b"-9223372036854775807",
                b"WITHSCORES"
            ])),
            "ERR value is out of range"
        );
        assert_eq!(
            msg(parse::<ZRandMember<'_>>(&[b"z", b"1", b"foo"])),
            "ERR syntax error"
        );
    }

    #[test]
    fn combine_weights_and_aggregates() {
        let mut a = ZSetV::default();
        a.insert(b"x", 1.0);
        a.insert(b"y", f64::INFINITY);
        let mut s = SetV::default();
        s.insert(b"x");
        s.insert(b"y");
        s.insert(b"z");
        let srcs = [Src::ZSet(a), Src::Set(s), Src::Missing];
        let sum = |op, w: &[f64], agg| {
            let (z, _) = combine(op, &srcs[..2], w, agg, None);
            z.iter()
                .map(|(m, s)| (String::from_utf8_lossy(m).into_owned(), s))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            sum(SetOp::Union, &[2.0, 3.0], Aggregate::Sum),
            vec![
                ("z".into(), 3.0),
                ("x".into(), 5.0),
                ("y".into(), f64::INFINITY)
            ]
        );
        assert_eq!(
            sum(SetOp::Inter, &[1.0, 1.0], Aggregate::Max),
            vec![("x".into(), 1.0), ("y".into(), f64::INFINITY)]
        );
        // 0 × inf is 0, and inf + -inf is 0.
        assert_eq!(
            sum(SetOp::Inter, &[0.0, 1.0], Aggregate::Sum),
            vec![("x".into(), 1.0), ("y".into(), 1.0)]
        );
        assert_eq!(sum(SetOp::Diff, &[1.0, 1.0], Aggregate::Sum), vec![]);
        let (_, n) = combine(
            SetOp::Inter,
            &srcs[..2],
            &[1.0, 1.0],
            Aggregate::Sum,
            Some(1),
        );
        assert_eq!(n, 1);
        let (z, n) = combine(SetOp::Inter, &srcs, &[1.0; 3], Aggregate::Sum, None);
        assert_eq!((z.len(), n), (0, 0));
    }
}
