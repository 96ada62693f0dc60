//! Server commands: INFO, CONFIG, TIME, MEMORY, SLOWLOG, BGREWRITEAOF, SHUTDOWN.

use bytes::Bytes;

use super::ctx::ExecCtx;
use super::keys::help;
use super::spec::{CommandSpec, Flags};
use super::{CmdError, Exec};
use crate::protocol::{Args, Reply};
use crate::server::settings::SetError;
use crate::store::pattern;

/// `INFO [section ...]`
#[derive(Debug)]
pub struct Info {
    sections: Vec<String>,
}

impl<'a> Exec<'a> for Info {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let sections = args
            .rest()
            .iter()
            .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
            .collect();
        Ok(Info { sections })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let text = crate::admin::info::render(ctx.server, &mut ctx.db, &self.sections);
        Ok(Reply::Verbatim(Bytes::from(text)))
    }
}

/// CONFIG's subcommands.
pub const CONFIG_SUBS: &[CommandSpec] = &[
    CommandSpec::new(
        "config|get",
        -3,
        "server",
        "2.0.0",
        "Returns the effective values of configuration parameters.",
    )
    .flags(
        Flags::ADMIN
            .with(Flags::NOSCRIPT)
            .with(Flags::LOADING)
            .with(Flags::STALE),
    ),
    CommandSpec::new(
        "config|set",
        -4,
        "server",
        "2.0.0",
        "Sets configuration parameters in-flight.",
    )
    .flags(
        Flags::ADMIN
            .with(Flags::NOSCRIPT)
            .with(Flags::LOADING)
            .with(Flags::STALE),
    ),
    CommandSpec::new(
        "config|resetstat",
        2,
        "server",
        "2.0.0",
        "Resets the server's statistics.",
    )
    .flags(
        Flags::ADMIN
            .with(Flags::NOSCRIPT)
            .with(Flags::LOADING)
            .with(Flags::STALE),
    ),
    CommandSpec::new(
        "config|help",
        2,
        "server",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
];

/// A parsed CONFIG call.
#[derive(Debug)]
pub enum ConfigCmd<'a> {
    /// CONFIG GET pattern ...
    Get(Vec<&'a [u8]>),
    /// CONFIG SET name value ...
    Set(Vec<(String, String)>),
    /// CONFIG RESETSTAT
    ResetStat,
    /// CONFIG HELP
    Help,
}

impl<'a> Exec<'a> for ConfigCmd<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let sub = args.bytes()?;
        Ok(
            match String::from_utf8_lossy(sub).to_ascii_uppercase().as_str() {
                "GET" => ConfigCmd::Get(args.rest()),
                "SET" => {
                    if !args.remaining().is_multiple_of(2) {
                        return Err(CmdError::WrongArity("config|set".into()));
                    }
                    let mut pairs = Vec::new();
                    while !args.is_empty() {
                        let k = String::from_utf8_lossy(args.bytes()?).to_ascii_lowercase();
                        let v = String::from_utf8_lossy(args.bytes()?).into_owned();
                        pairs.push((k, v));
                    }
                    ConfigCmd::Set(pairs)
                }
                "RESETSTAT" => ConfigCmd::ResetStat,
                "HELP" => ConfigCmd::Help,
                _ => {
                    return Err(CmdError::UnknownSubcommand {
                        cmd: "CONFIG",
                        sub: super::lossy(sub, 128),
                    });
                }
            },
        )
    }

    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let srv = ctx.server;
        Ok(match self {
            ConfigCmd::Get(patterns) => {
                let all = srv.settings.all(srv.identity.port, &srv.identity.bind);
                Reply::Map(
                    all.into_iter()
                        .filter(|(name, _)| {
                            patterns
                                .iter()
                                .any(|p| pattern::matches(p, name.as_bytes(), true))
                        })
                        .map(|(n, v)| (Reply::bulk(n), Reply::bulk(v)))
                        .collect(),
                )
            }
            ConfigCmd::Set(pairs) => {
                // Check every pair first so a bad one changes nothing.
                let probe = crate::server::Settings::from_config(&srv.config);
                for (k, v) in &pairs {
                    probe.set(k, v).map_err(|e| match e {
                        SetError::Unknown => CmdError::err(format!("Unknown option or number of arguments for CONFIG SET - '{k}'")),
                        SetError::Immutable => CmdError::err(format!("CONFIG SET failed (possibly related to argument '{k}') - can't set immutable config")),
                        SetError::Invalid(why) => CmdError::err(format!("CONFIG SET failed (possibly related to argument '{k}') - {why}")),
                    })?;
                }
                for (k, v) in &pairs {
                    let _ = srv.settings.set(k, v);
                    if k.eq_ignore_ascii_case("requirepass") {
                        // Redis: requirepass is the default user's password.
                        srv.acl
                            .set_default_password(Some(v.as_str()).filter(|p| !p.is_empty()));
                    }
                }
                srv.notify_setting_changed();
                Reply::Ok
            }
            ConfigCmd::ResetStat => {
                srv.stats.reset();
                srv.settings.output.reset_stats();
                srv.slowlog.reset();
                srv.commands.reset();
                for c in srv.keyspace.caches().iter() {
                    c.stats.reset();
                }
                Reply::Ok
            }
            ConfigCmd::Help => help(
                "CONFIG",
                &[
                    "GET <pattern>",
                    "    Return parameters matching the glob-like <pattern> and their values.",
                    "SET <directive> <value>",
                    "    Set the configuration <directive> to <value>.",
                    "RESETSTAT",
                    "    Reset statistics reported by the INFO command.",
                ],
            ),
        })
    }
}

