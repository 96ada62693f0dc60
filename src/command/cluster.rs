//! The Redis Cluster commands: CLUSTER SLOTS, SHARDS, NODES, INFO, MYID, MYSHARDID,
//! KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT, HELP; and CLUSTER.PEER, which a Terrace
//! server's forwarding connection sends.
//!
//! A connection that asks for the slot map is a cluster client from then on: keys of other
//! stripes get MOVED instead of being forwarded (see cluster::route).

use bytes::Bytes;

use super::ctx::ExecCtx;
use super::keys::help;
use super::spec::{CommandSpec, Flags};
use super::{CmdError, Exec};
use crate::cluster::topology::{Seen, node_id};
use crate::cluster::{Mode, key_slot, slots::SLOTS};
use crate::protocol::{Args, Reply};
use crate::replication::State;
use crate::server::Shared;

/// The CLUSTER subcommands.
pub const SUBS: &[CommandSpec] = &[
    CommandSpec::new(
        "cluster|slots",
        2,
        "cluster",
        "3.0.0",
        "Returns the mapping of cluster slots to nodes.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "cluster|shards",
        2,
        "cluster",
        "7.0.0",
        "Returns the mapping of cluster slots to shards.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "cluster|nodes",
        2,
        "cluster",
        "3.0.0",
        "Returns the cluster configuration for a node.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "cluster|info",
        2,
        "cluster",
        "3.0.0",
        "Returns information about the state of a node.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "cluster|myid",
        2,
        "cluster",
        "3.0.0",
        "Returns the ID of a node.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "cluster|myshardid",
        2,
        "cluster",
        "7.2.0",
        "Returns the shard ID of a node.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "cluster|keyslot",
        3,
        "cluster",
        "3.0.0",
        "Returns the hash slot for a key.",
    )
    .flags(Flags::STALE),
    CommandSpec::new(
        "cluster|countkeysinslot",
        3,
        "cluster",
        "3.0.0",
        "Returns the number of keys in a hash slot.",
    )
    .flags(Flags::STALE)
    .all_keys(),
    CommandSpec::new(
        "cluster|getkeysinslot",
        4,
        "cluster",
        "3.0.0",
        "Returns the key names in a hash slot.",
    )
    .flags(Flags::STALE)
    .all_keys(),
    CommandSpec::new(
        "cluster|help",
        2,
        "cluster",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
];

/// `CLUSTER <subcommand> ...`
#[derive(Debug)]
pub enum ClusterCmd<'a> {
    /// Slot ranges and their servers.
    Slots,
    /// Stripes (shards), their slots and servers.
    Shards,
    /// Redis's node table.
    Nodes,
    /// The cluster's state.
    Info,
    /// This server's node id.
    MyId,
    /// This server's stripe id.
    MyShardId,
    /// A key's slot.
    KeySlot(&'a [u8]),
    /// Keys of this server in a slot.
    CountKeysInSlot(u16),
    /// Up to `n` keys of this server in a slot.
    GetKeysInSlot(u16, usize),
    /// Help text.
    Help,
}

fn slot_arg(args: &mut Args<'_>) -> Result<u16, CmdError> {
    let s = args.i64().map_err(|_| CmdError::err("Invalid slot"))?;
    u16::try_from(s)
        .ok()
        .filter(|&s| (s as usize) < SLOTS)
        .ok_or_else(|| CmdError::err("Invalid slot"))
}

impl<'a> Exec<'a> for ClusterCmd<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let sub = args.bytes()?;
        let cmd = match String::from_utf8_lossy(sub).to_ascii_uppercase().as_str() {
            "SLOTS" => ClusterCmd::Slots,
            "SHARDS" => ClusterCmd::Shards,
            "NODES" => ClusterCmd::Nodes,
            "INFO" => ClusterCmd::Info,
            "MYID" => ClusterCmd::MyId,
            "MYSHARDID" => ClusterCmd::MyShardId,
            "KEYSLOT" => ClusterCmd::KeySlot(args.bytes()?),
            "COUNTKEYSINSLOT" => ClusterCmd::CountKeysInSlot(slot_arg(args)?),
            "GETKEYSINSLOT" => {
                let slot = slot_arg(args)?;
                let n = args.i64()?;
                let n = usize::try_from(n).map_err(|_| CmdError::err("Invalid number of keys"))?;
                ClusterCmd::GetKeysInSlot(slot, n)
            }
            "HELP" => ClusterCmd::Help,
            _ => {
                return Err(CmdError::UnknownSubcommand {
                    cmd: "CLUSTER",
                    sub: super::lossy(sub, 128),
                });
            }
        };
        args.end()?;
        Ok(cmd)
    }

    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let shared = ctx.server;
        if matches!(
            self,
            ClusterCmd::Slots | ClusterCmd::Shards | ClusterCmd::Nodes
        ) && ctx.client.routing == Mode::Plain
        {
            // It asked for the slot map: it routes itself from now on.
            ctx.client.routing = Mode::Cluster;
        }
        Ok(match self {
            ClusterCmd::Slots => slots(shared),
            ClusterCmd::Shards => shards(shared),
            ClusterCmd::Nodes => Reply::Verbatim(Bytes::from(nodes(shared))),
            ClusterCmd::Info => Reply::Verbatim(Bytes::from(info(shared))),
            ClusterCmd::MyId => Reply::bulk(
                shared
                    .cluster
                    .topology
                    .my_node()
                    .map_or_else(String::new, |n| n.id.clone()),
            ),
            ClusterCmd::MyShardId => Reply::bulk(shard_id(shared, shared.cluster.my_stripe())),
            ClusterCmd::KeySlot(k) => Reply::Int(i64::from(key_slot(k))),
            // No per-slot index: both walk every key, copying only the slot's.
            ClusterCmd::CountKeysInSlot(slot) => {
                Reply::Int(ctx.db.keys_where(|k| key_slot(k) == slot).len() as i64)
            }
            ClusterCmd::GetKeysInSlot(slot, n) => Reply::Array(
                ctx.db
                    .keys_where(|k| key_slot(k) == slot)
                    .into_iter()
                    .take(n)
                    .map(Reply::Bulk)
                    .collect(),
            ),
            ClusterCmd::Help => help(
                "CLUSTER",
                &[
                    "COUNTKEYSINSLOT <slot>",
                    "    Return the number of keys in <slot>.",
                    "GETKEYSINSLOT <slot> <count>",
                    "    Return key names stored by current node in a slot.",
                    "INFO",
                    "    Return information about the cluster.",
                    "KEYSLOT <key>",
                    "    Return the hash slot for <key>.",
                    "MYID",
                    "    Return the node id.",
                    "MYSHARDID",
                    "    Return the node's shard id.",
                    "NODES",
                    "    Return cluster configuration seen by node. Output format:",
                    "    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
                    "SHARDS",
                    "    Return information about slot range mappings and the nodes associated with them.",
                    "SLOTS",
                    "    Return information about slots range mappings. Each range is made of:",
                    "    start, end, master and replicas IP addresses, ports and ids",
                ],
            ),
        })
    }
}

