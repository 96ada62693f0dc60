//! Generic key commands: DEL, EXISTS, TYPE, KEYS, SCAN, RENAME, COPY, TOUCH, RANDOMKEY,
//! DBSIZE, FLUSHALL/FLUSHDB and OBJECT.

use bytes::Bytes;

use super::ctx::ExecCtx;
use super::spec::{CommandSpec, Flags};
use super::{CmdError, Exec};
use crate::protocol::{Args, Reply};
use crate::server::notify::Class;
use crate::store::Ttl;

/// `DEL key [key ...]` and `UNLINK key [key ...]`.
#[derive(Debug)]
pub struct Del<'a> {
    keys: Vec<&'a [u8]>,
}

impl<'a> Exec<'a> for Del<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Del { keys: args.rest() })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let mut n = 0;
        for k in &self.keys {
            if ctx.db.del(k)? {
                n += 1;
                ctx.notify(Class::Generic, "del", k);
            }
        }
        Ok(Reply::Int(n))
    }
}

/// `EXISTS key [key ...]` (a key named twice counts twice).
#[derive(Debug)]
pub struct Exists<'a> {
    keys: Vec<&'a [u8]>,
}

impl<'a> Exec<'a> for Exists<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Exists { keys: args.rest() })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let mut n = 0;
        for k in &self.keys {
            n += i64::from(ctx.db.exists(k)?);
        }
        Ok(Reply::Int(n))
    }
}

/// `TOUCH key [key ...]`
#[derive(Debug)]
pub struct Touch<'a> {
    keys: Vec<&'a [u8]>,
}

impl<'a> Exec<'a> for Touch<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Touch { keys: args.rest() })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let mut n = 0;
        for k in &self.keys {
            n += i64::from(ctx.db.touch(k)?);
        }
        Ok(Reply::Int(n))
    }
}

/// `TYPE key`
#[derive(Debug)]
pub struct Type<'a> {
    key: &'a [u8],
}

impl<'a> Exec<'a> for Type<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Type { key: args.bytes()? })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let t = ctx
            .db
            .peek(self.key)?
            .map_or("none", |e| e.value().type_name());
        Ok(Reply::status(t))
    }
}

/// `KEYS pattern`
#[derive(Debug)]
pub struct KeysCmd<'a> {
    pattern: &'a [u8],
}

impl<'a> Exec<'a> for KeysCmd<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(KeysCmd {
            pattern: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(Reply::bulks(ctx.db.keys(self.pattern)))
    }
}

/// A SCAN-family cursor (`ERR invalid cursor` unless an unsigned 64-bit number).
pub(crate) fn parse_cursor(b: &[u8]) -> Result<u64, CmdError> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| CmdError::err("invalid cursor"))
}

/// MATCH and COUNT of a SCAN-family command.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanOptions<'a> {
    /// MATCH pattern (`None` for none, or `*`).
    pub pattern: Option<&'a [u8]>,
    /// COUNT hint (10 by default, as in Redis).
    pub count: usize,
}

/// Parses the options after a SCAN-family cursor as Redis does: MATCH and COUNT (each
/// with its argument), and the command's own options through `extra`, which gets an
/// option and the argument after it and answers how many it took (0: not its option,
/// a syntax error).
pub(crate) fn scan_options<'a>(
    opts: &[&'a [u8]],
    mut extra: impl FnMut(&[u8], Option<&'a [u8]>) -> usize,
) -> Result<ScanOptions<'a>, CmdError> {
    let mut o = ScanOptions {
        pattern: None,
        count: 10,
    };
    let mut i = 0;
    while let Some(&opt) = opts.get(i) {
        let next = opts.get(i + 1).copied();
        match next {
            Some(c) if opt.eq_ignore_ascii_case(b"COUNT") => {
                let c = crate::protocol::args::parse_i64(c)?;
                if c < 1 {
                    return Err(CmdError::Syntax);
                }
                o.count = usize::try_from(c).unwrap_or(usize::MAX);
                i += 2;
            }
            Some(p) if opt.eq_ignore_ascii_case(b"MATCH") => {
                o.pattern = (p != b"*").then_some(p);
                i += 2;
            }
            _ => match extra(opt, next) {
                0 => return Err(CmdError::Syntax),
                n => i += n,
            },
        }
    }
    Ok(o)
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
#[derive(Debug)]
pub struct Scan<'a> {
    cursor: u64,
    pattern: Option<&'a [u8]>,
    count: usize,
    ty: Option<String>,
}

