//! List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET LINSERT
//! LREM LTRIM LPOS LMOVE RPOPLPUSH LMPOP, and the blocking BLPOP BRPOP BLMOVE BRPOPLPUSH
//! BLMPOP (Redis 7.4 semantics and error texts).
//!
//! Every change goes through `Db::update`, which records the whole list as the effect,
//! deletes a list left empty and signals clients blocked on a list that grew. A blocking
//! command that finds nothing calls [`ExecCtx::block_on`] and returns the reply it gives
//! when it cannot block (inside MULTI: a null array, or a null bulk for BLMOVE and
//! BRPOPLPUSH); the connection runs it again when one of its keys grows, and answers a
//! null array on timeout, as Redis does for every blocking command (`server::blocking`).

use std::time::Duration;

use bytes::Bytes;

use super::ctx::ExecCtx;
use super::{CmdError, Exec};
use crate::protocol::args::parse_i64;
use crate::protocol::{Args, Reply};
use crate::server::blocking::parse_timeout;
use crate::server::notify::Class;
use crate::store::types::{Coll, ListV};

/// An end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The head (LEFT).
    Left,
    /// The tail (RIGHT).
    Right,
}

impl End {
    fn parse(args: &mut Args<'_>) -> Result<End, CmdError> {
        let b = args.bytes()?;
        if b.eq_ignore_ascii_case(b"LEFT") {
            Ok(End::Left)
        } else if b.eq_ignore_ascii_case(b"RIGHT") {
            Ok(End::Right)
        } else {
            Err(CmdError::Syntax)
        }
    }

    fn pop_event(self) -> &'static str {
        match self {
            End::Left => "lpop",
            End::Right => "rpop",
        }
    }

    fn push_event(self) -> &'static str {
        match self {
            End::Left => "lpush",
            End::Right => "rpush",
        }
    }
}

fn pop(l: &mut ListV, end: End) -> Option<Bytes> {
    let s = match end {
        End::Left => l.pop_front(),
        End::Right => l.pop_back(),
    }?;
    Some(Bytes::copy_from_slice(&s))
}

fn push(l: &mut ListV, end: End, item: &[u8]) {
    match end {
        End::Left => l.push_front(item),
        End::Right => l.push_back(item),
    }
}

/// Pops up to `count` items from `end` of the list at `key`, with the notifications
/// Redis sends (`lpop`/`rpop`, and `del` when the list is left empty). `None` when the
/// key does not exist.
fn pop_n(
    ctx: &mut ExecCtx<'_>,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Option<Vec<Bytes>>, CmdError> {
    let done = ctx.db.update::<ListV, _>(key, false, |l| {
        let mut out = Vec::with_capacity(count.min(l.len()));
        while out.len() < count {
            match pop(l, end) {
                Some(s) => out.push(s),
                None => break,
            }
        }
        let changed = !out.is_empty();
        ((out, l.is_empty()), changed)
    })?;
    let Some((items, emptied)) = done else {
        return Ok(None);
    };
    if !items.is_empty() {
        ctx.notify(Class::List, end.pop_event(), key);
        if emptied {
            ctx.notify(Class::Generic, "del", key);
        }
    }
    Ok(Some(items))
}

/// `LPUSH`/`RPUSH`/`LPUSHX`/`RPUSHX key element [element ...]`
#[derive(Debug)]
pub struct Push<'a, const RIGHT: bool, const X: bool> {
    key: &'a [u8],
    items: Vec<&'a [u8]>,
}

/// `LPUSH key element [element ...]`
pub type LPush<'a> = Push<'a, false, false>;
/// `RPUSH key element [element ...]`
pub type RPush<'a> = Push<'a, true, false>;
/// `LPUSHX key element [element ...]`
pub type LPushX<'a> = Push<'a, false, true>;
/// `RPUSHX key element [element ...]`
pub type RPushX<'a> = Push<'a, true, true>;

impl<'a, const RIGHT: bool, const X: bool> Exec<'a> for Push<'a, RIGHT, X> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Push {
            key: args.bytes()?,
            items: args.rest(),
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let end = if RIGHT { End::Right } else { End::Left };
        let len = ctx.db.update::<ListV, _>(self.key, !X, |l| {
            for i in &self.items {
                push(l, end, i);
            }
            (l.len(), true)
        })?;
        match len {
            Some(n) => {
                ctx.notify(Class::List, end.push_event(), self.key);
                Ok(Reply::Int(n as i64))
            }
            None => Ok(Reply::Int(0)),
        }
    }
}