/// A stripe's shard id (40 hex, from its name).
fn shard_id(shared: &Shared, stripe: usize) -> String {
    node_id(&format!("stripe/{}", shared.cluster.stripe_name(stripe)))
}

/// Whether a server is a reachable mirror that can serve (PASSIVE-STANDBY).
fn standby(seen: &Seen) -> bool {
    seen.reachable && seen.state == Some(State::PassiveStandby)
}

/// CLUSTER SLOTS: each range with its active, then its PASSIVE-STANDBY mirrors. Ranges of
/// a stripe without a known active are left out (as unassigned slots are).
fn slots(shared: &Shared) -> Reply {
    let topo = &shared.cluster.topology;
    let seen = topo.seen(shared);
    let node = |n: &crate::cluster::topology::Node| {
        Reply::Array(vec![
            Reply::bulk(&n.host),
            Reply::Int(i64::from(n.port)),
            Reply::bulk(&n.id),
            Reply::Map(Vec::new()),
        ])
    };
    let mut out = Vec::new();
    for (first, last, stripe) in shared.cluster.map.ranges() {
        let (Some(s), Some(active)) = (topo.stripes.get(stripe), topo.active(shared, stripe))
        else {
            continue;
        };
        let mut entry = vec![Reply::Int(i64::from(first)), Reply::Int(i64::from(last))];
        entry.extend(s.nodes.get(active).map(node));
        for (i, n) in s.nodes.iter().enumerate() {
            if i != active && seen.get(stripe).and_then(|v| v.get(i)).is_some_and(standby) {
                entry.push(node(n));
            }
        }
        out.push(Reply::Array(entry));
    }
    Reply::Array(out)
}