impl<'a> Exec<'a> for Scan<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let cursor = parse_cursor(args.bytes()?)?;
        let mut ty = None;
        let o = scan_options(&args.rest(), |opt, next| match next {
            Some(t) if opt.eq_ignore_ascii_case(b"TYPE") => {
                ty = Some(String::from_utf8_lossy(t).into_owned());
                2
            }
            _ => 0,
        })?;
        Ok(Scan {
            cursor,
            pattern: o.pattern,
            count: o.count,
            ty,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let page = ctx
            .db
            .scan(self.cursor, self.count, self.pattern, self.ty.as_deref());
        Ok(Reply::Array(vec![
            Reply::Bulk(Bytes::from(page.cursor.to_string())),
            Reply::bulks(page.keys),
        ]))
    }
}

/// `RENAME key newkey`
#[derive(Debug)]
pub struct Rename<'a> {
    from: &'a [u8],
    to: &'a [u8],
}

/// `RENAMENX key newkey`
#[derive(Debug)]
pub struct RenameNx<'a>(Rename<'a>);

impl<'a> Rename<'a> {
    /// Moves the entry (value and TTL); `Err(no such key)` if the source is missing.
    fn run(&self, ctx: &mut ExecCtx<'_>, nx: bool) -> Result<bool, CmdError> {
        let Some(entry) = ctx.db.peek(self.from)?.map(|e| e.to_entry()) else {
            return Err(CmdError::err("no such key"));
        };
        if self.from == self.to {
            return Ok(!nx);
        }
        if nx && ctx.db.exists(self.to)? {
            return Ok(false);
        }
        ctx.db.del(self.from)?;
        let ttl = if entry.expire_at == 0 {
            Ttl::Clear
        } else {
            Ttl::At(entry.expire_at)
        };
        ctx.db.set(self.to, entry.value, ttl)?;
        ctx.notify(Class::Generic, "rename_from", self.from);
        ctx.notify(Class::Generic, "rename_to", self.to);
        Ok(true)
    }
}

impl<'a> Exec<'a> for Rename<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Rename {
            from: args.bytes()?,
            to: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.run(ctx, false)?;
        Ok(Reply::Ok)
    }
}

impl<'a> Exec<'a> for RenameNx<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(RenameNx(Rename::parse(args)?))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(Reply::Int(i64::from(self.0.run(ctx, true)?)))
    }
}

/// `COPY source destination [DB destination-db] [REPLACE]`
#[derive(Debug)]
pub struct Copy<'a> {
    from: &'a [u8],
    to: &'a [u8],
    replace: bool,
}

impl<'a> Exec<'a> for Copy<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let mut c = Copy {
            from: args.bytes()?,
            to: args.bytes()?,
            replace: false,
        };
        while !args.is_empty() {
            match args.keyword()?.as_str() {
                "REPLACE" => c.replace = true,
                "DB" => {
                    if args.i64()? != 0 {
                        return Err(CmdError::err(
                            "Copying to another database is not allowed in cluster mode",
                        ));
                    }
                }
                _ => return Err(CmdError::Syntax),
            }
        }
        Ok(c)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        if self.from == self.to {
            return Err(CmdError::err("source and destination objects are the same"));
        }
        let Some(entry) = ctx.db.peek(self.from)?.map(|e| e.to_entry()) else {
            return Ok(Reply::Int(0));
        };
        if !self.replace && ctx.db.exists(self.to)? {
            return Ok(Reply::Int(0));
        }
        let ttl = if entry.expire_at == 0 {
            Ttl::Clear
        } else {
            Ttl::At(entry.expire_at)
        };
        ctx.db.set(self.to, entry.value, ttl)?;
        ctx.notify(Class::Generic, "copy_to", self.to);
        Ok(Reply::Int(1))
    }
}

/// `RANDOMKEY`
#[derive(Debug)]
pub struct RandomKey;

impl<'a> Exec<'a> for RandomKey {
    fn parse(_: &mut Args<'_>) -> Result<Self, CmdError> {
        Ok(RandomKey)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(Reply::opt_bulk(ctx.db.random_key()))
    }
}

/// `DBSIZE`
#[derive(Debug)]
pub struct DbSize;

impl<'a> Exec<'a> for DbSize {
    fn parse(_: &mut Args<'_>) -> Result<Self, CmdError> {
        Ok(DbSize)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(Reply::Int(ctx.db.len() as i64))
    }
}

