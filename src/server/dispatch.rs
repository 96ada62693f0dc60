//! One request's path: name → spec → arity → auth → parse → lock keys → exec → stats.
//! The connection calls [`execute`] for each frame; it never writes to a socket.

use std::time::Instant;

use bytes::Bytes;

use super::{Client, Shared, transaction};
use crate::cluster::Route;
use crate::cluster::merge::{Merge, Part, Pending, Resend, SCAN_STRIPE_SHIFT};
use crate::command::{CmdError, Command, CommandId, CommandSpec, ExecCtx, Flags, Keys};
use crate::protocol::{Args, Reply};
use crate::store::{ShardSet, Victim};

/// The clock of one batch of requests: the wall time is read once per batch and advanced
/// by the monotonic clock each command reads anyway (for its slow-log duration), so a
/// command costs one clock read instead of three and TTLs still see the current time.
#[derive(Debug, Clone, Copy)]
pub struct BatchClock {
    /// Unix ms when the batch started.
    start_ms: u64,
    /// When the batch started.
    start: Instant,
    /// When the previous command of the batch finished.
    mark: Instant,
}

impl BatchClock {
    /// A clock for a batch starting now.
    pub fn start() -> BatchClock {
        let now = Instant::now();
        BatchClock {
            start_ms: crate::store::now_ms(),
            start: now,
            mark: now,
        }
    }

    /// The current unix ms, as of the end of the previous command.
    pub fn now_ms(&self) -> u64 {
        self.start_ms + self.mark.duration_since(self.start).as_millis() as u64
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
    args: &[&[u8]],
    clock: &mut BatchClock,
) -> Reply {
    client.pending_cmds += 1;
    let reply = run(shared, client, args, clock);
    if reply.is_error() {
        client.pending_errors += 1;
    }
    reply
}

/// Runs a blocked command again after its client was woken (see `server::blocking`): a
/// full execution (routing, locks, effects), counted once, when it was first run.
pub fn retry(
    shared: &Shared,
    client: &mut Client,
    args: &[&[u8]],
    clock: &mut BatchClock,
) -> Reply {
    if let Some(b) = client.block.as_mut() {
        b.again = false;
        b.retrying = true;
    }
    let reply = run(shared, client, args, clock);
    if reply.is_error() {
        client.pending_errors += 1;
    }
    reply
}

fn run(shared: &Shared, client: &mut Client, args: &[&[u8]], clock: &mut BatchClock) -> Reply {
    client.refresh_user(&shared.acl);
    let (id, spec, route) = match check(shared, client, args, clock) {
        Ok(checked) => checked,
        Err(e) => {
            // Inside MULTI, a command that cannot even be queued dooms the transaction.
            if let Some(tx) = client.tx.as_mut() {
                tx.failed = true;
            }
            return e.into_reply();
        }
    };
    // CLIENT LIST `cmd`: the command's index, and its subcommand's position plus one.
    let sub = id
        .spec()
        .subcommands
        .iter()
        .position(|s| std::ptr::eq(s, spec))
        .map_or(0, |p| p + 1);
    client.handle.last_cmd.store(
        ((id as usize) << 8) | sub,
        std::sync::atomic::Ordering::Relaxed,
    );
    if client.tx.is_some() && !runs_inside_multi(id) {
        return queue(shared, client, id, spec, args);
    }
    if id == CommandId::Exec {
        let reply = transaction::exec(shared, client, clock);
        client.caching = None;
        let micros = clock.lap();
        finished(shared, client, id, args, micros);
        return reply;
    }
    if route != Route::Local {
        return routed(shared, client, id, spec, args, clock, route);
    }
    run_local(shared, client, id, spec, args, clock)
}

/// Runs a command on this server's keys.
fn run_local(
    shared: &Shared,
    client: &mut Client,
    id: CommandId,
    spec: &'static CommandSpec,
    args: &[&[u8]],
    clock: &mut BatchClock,
) -> Reply {
    let cmd = match Command::parse(id, &mut Args::new(&args[1..])) {
        Ok(c) => c,
        Err(e) => return e.into_reply(),
    };
    let shards = shard_set(shared, spec, args);
    let db = shared.keyspace.db(shards, clock.now_ms(), !client.no_touch);
    // Checked under the locks: a switchover pauses writes, then takes every lock once to
    // wait for the writes that got past this check.
    if spec.flags.has(Flags::WRITE)
        && let Some(e) = shared.repl.write_refusal(|| first_key(spec, args))
    {
        drop(db);
        return e.into_reply();
    }
    let mut ctx = ExecCtx {
        db,
        server: shared,
        client,
    };
    let result = cmd.exec(&mut ctx);
    if ctx.client.tracking.is_some() {
        super::tracking::remember(&mut ctx.db, ctx.client, spec, args);
    }
    let micros = clock.lap();
    ctx.flush_removals();
    let stats = ctx.db.stats();
    let invalidations = ctx.db.take_invalidations();
    let ready = ctx.db.take_ready();
    // The effects go to the fast-restart log while the shards are still locked.
    if let Some(c) = ctx.db.commit() {
        ctx.client.committed(c);
    }
    drop(ctx);
    // After the locks: a woken client retries at once.
    shared.blocking.signal(&ready);
    add_stats(client, stats);
    if !invalidations.is_empty() {
        // Queued to every tracking connection before this command's reply is written.
        let id = client.id();
        shared.tracking.deliver(invalidations, id, &mut client.acks);
    }
    // CLIENT CACHING yes|no applies to the next command only (the whole transaction
    // inside MULTI), as in Redis.
    if client.caching.is_some() && client.tx.is_none() && id != CommandId::Client {
        client.caching = None;
    }

    finished(shared, client, id, args, micros);
    result.unwrap_or_else(CmdError::into_reply)
}

/// The parts of a routed command: (stripe, arguments), in merge order.
type Plan<'a> = Vec<(usize, Vec<&'a [u8]>)>;