/// `LPOP`/`RPOP key [count]`
#[derive(Debug)]
pub struct Pop<'a, const RIGHT: bool> {
    key: &'a [u8],
    count: Option<usize>,
}

/// `LPOP key [count]`
pub type LPop<'a> = Pop<'a, false>;
/// `RPOP key [count]`
pub type RPop<'a> = Pop<'a, true>;

impl<'a, const RIGHT: bool> Exec<'a> for Pop<'a, RIGHT> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        // Redis counts the arguments before it reads the count.
        if args.remaining() > 1 {
            let name = if RIGHT { "rpop" } else { "lpop" };
            return Err(CmdError::WrongArity(name.to_string()));
        }
        let count = match args.next_opt() {
            None => None,
            Some(c) => {
                let n = parse_i64(c)
                    .ok()
                    .filter(|&n| n >= 0)
                    .ok_or_else(|| CmdError::err("value is out of range, must be positive"))?;
                Some(usize::try_from(n).unwrap_or(usize::MAX))
            }
        };
        args.end()?;
        Ok(Pop { key, count })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let end = if RIGHT { End::Right } else { End::Left };
        let items = pop_n(ctx, self.key, end, self.count.unwrap_or(1))?;
        Ok(match (items, self.count) {
            (None, Some(_)) => Reply::NilArray,
            (None, None) => Reply::Nil,
            (Some(v), Some(_)) => Reply::bulks(v),
            (Some(v), None) => Reply::opt_bulk(v.into_iter().next()),
        })
    }
}

/// `LLEN key`
#[derive(Debug)]
pub struct LLen<'a> {
    key: &'a [u8],
}

impl<'a> Exec<'a> for LLen<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(LLen { key: args.bytes()? })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let n = ctx.db.read::<ListV>(self.key)?.map_or(0, |l| l.len());
        Ok(Reply::Int(n as i64))
    }
}

/// Redis's range normalisation (LRANGE, LTRIM): the inclusive positions `start..=end` in
/// a list of `len` items, `None` when the range is empty.
fn range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { start + len } else { start }.max(0);
    let end = if end < 0 { end + len } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

/// `LRANGE key start stop`
#[derive(Debug)]
pub struct LRange<'a> {
    key: &'a [u8],
    start: i64,
    end: i64,
}

impl<'a> Exec<'a> for LRange<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(LRange {
            key: args.bytes()?,
            start: args.i64()?,
            end: args.i64()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let Some(l) = ctx.db.read::<ListV>(self.key)? else {
            return Ok(Reply::Array(Vec::new()));
        };
        Ok(match range(self.start, self.end, l.len()) {
            None => Reply::Array(Vec::new()),
            Some((s, e)) => Reply::bulks(
                l.iter()
                    .skip(s)
                    .take(e - s + 1)
                    .map(|i| Bytes::copy_from_slice(i)),
            ),
        })
    }
}

/// A Redis list index (negative: from the tail) as a position, if in range.
fn index(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { i.checked_add(len as i64)? } else { i };
    usize::try_from(i).ok().filter(|&i| i < len)
}

/// `LINDEX key index`
#[derive(Debug)]
pub struct LIndex<'a> {
    key: &'a [u8],
    index: &'a [u8],
}

impl<'a> Exec<'a> for LIndex<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(LIndex {
            key: args.bytes()?,
            index: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        // As Redis: the key is looked up before the index is parsed.
        let Some(l) = ctx.db.read::<ListV>(self.key)? else {
            return Ok(Reply::Nil);
        };
        let i = parse_i64(self.index)?;
        Ok(Reply::opt_bulk(
            index(i, l.len())
                .and_then(|i| l.get(i))
                .map(|s| Bytes::copy_from_slice(s)),
        ))
    }
}

/// `LSET key index element`
#[derive(Debug)]
pub struct LSet<'a> {
    key: &'a [u8],
    index: &'a [u8],
    item: &'a [u8],
}

