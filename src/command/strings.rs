//! String commands: GET, SET and its variants, MGET/MSET, APPEND, counters, ranges.

use bytes::{Bytes, BytesMut};

use super::ctx::ExecCtx;
use super::{CmdError, Exec};
use crate::protocol::args::{parse_f64, parse_i64};
use crate::protocol::{Args, Reply};
use crate::server::notify::Class;
use crate::store::{Ttl, Value};

/// Largest string a write may produce (Redis's default proto-max-bulk-len, 512 MB).
const MAX_STRING: u64 = 512 << 20;

/// An expiry option as given: `EX`/`PX` are relative, `EXAT`/`PXAT` absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryArg {
    /// Seconds from now.
    Ex(i64),
    /// Milliseconds from now.
    Px(i64),
    /// Unix seconds.
    ExAt(i64),
    /// Unix milliseconds.
    PxAt(i64),
}

impl ExpiryArg {
    /// The absolute deadline in unix ms, or Redis's "invalid expire time" error for values
    /// that are not positive or overflow.
    pub fn deadline(self, now: u64, cmd: &str) -> Result<u64, CmdError> {
        let bad = || CmdError::invalid_expire(cmd);
        let (v, ms_per, rel) = match self {
            ExpiryArg::Ex(v) => (v, 1000, true),
            ExpiryArg::Px(v) => (v, 1, true),
            ExpiryArg::ExAt(v) => (v, 1000, false),
            ExpiryArg::PxAt(v) => (v, 1, false),
        };
        if v <= 0 {
            return Err(bad());
        }
        let ms = v.checked_mul(ms_per).ok_or_else(bad)?;
        let at = if rel {
            ms.checked_add(now as i64).ok_or_else(bad)?
        } else {
            ms
        };
        Ok(at as u64)
    }

    /// Parses `EX n`, `PX n`, `EXAT n` or `PXAT n` if the next argument is one of them.
    /// The number is only read when the command runs ([`RawExpiry::deadline`]): Redis
    /// reports a syntax error anywhere in the options before a bad number, and GETEX on a
    /// missing key answers nil whatever the number.
    fn parse_opt<'a>(kw: &str, args: &mut Args<'a>) -> Result<Option<RawExpiry<'a>>, CmdError> {
        let unit: fn(i64) -> ExpiryArg = match kw {
            "EX" => ExpiryArg::Ex,
            "PX" => ExpiryArg::Px,
            "EXAT" => ExpiryArg::ExAt,
            "PXAT" => ExpiryArg::PxAt,
            _ => return Ok(None),
        };
        if args.is_empty() {
            return Err(CmdError::Syntax);
        }
        Ok(Some(RawExpiry {
            unit,
            raw: args.bytes()?,
        }))
    }
}

/// An `EX`/`PX`/`EXAT`/`PXAT` option as sent: its number is parsed when the command runs.
#[derive(Debug, Clone, Copy)]
pub struct RawExpiry<'a> {
    unit: fn(i64) -> ExpiryArg,
    raw: &'a [u8],
}

impl RawExpiry<'_> {
    /// The absolute deadline in unix ms: Redis's integer error for a number that does not
    /// parse, its "invalid expire time" error for one out of range.
    pub fn deadline(self, now: u64, cmd: &str) -> Result<u64, CmdError> {
        (self.unit)(crate::protocol::args::parse_i64(self.raw)?).deadline(now, cmd)
    }
}

/// `GET key`
#[derive(Debug)]
pub struct Get<'a> {
    key: &'a [u8],
}

impl<'a> Exec<'a> for Get<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Get { key: args.bytes()? })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(Reply::opt_bulk(ctx.get_str(self.key)?))
    }
}

/// The condition of a SET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetCond<'a> {
    /// Always.
    Always,
    /// Only if the key does not exist.
    Nx,
    /// Only if the key exists.
    Xx,
    /// Only if the key holds exactly this string (Valkey 8.1 `IFEQ`).
    IfEq(&'a [u8]),
}