/// Sends a command (or its parts) to the stripes that own its keys; the connection waits
/// for [`Client::routed`] in this command's place. The local part of a split or fan-out
/// runs here and now.
fn routed(
    shared: &Shared,
    client: &mut Client,
    id: CommandId,
    spec: &'static CommandSpec,
    args: &[&[u8]],
    clock: &mut BatchClock,
    route: Route,
) -> Reply {
    let cluster = &shared.cluster;
    let (plan, merge): (Plan<'_>, Merge) = match route {
        Route::Local => return run_local(shared, client, id, spec, args, clock),
        Route::Forward(stripe) => (vec![(stripe, args.to_vec())], Merge::Relay),
        Route::Split(groups) => {
            let step = match spec.keys {
                Keys::Range { step, .. } => step.max(1) as usize,
                _ => 1,
            };
            let mut at: Vec<(usize, (usize, usize))> = Vec::new();
            let plan = groups
                .iter()
                .enumerate()
                .map(|(i, (stripe, positions))| {
                    let mut sub: Vec<&[u8]> = args.iter().take(1).copied().collect();
                    for (j, &p) in positions.iter().enumerate() {
                        sub.extend(args.iter().skip(p).take(step));
                        at.push((p, (i, j)));
                    }
                    (*stripe, sub)
                })
                .collect();
            at.sort_unstable();
            let merge = match id {
                CommandId::MGet => Merge::Mget(at.into_iter().map(|(_, o)| o).collect()),
                CommandId::MSet => Merge::AllOk,
                _ => Merge::Sum,
            };
            (plan, merge)
        }
        Route::FanOut => {
            let n = cluster.topology.stripes.len();
            let merge = match id {
                CommandId::Keys => Merge::Concat,
                CommandId::DbSize => Merge::Sum,
                _ => Merge::AllOk,
            };
            ((0..n).map(|s| (s, args.to_vec())).collect(), merge)
        }
        Route::Scan => {
            let n = cluster.topology.stripes.len();
            let cursor = args
                .get(1)
                .and_then(|c| std::str::from_utf8(c).ok())
                .and_then(|c| c.parse::<u64>().ok());
            let Some(cursor) = cursor else {
                return CmdError::err("invalid cursor").into_reply();
            };
            let stripe = (cursor >> SCAN_STRIPE_SHIFT) as usize;
            if stripe >= n {
                return CmdError::err("invalid cursor").into_reply();
            }
            let local = (cursor & ((1 << SCAN_STRIPE_SHIFT) - 1)).to_string();
            let mut sub = args.to_vec();
            if let Some(c) = sub.get_mut(1) {
                *c = local.as_bytes();
            }
            let plan = vec![(stripe, sub)];
            return send_parts(
                shared,
                client,
                id,
                spec,
                clock,
                plan,
                Merge::Scan { stripe, stripes: n },
            );
        }
    };
    send_parts(shared, client, id, spec, clock, plan, merge)
}

