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

pub mod control;
pub mod merge;
pub mod route;
pub mod slots;
pub mod topology;
pub mod upstream;

use std::sync::OnceLock;
use std::time::Duration;

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
    /// Connections to other stripes' actives.
    pub pool: upstream::Pool,
    /// How long a forwarded command may take (`cluster.replica_timeout` plus a margin:
    /// a strong write there may wait that long for its mirrors).
    pub forward_timeout: Duration,
    /// Set when the control plane's committed slot ranges differ from this config's:
    /// keyed commands are then refused (see [`Cluster::check_slots`]).
    conflict: OnceLock<String>,
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
            pool: upstream::Pool::new(config.security.requirepass.clone()),
            forward_timeout: config.cluster.replica_timeout.0 + Duration::from_secs(5),
            conflict: OnceLock::new(),
        }
    }

    /// Compares the cluster map's slot ranges with this server's. A server whose config
    /// lays the slots out differently (a stripe added or renamed on some servers only)
    /// would take writes for keys the rest of the cluster sends elsewhere: from the first
    /// disagreement on, it refuses keyed commands until it restarts with the right config.
    pub fn check_slots(&self, map: &control::ClusterMap) {
        if self.conflict.get().is_some() {
            return;
        }
        let mine: Vec<&str> = self
            .topology
            .stripes
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let why = map.stripes.iter().find_map(|(name, e)| {
            if e.slots.0.is_empty() {
                return None;
            }
            match mine.iter().position(|m| m == name) {
                None => Some(format!(
                    "the cluster has stripe {name}, which this server's config does not list"
                )),
                Some(i) if self.map.ranges_of(i) != e.slots.0 => Some(format!(
                    "stripe {name} owns other slots in the cluster map than in this server's config"
                )),
                Some(_) => None,
            }
        });
        if let Some(why) = why
            && self.conflict.set(why.clone()).is_ok()
        {
            tracing::error!(
                "{why}: this server refuses keyed commands until it restarts with the cluster's config"
            );
        }
    }

    /// CLUSTERDOWN when this server's slot map disagrees with the cluster map's.
    #[inline]
    pub fn slot_conflict(&self) -> Option<CmdError> {
        self.conflict
            .get()
            .map(|why| CmdError::Prefixed(format!("CLUSTERDOWN slot map mismatch: {why}").into()))
    }

    /// `agrees`, `differs` or, before the control plane has an entry with slots, `unset`,
    /// for INFO.
    pub fn slot_map_state(&self, map: &control::ClusterMap) -> &'static str {
        self.check_slots(map);
        if self.conflict.get().is_some() {
            "differs"
        } else if map.stripes.values().any(|e| !e.slots.0.is_empty()) {
            "agrees"
        } else {
            "unset"
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
