//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH. The state lives in the client
//! (`server::transaction`); EXEC itself is run by the dispatcher, which must lock the
//! shards of every queued command before any of them runs.

use bytes::Bytes;

use super::ctx::ExecCtx;
use super::{CmdError, Exec};
use crate::protocol::{Args, Reply};
use crate::server::transaction::{self, Transaction, Watched};

/// `MULTI`
#[derive(Debug)]
pub struct Multi;

impl<'a> Exec<'a> for Multi {
    fn parse(_: &mut Args<'_>) -> Result<Self, CmdError> {
        Ok(Multi)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let c = &mut *ctx.client;
        if c.tx.is_some() {
            return Err(CmdError::err("MULTI calls can not be nested"));
        }
        c.tx = Some(Transaction::default());
        c.handle
            .set_tx_counts(Some(0), c.watched.as_ref().map_or(0, |w| w.keys.len()));
        Ok(Reply::Ok)
    }
}

/// `EXEC`: executed by `server::transaction::exec`, which the dispatcher calls instead of
/// this (it needs the locks of every queued command).
#[derive(Debug)]
pub struct ExecCmd;

impl<'a> Exec<'a> for ExecCmd {
    fn parse(_: &mut Args<'_>) -> Result<Self, CmdError> {
        Ok(ExecCmd)
    }
    fn exec(self, _: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Err(CmdError::Internal("EXEC outside the dispatcher".into()))
    }
}

/// `DISCARD`
#[derive(Debug)]
pub struct Discard;

impl<'a> Exec<'a> for Discard {
    fn parse(_: &mut Args<'_>) -> Result<Self, CmdError> {
        Ok(Discard)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        if ctx.client.tx.take().is_none() {
            return Err(CmdError::err("DISCARD without MULTI"));
        }
        transaction::unwatch(ctx.server, ctx.client);
        Ok(Reply::Ok)
    }
}

/// `WATCH key [key ...]`
#[derive(Debug)]
pub struct WatchCmd<'a> {
    keys: Vec<&'a [u8]>,
}

impl<'a> Exec<'a> for WatchCmd<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(WatchCmd { keys: args.rest() })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        if ctx.client.tx.is_some() {
            return Err(CmdError::err("WATCH inside MULTI is not allowed"));
        }
        let id = ctx.client.id();
        let w = ctx.client.watched.get_or_insert_with(Watched::new);
        let reg = w.watch(id);
        for k in self.keys {
            ctx.db.watch(k, &reg)?;
            if !w.keys.iter().any(|w| w.as_ref() == k) {
                // A copy: the argument is a slice of the connection's read buffer.
                w.keys.push(Bytes::copy_from_slice(k));
            }
        }
        ctx.client.handle.set_tx_counts(None, w.keys.len());
        Ok(Reply::Ok)
    }
}

/// `UNWATCH`
#[derive(Debug)]
pub struct Unwatch;

impl<'a> Exec<'a> for Unwatch {
    fn parse(_: &mut Args<'_>) -> Result<Self, CmdError> {
        Ok(Unwatch)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        transaction::unwatch(ctx.server, ctx.client);
        Ok(Reply::Ok)
    }
}