/// Runs the local part and sends the others; leaves the [`Pending`] reply on the client.
/// Nothing runs anywhere when a stripe has no known active.
fn send_parts(
    shared: &Shared,
    client: &mut Client,
    id: CommandId,
    spec: &'static CommandSpec,
    clock: &mut BatchClock,
    plan: Plan<'_>,
    merge: Merge,
) -> Reply {
    let cluster = &shared.cluster;
    let me = cluster.my_stripe();
    let mut addrs = Vec::with_capacity(plan.len());
    for (stripe, _) in &plan {
        if *stripe == me {
            addrs.push(None);
            continue;
        }
        match cluster.active_addr(shared, *stripe) {
            Some(a) => addrs.push(Some(a)),
            None => return cluster.down(*stripe).into_reply(),
        }
    }
    // A relayed reply is written as it came: ask in the client's protocol. Merged ones
    // are decoded: RESP2 (these commands' replies have the same shape in both).
    let proto = if merge == Merge::Relay {
        client.proto
    } else {
        crate::protocol::Proto::Resp2
    };
    let mut parts = Vec::with_capacity(plan.len());
    for ((stripe, sub), addr) in plan.into_iter().zip(addrs) {
        match addr {
            None => parts.push(Part::Ready(run_local(
                shared, client, id, spec, &sub, clock,
            ))),
            Some(addr) => {
                let mut req = Vec::with_capacity(sub.iter().map(|a| a.len() + 16).sum());
                crate::cluster::upstream::encode_command(&mut req, &sub);
                let resend = Resend {
                    request: req.into(),
                    proto,
                    lane: client.id(),
                };
                let answer = cluster
                    .pool
                    .send(addr, proto, resend.lane, resend.request.clone(), 1);
                parts.push(Part::Remote {
                    stripe,
                    answer,
                    resend,
                });
            }
        }
    }
    client.routed = Some(Pending { parts, merge });
    Reply::NoReply
}

/// Counts a command that ran here in its latency histogram, and in the slow log when slow.
fn finished(shared: &Shared, client: &Client, id: CommandId, args: &[&[u8]], micros: u64) {
    // A blocked command's retries are the same call: counted once, when it first ran.
    if client.block.as_ref().is_some_and(|b| b.retrying) {
        return;
    }
    shared.commands.record(id as usize, micros);
    slowlog(shared, client, args, micros);
}

/// Logs the command if it took at least `slowlog-log-slower-than`.
fn slowlog(shared: &Shared, client: &Client, args: &[&[u8]], micros: u64) {
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
}