/// `FLUSHALL [ASYNC | SYNC]` and `FLUSHDB [ASYNC | SYNC]` (one database: the same thing).
#[derive(Debug)]
pub struct Flush;

impl<'a> Exec<'a> for Flush {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        if !args.is_empty() {
            match args.keyword()?.as_str() {
                "ASYNC" | "SYNC" => {}
                _ => return Err(CmdError::Syntax),
            }
        }
        args.end()?;
        Ok(Flush)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        ctx.db.flush();
        Ok(Reply::Ok)
    }
}

/// OBJECT's subcommands.
pub const OBJECT_SUBS: &[CommandSpec] = &[
    CommandSpec::new(
        "object|encoding",
        3,
        "generic",
        "2.2.3",
        "Returns the internal encoding of a Redis object.",
    )
    .flags(Flags::READONLY)
    .keys(2, 2, 1),
    CommandSpec::new(
        "object|freq",
        3,
        "generic",
        "4.0.0",
        "Returns the logarithmic access frequency counter of a Redis object.",
    )
    .flags(Flags::READONLY)
    .keys(2, 2, 1),
    CommandSpec::new(
        "object|idletime",
        3,
        "generic",
        "2.2.3",
        "Returns the time since the last access to a Redis object.",
    )
    .flags(Flags::READONLY)
    .keys(2, 2, 1),
    CommandSpec::new(
        "object|refcount",
        3,
        "generic",
        "2.2.3",
        "Returns the reference count of a value of a key.",
    )
    .flags(Flags::READONLY)
    .keys(2, 2, 1),
    CommandSpec::new(
        "object|help",
        2,
        "generic",
        "6.2.0",
        "Returns helpful text about the different subcommands.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
];

/// `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key` and `OBJECT HELP`.
#[derive(Debug)]
pub enum Object<'a> {
    /// Internal encoding.
    Encoding(&'a [u8]),
    /// LFU counter.
    Freq(&'a [u8]),
    /// Seconds since the last access.
    IdleTime(&'a [u8]),
    /// Always 1: values are not shared.
    RefCount(&'a [u8]),
    /// Help text.
    Help,
}

impl<'a> Exec<'a> for Object<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let sub = args.bytes()?;
        let o = match String::from_utf8_lossy(sub).to_ascii_uppercase().as_str() {
            "ENCODING" => Object::Encoding(args.bytes()?),
            "FREQ" => Object::Freq(args.bytes()?),
            "IDLETIME" => Object::IdleTime(args.bytes()?),
            "REFCOUNT" => Object::RefCount(args.bytes()?),
            "HELP" => Object::Help,
            _ => {
                return Err(CmdError::UnknownSubcommand {
                    cmd: "OBJECT",
                    sub: super::lossy(sub, 128),
                });
            }
        };
        Ok(o)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let now = ctx.db.now;
        let key = match &self {
            Object::Help => {
                return Ok(help(
                    "OBJECT",
                    &[
                        "ENCODING <key>",
                        "    Return the kind of internal representation used in order to store the value associated with a <key>.",
                        "FREQ <key>",
                        "    Return the access frequency index of the <key>. The returned integer is proportional to the logarithm of the recent access frequency of the key.",
                        "IDLETIME <key>",
                        "    Return the idle time of the <key>, that is the approximated number of seconds elapsed since the last access to the key.",
                        "REFCOUNT <key>",
                        "    Return the number of references of the value associated with the specified <key>.",
                    ],
                ));
            }
            Object::Encoding(k) | Object::Freq(k) | Object::IdleTime(k) | Object::RefCount(k) => *k,
        };
        let Some(e) = ctx.db.peek(key)? else {
            return Ok(Reply::Nil);
        };
        Ok(match self {
            Object::Encoding(_) => Reply::bulk(e.value().encoding()),
            Object::Freq(_) => Reply::Int(i64::from(e.freq(now))),
            Object::IdleTime(_) => Reply::Int((now.saturating_sub(e.atime()) / 1000) as i64),
            Object::RefCount(_) | Object::Help => Reply::Int(1),
        })
    }
}

/// The reply of a `<CMD> HELP` subcommand, in Redis's layout.
pub fn help(cmd: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::status(format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    out.extend(lines.iter().map(|l| Reply::status(l.to_string())));
    out.push(Reply::status("HELP"));
    out.push(Reply::status("    Print this help."));
    Reply::Array(out)
}