/// `SET key value [NX | XX | IFEQ old] [GET] [EX s | PX ms | EXAT ts | PXAT ts | KEEPTTL]`
#[derive(Debug)]
pub struct Set<'a> {
    key: &'a [u8],
    value: &'a [u8],
    cond: SetCond<'a>,
    get: bool,
    expiry: Option<RawExpiry<'a>>,
    keep_ttl: bool,
}

impl<'a> Exec<'a> for Set<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let mut s = Set {
            key: args.bytes()?,
            value: args.bytes()?,
            cond: SetCond::Always,
            get: false,
            expiry: None,
            keep_ttl: false,
        };
        while !args.is_empty() {
            let kw = args.keyword()?;
            let timed = s.expiry.is_some() || s.keep_ttl;
            match kw.as_str() {
                "NX" | "XX" if s.cond == SetCond::Always => {
                    s.cond = if kw == "NX" { SetCond::Nx } else { SetCond::Xx };
                }
                "IFEQ" if s.cond == SetCond::Always => s.cond = SetCond::IfEq(args.bytes()?),
                "GET" if !s.get => s.get = true,
                "KEEPTTL" if !timed => s.keep_ttl = true,
                "EX" | "PX" | "EXAT" | "PXAT" if !timed => {
                    s.expiry = ExpiryArg::parse_opt(&kw, args)?
                }
                _ => return Err(CmdError::Syntax),
            }
        }
        Ok(s)
    }

    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let at = match self.expiry {
            Some(e) => Some(e.deadline(ctx.db.now, "set")?),
            None => None,
        };
        // With GET (or IFEQ) the old value must be a string: WRONGTYPE before any change.
        let old = if self.get || matches!(self.cond, SetCond::IfEq(_)) {
            ctx.peek_str(self.key)?
        } else {
            None
        };
        let go = match &self.cond {
            SetCond::Always => true,
            SetCond::Nx => !ctx.db.exists(self.key)?,
            SetCond::Xx => ctx.db.exists(self.key)?,
            SetCond::IfEq(cmp) => old.as_deref() == Some(*cmp),
        };
        if go {
            let ttl = match (at, self.keep_ttl) {
                (Some(t), _) => Ttl::At(t),
                (None, true) => Ttl::Keep,
                (None, false) => Ttl::Clear,
            };
            ctx.db.set(self.key, Value::str(self.value), ttl)?;
            ctx.notify(Class::String, "set", self.key);
            if at.is_some() {
                ctx.notify(Class::Generic, "expire", self.key);
            }
        }
        Ok(match (self.get, go) {
            (true, _) => Reply::opt_bulk(old),
            (false, true) => Reply::Ok,
            (false, false) => Reply::Nil,
        })
    }
}

/// `SETNX key value`
#[derive(Debug)]
pub struct SetNx<'a> {
    key: &'a [u8],
    value: &'a [u8],
}

impl<'a> Exec<'a> for SetNx<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(SetNx {
            key: args.bytes()?,
            value: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        if ctx.db.exists(self.key)? {
            return Ok(Reply::Int(0));
        }
        ctx.db.set(self.key, Value::str(self.value), Ttl::Clear)?;
        ctx.notify(Class::String, "set", self.key);
        Ok(Reply::Int(1))
    }
}

/// `SETEX key seconds value` and `PSETEX key milliseconds value`.
#[derive(Debug)]
pub struct SetEx<'a> {
    key: &'a [u8],
    expiry: ExpiryArg,
    value: &'a [u8],
}

/// `PSETEX key milliseconds value`
#[derive(Debug)]
pub struct PSetEx<'a>(SetEx<'a>);

impl<'a> SetEx<'a> {
    fn run(self, ctx: &mut ExecCtx<'_>, cmd: &str) -> Result<Reply, CmdError> {
        let at = self.expiry.deadline(ctx.db.now, cmd)?;
        ctx.db.set(self.key, Value::str(self.value), Ttl::At(at))?;
        ctx.notify(Class::String, "set", self.key);
        ctx.notify(Class::Generic, "expire", self.key);
        Ok(Reply::Ok)
    }
}

