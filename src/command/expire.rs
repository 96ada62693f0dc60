//! Expiry commands: EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT with NX XX GT LT, TTL/PTTL,
//! EXPIRETIME/PEXPIRETIME, PERSIST. Deadlines are absolute unix-ms values in the store.

use super::ctx::ExecCtx;
use super::{CmdError, Exec};
use crate::protocol::{Args, Reply};
use crate::server::notify::Class;

/// Which condition an EXPIRE carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cond {
    Always,
    Nx,
    Xx,
    Gt,
    Lt,
}

/// How the EXPIRE family reads its time argument.
#[derive(Debug, Clone, Copy)]
enum Unit {
    RelSecs,
    RelMillis,
    AbsSecs,
    AbsMillis,
}

/// The shared body of EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT.
#[derive(Debug)]
pub struct SetExpiry<'a> {
    key: &'a [u8],
    when: i64,
    cond: Cond,
}

impl<'a> SetExpiry<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let key = args.bytes()?;
        // Redis checks the options before it parses the time.
        let when = args.bytes()?;
        let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
        while let Some(opt) = args.next_opt() {
            match String::from_utf8_lossy(opt).to_ascii_uppercase().as_str() {
                "NX" => nx = true,
                "XX" => xx = true,
                "GT" => gt = true,
                "LT" => lt = true,
                _ => {
                    return Err(CmdError::err(format!(
                        "Unsupported option {}",
                        super::lossy(opt, 128)
                    )));
                }
            }
        }
        if nx && (xx || gt || lt) {
            return Err(CmdError::err(
                "NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if gt && lt {
            return Err(CmdError::err(
                "GT and LT options at the same time are not compatible",
            ));
        }
        let cond = match (nx, xx, gt, lt) {
            (true, ..) => Cond::Nx,
            (_, _, true, _) => Cond::Gt,
            (_, _, _, true) => Cond::Lt,
            (_, true, ..) => Cond::Xx,
            _ => Cond::Always,
        };
        let when = crate::protocol::args::parse_i64(when)?;
        Ok(SetExpiry { key, when, cond })
    }

    fn run(self, ctx: &mut ExecCtx<'_>, unit: Unit, cmd: &str) -> Result<Reply, CmdError> {
        let bad = || CmdError::invalid_expire(cmd);
        let now = ctx.db.now as i64;
        let at = match unit {
            Unit::RelSecs => self
                .when
                .checked_mul(1000)
                .and_then(|ms| ms.checked_add(now)),
            Unit::RelMillis => self.when.checked_add(now),
            Unit::AbsSecs => self.when.checked_mul(1000),
            Unit::AbsMillis => Some(self.when),
        }
        .ok_or_else(bad)?;
        let Some(cur) = ctx.db.peek(self.key)?.map(|e| e.expire_at()) else {
            return Ok(Reply::Int(0));
        };
        // A key without TTL counts as an infinite TTL for GT and LT.
        let ok = match self.cond {
            Cond::Always => true,
            Cond::Nx => cur == 0,
            Cond::Xx => cur != 0,
            Cond::Gt => cur != 0 && at > cur as i64,
            Cond::Lt => cur == 0 || at < cur as i64,
        };
        if !ok {
            return Ok(Reply::Int(0));
        }
        // A deadline at or before now deletes the key (Db::set_expire does that).
        ctx.db.set_expire(self.key, Some(at.max(0) as u64))?;
        let event = if at <= now { "del" } else { "expire" };
        ctx.notify(Class::Generic, event, self.key);
        Ok(Reply::Int(1))
    }
}

unit_variant!(
    Expire,
    SetExpiry,
    Unit::RelSecs,
    "expire",
    "`EXPIRE key seconds [NX | XX | GT | LT]`"
);
unit_variant!(
    PExpire,
    SetExpiry,
    Unit::RelMillis,
    "pexpire",
    "`PEXPIRE key milliseconds [NX | XX | GT | LT]`"
);
unit_variant!(
    ExpireAt,
    SetExpiry,
    Unit::AbsSecs,
    "expireat",
    "`EXPIREAT key unix-seconds [NX | XX | GT | LT]`"
);
unit_variant!(
    PExpireAt,
    SetExpiry,
    Unit::AbsMillis,
    "pexpireat",
    "`PEXPIREAT key unix-ms [NX | XX | GT | LT]`"
);

/// What the TTL family reports.
#[derive(Debug, Clone, Copy)]
enum Report {
    TtlSecs,
    TtlMillis,
    AtSecs,
    AtMillis,
}

fn report(ctx: &mut ExecCtx<'_>, key: &[u8], what: Report) -> Result<Reply, CmdError> {
    let now = ctx.db.now;
    let Some(at) = ctx.db.peek(key)?.map(|e| e.expire_at()) else {
        return Ok(Reply::Int(-2));
    };
    if at == 0 {
        return Ok(Reply::Int(-1));
    }
    let left = at.saturating_sub(now);
    Ok(Reply::Int(match what {
        Report::TtlSecs => left.saturating_add(500) as i64 / 1000,
        Report::TtlMillis => left as i64,
        Report::AtSecs => (at / 1000) as i64,
        Report::AtMillis => at as i64,
    }))
}

macro_rules! report_cmd {
    ($name:ident, $what:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $name<'a> {
            key: &'a [u8],
        }

        impl<'a> Exec<'a> for $name<'a> {
            fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
                Ok($name { key: args.bytes()? })
            }
            fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
                report(ctx, &self.key, $what)
            }
        }
    };
}

report_cmd!(
    Ttl,
    Report::TtlSecs,
    "`TTL key`: seconds left, -1 without TTL, -2 when missing."
);
report_cmd!(PTtl, Report::TtlMillis, "`PTTL key`: milliseconds left.");
report_cmd!(
    ExpireTime,
    Report::AtSecs,
    "`EXPIRETIME key`: the deadline in unix seconds."
);
report_cmd!(
    PExpireTime,
    Report::AtMillis,
    "`PEXPIRETIME key`: the deadline in unix ms."
);

/// `PERSIST key`
#[derive(Debug)]
pub struct Persist<'a> {
    key: &'a [u8],
}

impl<'a> Exec<'a> for Persist<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Persist { key: args.bytes()? })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let has_ttl = ctx.db.peek(self.key)?.is_some_and(|e| e.expire_at() != 0);
        if has_ttl {
            ctx.db.set_expire(self.key, None)?;
            ctx.notify(Class::Generic, "persist", self.key);
        }
        Ok(Reply::Int(i64::from(has_ttl)))
    }
}