impl<'a> Exec<'a> for LSet<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(LSet {
            key: args.bytes()?,
            index: args.bytes()?,
            item: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        if ctx.db.peek_coll::<ListV>(self.key)?.is_none() {
            return Err(CmdError::err("no such key"));
        }
        let i = parse_i64(self.index)?;
        let item = self.item;
        let done = ctx
            .db
            .update::<ListV, _>(self.key, false, |l| match index(i, l.len()) {
                Some(p) => (l.set(p, item), true),
                None => (false, false),
            })?;
        if done != Some(true) {
            return Err(CmdError::err("index out of range"));
        }
        ctx.notify(Class::List, "lset", self.key);
        Ok(Reply::Ok)
    }
}

/// `LINSERT key BEFORE|AFTER pivot element`
#[derive(Debug)]
pub struct LInsert<'a> {
    key: &'a [u8],
    after: bool,
    pivot: &'a [u8],
    item: &'a [u8],
}

impl<'a> Exec<'a> for LInsert<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        let after = match args.keyword()?.as_str() {
            "BEFORE" => false,
            "AFTER" => true,
            _ => return Err(CmdError::Syntax),
        };
        Ok(LInsert {
            key,
            after,
            pivot: args.bytes()?,
            item: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let (after, pivot, item) = (self.after, self.pivot, self.item);
        let done = ctx
            .db
            .update::<ListV, _>(self.key, false, |l| match l.position(pivot) {
                Some(p) => {
                    l.insert(p + usize::from(after), item);
                    (l.len() as i64, true)
                }
                None => (-1, false),
            })?;
        match done {
            None => Ok(Reply::Int(0)),
            Some(n) => {
                if n > 0 {
                    ctx.notify(Class::List, "linsert", self.key);
                }
                Ok(Reply::Int(n))
            }
        }
    }
}

/// `LREM key count element`
#[derive(Debug)]
pub struct LRem<'a> {
    key: &'a [u8],
    count: i64,
    item: &'a [u8],
}

impl<'a> Exec<'a> for LRem<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(LRem {
            key: args.bytes()?,
            count: args.i64()?,
            item: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let (count, item) = (self.count, self.item);
        let done = ctx.db.update::<ListV, _>(self.key, false, |l| {
            let n = l.remove_eq(item, count);
            ((n, l.is_empty()), n > 0)
        })?;
        let Some((n, emptied)) = done else {
            return Ok(Reply::Int(0));
        };
        if n > 0 {
            ctx.notify(Class::List, "lrem", self.key);
            if emptied {
                ctx.notify(Class::Generic, "del", self.key);
            }
        }
        Ok(Reply::Int(n as i64))
    }
}

/// `LTRIM key start stop`
#[derive(Debug)]
pub struct LTrim<'a> {
    key: &'a [u8],
    start: i64,
    end: i64,
}