impl<'a> Exec<'a> for SetEx<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(SetEx {
            key: args.bytes()?,
            expiry: ExpiryArg::Ex(args.i64()?),
            value: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.run(ctx, "setex")
    }
}

impl<'a> Exec<'a> for PSetEx<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(PSetEx(SetEx {
            key: args.bytes()?,
            expiry: ExpiryArg::Px(args.i64()?),
            value: args.bytes()?,
        }))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.0.run(ctx, "psetex")
    }
}

/// `GETSET key value`
#[derive(Debug)]
pub struct GetSet<'a> {
    key: &'a [u8],
    value: &'a [u8],
}

impl<'a> Exec<'a> for GetSet<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(GetSet {
            key: args.bytes()?,
            value: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let old = ctx.peek_str(self.key)?;
        ctx.db.set(self.key, Value::str(self.value), Ttl::Clear)?;
        ctx.notify(Class::String, "set", self.key);
        Ok(Reply::opt_bulk(old))
    }
}

/// `GETDEL key`
#[derive(Debug)]
pub struct GetDel<'a> {
    key: &'a [u8],
}

impl<'a> Exec<'a> for GetDel<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(GetDel { key: args.bytes()? })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let v = ctx.get_str(self.key)?;
        if v.is_some() {
            ctx.db.del(self.key)?;
            ctx.notify(Class::Generic, "del", self.key);
        }
        Ok(Reply::opt_bulk(v))
    }
}

/// `DELIFEQ key value` (Valkey 9.0): deletes the key only if it holds exactly `value`;
/// 1 if deleted, 0 otherwise. The `remove(key, value)` of a Terracotta cache.
#[derive(Debug)]
pub struct DelIfEq<'a> {
    key: &'a [u8],
    value: &'a [u8],
}

impl<'a> Exec<'a> for DelIfEq<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(DelIfEq {
            key: args.bytes()?,
            value: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let Some(e) = ctx.db.peek(self.key)? else {
            return Ok(Reply::Int(0));
        };
        if e.value().as_str().ok_or(CmdError::WrongType)? != self.value {
            return Ok(Reply::Int(0));
        }
        ctx.db.del(self.key)?;
        ctx.notify(Class::Generic, "del", self.key);
        Ok(Reply::Int(1))
    }
}

/// `GETEX key [EX s | PX ms | EXAT ts | PXAT ts | PERSIST]`
#[derive(Debug)]
pub struct GetEx<'a> {
    key: &'a [u8],
    expiry: Option<RawExpiry<'a>>,
    persist: bool,
}

impl<'a> Exec<'a> for GetEx<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let mut g = GetEx {
            key: args.bytes()?,
            expiry: None,
            persist: false,
        };
        while !args.is_empty() {
            let kw = args.keyword()?;
            let set = g.expiry.is_some() || g.persist;
            match kw.as_str() {
                "PERSIST" if !set => g.persist = true,
                "EX" | "PX" | "EXAT" | "PXAT" if !set => {
                    g.expiry = ExpiryArg::parse_opt(&kw, args)?
                }
                _ => return Err(CmdError::Syntax),
            }
        }
        Ok(g)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        // As in Redis: a missing key is nil and another type WRONGTYPE before the expire
        // time is even parsed.
        let v = ctx.get_str(self.key)?;
        let at = match self.expiry {
            Some(e) if v.is_some() => Some(e.deadline(ctx.db.now, "getex")?),
            _ => None,
        };
        if v.is_some() {
            if let Some(t) = at {
                ctx.db.set_expire(self.key, Some(t))?;
                // A deadline already passed deletes the key (Db::set_expire does that).
                let event = if t <= ctx.db.now { "del" } else { "expire" };
                ctx.notify(Class::Generic, event, self.key);
            } else if self.persist && ctx.db.peek(self.key)?.is_some_and(|e| e.expire_at() != 0) {
                // Only an actual change counts (WATCH, effects), as in Redis.
                ctx.db.set_expire(self.key, None)?;
                ctx.notify(Class::Generic, "persist", self.key);
            }
        }
        Ok(Reply::opt_bulk(v))
    }
}