/// `TIME`
#[derive(Debug)]
pub struct Time;

impl<'a> Exec<'a> for Time {
    fn parse(_: &mut Args<'_>) -> Result<Self, CmdError> {
        Ok(Time)
    }
    fn exec(self, _: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(Reply::Array(vec![
            Reply::bulk(d.as_secs().to_string()),
            Reply::bulk(d.subsec_micros().to_string()),
        ]))
    }
}

/// MEMORY's subcommands.
pub const MEMORY_SUBS: &[CommandSpec] = &[
    CommandSpec::new(
        "memory|usage",
        -3,
        "server",
        "4.0.0",
        "Estimates the memory usage of a key.",
    )
    .flags(Flags::READONLY)
    .keys(2, 2, 1),
    CommandSpec::new(
        "memory|help",
        2,
        "server",
        "4.0.0",
        "Returns helpful text about the different subcommands.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
];

/// A parsed MEMORY call.
#[derive(Debug)]
pub enum MemoryCmd<'a> {
    /// MEMORY USAGE key [SAMPLES n]
    Usage(&'a [u8]),
    /// MEMORY HELP
    Help,
}

impl<'a> Exec<'a> for MemoryCmd<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let sub = args.bytes()?;
        Ok(
            match String::from_utf8_lossy(sub).to_ascii_uppercase().as_str() {
                "USAGE" => {
                    let key = args.bytes()?;
                    if !args.is_empty() {
                        if !args.eat("SAMPLES") {
                            return Err(CmdError::Syntax);
                        }
                        if args.i64()? < 0 {
                            return Err(CmdError::Syntax);
                        }
                        args.end()?;
                    }
                    MemoryCmd::Usage(key)
                }
                "HELP" => MemoryCmd::Help,
                _ => {
                    return Err(CmdError::UnknownSubcommand {
                        cmd: "MEMORY",
                        sub: super::lossy(sub, 128),
                    });
                }
            },
        )
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(match self {
            MemoryCmd::Usage(key) => match ctx.db.peek(key)? {
                Some(e) => Reply::Int(e.mem(key.len()) as i64),
                None => Reply::Nil,
            },
            MemoryCmd::Help => help(
                "MEMORY",
                &[
                    "USAGE <key> [SAMPLES <count>]",
                    "    Return memory in bytes used by <key> and its value.",
                ],
            ),
        })
    }
}