/// Everything that rejects a request before it runs or is queued: unknown command, arity,
/// authentication, ACL permissions, commands refused inside MULTI, and `maxmemory` for commands that may
/// grow memory. Returns the command and its spec (its subcommand's, for a container).
fn check(
    shared: &Shared,
    client: &Client,
    args: &[&[u8]],
    clock: &BatchClock,
) -> Result<(CommandId, &'static CommandSpec, Route), CmdError> {
    let (id, spec) = crate::command::resolve(args)?;
    if !client.authenticated && !spec.flags.has(Flags::NO_AUTH) {
        return Err(CmdError::NoAuth);
    }
    // ACL: a flag test for a user with every permission; before routing, so a command
    // for another stripe is checked here, for this client's user.
    if !client.user.unrestricted()
        && !spec.flags.has(Flags::NO_AUTH)
        && let Err(denied) = crate::acl::check(&client.user, id, spec, args)
    {
        let (reason, object) = denied.log_fields(spec, args);
        let context = if client.tx.is_some() {
            "multi"
        } else {
            "toplevel"
        };
        shared.acl.log.add(
            reason,
            context,
            object,
            &client.user.name,
            client.handle.describe(),
            clock.now_ms(),
        );
        return Err(denied.to_error(&client.user, spec));
    }
    if client.proto == crate::protocol::Proto::Resp2
        && client.in_pubsub()
        && !matches!(
            id,
            CommandId::Subscribe
                | CommandId::Unsubscribe
                | CommandId::PSubscribe
                | CommandId::PUnsubscribe
                | CommandId::SSubscribe
                | CommandId::SUnsubscribe
                | CommandId::Ping
                | CommandId::Quit
                | CommandId::Reset
        )
    {
        return Err(CmdError::err(format!(
            "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        )));
    }
    if let Some(p) = &shared.persist {
        if p.is_loading() && !spec.flags.has(Flags::LOADING) {
            return Err(CmdError::Prefixed(
                "LOADING Redis is loading the dataset in memory".into(),
            ));
        }
        if spec.flags.has(Flags::WRITE)
            && let Some(why) = p.refusal()
        {
            return Err(CmdError::Prefixed(crate::persist::misconf(&why).into()));
        }
    }
    if spec.keys.named()
        && let Some(e) = shared.cluster.slot_conflict()
    {
        return Err(e);
    }
    let sharded = is_sharded_pubsub(id);
    if sharded {
        // Shard channels are keys of one slot, as in Redis Cluster, even on one stripe.
        let mut slots = spec
            .key_positions(args)
            .filter_map(|p| args.get(p))
            .map(|c| crate::cluster::key_slot(c));
        if let Some(first) = slots.next()
            && slots.any(|s| s != first)
        {
            return Err(crate::cluster::route::cross_slot());
        }
    }
    // Keys of other stripes first: a mirror redirects only what its own stripe owns.
    let route = if shared.cluster.is_multi() {
        crate::cluster::route::route(shared, client, id, spec, args)?
    } else {
        Route::Local
    };
    if sharded {
        // A mirror serves its stripe's shard channels itself (Redis Cluster replicas do):
        // SPUBLISH reaches every server of the stripe wherever it runs.
    } else if route == Route::Local && !shared.repl.is_active() {
        mirror_serves(shared, client, spec, args)?;
    } else if route == Route::Local
        && let Some(e) = shared.repl.strong_read_refusal()
        && touches_strong(shared, spec, args)
    {
        // An active without a lease may have been replaced: strong keys are not served.
        return Err(e);
    }
    if client.tx.is_some() && spec.flags.has(Flags::NO_MULTI) {
        return Err(CmdError::err("Command not allowed inside a transaction"));
    }
    // Over maxmemory, Redis refuses commands that may grow memory and, inside MULTI,
    // every command that would be queued (the queue itself grows).
    let queued = client.tx.is_some() && !runs_inside_multi(id);
    if spec.flags.has(Flags::DENYOOM) || queued {
        memory_ok(shared, clock.now_ms())?;
    }
    Ok((id, spec, route))
}

/// SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH: their channels are keys for routing only.
fn is_sharded_pubsub(id: CommandId) -> bool {
    matches!(
        id,
        CommandId::SSubscribe | CommandId::SUnsubscribe | CommandId::SPublish
    )
}

/// The first key of a command, if it has keys.
fn first_key<'a>(spec: &CommandSpec, args: &[&'a [u8]]) -> Option<&'a [u8]> {
    spec.key_positions(args)
        .next()
        .and_then(|p| args.get(p).copied())
}