/// `MGET key [key ...]`
#[derive(Debug)]
pub struct MGet<'a> {
    keys: Vec<&'a [u8]>,
}

impl<'a> Exec<'a> for MGet<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(MGet { keys: args.rest() })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let mut out = Vec::with_capacity(self.keys.len());
        for k in &self.keys {
            // MGET answers nil, not WRONGTYPE, for keys of other types.
            let v = ctx
                .db
                .get(k)?
                .and_then(|e| e.value().as_str().map(Bytes::copy_from_slice));
            out.push(Reply::opt_bulk(v));
        }
        Ok(Reply::Array(out))
    }
}

/// `MSET key value [key value ...]` and `MSETNX`.
#[derive(Debug)]
pub struct MSet<'a> {
    pairs: Vec<(&'a [u8], &'a [u8])>,
}

/// `MSETNX key value [key value ...]`
#[derive(Debug)]
pub struct MSetNx<'a>(MSet<'a>);

impl<'a> MSet<'a> {
    fn parse_pairs(args: &mut Args<'a>, name: &str) -> Result<MSet<'a>, CmdError> {
        if !args.remaining().is_multiple_of(2) {
            return Err(CmdError::WrongArity(name.to_string()));
        }
        let mut pairs = Vec::with_capacity(args.remaining() / 2);
        while !args.is_empty() {
            pairs.push((args.bytes()?, args.bytes()?));
        }
        Ok(MSet { pairs })
    }

    fn write(self, ctx: &mut ExecCtx<'_>) -> Result<(), CmdError> {
        ctx.db
            .check_room(self.pairs.iter().map(|(k, v)| (*k, v.len())))?;
        for (k, v) in self.pairs {
            ctx.db.set(k, Value::str(v), Ttl::Clear)?;
            ctx.notify(Class::String, "set", k);
        }
        Ok(())
    }
}

impl<'a> Exec<'a> for MSet<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        MSet::parse_pairs(args, "mset")
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.write(ctx)?;
        Ok(Reply::Ok)
    }
}

impl<'a> Exec<'a> for MSetNx<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(MSetNx(MSet::parse_pairs(args, "msetnx")?))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        for (k, _) in &self.0.pairs {
            if ctx.db.exists(k)? {
                return Ok(Reply::Int(0));
            }
        }
        self.0.write(ctx)?;
        Ok(Reply::Int(1))
    }
}

/// `APPEND key value`
#[derive(Debug)]
pub struct Append<'a> {
    key: &'a [u8],
    value: &'a [u8],
}

impl<'a> Exec<'a> for Append<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Append {
            key: args.bytes()?,
            value: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let old = ctx.peek_str(self.key)?.unwrap_or_default();
        let len = old.len() + self.value.len();
        if len as u64 > MAX_STRING {
            return Err(CmdError::err(
                "string exceeds maximum allowed size (proto-max-bulk-len)",
            ));
        }
        let mut buf = BytesMut::with_capacity(len);
        buf.extend_from_slice(&old);
        buf.extend_from_slice(self.value);
        ctx.db.set(self.key, Value::str(&buf), Ttl::Keep)?;
        ctx.notify(Class::String, "append", self.key);
        Ok(Reply::Int(len as i64))
    }
}

/// `STRLEN key`
#[derive(Debug)]
pub struct StrLen<'a> {
    key: &'a [u8],
}

impl<'a> Exec<'a> for StrLen<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(StrLen { key: args.bytes()? })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(Reply::Int(
            ctx.get_str(self.key)?.map_or(0, |v| v.len() as i64),
        ))
    }
}

