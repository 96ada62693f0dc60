//! The CLIENT container: ID, SETNAME, GETNAME, LIST, INFO, KILL, SETINFO, NO-EVICT,
//! NO-TOUCH, UNBLOCK, HELP, and the tracking subcommands (parsed in `tracking.rs`).

use bytes::Bytes;

use super::ctx::ExecCtx;
use super::keys::help;
use super::spec::{CommandSpec, Flags};
use super::{CmdError, Exec};
use crate::protocol::{Args, Reply};

/// CLIENT's subcommands.
pub const SUBS: &[CommandSpec] = &[
    CommandSpec::new(
        "client|id",
        2,
        "connection",
        "5.0.0",
        "Returns the unique client ID of the connection.",
    )
    .flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE)),
    CommandSpec::new(
        "client|setname",
        3,
        "connection",
        "2.6.9",
        "Sets the connection name.",
    )
    .flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE)),
    CommandSpec::new(
        "client|getname",
        2,
        "connection",
        "2.6.9",
        "Returns the name of the connection.",
    )
    .flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE)),
    CommandSpec::new(
        "client|list",
        -2,
        "connection",
        "2.4.0",
        "Lists open connections.",
    )
    .flags(
        Flags::ADMIN
            .with(Flags::NOSCRIPT)
            .with(Flags::LOADING)
            .with(Flags::STALE),
    ),
    CommandSpec::new(
        "client|info",
        2,
        "connection",
        "6.2.0",
        "Returns information about the connection.",
    )
    .flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE)),
    CommandSpec::new(
        "client|kill",
        -3,
        "connection",
        "2.4.0",
        "Terminates open connections.",
    )
    .flags(
        Flags::ADMIN
            .with(Flags::NOSCRIPT)
            .with(Flags::LOADING)
            .with(Flags::STALE),
    ),
    CommandSpec::new(
        "client|setinfo",
        4,
        "connection",
        "7.2.0",
        "Sets information specific to the client or connection.",
    )
    .flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE)),
    CommandSpec::new(
        "client|no-evict",
        3,
        "connection",
        "7.0.0",
        "Sets the client eviction mode of the connection.",
    )
    .flags(
        Flags::ADMIN
            .with(Flags::NOSCRIPT)
            .with(Flags::LOADING)
            .with(Flags::STALE),
    ),
    CommandSpec::new(
        "client|no-touch",
        3,
        "connection",
        "7.2.0",
        "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
    )
    .flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE)),
    CommandSpec::new(
        "client|tracking",
        -3,
        "connection",
        "6.0.0",
        "Controls server-assisted client-side caching for the connection.",
    )
    .flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE)),
    CommandSpec::new(
        "client|caching",
        3,
        "connection",
        "6.0.0",
        "Instructs the server whether to track the keys in the next request.",
    )
    .flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE)),
    CommandSpec::new(
        "client|getredir",
        2,
        "connection",
        "6.0.0",
        "Returns the client ID to which the connection's tracking notifications are redirected.",
    )
    .flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE)),
    CommandSpec::new(
        "client|trackinginfo",
        2,
        "connection",
        "6.2.0",
        "Returns information about server-assisted client-side caching for the connection.",
    )
    .flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE)),
    CommandSpec::new(
        "client|help",
        2,
        "connection",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "client|unblock",
        -3,
        "connection",
        "5.0.0",
        "Unblocks a client blocked by a blocking command from a different connection.",
    )
    .flags(
        Flags::ADMIN
            .with(Flags::NOSCRIPT)
            .with(Flags::LOADING)
            .with(Flags::STALE),
    ),
];

/// A CLIENT KILL filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `ID id`
    Id(u64),
    /// `ADDR ip:port`
    Addr(String),
    /// `LADDR ip:port`
    LAddr(String),
    /// `USER name` (only `default` exists)
    User(String),
    /// `MAXAGE secs`: connections at least this old
    MaxAge(u64),
    /// `TYPE t` (only `normal` clients exist)
    Type(String),
}