/// What a server that is not the active serves: keyless commands and whole-keyspace reads
/// locally; reads of eventual caches on a PASSIVE-STANDBY mirror to READONLY connections.
/// Everything else is redirected to the active (MOVED), and keyless writes refused
/// (READONLY), as Redis Cluster replicas do.
fn mirror_serves(
    shared: &Shared,
    client: &Client,
    spec: &CommandSpec,
    args: &[&[u8]],
) -> Result<(), CmdError> {
    let repl = &shared.repl;
    let write = spec.flags.has(Flags::WRITE);
    match spec.keys {
        Keys::None => Ok(()),
        Keys::All if write => Err(repl.redirect(None)),
        Keys::All => Ok(()),
        Keys::Range { .. } => {
            let Some(key) = first_key(spec, args) else {
                return Ok(());
            };
            let strong = touches_strong(shared, spec, args);
            if !write && repl.serves_read(client.readonly, strong) {
                Ok(())
            } else {
                Err(repl.redirect(Some(key)))
            }
        }
    }
}

/// Whether a command names a key of a strong cache (whole-keyspace commands do when any
/// cache is strong).
fn touches_strong(shared: &Shared, spec: &CommandSpec, args: &[&[u8]]) -> bool {
    let caches = shared.keyspace.caches();
    match spec.keys {
        Keys::None => false,
        Keys::All => caches.iter().any(|c| c.is_strong()),
        Keys::Range { .. } => spec
            .key_positions(args)
            .filter_map(|p| args.get(p))
            .any(|k| caches.get(caches.resolve(k)).is_strong()),
    }
}

/// Commands that act at once even inside MULTI (Redis's list).
fn runs_inside_multi(id: CommandId) -> bool {
    matches!(
        id,
        CommandId::Exec
            | CommandId::Discard
            | CommandId::Multi
            | CommandId::Watch
            | CommandId::Quit
            | CommandId::Reset
    )
}

/// Queues a command of an open MULTI.
fn queue(
    shared: &Shared,
    client: &mut Client,
    id: CommandId,
    spec: &'static CommandSpec,
    args: &[&[u8]],
) -> Reply {
    let Some(tx) = client.tx.as_mut() else {
        return CmdError::Internal("no transaction to queue in".into()).into_reply();
    };
    tx.denyoom |= spec.flags.has(Flags::DENYOOM);
    // Owned copies: the queue outlives the read buffer. Parsed at EXEC, as in Redis.
    tx.queued.push(transaction::Queued {
        id,
        args: args.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
        shards: shard_set(shared, spec, args),
    });
    client.handle.set_tx_counts(
        Some(tx.queued.len()),
        client.watched.as_ref().map_or(0, |w| w.keys.len()),
    );
    Reply::status("QUEUED")
}

/// The `maxmemory` backstop: over the limit, evicts by `maxmemory-policy` across all caches
/// before a command that may grow memory runs; refuses it when nothing can be evicted.
pub fn memory_ok(shared: &Shared, now: u64) -> Result<(), CmdError> {
    let max = shared
        .settings
        .maxmemory
        .load(std::sync::atomic::Ordering::Relaxed);
    if max == 0 || shared.keyspace.caches().used_memory() <= max {
        return Ok(());
    }
    let how = Victim::from_policy(shared.settings.policy()).ok_or(CmdError::OutOfMemory)?;
    let n = shared
        .keyspace
        .evict_to(max, how, now)
        .ok_or(CmdError::OutOfMemory);
    // The L1s hear of what was evicted (even when not enough could be).
    shared.deliver_mailbox();
    shared.stats.add_evicted(n?);
    Ok(())
}

/// Adds a command's lookup counters to the client's pending stats.
pub(crate) fn add_stats(client: &mut Client, s: crate::store::DbStats) {
    client.pending.hits += s.hits;
    client.pending.misses += s.misses;
    client.pending.expired += s.expired;
    client.pending.evicted += s.evicted;
}

/// The shards a command must lock, from its key positions.
fn shard_set(shared: &Shared, spec: &CommandSpec, args: &[&[u8]]) -> ShardSet {
    match spec.keys {
        Keys::None => ShardSet::None,
        Keys::All => ShardSet::All,
        Keys::Range { .. } => {
            let mut pos = spec.key_positions(args);
            let ks = &shared.keyspace;
            let Some(first) = pos.next() else {
                return ShardSet::None;
            };
            let first = ks.shard_of(args[first]);
            let rest: Vec<usize> = pos
                .map(|p| ks.shard_of(args[p]))
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