/// Adds `by` to the integer at `key` (0 when missing), keeping its TTL.
fn incr_by(ctx: &mut ExecCtx<'_>, key: &[u8], by: i64) -> Result<Reply, CmdError> {
    let cur = match ctx.peek_str(key)? {
        Some(v) => parse_i64(&v)?,
        None => 0,
    };
    let new = cur.checked_add(by).ok_or(CmdError::Overflow)?;
    ctx.db
        .set(key, Value::str(new.to_string().as_bytes()), Ttl::Keep)?;
    ctx.notify(Class::String, "incrby", key);
    Ok(Reply::Int(new))
}

/// `INCR key`
#[derive(Debug)]
pub struct Incr<'a> {
    key: &'a [u8],
}

/// `DECR key`
#[derive(Debug)]
pub struct Decr<'a> {
    key: &'a [u8],
}

/// `INCRBY key increment`
#[derive(Debug)]
pub struct IncrBy<'a> {
    key: &'a [u8],
    by: i64,
}

/// `DECRBY key decrement`
#[derive(Debug)]
pub struct DecrBy<'a> {
    key: &'a [u8],
    by: i64,
}

impl<'a> Exec<'a> for Incr<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Incr { key: args.bytes()? })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        incr_by(ctx, self.key, 1)
    }
}

impl<'a> Exec<'a> for Decr<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Decr { key: args.bytes()? })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        incr_by(ctx, self.key, -1)
    }
}

impl<'a> Exec<'a> for IncrBy<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(IncrBy {
            key: args.bytes()?,
            by: args.i64()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        incr_by(ctx, self.key, self.by)
    }
}

impl<'a> Exec<'a> for DecrBy<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(DecrBy {
            key: args.bytes()?,
            by: args.i64()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let by = self
            .by
            .checked_neg()
            .ok_or_else(|| CmdError::err("decrement would overflow"))?;
        incr_by(ctx, self.key, by)
    }
}

/// `INCRBYFLOAT key increment`
#[derive(Debug)]
pub struct IncrByFloat<'a> {
    key: &'a [u8],
    /// Read after the key's type is checked: Redis answers WRONGTYPE before a bad increment.
    by: &'a [u8],
}

impl<'a> Exec<'a> for IncrByFloat<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(IncrByFloat {
            key: args.bytes()?,
            by: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let cur = ctx.peek_str(self.key)?;
        let by = parse_f64(self.by)?;
        let cur = match cur {
            Some(v) => parse_f64(&v)?,
            None => 0.0,
        };
        let new = cur + by;
        if !new.is_finite() {
            return Err(CmdError::err("increment would produce NaN or Infinity"));
        }
        let text = Bytes::from(format_float(new));
        ctx.db.set(self.key, Value::str(&text), Ttl::Keep)?;
        ctx.notify(Class::String, "incrbyfloat", self.key);
        Ok(Reply::Bulk(text))
    }
}

/// Formats an INCRBYFLOAT result like Redis: no exponent, no trailing zeros, and rounded to
/// 15 significant digits when that reads back within a few ulps, so `0.1 + 0.2` is `0.3`
/// as in Redis (which computes in long double and prints `%.17Lf`), and with at most 17
/// decimals.
pub fn format_float(v: f64) -> String {
    let text = format_float_digits(v);
    // Redis prints `%.17Lf`: never more than 17 decimals, so 1e-18 is "0" (and so is -1e-18:
    // Redis turns "-0" into "0").
    let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
    if decimals <= 17 {
        return text;
    }
    let fixed = format!("{v:.17}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

/// [`format_float`] before the 17-decimal cut.
fn format_float_digits(v: f64) -> String {
    let shortest = format!("{v}");
    let sig = shortest
        .trim_start_matches(['-', '0', '.'])
        .replace('.', "")
        .len();
    if sig > 15 {
        let mag = v.abs().log10().floor() as i32;
        let decimals = (14 - mag).clamp(0, 340) as usize;
        let rounded = format!("{v:.decimals$}");
        let trimmed = if rounded.contains('.') {
            rounded
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        } else {
            rounded
        };
        if let Ok(back) = trimmed.parse::<f64>()
            && (back - v).abs() <= v.abs() * 4.0 * f64::EPSILON
        {
            return trimmed;
        }
    }
    shortest
}

/// `GETRANGE key start end` (and its old name `SUBSTR`).
#[derive(Debug)]
pub struct GetRange<'a> {
    key: &'a [u8],
    start: i64,
    end: i64,
}

impl<'a> Exec<'a> for GetRange<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(GetRange {
            key: args.bytes()?,
            start: args.i64()?,
            end: args.i64()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let v = ctx.get_str(self.key)?.unwrap_or_default();
        let len = v.len() as i64;
        let (mut s, mut e) = (self.start, self.end);
        if s < 0 && e < 0 && s > e {
            return Ok(Reply::Bulk(Bytes::new()));
        }
        if s < 0 {
            s += len;
        }
        if e < 0 {
            e += len;
        }
        s = s.max(0);
        e = e.max(0).min(len - 1);
        if len == 0 || s > e {
            return Ok(Reply::Bulk(Bytes::new()));
        }
        Ok(Reply::Bulk(v.slice(s as usize..=e as usize)))
    }
}

/// `SETRANGE key offset value`
#[derive(Debug)]
pub struct SetRange<'a> {
    key: &'a [u8],
    offset: i64,
    value: &'a [u8],
}

