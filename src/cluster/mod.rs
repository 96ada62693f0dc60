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
