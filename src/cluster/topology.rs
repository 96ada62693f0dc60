//! Who is where: every stripe's servers (from the config) and what each last said about
//! itself (its state and epoch), so a server knows the active of every other stripe.
//!
//! With a control plane, each stripe's active is the one its map names. Without one
//! (`availability`), the view is kept by probing: a `cluster-view` thread asks every other
//! server's group port `HELLO` once a second, and at once when a forward to a stripe
//! failed. The server's own stripe comes from its replication state. [`Topology::active`]
//! is the one place that answers.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::config::{Config, Placement};
use crate::replication::{Peer, State};
use crate::server::Shared;

/// How often the view is refreshed when nothing asks sooner.
const REFRESH: Duration = Duration::from_secs(1);

/// One server of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The server (name, client and group addresses, place in its stripe).
    pub peer: Peer,
    /// Host for clients.
    pub host: String,
    /// Client port.
    pub port: u16,
    /// Its node id: 40 hex characters derived from its name, the same on every server
    /// and across restarts (cluster clients key their connection pools on it).
    pub id: String,
}

/// What a server last said about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seen {
    /// Its state when it last answered, `None` when it never did.
    pub state: Option<State>,
    /// It answered the last probe.
    pub reachable: bool,
    /// The epoch it knows.
    pub epoch: u64,
    /// Its last lsn (`replication-offset`).
    pub lsn: u64,
}

/// One stripe.
#[derive(Debug, Clone)]
pub struct Stripe {
    /// Its name.
    pub name: String,
    /// Its servers, in config order.
    pub nodes: Vec<Node>,
}

/// Every stripe and what its servers last said.
#[derive(Debug)]
pub struct Topology {
    /// The stripes, in config order (the slot map's stripe indexes).
    pub stripes: Vec<Stripe>,
    /// This server: (stripe, server) indexes.
    pub me: (usize, usize),
    seen: RwLock<Vec<Vec<Seen>>>,
    /// Per stripe, the last server seen as its active: used while no server says it is
    /// (a probe failed during a switchover); a former active redirects with MOVED.
    last_active: RwLock<Vec<Option<usize>>>,
    wake: Mutex<Option<mpsc::Sender<()>>>,
}

/// A node id from a server name: five CRC32C words of the name, as 40 hex characters.
pub fn node_id(name: &str) -> String {
    (0u8..5)
        .map(|i| {
            let mut b = name.as_bytes().to_vec();
            b.push(i);
            format!("{:08x}", crc32c::crc32c(&b))
        })
        .collect()
}