impl<'a> Exec<'a> for SetRange<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(SetRange {
            key: args.bytes()?,
            offset: args.i64()?,
            value: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        if self.offset < 0 {
            return Err(CmdError::err("offset is out of range"));
        }
        let old = ctx.peek_str(self.key)?;
        if self.value.is_empty() {
            return Ok(Reply::Int(old.map_or(0, |v| v.len() as i64)));
        }
        let off = self.offset as u64;
        if off + self.value.len() as u64 > MAX_STRING {
            return Err(CmdError::err(
                "string exceeds maximum allowed size (proto-max-bulk-len)",
            ));
        }
        let old = old.unwrap_or_default();
        let (off, end) = (off as usize, off as usize + self.value.len());
        let mut buf = BytesMut::with_capacity(end.max(old.len()));
        buf.extend_from_slice(&old);
        if buf.len() < end {
            buf.resize(end, 0);
        }
        buf[off..end].copy_from_slice(self.value);
        let len = buf.len();
        ctx.db.set(self.key, Value::str(&buf), Ttl::Keep)?;
        ctx.notify(Class::String, "setrange", self.key);
        Ok(Reply::Int(len as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_formatting_matches_redis_examples() {
        assert_eq!(format_float(10.5 + 0.1), "10.6");
        assert_eq!(format_float(10.6 - 5.0), "5.6");
        assert_eq!(format_float(5.0e3 + 2.0e2), "5200");
        assert_eq!(format_float(0.1 + 0.2), "0.3");
        assert_eq!(format_float(-1.5), "-1.5");
        assert_eq!(format_float(3.0e18), "3000000000000000000");
        assert_eq!(format_float(1.0 / 3.0), "0.3333333333333333");
        // At most 17 decimals, as Redis's %.17Lf (found by the differential test).
        assert_eq!(format_float(1e-18), "0");
        assert_eq!(format_float(-1e-18), "0");
        assert_eq!(format_float(1.234567890123e-10), "0.00000000012345679");
        assert_eq!(format_float(1e-17), "0.00000000000000001");
        assert_eq!(format_float(5e-17), "0.00000000000000005");
    }

    #[test]
    fn expiry_deadlines() {
        assert!(matches!(
            ExpiryArg::Ex(10).deadline(1_000, "set"),
            Ok(11_000)
        ));
        assert!(matches!(ExpiryArg::PxAt(5).deadline(1_000, "set"), Ok(5)));
        assert!(
            matches!(ExpiryArg::Ex(0).deadline(1_000, "set"), Err(CmdError::Err(m)) if m.contains("'set'"))
        );
        assert!(ExpiryArg::Ex(i64::MAX).deadline(1_000, "set").is_err());
        assert!(ExpiryArg::Px(-1).deadline(1_000, "set").is_err());
    }
}
