//! Stripes: which stripe owns which hash slot, who is each stripe's active, and how a
//! command for another stripe gets there.
//!
//! Owns the slot map, the view of the other stripes and the forwarding connections. It
//! must not execute commands (dispatch does, for the local part) or hold keys.
//!
//! ```text
//!  dispatch ─▶ route (slots of the keys, connection mode) ─▶ Local ─▶ run here
//!                                                         ├▶ MOVED / CROSSSLOT (cluster clients)
//!                                                         └▶ Forward / Split / FanOut / Scan
//!                                                              ─▶ upstream pool ─▶ other actives
//!  connection: replies of the batch in order ◀── merge::Pending::resolve ◀──┘
//! ```
//!
//! - [`control`]: the Raft control plane (who is active in every stripe, leases).
//! - [`slots`]: CRC16 slots and the consistent-hash slot map.
//! - [`topology`]: every stripe's servers and which one is active.
//! - [`route`]: where a command runs.
//! - [`upstream`]: pooled, pipelined connections to other servers.
//! - [`merge`]: waiting for and merging other stripes' replies.
//! - [`relay`]: PUBLISH, SPUBLISH and keyspace notifications carried to the other servers.

pub mod control;
pub mod merge;
pub mod relay;
pub mod route;
pub mod slots;
pub mod topology;
pub mod upstream;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::command::CmdError;
use crate::config::{Config, Placement};
use crate::server::Shared;

pub use route::{Mode, Route};
pub use slots::{SlotMap, key_slot};
pub use topology::Topology;

/// The cluster as this server sees it.
#[derive(Debug)]
pub struct Cluster {
    /// Slot → stripe.
    pub map: SlotMap,
    /// Stripes, servers and who is active.
    pub topology: Topology,
    /// Connections to other stripes' actives (and, for pub/sub relays, to every server).
    /// Shared with the relay tasks.
    pub pool: std::sync::Arc<upstream::Pool>,
    /// Queues of pub/sub messages for the other servers.
    pub relay: relay::Relay,
    /// How long a forwarded command may take (`cluster.replica_timeout` plus a margin:
    /// a strong write there may wait that long for its mirrors).
    pub forward_timeout: Duration,
    /// The digest of this config's slot layout (`control::layout_of`).
    pub layout: u32,
    /// Set while the control plane's committed layout differs from this config's: keyed
    /// commands are then refused (see [`Cluster::check_slots`]); `why` says how.
    conflict: AtomicBool,
    why: Mutex<String>,
}

impl Cluster {
    /// The cluster of `config`, seen from the server at `at`.
    pub fn new(config: &Config, at: &Placement) -> Cluster {
        let names: Vec<&str> = config
            .cluster
            .stripes
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        Cluster {
            map: SlotMap::new(&names),
            topology: Topology::new(config, at),
            pool: std::sync::Arc::new(upstream::Pool::new(config.security.peer_credentials())),
            relay: relay::Relay::default(),
            forward_timeout: config.cluster.replica_timeout.0 + Duration::from_secs(5),
            layout: control::layout_of(&config.cluster).digest,
            conflict: AtomicBool::new(false),
            why: Mutex::new(String::new()),
        }
    }

    /// Compares the cluster map's slot layout with this server's config's. A server whose
    /// config lays the slots out differently (a stripe added or renamed on some servers
    /// only) would take writes for keys the rest of the cluster sends elsewhere: while the
    /// layouts differ it refuses keyed commands. They agree again when the server restarts
    /// with the cluster's config, or when the leader commits this config's layout once
    /// every server runs it.
    pub fn check_slots(&self, map: &control::ClusterMap) {
        let differs = match &map.layout {
            None => None,
            Some(l) if l.digest == self.layout => None,
            Some(l) => {
                let mine: Vec<&str> = self
                    .topology
                    .stripes
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect();
                let theirs: Vec<&str> = l.stripes.keys().map(String::as_str).collect();
                Some(format!(
                    "the cluster map's slot layout {:08x} (stripes {}) is not this config's {:08x} (stripes {})",
                    l.digest,
                    theirs.join(","),
                    self.layout,
                    mine.join(",")
                ))
            }
        };
        let was = self.conflict.load(Ordering::Acquire);
        match differs {
            Some(why) => {
                if !was {
                    tracing::error!(
                        "{why}: this server refuses keyed commands until the layouts agree (every server on the same config)"
                    );
                }
                *self.why.lock() = why;
                self.conflict.store(true, Ordering::Release);
            }
            None if was => {
                self.conflict.store(false, Ordering::Release);
                tracing::info!("the cluster map's slot layout is this config's again");
            }
            None => {}
        }
    }