/// SLOWLOG's subcommands.
pub const SLOWLOG_SUBS: &[CommandSpec] = &[
    CommandSpec::new(
        "slowlog|get",
        -2,
        "server",
        "2.2.12",
        "Returns the slow log's entries.",
    )
    .flags(Flags::ADMIN.with(Flags::LOADING).with(Flags::STALE)),
    CommandSpec::new(
        "slowlog|len",
        2,
        "server",
        "2.2.12",
        "Returns the number of entries in the slow log.",
    )
    .flags(Flags::ADMIN.with(Flags::LOADING).with(Flags::STALE)),
    CommandSpec::new(
        "slowlog|reset",
        2,
        "server",
        "2.2.12",
        "Clears all entries from the slow log.",
    )
    .flags(Flags::ADMIN.with(Flags::LOADING).with(Flags::STALE)),
    CommandSpec::new(
        "slowlog|help",
        2,
        "server",
        "6.2.0",
        "Show helpful text about the different subcommands",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
];

/// A parsed SLOWLOG call.
#[derive(Debug)]
pub enum SlowlogCmd {
    /// SLOWLOG GET [count]; `None` = all (count -1).
    Get(Option<usize>),
    /// SLOWLOG LEN
    Len,
    /// SLOWLOG RESET
    Reset,
    /// SLOWLOG HELP
    Help,
}

impl<'a> Exec<'a> for SlowlogCmd {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let sub = args.bytes()?;
        Ok(
            match String::from_utf8_lossy(sub).to_ascii_uppercase().as_str() {
                "GET" => {
                    let n = if args.is_empty() { 10 } else { args.i64()? };
                    if n < -1 {
                        return Err(CmdError::err("count should be greater than or equal to -1"));
                    }
                    SlowlogCmd::Get(usize::try_from(n).ok())
                }
                "LEN" => SlowlogCmd::Len,
                "RESET" => SlowlogCmd::Reset,
                "HELP" => SlowlogCmd::Help,
                _ => {
                    return Err(CmdError::UnknownSubcommand {
                        cmd: "SLOWLOG",
                        sub: super::lossy(sub, 128),
                    });
                }
            },
        )
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let log = &ctx.server.slowlog;
        Ok(match self {
            SlowlogCmd::Get(n) => log.get(n),
            SlowlogCmd::Len => Reply::Int(log.len() as i64),
            SlowlogCmd::Reset => {
                log.reset();
                Reply::Ok
            }
            SlowlogCmd::Help => help(
                "SLOWLOG",
                &[
                    "GET [<count>]",
                    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                    "LEN",
                    "    Return the length of the slowlog.",
                    "RESET",
                    "    Reset the slowlog.",
                ],
            ),
        })
    }
}

/// `BGREWRITEAOF`: compacts the fast-restart log into a new base snapshot in the
/// background (the cron starts it within 100 ms).
#[derive(Debug)]
pub struct BgRewriteAof;

impl<'a> Exec<'a> for BgRewriteAof {
    fn parse(_: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(BgRewriteAof)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let Some(p) = &ctx.server.persist else {
            return Err(CmdError::err(
                "this server keeps no fast-restart log (storage.restartable is false)",
            ));
        };
        if !p.request_rewrite() {
            return Err(CmdError::err(
                "Background append only file rewriting already in progress",
            ));
        }
        Ok(Reply::status(
            "Background append only file rewriting started",
        ))
    }
}

/// `SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]`: stops the server; the connection
/// closes without a reply, as in Redis.
#[derive(Debug)]
pub struct Shutdown {
    abort: bool,
}

impl<'a> Exec<'a> for Shutdown {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let mut abort = false;
        while !args.is_empty() {
            match args.keyword()?.as_str() {
                "NOSAVE" | "SAVE" | "NOW" | "FORCE" => {}
                "ABORT" => abort = true,
                _ => return Err(CmdError::Syntax),
            }
        }
        Ok(Shutdown { abort })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        if self.abort {
            return Err(CmdError::err("No shutdown in progress."));
        }
        tracing::info!(client = ctx.client.id(), "SHUTDOWN requested by a client");
        ctx.server.request_shutdown();
        ctx.client.close = true;
        Ok(Reply::NoReply)
    }
}