impl Topology {
    /// The topology of `config`, seen from the server at `at`.
    pub fn new(config: &Config, at: &Placement) -> Topology {
        let stripes: Vec<Stripe> = config
            .cluster
            .stripes
            .iter()
            .map(|s| Stripe {
                name: s.name.clone(),
                nodes: s
                    .servers
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Node {
                        peer: Peer {
                            name: c.name.clone(),
                            addr: format!("{}:{}", c.host, c.port),
                            group: format!("{}:{}", c.host, c.group_port()),
                            index: i,
                        },
                        host: c.host.clone(),
                        port: c.port,
                        id: node_id(&c.name),
                    })
                    .collect(),
            })
            .collect();
        let seen = stripes
            .iter()
            .map(|s| vec![Seen::default(); s.nodes.len()])
            .collect();
        Topology {
            last_active: RwLock::new(vec![None; stripes.len()]),
            stripes,
            me: (at.stripe, at.server),
            seen: RwLock::new(seen),
            wake: Mutex::new(None),
        }
    }

    /// This server's node.
    pub fn my_node(&self) -> Option<&Node> {
        self.stripes.get(self.me.0)?.nodes.get(self.me.1)
    }

    /// The active of `stripe`: from this server's own role for its stripe; for another,
    /// the server that said it is ACTIVE-COORDINATOR at the highest epoch, or the only
    /// server of a one-server stripe. A probe that fails (a loaded machine, a brief
    /// partition) does not forget an active: a new one has a higher epoch, and forwarding
    /// to a dead one fails on its own.
    pub fn active(&self, shared: &Shared, stripe: usize) -> Option<usize> {
        if stripe == self.me.0 {
            let active = shared.repl.active()?;
            return Some(active.index);
        }
        let s = self.stripes.get(stripe)?;
        if s.nodes.len() == 1 {
            return Some(0);
        }
        if let Some(cp) = shared.repl.control()
            && let Some(e) = cp.stripe(&s.name)
        {
            // The control plane's map decides; probes only tell who is reachable.
            return s.nodes.iter().position(|n| n.peer.name == e.active);
        }
        let seen = self.seen.read();
        claimed(seen.get(stripe)?).or_else(|| self.last_active.read().get(stripe).copied()?)
    }

    /// The client address (`host:port`) of `stripe`'s active.
    pub fn active_addr(&self, shared: &Shared, stripe: usize) -> Option<&str> {
        let i = self.active(shared, stripe)?;
        Some(self.stripes.get(stripe)?.nodes.get(i)?.peer.addr.as_str())
    }

    /// What every server last said (this server's own entry from its replication state).
    pub fn seen(&self, shared: &Shared) -> Vec<Vec<Seen>> {
        let mut v = self.seen.read().clone();
        if let Some(me) = v.get_mut(self.me.0).and_then(|s| s.get_mut(self.me.1)) {
            *me = Seen {
                state: Some(shared.repl.state()),
                reachable: true,
                epoch: shared.repl.epoch(),
                lsn: shared.repl.last_lsn(),
            };
        }
        v
    }

    /// Asks for a refresh now (a forward failed: the stripe may have a new active).
    pub fn refresh(&self) {
        if let Some(w) = self.wake.lock().as_ref() {
            let _ = w.send(());
        }
    }

    /// Starts the `cluster-view` thread (only clusters of several servers need one).
    pub fn start(shared: &Arc<Shared>) -> std::io::Result<()> {
        let topo = &shared.cluster.topology;
        if topo.stripes.iter().map(|s| s.nodes.len()).sum::<usize>() <= 1 {
            return Ok(());
        }
        let (tx, rx) = mpsc::channel();
        *topo.wake.lock() = Some(tx);
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("cluster-view".into())
            .spawn(move || {
                while !*shared.shutdown.borrow() {
                    shared.cluster.topology.probe_all();
                    // Many refresh requests at once cost one round.
                    let _ = rx.recv_timeout(REFRESH);
                    while rx.try_recv().is_ok() {}
                }
            })?;
        Ok(())
    }

    fn probe_all(&self) {
        for (si, s) in self.stripes.iter().enumerate() {
            for (ni, n) in s.nodes.iter().enumerate() {
                if (si, ni) == self.me {
                    continue;
                }
                let probed = crate::replication::role::probe(&n.peer.group);
                let mut all = self.seen.write();
                let was = all
                    .get(si)
                    .and_then(|s| s.get(ni))
                    .copied()
                    .unwrap_or_default();
                let seen = match probed {
                    Ok(v) => Seen {
                        state: State::from_name(&v.state),
                        reachable: true,
                        epoch: v.epoch,
                        lsn: v.lsn,
                    },
                    Err(_) => Seen {
                        reachable: false,
                        ..was
                    },
                };
                if (was.state, was.reachable) != (seen.state, seen.reachable) {
                    tracing::info!(
                        "cluster view: {} (stripe {}) is {}",
                        n.peer.name,
                        s.name,
                        match (seen.reachable, seen.state) {
                            (true, Some(st)) => st.name(),
                            _ => "unreachable",
                        }
                    );
                }
                if let Some(slot) = all.get_mut(si).and_then(|s| s.get_mut(ni)) {
                    *slot = seen;
                }
            }
            let active = self.seen.read().get(si).and_then(|v| claimed(v));
            if let Some(a) = active
                && let Some(last) = self.last_active.write().get_mut(si)
            {
                *last = Some(a);
            }
        }
    }
}

/// The server of a stripe that says it is ACTIVE-COORDINATOR at the highest epoch.
fn claimed(seen: &[Seen]) -> Option<usize> {
    seen.iter()
        .enumerate()
        .filter(|(_, v)| v.state == Some(State::ActiveCoordinator))
        .max_by_key(|(_, v)| v.epoch)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_stable_40_hex_and_distinct() {
        let a = node_id("server1");
        assert_eq!(a.len(), 40);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, node_id("server1"));
        assert_ne!(a, node_id("server2"));
    }
}