/// A parsed CLIENT subcommand.
#[derive(Debug)]
pub enum ClientCmd<'a> {
    /// CLIENT ID
    Id,
    /// CLIENT SETNAME name
    SetName(&'a [u8]),
    /// CLIENT GETNAME
    GetName,
    /// CLIENT LIST [TYPE t] [ID id ...]
    List(Option<Vec<u64>>),
    /// CLIENT INFO
    Info,
    /// CLIENT KILL addr (old form: replies OK or an error)
    KillAddr(String),
    /// CLIENT KILL filter value ... (new form: replies the count)
    Kill(Vec<Filter>, bool),
    /// CLIENT SETINFO LIB-NAME|LIB-VER value
    SetInfo(bool, &'a [u8]),
    /// CLIENT NO-EVICT on|off
    NoEvict(bool),
    /// CLIENT NO-TOUCH on|off
    NoTouch(bool),
    /// CLIENT TRACKING ON|OFF [options] (`None`: OFF)
    Tracking(Option<crate::server::tracking::Mode>),
    /// CLIENT CACHING YES|NO
    Caching(bool),
    /// CLIENT GETREDIR
    GetRedir,
    /// CLIENT TRACKINGINFO
    TrackingInfo,
    /// CLIENT UNBLOCK id [TIMEOUT|ERROR] (true: ERROR)
    Unblock(u64, bool),
    /// CLIENT HELP
    Help,
}

/// Refuses names Redis refuses: only printable ASCII without spaces.
pub fn validate_name(name: &[u8]) -> Result<(), CmdError> {
    if name.iter().all(|&c| (b'!'..=b'~').contains(&c)) {
        Ok(())
    } else {
        Err(CmdError::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ))
    }
}