    /// CLUSTERDOWN while this server's slot layout disagrees with the cluster map's.
    #[inline]
    pub fn slot_conflict(&self) -> Option<CmdError> {
        if !self.conflict.load(Ordering::Acquire) {
            return None;
        }
        Some(CmdError::Prefixed(
            format!("CLUSTERDOWN slot map mismatch: {}", self.why.lock()).into(),
        ))
    }

    /// `agrees`, `differs` (what the server enforces) or, before the control plane has
    /// committed a layout, `unset`, for INFO.
    pub fn slot_map_state(&self, map: &control::ClusterMap) -> &'static str {
        match map.layout {
            None => "unset",
            Some(_) if self.conflict.load(Ordering::Acquire) => "differs",
            Some(_) => "agrees",
        }
    }

    /// True when there are several stripes (routing applies).
    #[inline]
    pub fn is_multi(&self) -> bool {
        self.topology.stripes.len() > 1
    }

    /// This server's stripe.
    #[inline]
    pub fn my_stripe(&self) -> usize {
        self.topology.me.0
    }

    /// The stripe that owns `slot`.
    #[inline]
    pub fn owner(&self, slot: u16) -> usize {
        self.map.owner(slot)
    }

    /// A stripe's name.
    pub fn stripe_name(&self, stripe: usize) -> &str {
        self.topology
            .stripes
            .get(stripe)
            .map_or("?", |s| s.name.as_str())
    }

    /// The client address of `stripe`'s active, when known.
    pub fn active_addr<'a>(&'a self, shared: &'a Shared, stripe: usize) -> Option<&'a str> {
        self.topology.active_addr(shared, stripe)
    }

    /// `-MOVED slot host:port` to `stripe`'s active, or CLUSTERDOWN while it has none.
    pub fn moved(&self, shared: &Shared, slot: u16, stripe: usize) -> CmdError {
        match self.active_addr(shared, stripe) {
            Some(addr) => CmdError::Prefixed(format!("MOVED {slot} {addr}").into()),
            None => self.down(stripe),
        }
    }

    /// Relays a message to every other server of the cluster (PUBLISH and keyspace
    /// notifications: Redis Cluster delivers those on every node). Never blocks.
    pub fn relay_everywhere(&self, kind: relay::Kind, channel: &[u8], message: &[u8]) {
        let me = self.topology.me;
        let mut addrs = self
            .topology
            .stripes
            .iter()
            .enumerate()
            .flat_map(|(s, st)| {
                st.nodes
                    .iter()
                    .enumerate()
                    .filter(move |(i, _)| (s, *i) != me)
                    .map(|(_, n)| n.peer.addr.as_str())
            });
        let Some(first) = addrs.next() else {
            return;
        };
        let cmd = relay::relay_command(kind, channel, message);
        self.relay
            .send(&self.pool, std::iter::once(first).chain(addrs), &cmd);
    }

    /// Relays an SPUBLISH to the other servers of this stripe (the shard channel's
    /// owner: its active and mirrors). Never blocks.
    pub fn relay_in_stripe(&self, channel: &[u8], message: &[u8]) {
        let (stripe, me) = self.topology.me;
        let Some(st) = self.topology.stripes.get(stripe) else {
            return;
        };
        if st.nodes.len() < 2 {
            return;
        }
        let cmd = relay::relay_command(relay::Kind::Sharded, channel, message);
        let addrs = st
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != me)
            .map(|(_, n)| n.peer.addr.as_str());
        self.relay.send(&self.pool, addrs, &cmd);
    }

    /// CLUSTERDOWN for a stripe with no known active.
    pub fn down(&self, stripe: usize) -> CmdError {
        self.topology.refresh();
        CmdError::Prefixed(
            format!(
                "CLUSTERDOWN stripe {} has no active server",
                self.stripe_name(stripe)
            )
            .into(),
        )
    }
}