/// CLUSTER SHARDS: one entry per stripe.
fn shards(shared: &Shared) -> Reply {
    let topo = &shared.cluster.topology;
    let seen = topo.seen(shared);
    let ranges = shared.cluster.map.ranges();
    let s = |k: &'static str| Reply::bulk(k);
    let mut out = Vec::new();
    for (si, stripe) in topo.stripes.iter().enumerate() {
        let active = topo.active(shared, si);
        let slots = ranges
            .iter()
            .filter(|r| r.2 == si)
            .flat_map(|r| [Reply::Int(i64::from(r.0)), Reply::Int(i64::from(r.1))])
            .collect();
        let nodes = stripe
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let v = seen
                    .get(si)
                    .and_then(|v| v.get(i))
                    .copied()
                    .unwrap_or_default();
                let health = match v.state.filter(|_| v.reachable) {
                    None => "fail",
                    Some(State::ActiveCoordinator | State::PassiveStandby) => "online",
                    Some(_) => "loading",
                };
                Reply::Map(vec![
                    (s("id"), Reply::bulk(&n.id)),
                    (s("port"), Reply::Int(i64::from(n.port))),
                    (s("ip"), Reply::bulk(&n.host)),
                    (s("endpoint"), Reply::bulk(&n.host)),
                    (
                        s("role"),
                        s(if active == Some(i) {
                            "master"
                        } else {
                            "replica"
                        }),
                    ),
                    (s("replication-offset"), Reply::Int(v.lsn as i64)),
                    (s("health"), s(health)),
                ])
            })
            .collect();
        out.push(Reply::Map(vec![
            (s("slots"), Reply::Array(slots)),
            (s("nodes"), Reply::Array(nodes)),
        ]));
    }
    Reply::Array(out)
}

/// CLUSTER NODES: Redis's node table, one line per server.
fn nodes(shared: &Shared) -> String {
    let topo = &shared.cluster.topology;
    let seen = topo.seen(shared);
    let ranges = shared.cluster.map.ranges();
    let now = crate::store::now_ms();
    let mut out = String::new();
    for (si, stripe) in topo.stripes.iter().enumerate() {
        let active = topo.active(shared, si);
        let active_id = active
            .and_then(|a| stripe.nodes.get(a))
            .map(|n| n.id.as_str());
        for (i, n) in stripe.nodes.iter().enumerate() {
            let v = seen
                .get(si)
                .and_then(|v| v.get(i))
                .copied()
                .unwrap_or_default();
            let mut flags = Vec::new();
            if (si, i) == topo.me {
                flags.push("myself");
            }
            let is_active = active == Some(i);
            flags.push(if is_active || active.is_none() {
                "master"
            } else {
                "slave"
            });
            if !v.reachable {
                flags.push("fail");
            }
            let master = if is_active {
                "-"
            } else {
                active_id.unwrap_or("-")
            };
            let gport = n.peer.group.rsplit_once(':').map_or("0", |(_, p)| p);
            let link = if v.reachable {
                "connected"
            } else {
                "disconnected"
            };
            out.push_str(&format!(
                "{} {}:{}@{} {} {} 0 {} {} {}",
                n.id,
                n.host,
                n.port,
                gport,
                flags.join(","),
                master,
                now,
                v.epoch,
                link
            ));
            if is_active {
                for r in ranges.iter().filter(|r| r.2 == si) {
                    if r.0 == r.1 {
                        out.push_str(&format!(" {}", r.0));
                    } else {
                        out.push_str(&format!(" {}-{}", r.0, r.1));
                    }
                }
            }
            out.push('\n');
        }
    }
    out
}

/// CLUSTER INFO.
fn info(shared: &Shared) -> String {
    let cluster = &shared.cluster;
    let topo = &cluster.topology;
    let seen = topo.seen(shared);
    let stripes = topo.stripes.len();
    let served: usize = (0..stripes)
        .filter(|&s| topo.active(shared, s).is_some())
        .map(|s| cluster.map.count(s))
        .sum();
    let epoch = seen.iter().flatten().map(|v| v.epoch).max().unwrap_or(0);
    let fields = [
        (
            "cluster_state",
            if served == SLOTS { "ok" } else { "fail" }.to_string(),
        ),
        ("cluster_slots_assigned", SLOTS.to_string()),
        ("cluster_slots_ok", served.to_string()),
        ("cluster_slots_pfail", "0".to_string()),
        ("cluster_slots_fail", (SLOTS - served).to_string()),
        (
            "cluster_known_nodes",
            topo.stripes
                .iter()
                .map(|s| s.nodes.len())
                .sum::<usize>()
                .to_string(),
        ),
        ("cluster_size", stripes.to_string()),
        ("cluster_current_epoch", epoch.to_string()),
        ("cluster_my_epoch", shared.repl.epoch().to_string()),
        ("cluster_stats_messages_sent", "0".to_string()),
        ("cluster_stats_messages_received", "0".to_string()),
        ("total_cluster_links_buffer_limit_exceeded", "0".to_string()),
    ];
    fields.iter().map(|(k, v)| format!("{k}:{v}\r\n")).collect()
}

/// `CLUSTER.PEER`: this connection is another Terrace server forwarding commands; it is
/// served only what this stripe owns (MOVED otherwise) and never routed on.
#[derive(Debug)]
pub struct Peer;

impl<'a> Exec<'a> for Peer {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        args.end()?;
        Ok(Peer)
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        ctx.client.routing = Mode::Peer;
        Ok(Reply::Ok)
    }
}
