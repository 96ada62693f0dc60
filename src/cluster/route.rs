//! Where a command runs, decided from its keys' slots and what the connection is.
//!
//! - A **cluster client** (it asked for the slot map: CLUSTER SLOTS, SHARDS or NODES, or
//!   sent READONLY) routes itself: a key of another stripe gets `-MOVED slot host:port`,
//!   keys of several slots `-CROSSSLOT`, as from Redis Cluster.
//! - A **peer** (another Terrace server forwarding, CLUSTER.PEER) sends only what this
//!   stripe owns; anything else gets MOVED (its view was stale).
//! - Any other connection is **plain**: a command for one other stripe is forwarded there,
//!   MGET, MSET, DEL, EXISTS, UNLINK and TOUCH across stripes are split per stripe, KEYS,
//!   DBSIZE, FLUSHALL and FLUSHDB fan out to every stripe and SCAN walks them in turn.
//!
//! A transaction (WATCH, MULTI ... EXEC) keeps Redis Cluster's rule: every key in one
//! slot, and, on a plain connection, a slot of this server's stripe.

use smallvec::SmallVec;

use super::slots::key_slot;
use crate::command::{CmdError, CommandId, CommandSpec, Flags, Keys};
use crate::server::{Client, Shared};

/// What a connection is, for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Served transparently: commands for other stripes are forwarded.
    #[default]
    Plain,
    /// A Redis Cluster client: redirected with MOVED.
    Cluster,
    /// Another Terrace server's forwarding connection.
    Peer,
}

/// Where a command goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Runs here.
    Local,
    /// Runs whole on another stripe's active.
    Forward(usize),
    /// Split by stripe: for each stripe, the key positions it owns (in argument order).
    Split(Vec<(usize, Vec<usize>)>),
    /// Runs on every stripe; the replies are merged.
    FanOut,
    /// SCAN: the cursor says which stripe is being walked.
    Scan,
}

/// Commands split per stripe on a plain connection (dispatch picks their merge).
fn splits(id: CommandId) -> bool {
    matches!(
        id,
        CommandId::MGet
            | CommandId::MSet
            | CommandId::Del
            | CommandId::Unlink
            | CommandId::Exists
            | CommandId::Touch
    )
}

/// The CROSSSLOT error (Redis's text).
pub fn cross_slot() -> CmdError {
    CmdError::Prefixed("CROSSSLOT Keys in request don't hash to the same slot".into())
}

/// Decides where a command runs. Only called in clusters of several stripes.
pub fn route(
    shared: &Shared,
    client: &Client,
    id: CommandId,
    spec: &CommandSpec,
    args: &[&[u8]],
) -> Result<Route, CmdError> {
    let cluster = &shared.cluster;
    let me = cluster.my_stripe();
    let in_tx = client.tx.is_some() || id == CommandId::Watch;
    // A subscription cannot be forwarded (the messages would go to the forwarding
    // connection): every connection is told where a shard channel lives, as a cluster
    // client is.
    let mode = match (client.routing, id) {
        (Mode::Plain, CommandId::SSubscribe | CommandId::SUnsubscribe) => Mode::Cluster,
        (m, _) => m,
    };
    match spec.keys {
        Keys::None => Ok(Route::Local),
        Keys::All => Ok(match (mode, id) {
            (Mode::Plain, _) if in_tx => Route::Local,
            (Mode::Plain, CommandId::Scan) => Route::Scan,
            (
                Mode::Plain,
                CommandId::Keys | CommandId::DbSize | CommandId::FlushAll | CommandId::FlushDb,
            ) => Route::FanOut,
            _ => Route::Local,
        }),
        Keys::Range { .. } => {
            let keys: SmallVec<[(usize, u16, usize); 8]> = spec
                .key_positions(args)
                .filter_map(|p| {
                    let slot = key_slot(args.get(p)?);
                    Some((p, slot, cluster.owner(slot)))
                })
                .collect();
            let Some(&(_, slot0, owner0)) = keys.first() else {
                return Ok(Route::Local);
            };
            let one_slot = keys.iter().all(|k| k.1 == slot0);
            let local = keys.iter().all(|k| k.2 == me);
            if in_tx {
                if !one_slot || tx_slot(client).is_some_and(|s| s != slot0) {
                    return Err(cross_slot());
                }
                if !local && mode == Mode::Plain {
                    return Err(CmdError::err(format!(
                        "a transaction on this connection can only use keys of stripe {}: slot {slot0} is on stripe {}{}. Connect there, or use a cluster client",
                        cluster.stripe_name(me),
                        cluster.stripe_name(owner0),
                        cluster
                            .active_addr(shared, owner0)
                            .map(|a| format!(" ({a})"))
                            .unwrap_or_default()
                    )));
                }
            }
            match mode {
                Mode::Cluster | Mode::Peer if local && (one_slot || mode == Mode::Peer) => {
                    Ok(Route::Local)
                }
                Mode::Cluster if !one_slot => Err(cross_slot()),
                Mode::Cluster | Mode::Peer => {
                    let (_, slot, owner) = keys
                        .iter()
                        .find(|k| k.2 != me)
                        .copied()
                        .unwrap_or((0, slot0, owner0));
                    Err(cluster.moved(shared, slot, owner))
                }
                Mode::Plain if local => Ok(Route::Local),
                // A blocking command (BLPOP, ...) is never forwarded: it could hold the
                // shared upstream pipeline to the owner for as long as it blocks, and
                // every other client's forwarded commands behind it. The client is
                // redirected instead (README, "Blocking commands").
                Mode::Plain if spec.flags.has(Flags::BLOCKING) => {
                    if keys.iter().all(|k| k.2 == owner0) {
                        Err(cluster.moved(shared, slot0, owner0))
                    } else {
                        Err(cross_slot())
                    }
                }
                Mode::Plain if keys.iter().all(|k| k.2 == owner0) => Ok(Route::Forward(owner0)),
                Mode::Plain if splits(id) => {
                    let mut parts: Vec<(usize, Vec<usize>)> = Vec::new();
                    for &(p, _, owner) in &keys {
                        match parts.iter_mut().find(|(s, _)| *s == owner) {
                            Some((_, v)) => v.push(p),
                            None => parts.push((owner, vec![p])),
                        }
                    }
                    Ok(Route::Split(parts))
                }
                Mode::Plain => Err(cross_slot()),
            }
        }
    }
}

/// The slot the connection's transaction is bound to: that of its first watched or
/// queued key.
fn tx_slot(client: &Client) -> Option<u16> {
    if let Some(k) = client.watched.as_ref().and_then(|w| w.keys.first()) {
        return Some(key_slot(k));
    }
    client.tx.as_ref()?.queued.iter().find_map(|q| {
        let spec = q.id.spec();
        let spec = spec.sub(&q.args).unwrap_or(spec);
        spec.key_positions(&q.args)
            .next()
            .and_then(|p| q.args.get(p))
            .map(|k| key_slot(k))
    })
}