impl<'a> Exec<'a> for LTrim<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(LTrim {
            key: args.bytes()?,
            start: args.i64()?,
            end: args.i64()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let (start, end) = (self.start, self.end);
        let done = ctx.db.update::<ListV, _>(self.key, false, |l| {
            let before = l.len();
            match range(start, end, before) {
                Some((s, e)) => l.keep_range(s, e + 1),
                None => l.keep_range(0, 0),
            }
            (l.is_empty(), l.len() != before)
        })?;
        if let Some(emptied) = done {
            ctx.notify(Class::List, "ltrim", self.key);
            if emptied {
                ctx.notify(Class::Generic, "del", self.key);
            }
        }
        Ok(Reply::Ok)
    }
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`
#[derive(Debug)]
pub struct LPos<'a> {
    key: &'a [u8],
    item: &'a [u8],
    rank: i64,
    count: Option<usize>,
    maxlen: usize,
}

/// A non-negative integer option of LPOS, with Redis's message for anything else.
fn non_negative(b: &[u8], msg: &'static str) -> Result<usize, CmdError> {
    parse_i64(b)
        .ok()
        .filter(|&n| n >= 0)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .ok_or_else(|| CmdError::err(msg))
}

impl<'a> Exec<'a> for LPos<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let mut p = LPos {
            key: args.bytes()?,
            item: args.bytes()?,
            rank: 1,
            count: None,
            maxlen: 0,
        };
        while !args.is_empty() {
            let opt = args.keyword()?;
            if args.is_empty() {
                return Err(CmdError::Syntax);
            }
            match opt.as_str() {
                "RANK" => {
                    let r = args.i64()?;
                    if r == i64::MIN {
                        return Err(CmdError::err(format!(
                            "value is out of range, value must between {} and {}",
                            -i64::MAX,
                            i64::MAX
                        )));
                    }
                    if r == 0 {
                        return Err(CmdError::err(
                            "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                        ));
                    }
                    p.rank = r;
                }
                "COUNT" => p.count = Some(non_negative(args.bytes()?, "COUNT can't be negative")?),
                "MAXLEN" => p.maxlen = non_negative(args.bytes()?, "MAXLEN can't be negative")?,
                _ => return Err(CmdError::Syntax),
            }
        }
        Ok(p)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let Some(l) = ctx.db.read::<ListV>(self.key)? else {
            return Ok(match self.count {
                Some(_) => Reply::Array(Vec::new()),
                None => Reply::Nil,
            });
        };
        let want = match self.count {
            Some(0) => usize::MAX,
            Some(n) => n,
            None => 1,
        };
        let maxlen = if self.maxlen == 0 {
            usize::MAX
        } else {
            self.maxlen
        };
        let mut skip = self.rank.unsigned_abs().saturating_sub(1);
        let mut found = Vec::new();
        let visit: Box<dyn Iterator<Item = (usize, &crate::store::entry::Str)>> = if self.rank > 0 {
            Box::new(l.iter().enumerate())
        } else {
            Box::new(l.iter().enumerate().rev())
        };
        for (i, s) in visit.take(maxlen) {
            if &s[..] != self.item {
                continue;
            }
            if skip > 0 {
                skip -= 1;
                continue;
            }
            found.push(Reply::Int(i as i64));
            if found.len() >= want {
                break;
            }
        }
        Ok(match self.count {
            Some(_) => Reply::Array(found),
            None => found.into_iter().next().unwrap_or(Reply::Nil),
        })
    }
}

/// Moves one item from `end_from` of `src` to `end_to` of `dst`: `None` when `src`
/// does not exist (WRONGTYPE when `src`, or `dst`, is not a list).
fn lmove(
    ctx: &mut ExecCtx<'_>,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
) -> Result<Option<Bytes>, CmdError> {
    if ctx.db.peek_coll::<ListV>(src)?.is_none() {
        return Ok(None);
    }
    ctx.db.peek_coll::<ListV>(dst)?;
    if src == dst {
        // One change: a one-item list rotated onto itself is never deleted in between.
        let item = ctx
            .db
            .update::<ListV, _>(src, false, |l| match pop(l, from) {
                Some(s) => {
                    push(l, to, &s);
                    (Some(s), true)
                }
                None => (None, false),
            })?;
        let item = item.flatten();
        if item.is_some() {
            ctx.notify(Class::List, from.pop_event(), src);
            ctx.notify(Class::List, to.push_event(), dst);
        }
        return Ok(item);
    }
    let Some(item) = pop_n(ctx, src, from, 1)?.and_then(|v| v.into_iter().next()) else {
        return Ok(None);
    };
    ctx.db.update::<ListV, _>(dst, true, |l| {
        push(l, to, &item);
        ((), true)
    })?;
    ctx.notify(Class::List, to.push_event(), dst);
    Ok(Some(item))
}

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`
#[derive(Debug)]
pub struct LMove<'a> {
    src: &'a [u8],
    dst: &'a [u8],
    from: End,
    to: End,
}

impl<'a> Exec<'a> for LMove<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(LMove {
            src: args.bytes()?,
            dst: args.bytes()?,
            from: End::parse(args)?,
            to: End::parse(args)?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(Reply::opt_bulk(lmove(
            ctx, self.src, self.dst, self.from, self.to,
        )?))
    }
}

/// `RPOPLPUSH source destination`
#[derive(Debug)]
pub struct RPopLPush<'a>(LMove<'a>);

impl<'a> Exec<'a> for RPopLPush<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(RPopLPush(LMove {
            src: args.bytes()?,
            dst: args.bytes()?,
            from: End::Right,
            to: End::Left,
        }))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.0.exec(ctx)
    }
}

