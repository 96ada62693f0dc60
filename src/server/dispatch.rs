//! One request's path: name → spec → arity → auth → parse → lock keys → exec → stats.
//! The connection calls [`execute`] for each frame; it never writes to a socket.

use std::time::Instant;

use bytes::Bytes;

use super::{Client, Shared};
use crate::command::{CmdError, Command, CommandId, CommandSpec, ExecCtx, Flags, Keys};
use crate::protocol::{Args, Reply};
use crate::store::ShardSet;

/// The clock of one batch of requests: the wall time for TTLs is read once per batch, and
/// each command's duration (for the slow log) is measured from the end of the previous
/// one, so a command costs one clock read instead of three.
#[derive(Debug, Clone, Copy)]
pub struct BatchClock {
    /// Unix ms when the batch started.
    pub now_ms: u64,
    /// When the previous command of the batch finished.
    pub mark: Instant,
}

impl BatchClock {
    /// A clock for a batch starting now.
    pub fn start() -> BatchClock {
        BatchClock {
            now_ms: crate::store::now_ms(),
            mark: Instant::now(),
        }
    }

    fn lap(&mut self) -> u64 {
        let end = Instant::now();
        let micros = end.duration_since(self.mark).as_micros() as u64;
        self.mark = end;
        micros
    }
}

/// Executes one request and returns its reply.
pub fn execute(
    shared: &Shared,
    client: &mut Client,
    args: Vec<Bytes>,
    clock: &mut BatchClock,
) -> Reply {
    client.pending_cmds += 1;
    let reply = run(shared, client, &args, clock);
    if reply.is_error() {
        client.pending_errors += 1;
    }
    reply
}

fn run(shared: &Shared, client: &mut Client, args: &[Bytes], clock: &mut BatchClock) -> Reply {
    let Some(id) = args.first().and_then(|n| CommandId::lookup(n)) else {
        return CmdError::unknown_command(args).into_reply();
    };
    let mut spec = id.spec();
    if !spec.arity_ok(args.len()) {
        return CmdError::WrongArity(spec.name.to_string()).into_reply();
    }
    if let Some(sub) = spec.sub(args) {
        if !sub.arity_ok(args.len()) {
            return CmdError::WrongArity(sub.name.to_string()).into_reply();
        }
        spec = sub;
    }
    if !client.authenticated && !spec.flags.has(Flags::NO_AUTH) {
        return CmdError::NoAuth.into_reply();
    }
    let cmd = match Command::parse(id, &mut Args::new(&args[1..])) {
        Ok(c) => c,
        Err(e) => return e.into_reply(),
    };
    client
        .handle
        .last_cmd
        .store(id as usize, std::sync::atomic::Ordering::Relaxed);

    let shards = shard_set(shared, spec, args);
    let db = shared
        .keyspace
        .db(shards, crate::store::now_ms(), !client.no_touch);
    let mut ctx = ExecCtx {
        db,
        server: shared,
        client,
    };
    let result = cmd.exec(&mut ctx);
    let micros = clock.lap();
    let stats = ctx.db.stats();
    // The effects would go to the fast-restart log and the mirrors here; nothing consumes
    // them yet, and the keyspace does not record them unless something does.
    drop(ctx);
    add_stats(client, stats);

    let threshold = shared
        .settings
        .slowlog_slower_than_us
        .load(std::sync::atomic::Ordering::Relaxed);
    if threshold >= 0 && micros >= threshold as u64 {
        let name = client.handle.meta.lock().name.clone().unwrap_or_default();
        shared.slowlog.push(
            args,
            micros,
            client.handle.addr.to_string(),
            String::from_utf8_lossy(&name).into_owned(),
            shared
                .settings
                .slowlog_max_len
                .load(std::sync::atomic::Ordering::Relaxed) as usize,
        );
    }
    result.unwrap_or_else(CmdError::into_reply)
}

fn add_stats(client: &mut Client, s: crate::store::DbStats) {
    client.pending.hits += s.hits;
    client.pending.misses += s.misses;
    client.pending.expired += s.expired;
}

/// The shards a command must lock, from its key positions.
fn shard_set(shared: &Shared, spec: &CommandSpec, args: &[Bytes]) -> ShardSet {
    match spec.keys {
        Keys::None => ShardSet::None,
        Keys::All => ShardSet::All,
        Keys::Range { .. } => {
            let mut pos = spec.key_positions(args.len());
            let ks = &shared.keyspace;
            let Some(first) = pos.next() else {
                return ShardSet::None;
            };
            let first = ks.shard_of(&args[first]);
            let rest: Vec<usize> = pos
                .map(|p| ks.shard_of(&args[p]))
                .filter(|&s| s != first)
                .collect();
            if rest.is_empty() {
                ShardSet::One(first)
            } else {
                let mut v = rest;
                v.push(first);
                ShardSet::Some(v)
            }
        }
    }
}
