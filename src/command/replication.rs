//! Replication commands: WAIT, READONLY, READWRITE, FAILOVER, ROLE. WAIT and FAILOVER
//! answer after waiting: they leave a [`Blocked`] on the client, which the connection
//! awaits in the command's place.

use super::ctx::ExecCtx;
use super::{CmdError, Exec};
use crate::protocol::{Args, Reply};
use crate::replication::Blocked;

/// `WAIT numreplicas timeout`
#[derive(Debug)]
pub struct Wait {
    replicas: i64,
    timeout: i64,
}

impl<'a> Exec<'a> for Wait {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let replicas = args.i64()?;
        let timeout = args.i64()?;
        args.end()?;
        if timeout < 0 {
            return Err(CmdError::err("timeout is negative"));
        }
        Ok(Wait { replicas, timeout })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let repl = &ctx.server.repl;
        if !repl.is_active() {
            return Err(CmdError::err(
                "WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.",
            ));
        }
        ctx.client.blocked = Some(Blocked::Wait {
            replicas: self.replicas.max(0) as usize,
            timeout_ms: self.timeout as u64,
            lsn: ctx.client.last_lsn,
        });
        Ok(Reply::Int(0))
    }
}

/// `READONLY`: a mirror serves this connection's reads of eventual caches.
#[derive(Debug)]
pub struct ReadOnly(bool);

impl ReadOnly {
    fn parse_as(on: bool, args: &mut Args<'_>) -> Result<Self, CmdError> {
        args.end()?;
        Ok(ReadOnly(on))
    }
}

impl<'a> Exec<'a> for ReadOnly {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        ReadOnly::parse_as(true, args)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        ctx.client.readonly = self.0;
        if self.0 && ctx.client.routing == crate::cluster::Mode::Plain {
            // Only cluster clients send READONLY: they route themselves.
            ctx.client.routing = crate::cluster::Mode::Cluster;
        }
        Ok(Reply::Ok)
    }
}

/// `READWRITE`: back to redirects for every keyed command on a mirror.
#[derive(Debug)]
pub struct ReadWrite(ReadOnly);

impl<'a> Exec<'a> for ReadWrite {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(ReadWrite(ReadOnly::parse_as(false, args)?))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        self.0.exec(ctx)
    }
}

/// `FAILOVER [TO host port] [TIMEOUT ms]`: a planned switchover to a PASSIVE-STANDBY
/// mirror. Unlike Redis, the reply comes once the roles have swapped (or the attempt
/// failed), so the caller knows the outcome.
#[derive(Debug)]
pub struct Failover {
    to: Option<String>,
    timeout_ms: u64,
}

/// The default FAILOVER timeout.
const FAILOVER_TIMEOUT_MS: u64 = 10_000;

impl<'a> Exec<'a> for Failover {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let mut f = Failover {
            to: None,
            timeout_ms: FAILOVER_TIMEOUT_MS,
        };
        while !args.is_empty() {
            if args.eat("TO") {
                let host = String::from_utf8_lossy(args.bytes()?).into_owned();
                let port = args.i64()?;
                if !(1..=65535).contains(&port) {
                    return Err(CmdError::err("Invalid port"));
                }
                f.to = Some(format!("{host}:{port}"));
            } else if args.eat("TIMEOUT") {
                let t = args.i64()?;
                if t <= 0 {
                    return Err(CmdError::err("FAILOVER timeout must be greater than 0"));
                }
                f.timeout_ms = t as u64;
            } else if args.eat("ABORT") {
                return Err(CmdError::err("No failover in progress."));
            } else {
                return Err(CmdError::Syntax);
            }
        }
        Ok(f)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let repl = &ctx.server.repl;
        if !repl.is_active() {
            return Err(CmdError::err(
                "FAILOVER is not valid when server is a replica.",
            ));
        }
        if repl.in_sync.standby_count() == 0 {
            return Err(CmdError::err("FAILOVER requires connected replicas."));
        }
        ctx.client.blocked = Some(Blocked::Failover {
            to: self.to,
            timeout_ms: self.timeout_ms,
        });
        Ok(Reply::Ok)
    }
}

/// `ROLE`: `master lsn [[ip port lsn]...]` or `slave host port state lsn` (Redis's
/// shape; the state is Redis's `connect`/`sync`/`connected`).
#[derive(Debug)]
pub struct Role;

impl<'a> Exec<'a> for Role {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        args.end()?;
        Ok(Role)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        use crate::replication::State;
        let repl = &ctx.server.repl;
        let lsn = repl.last_lsn() as i64;
        if repl.is_active() {
            let mirrors = repl
                .in_sync
                .links()
                .iter()
                .map(|l| {
                    let (h, p) = l.addr.rsplit_once(':').unwrap_or((&l.addr, "0"));
                    Reply::Array(vec![
                        Reply::bulk(h.as_bytes()),
                        Reply::bulk(p.as_bytes()),
                        Reply::bulk(
                            l.acked
                                .load(std::sync::atomic::Ordering::Relaxed)
                                .to_string()
                                .into_bytes(),
                        ),
                    ])
                })
                .collect();
            return Ok(Reply::Array(vec![
                Reply::bulk(b"master"),
                Reply::Int(lsn),
                Reply::Array(mirrors),
            ]));
        }
        let active = repl.active().map(|a| a.addr).unwrap_or_default();
        let (h, p) = active.rsplit_once(':').unwrap_or(("", "0"));
        let state = match repl.state() {
            State::PassiveStandby => "connected",
            State::Initializing => "sync",
            _ => "connect",
        };
        Ok(Reply::Array(vec![
            Reply::bulk(b"slave"),
            Reply::bulk(h.as_bytes()),
            Reply::Int(p.parse().unwrap_or(0)),
            Reply::bulk(state.as_bytes()),
            Reply::Int(lsn),
        ]))
    }
}