/// The keys, end and count of LMPOP and BLMPOP (after the timeout for BLMPOP).
#[derive(Debug)]
struct MPop<'a> {
    keys: Vec<&'a [u8]>,
    end: End,
    count: usize,
}

impl<'a> MPop<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let n = parse_i64(args.bytes()?)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| CmdError::err("numkeys should be greater than 0"))?;
        if n >= args.remaining() as i64 {
            return Err(CmdError::Syntax);
        }
        let keys = (0..n).map(|_| args.bytes()).collect::<Result<_, _>>()?;
        let end = End::parse(args)?;
        let mut count = None;
        while !args.is_empty() {
            if count.is_none() && args.remaining() >= 2 && args.eat("COUNT") {
                let c = args
                    .next_opt()
                    .and_then(|c| parse_i64(c).ok())
                    .filter(|&c| c > 0)
                    .ok_or_else(|| CmdError::err("count should be greater than 0"))?;
                count = Some(usize::try_from(c).unwrap_or(usize::MAX));
            } else {
                return Err(CmdError::Syntax);
            }
        }
        Ok(MPop {
            keys,
            end,
            count: count.unwrap_or(1),
        })
    }

    /// Pops from the first non-empty list: `[key, [items]]`, or `None` when every list
    /// is missing. WRONGTYPE at the first key of another type, except on a blocked
    /// client's retry, which skips it (Redis keeps such a client blocked).
    fn run(&self, ctx: &mut ExecCtx<'_>) -> Result<Option<Reply>, CmdError> {
        for key in &self.keys {
            let popped = match pop_n(ctx, key, self.end, self.count) {
                Err(CmdError::WrongType) if ctx.is_retry() => continue,
                other => other?,
            };
            if let Some(items) = popped.filter(|v| !v.is_empty()) {
                return Ok(Some(Reply::Array(vec![
                    Reply::bulk(key),
                    Reply::bulks(items),
                ])));
            }
        }
        Ok(None)
    }
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`
#[derive(Debug)]
pub struct LMPop<'a>(MPop<'a>);

impl<'a> Exec<'a> for LMPop<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(LMPop(MPop::parse(args)?))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(self.0.run(ctx)?.unwrap_or(Reply::NilArray))
    }
}

/// `BLPOP`/`BRPOP key [key ...] timeout`
#[derive(Debug)]
pub struct BPop<'a, const RIGHT: bool> {
    keys: Vec<&'a [u8]>,
    timeout: Option<Duration>,
}

/// `BLPOP key [key ...] timeout`
pub type BLPop<'a> = BPop<'a, false>;
/// `BRPOP key [key ...] timeout`
pub type BRPop<'a> = BPop<'a, true>;

impl<'a, const RIGHT: bool> Exec<'a> for BPop<'a, RIGHT> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let mut keys = args.rest();
        let timeout = parse_timeout(keys.pop().ok_or(CmdError::Syntax)?)?;
        Ok(BPop { keys, timeout })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let end = if RIGHT { End::Right } else { End::Left };
        let m = MPop {
            keys: self.keys,
            end,
            count: 1,
        };
        if let Some(Reply::Array(mut kv)) = m.run(ctx)? {
            // [key, [item]] → [key, item]
            if let Some(Reply::Array(mut items)) = kv.pop()
                && let Some(item) = items.pop()
            {
                kv.push(item);
                return Ok(Reply::Array(kv));
            }
            return Err(CmdError::Internal("empty pop".into()));
        }
        ctx.block_on(m.keys.iter().copied(), self.timeout);
        Ok(Reply::NilArray)
    }
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout`
#[derive(Debug)]
pub struct BLMove<'a> {
    mv: LMove<'a>,
    timeout: Option<Duration>,
}

impl BLMove<'_> {
    fn run(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let LMove { src, dst, from, to } = self.mv;
        let moved = match lmove(ctx, src, dst, from, to) {
            Err(CmdError::WrongType) if ctx.is_retry() => None,
            other => other?,
        };
        if let Some(item) = moved {
            return Ok(Reply::Bulk(item));
        }
        ctx.block_on([src], self.timeout);
        Ok(Reply::Nil)
    }
}

impl<'a> Exec<'a> for BLMove<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let mv = LMove::parse(args)?;
        let timeout = parse_timeout(args.bytes()?)?;
        Ok(BLMove { mv, timeout })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.run(ctx)
    }
}