pub(super) fn on_off(args: &mut Args<'_>) -> Result<bool, CmdError> {
    match args.keyword()?.as_str() {
        "ON" => Ok(true),
        "OFF" => Ok(false),
        _ => Err(CmdError::Syntax),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl<'a> Exec<'a> for ClientCmd<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let sub = args.bytes()?;
        let c = match String::from_utf8_lossy(sub).to_ascii_uppercase().as_str() {
            "ID" => ClientCmd::Id,
            "GETNAME" => ClientCmd::GetName,
            "INFO" => ClientCmd::Info,
            "HELP" => ClientCmd::Help,
            "TRACKING" => ClientCmd::Tracking(super::tracking::parse_tracking(args)?),
            "CACHING" => ClientCmd::Caching(super::tracking::parse_caching(args)?),
            "GETREDIR" => ClientCmd::GetRedir,
            "TRACKINGINFO" => ClientCmd::TrackingInfo,
            "SETNAME" => ClientCmd::SetName(args.bytes()?),
            "UNBLOCK" => {
                let id = args.i64()?;
                let error = match args.next_opt() {
                    None => false,
                    Some(r) if r.eq_ignore_ascii_case(b"TIMEOUT") => false,
                    Some(r) if r.eq_ignore_ascii_case(b"ERROR") => true,
                    Some(_) => {
                        return Err(CmdError::err(
                            "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
                        ));
                    }
                };
                args.end()?;
                ClientCmd::Unblock(id as u64, error)
            }
            "NO-EVICT" => ClientCmd::NoEvict(on_off(args)?),
            "NO-TOUCH" => ClientCmd::NoTouch(on_off(args)?),
            "SETINFO" => {
                let attr = args.keyword()?;
                let v = args.bytes()?;
                let lib_name = match attr.as_str() {
                    "LIB-NAME" => true,
                    "LIB-VER" => false,
                    _ => {
                        return Err(CmdError::err(format!(
                            "Unrecognized option '{}'",
                            attr.to_lowercase()
                        )));
                    }
                };
                if v.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
                    return Err(CmdError::err(format!(
                        "{} cannot contain spaces, newlines or special characters.",
                        attr.to_lowercase()
                    )));
                }
                ClientCmd::SetInfo(lib_name, v)
            }
            "LIST" => {
                let mut ids = None;
                while !args.is_empty() {
                    match args.keyword()?.as_str() {
                        "TYPE" => {
                            let t = args.keyword()?;
                            if !matches!(t.as_str(), "NORMAL" | "MASTER" | "REPLICA" | "PUBSUB") {
                                return Err(CmdError::err(format!(
                                    "Unknown client type '{}'",
                                    t.to_lowercase()
                                )));
                            }
                            if t != "NORMAL" {
                                ids = Some(Vec::new());
                            }
                        }
                        "ID" => {
                            let mut v = Vec::new();
                            while let Some(a) = args.next_opt() {
                                let id = crate::protocol::args::parse_i64(a)
                                    .ok()
                                    .filter(|&i| i > 0)
                                    .ok_or_else(|| CmdError::err("Invalid client ID"))?;
                                v.push(id as u64);
                            }
                            ids = Some(v);
                        }
                        _ => return Err(CmdError::Syntax),
                    }
                }
                ClientCmd::List(ids)
            }
            "KILL" => {
                if args.remaining() == 1 {
                    ClientCmd::KillAddr(text(args.bytes()?))
                } else {
                    let mut filters = Vec::new();
                    let mut skipme = true;
                    while !args.is_empty() {
                        let f = args.keyword()?;
                        if args.is_empty() {
                            return Err(CmdError::Syntax);
                        }
                        match f.as_str() {
                            "ID" => {
                                let id = crate::protocol::args::parse_i64(args.bytes()?)
                                    .ok()
                                    .filter(|&i| i > 0)
                                    .ok_or_else(|| {
                                        CmdError::err("client-id should be greater than 0")
                                    })?;
                                filters.push(Filter::Id(id as u64));
                            }
                            "ADDR" => filters.push(Filter::Addr(text(args.bytes()?))),
                            "LADDR" => filters.push(Filter::LAddr(text(args.bytes()?))),
                            "USER" => filters.push(Filter::User(text(args.bytes()?))),
                            "TYPE" => filters.push(Filter::Type(args.keyword()?.to_lowercase())),
                            "MAXAGE" => {
                                let v = args.i64()?;
                                filters.push(Filter::MaxAge(
                                    u64::try_from(v).map_err(|_| CmdError::Syntax)?,
                                ));
                            }
                            "SKIPME" => {
                                skipme = match args.keyword()?.as_str() {
                                    "YES" => true,
                                    "NO" => false,
                                    _ => return Err(CmdError::Syntax),
                                }
                            }
                            _ => return Err(CmdError::Syntax),
                        }
                    }
                    ClientCmd::Kill(filters, skipme)
                }
            }
            _ => {
                return Err(CmdError::UnknownSubcommand {
                    cmd: "CLIENT",
                    sub: super::lossy(sub, 128),
                });
            }
        };
        Ok(c)
    }

    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let me = ctx.client.handle.clone();
        Ok(match self {
            ClientCmd::Id => Reply::Int(me.id as i64),
            ClientCmd::GetName => Reply::opt_bulk(me.meta.lock().name.clone()),
            ClientCmd::SetName(name) => {
                validate_name(name)?;
                me.meta.lock().name = Some(Bytes::copy_from_slice(name)).filter(|n| !n.is_empty());
                Reply::Ok
            }
            ClientCmd::Info => Reply::Verbatim(Bytes::from(me.describe() + "\n")),
            ClientCmd::List(ids) => {
                let mut out = String::new();
                for h in ctx.server.clients.all() {
                    if ids.as_ref().is_none_or(|v| v.contains(&h.id)) {
                        out.push_str(&h.describe());
                        out.push('\n');
                    }
                }
                Reply::Verbatim(Bytes::from(out))
            }
            ClientCmd::KillAddr(addr) => {
                let target = ctx
                    .server
                    .clients
                    .all()
                    .into_iter()
                    .find(|h| h.addr.to_string() == addr);
                match target {
                    Some(h) => {
                        kill(ctx, &h);
                        Reply::Ok
                    }
                    None => return Err(CmdError::err("No such client")),
                }
            }
            ClientCmd::Kill(filters, skipme) => {
                let mut n = 0;
                for h in ctx.server.clients.all() {
                    if skipme && h.id == me.id {
                        continue;
                    }
                    let hit = filters.iter().all(|f| match f {
                        Filter::Id(id) => h.id == *id,
                        Filter::Addr(a) => h.addr.to_string() == *a,
                        Filter::LAddr(a) => h.laddr.to_string() == *a,
                        Filter::User(u) => u == "default",
                        Filter::MaxAge(secs) => h.age_secs() >= *secs,
                        Filter::Type(t) => t == "normal",
                    });
                    if hit {
                        kill(ctx, &h);
                        n += 1;
                    }
                }
                Reply::Int(n)
            }
            ClientCmd::SetInfo(lib_name, v) => {
                let mut m = me.meta.lock();
                if lib_name {
                    m.lib_name = Some(Bytes::copy_from_slice(v));
                } else {
                    m.lib_ver = Some(Bytes::copy_from_slice(v));
                }
                Reply::Ok
            }
            ClientCmd::NoEvict(on) => {
                me.meta.lock().no_evict = on;
                Reply::Ok
            }
            ClientCmd::NoTouch(on) => {
                me.meta.lock().no_touch = on;
                ctx.client.no_touch = on;
                Reply::Ok
            }
            ClientCmd::Tracking(mode) => super::tracking::tracking(ctx, mode)?,
            ClientCmd::Caching(yes) => super::tracking::caching(ctx, yes)?,
            ClientCmd::GetRedir => super::tracking::getredir(ctx),
            ClientCmd::Unblock(id, error) => {
                Reply::Int(i64::from(ctx.server.blocking.unblock(id, error)))
            }
            ClientCmd::TrackingInfo => super::tracking::trackinginfo(ctx),
            ClientCmd::Help => help(
                "CLIENT",
                &[
                    "ID",
                    "    Return the ID of the current connection.",
                    "GETNAME",
                    "    Return the name of the current connection.",
                    "INFO",
                    "    Return information about the current client connection.",
                    "KILL <ip:port>",
                    "    Kill connection made from <ip:port>.",
                    "KILL <option> <value> [<option> <value> [...]]",
                    "    Kill connections. Options are: ID, ADDR, LADDR, TYPE, USER, SKIPME, MAXAGE.",
                    "LIST [options ...]",
                    "    Return information about client connections. Options: TYPE, ID.",
                    "SETNAME <name>",
                    "    Assign the name <name> to the current connection.",
                    "SETINFO <option> <value>",
                    "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
                    "NO-EVICT (ON|OFF)",
                    "    Protect current client connection from eviction.",
                    "NO-TOUCH (ON|OFF)",
                    "    Will not touch LRU/LFU stats when this mode is on.",
                    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
                    "         [OPTIN] [OPTOUT] [NOLOOP]",
                    "    Control server assisted client side caching.",
                    "CACHING (YES|NO)",
                    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
                    "GETREDIR",
                    "    Return the client ID we are redirecting to when tracking is enabled.",
                    "TRACKINGINFO",
                    "    Report tracking status for the current connection.",
                    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                    "    Unblock the specified blocked client.",
                ],
            ),
        })
    }
}

/// Kills `h`; killing oneself closes after this reply, as in Redis.
fn kill(ctx: &mut ExecCtx<'_>, h: &std::sync::Arc<crate::server::ClientHandle>) {
    if h.id == ctx.client.id() {
        ctx.client.close = true;
    } else {
        h.kill();
    }
}
