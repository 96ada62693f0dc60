//! MULTI/EXEC/WATCH: the client's queued commands and watched keys, and EXEC itself.
//!
//! EXEC locks the union of the shards its queued commands (and watched keys) need, in
//! ascending order like any multi-key command, checks the watches and runs the queue under
//! those locks: no other client sees a state between two of its commands.
//!
//! A watch is a flag shared with the shards of the watched keys: every change of such a
//! key (write, delete, expiry, eviction, FLUSHALL, CACHE.CLEAR) raises it, so EXEC only
//! has to read it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use super::dispatch::{BatchClock, memory_ok};
use super::{Client, Shared};
use crate::command::{CmdError, Command, CommandId, ExecCtx, Flags};
use crate::protocol::{Args, Reply};
use crate::store::{ShardSet, Watch};

/// One queued command, parsed at EXEC as in Redis (an argument error becomes that
/// command's reply, not an EXECABORT).
#[derive(Debug)]
pub struct Queued {
    /// The command.
    pub id: CommandId,
    /// Its arguments, name included.
    pub args: Vec<Bytes>,
    /// The shards it needs.
    pub shards: ShardSet,
}

/// An open MULTI.
#[derive(Debug, Default)]
pub struct Transaction {
    /// Commands in arrival order.
    pub queued: Vec<Queued>,
    /// An error while queueing (unknown command, wrong arity, ...): EXEC answers EXECABORT.
    pub failed: bool,
    /// Some queued command may grow memory (checked against `maxmemory` at EXEC).
    pub denyoom: bool,
}

/// The keys a client watches and the flag their shards raise.
#[derive(Debug)]
pub struct Watched {
    /// The watched keys, as sent.
    pub keys: Vec<Bytes>,
    /// Raised by any change of a watched key.
    pub dirty: Arc<AtomicBool>,
}

impl Watched {
    /// An empty watch set.
    pub fn new() -> Watched {
        Watched {
            keys: Vec::new(),
            dirty: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The registration shards keep for `client`.
    pub fn watch(&self, client: u64) -> Watch {
        Watch {
            client,
            dirty: self.dirty.clone(),
        }
    }
}

impl Default for Watched {
    fn default() -> Self {
        Watched::new()
    }
}

/// Drops every watch of `client` (UNWATCH, EXEC, DISCARD, RESET, disconnect).
pub fn unwatch(shared: &Shared, client: &mut Client) {
    if let Some(w) = client.watched.take() {
        let keys: Vec<_> = w.keys.iter().map(|k| k.as_ref().into()).collect();
        shared.keyspace.unwatch(&keys, client.id());
    }
    client
        .handle
        .set_tx_counts(client.tx.as_ref().map(|t| t.queued.len()), 0);
}

/// EXEC: runs the queued commands atomically, or answers nil when a watched key changed,
/// or EXECABORT when queueing failed.
pub fn exec(shared: &Shared, client: &mut Client, clock: &mut BatchClock) -> Reply {
    let Some(tx) = client.tx.take() else {
        return CmdError::err("EXEC without MULTI").into_reply();
    };
    let watched = client.watched.take();
    let reply = run(shared, client, tx, watched.as_ref(), clock);
    client.watched = watched;
    unwatch(shared, client);
    reply
}

fn run(
    shared: &Shared,
    client: &mut Client,
    tx: Transaction,
    watched: Option<&Watched>,
    clock: &mut BatchClock,
) -> Reply {
    if tx.failed {
        return CmdError::Prefixed(
            "EXECABORT Transaction discarded because of previous errors.".into(),
        )
        .into_reply();
    }
    if tx.denyoom
        && let Err(e) = memory_ok(shared, clock.now_ms())
    {
        return CmdError::Prefixed(
            format!("EXECABORT Transaction discarded because of: {e}").into(),
        )
        .into_reply();
    }
    let ks = &shared.keyspace;
    let mut shards: Vec<usize> = Vec::new();
    let mut all = false;
    for q in &tx.queued {
        match &q.shards {
            ShardSet::None => {}
            ShardSet::One(i) => shards.push(*i),
            ShardSet::Some(v) => shards.extend(v),
            ShardSet::All => all = true,
        }
    }
    if let Some(w) = watched {
        shards.extend(w.keys.iter().map(|k| ks.shard_of(k)));
    }
    let set = if all {
        ShardSet::All
    } else if shards.is_empty() {
        ShardSet::None
    } else {
        ShardSet::Some(shards)
    };
    let mut db = ks.db(set, clock.now_ms(), !client.no_touch);
    // Under the locks, like a single write: a switchover's barrier sees this EXEC.
    let writes = tx
        .queued
        .iter()
        .find(|q| q.id.spec().flags.has(Flags::WRITE));
    if let Some(q) = writes {
        let key = || {
            let p = q.id.spec().key_positions(&q.args).next()?;
            q.args.get(p).map(|k| k.as_ref())
        };
        if let Some(e) = shared.repl.write_refusal(key) {
            drop(db);
            return e.into_reply();
        }
    }
    if let Some(w) = watched {
        // A watched key that expired since WATCH is a change: looking at it reclaims it,
        // which raises the flag.
        for k in &w.keys {
            let _ = db.peek(k);
        }
        if w.dirty.load(Ordering::Acquire) {
            return Reply::NilArray;
        }
    }
    let mut ctx = ExecCtx {
        db,
        server: shared,
        client,
    };
    let mut replies = Vec::with_capacity(tx.queued.len());
    for q in tx.queued {
        let argv: Vec<&[u8]> = q.args.iter().map(|a| a.as_ref()).collect();
        // ACL again at EXEC, as Redis does: the user may have changed since QUEUED.
        let user = &ctx.client.user;
        if !user.unrestricted() {
            let top = q.id.spec();
            let spec = top.sub(&argv).unwrap_or(top);
            if let Err(d) = crate::acl::check(user, q.id, spec, &argv) {
                ctx.client.pending_errors += 1;
                replies.push(d.to_error(user, spec).into_reply());
                continue;
            }
        }
        let reply = Command::parse(q.id, &mut Args::new(&argv[1..]))
            .and_then(|cmd| cmd.exec(&mut ctx))
            .unwrap_or_else(CmdError::into_reply);
        if ctx.client.tracking.is_some() {
            let spec = q.id.spec();
            let spec = spec.sub(&argv).unwrap_or(spec);
            super::tracking::remember(&mut ctx.db, ctx.client, spec, &argv);
        }
        // A blocking command answers at once inside a transaction, as in Redis.
        ctx.client.block = None;
        // (The command was counted when it was queued.)
        if reply.is_error() {
            ctx.client.pending_errors += 1;
        }
        replies.push(reply);
    }
    ctx.flush_removals();
    let stats = ctx.db.stats();
    let invalidations = ctx.db.take_invalidations();
    let ready = ctx.db.take_ready();
    // One record for the whole transaction: a crash keeps all of it or none.
    if let Some(c) = ctx.db.commit() {
        ctx.client.committed(c);
    }
    drop(ctx);
    shared.blocking.signal(&ready);
    super::dispatch::add_stats(client, stats);
    if !invalidations.is_empty() {
        let id = client.id();
        shared.tracking.deliver(invalidations, id, &mut client.acks);
    }
    Reply::Array(replies)
}