/// `BRPOPLPUSH source destination timeout`
#[derive(Debug)]
pub struct BRPopLPush<'a>(BLMove<'a>);

impl<'a> Exec<'a> for BRPopLPush<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let mv = RPopLPush::parse(args)?.0;
        let timeout = parse_timeout(args.bytes()?)?;
        Ok(BRPopLPush(BLMove { mv, timeout }))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.0.run(ctx)
    }
}

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`
#[derive(Debug)]
pub struct BLMPop<'a> {
    timeout: Option<Duration>,
    m: MPop<'a>,
}

impl<'a> Exec<'a> for BLMPop<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let timeout = parse_timeout(args.bytes()?)?;
        Ok(BLMPop {
            timeout,
            m: MPop::parse(args)?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        if let Some(r) = self.m.run(ctx)? {
            return Ok(r);
        }
        ctx.block_on(self.m.keys.iter().copied(), self.timeout);
        Ok(Reply::NilArray)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<'a, T: Exec<'a>>(items: &'a [&'a [u8]]) -> Result<T, CmdError> {
        T::parse(&mut Args::new(items))
    }

    fn err<T: std::fmt::Debug>(r: Result<T, CmdError>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn ranges_follow_redis() {
        assert_eq!(range(0, -1, 3), Some((0, 2)));
        assert_eq!(range(-2, 10, 3), Some((1, 2)));
        assert_eq!(range(-10, 0, 3), Some((0, 0)));
        assert_eq!(range(2, 1, 3), None);
        assert_eq!(range(3, 5, 3), None);
        assert_eq!(range(0, -1, 0), None);
        assert_eq!(index(-1, 3), Some(2));
        assert_eq!(index(-4, 3), None);
        assert_eq!(index(3, 3), None);
        assert_eq!(index(i64::MIN, 3), None);
    }

    #[test]
    fn parse_errors_are_redis_texts() {
        assert_eq!(
            err(parse::<LPop>(&[b"k", b"-1"])),
            "ERR value is out of range, must be positive"
        );
        assert_eq!(
            err(parse::<LMPop>(&[b"0", b"k", b"LEFT"])),
            "ERR numkeys should be greater than 0"
        );
        assert_eq!(
            err(parse::<LMPop>(&[b"3", b"k", b"LEFT"])),
            "ERR syntax error"
        );
        assert_eq!(
            err(parse::<LMPop>(&[b"1", b"k", b"LEFT", b"COUNT", b"0"])),
            "ERR count should be greater than 0"
        );
        assert_eq!(
            err(parse::<LMPop>(&[
                b"1", b"k", b"LEFT", b"COUNT", b"1", b"COUNT", b"2"
            ])),
            "ERR syntax error"
        );
        assert_eq!(
            err(parse::<LMPop>(&[b"1", b"k", b"UP"])),
            "ERR syntax error"
        );
        assert_eq!(
            err(parse::<LPos>(&[b"k", b"a", b"RANK", b"0"])),
            "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
        );
        assert_eq!(
            err(parse::<LPos>(&[b"k", b"a", b"COUNT", b"x"])),
            "ERR COUNT can't be negative"
        );
        assert_eq!(
            err(parse::<LPos>(&[b"k", b"a", b"MAXLEN", b"-1"])),
            "ERR MAXLEN can't be negative"
        );
        assert_eq!(
            err(parse::<LPos>(&[b"k", b"a", b"RANK"])),
            "ERR syntax error"
        );
        assert_eq!(
            err(parse::<BLPop>(&[b"k", b"-1"])),
            "ERR timeout is negative"
        );
        assert_eq!(
            err(parse::<BLMPop>(&[b"x", b"1", b"k", b"LEFT"])),
            "ERR timeout is not a float or out of range"
        );
        assert_eq!(
            err(parse::<LInsert>(&[b"k", b"MIDDLE", b"a", b"b"])),
            "ERR syntax error"
        );
        assert!(matches!(
            parse::<BLMPop>(&[b"0.5", b"2", b"a", b"b", b"RIGHT", b"COUNT", b"3"]),
            Ok(BLMPop { timeout: Some(t), m: MPop { ref keys, end: End::Right, count: 3 } })
                if t == Duration::from_millis(500) && keys.len() == 2
        ));
    }
}
