//! Connection commands: PING, ECHO, QUIT, RESET, SELECT, AUTH, HELLO.

use bytes::Bytes;

use super::ctx::ExecCtx;
use super::{CmdError, Exec};
use crate::protocol::{Args, Proto, Reply};

/// The Redis version whose behaviour Terrace matches (redis-py's client-side caching
/// requires at least 7.4).
pub const REDIS_VERSION: &str = "7.4.0";

/// `PING [message]`
#[derive(Debug)]
pub struct Ping<'a> {
    msg: Option<&'a [u8]>,
}

impl<'a> Exec<'a> for Ping<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        if args.remaining() > 1 {
            return Err(CmdError::WrongArity("ping".into()));
        }
        Ok(Ping {
            msg: args.next_opt(),
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        // A RESP2 client in subscribed mode gets PING's reply as a pub/sub-style array.
        if ctx.client.proto == Proto::Resp2 && ctx.client.in_pubsub() {
            return Ok(Reply::Array(vec![
                Reply::bulk("pong"),
                Reply::bulk(self.msg.unwrap_or_default()),
            ]));
        }
        Ok(self.msg.map_or(Reply::status("PONG"), Reply::bulk))
    }
}

/// `ECHO message`
#[derive(Debug)]
pub struct Echo<'a> {
    msg: &'a [u8],
}

impl<'a> Exec<'a> for Echo<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Echo { msg: args.bytes()? })
    }
    fn exec(self, _: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(Reply::bulk(self.msg))
    }
}

/// `QUIT`: replies OK, then the connection closes.
#[derive(Debug)]
pub struct Quit;

impl<'a> Exec<'a> for Quit {
    fn parse(_: &mut Args<'_>) -> Result<Self, CmdError> {
        Ok(Quit)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        ctx.client.close = true;
        Ok(Reply::Ok)
    }
}

/// `RESET`: back to a fresh connection's state (RESP2, no name, not authenticated when a
/// password is required).
#[derive(Debug)]
pub struct Reset;

impl<'a> Exec<'a> for Reset {
    fn parse(_: &mut Args<'_>) -> Result<Self, CmdError> {
        Ok(Reset)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let c = &mut *ctx.client;
        c.tx = None;
        crate::server::transaction::unwatch(ctx.server, c);
        super::pubsub::unsubscribe_all(ctx.server, c);
        crate::server::tracking::stop(ctx.server, c);
        c.proto = Proto::Resp2;
        c.no_touch = false;
        // Back to the default user, authenticated only if it needs no password.
        let acl = &ctx.server.acl;
        let default = acl.default_user();
        let open = default.open();
        c.login(default, acl.epoch());
        c.authenticated = open;
        let mut m = c.handle.meta.lock();
        m.name = None;
        m.resp = 2;
        m.no_evict = false;
        m.no_touch = false;
        Ok(Reply::status("RESET"))
    }
}

/// `SELECT index`: only database 0 exists, as in Redis Cluster.
#[derive(Debug)]
pub struct Select {
    db: i64,
}

impl<'a> Exec<'a> for Select {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Select { db: args.i64()? })
    }
    fn exec(self, _: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        if self.db == 0 {
            Ok(Reply::Ok)
        } else {
            Err(CmdError::err("SELECT is not allowed in cluster mode"))
        }
    }
}

/// Checks `user` (default: `default`) and `pass` against the ACL users and, when they
/// match an enabled user, logs the client in as that user.
fn authenticate(ctx: &mut ExecCtx<'_>, user: Option<&[u8]>, pass: &[u8]) -> Result<(), CmdError> {
    let acl = &ctx.server.acl;
    let epoch = acl.epoch();
    let name = user.unwrap_or(b"default");
    let u = acl.authenticate(name, pass).inspect_err(|_| {
        acl.log.add(
            "auth",
            "toplevel",
            "AUTH".into(),
            &String::from_utf8_lossy(name),
            ctx.client.handle.describe(),
            crate::store::now_ms(),
        );
    })?;
    ctx.client.login(u, epoch);
    Ok(())
}

/// `AUTH [username] password`
#[derive(Debug)]
pub struct Auth<'a> {
    user: Option<&'a [u8]>,
    pass: &'a [u8],
}

impl<'a> Exec<'a> for Auth<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        match args.remaining() {
            1 => Ok(Auth {
                user: None,
                pass: args.bytes()?,
            }),
            2 => Ok(Auth {
                user: Some(args.bytes()?),
                pass: args.bytes()?,
            }),
            _ => Err(CmdError::Syntax),
        }
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        if self.user.is_none() && ctx.server.acl.default_user().nopass {
            return Err(CmdError::err(
                "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ));
        }
        authenticate(ctx, self.user, self.pass)?;
        Ok(Reply::Ok)
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`
#[derive(Debug)]
pub struct Hello<'a> {
    proto: Option<&'a [u8]>,
    auth: Option<(&'a [u8], &'a [u8])>,
    name: Option<&'a [u8]>,
}

impl<'a> Exec<'a> for Hello<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let mut h = Hello {
            proto: args.next_opt(),
            auth: None,
            name: None,
        };
        while !args.is_empty() {
            match args.keyword()?.as_str() {
                "AUTH" if args.remaining() >= 2 => h.auth = Some((args.bytes()?, args.bytes()?)),
                "SETNAME" if !args.is_empty() => h.name = Some(args.bytes()?),
                other => {
                    return Err(CmdError::err(format!(
                        "Syntax error in HELLO option '{}'",
                        other.to_lowercase()
                    )));
                }
            }
        }
        Ok(h)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let proto = match &self.proto {
            None => ctx.client.proto,
            Some(v) => match crate::protocol::args::parse_i64(v) {
                Ok(2) => Proto::Resp2,
                Ok(3) => Proto::Resp3,
                Ok(_) => {
                    return Err(CmdError::Prefixed(
                        "NOPROTO unsupported protocol version".into(),
                    ));
                }
                Err(_) => {
                    return Err(CmdError::err(
                        "Protocol version is not an integer or out of range",
                    ));
                }
            },
        };
        if let Some((user, pass)) = &self.auth {
            authenticate(ctx, Some(user), pass)?;
        }
        if !ctx.client.authenticated {
            return Err(CmdError::Prefixed(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into(),
            ));
        }
        if let Some(name) = &self.name {
            super::client::validate_name(name)?;
        }
        ctx.client.proto = proto;
        {
            let mut m = ctx.client.handle.meta.lock();
            m.resp = proto.version();
            if let Some(name) = self.name {
                m.name = Some(Bytes::copy_from_slice(name)).filter(|n| !n.is_empty());
            }
        }
        let s = |v: &str| Reply::bulk(v);
        Ok(Reply::Map(vec![
            (s("server"), s("redis")),
            (s("version"), s(REDIS_VERSION)),
            (s("proto"), Reply::Int(proto.version())),
            (s("id"), Reply::Int(ctx.client.id() as i64)),
            (s("mode"), s("cluster")),
            (s("role"), s("master")),
            (s("modules"), Reply::Array(Vec::new())),
        ]))
    }
}
