//! The control plane: one Raft group (openraft) of every server and voter in the config,
//! whose state machine is the cluster map: each stripe's epoch, active and in-sync set
//! (REPLICATION.md). It decides who is active; it never carries cache data.
//!
//! Owns the Raft node, its storage and transport, the leader's failure detector and the
//! leases. It must not touch the keyspace: the replication layer reads the map (a watch)
//! and acts on it, and tells the leader how it is doing (reports).
//!
//! ```text
//!  every member: Raft (openraft) ◀──RAFT frames on the group port──▶ other members
//!                store: control-plane.json in the data directory (vote, log, map)
//!  server:  reporter task ──Report{state, epoch, lsn} every election_time/4──▶ leader
//!           ◀── lease (the active only) ── Lease::grant ── write gate, strong reads
//!           role thread ◀── map watch (applied entries) ── become active / follow X
//!           active ──AddInSync / RemoveInSync──▶ leader ──client_write──▶ map
//!  leader:  monitor task: Monitor::step(reports, map) ──Init / Promote──▶ client_write
//! ```
//!
//! - [`map`]: the state machine and its proposals.
//! - [`monitor`]: the leader's pure decision engine.
//! - [`lease`]: the active's lease.
//! - [`store`]: openraft storage in one JSON file.
//! - [`net`]: the transport and the isolation switch of the fault tests.

pub mod lease;
pub mod map;
pub mod monitor;
pub mod net;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::storage::Adaptor;
use openraft::{BasicNode, Raft, ServerState};
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use crate::config::{ClusterConfig, FailoverPriority};
pub use lease::Lease;
pub use map::{ClusterMap, Layout, Outcome, Proposal, StripeEntry};
pub use monitor::Report;
use monitor::{Heard, Monitor, StripeLayout};
use net::{Conn, Isolation, Reply, Request};

use std::io::Cursor;

openraft::declare_raft_types!(
    /// The control plane's Raft types: proposals in, outcomes out.
    pub TypeConfig: D = Proposal, R = Outcome,
);

/// One member of the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Server or voter name.
    pub name: String,
    /// Its group address (`host:group_port`).
    pub group: String,
    /// Its stripe (`None` for a voter).
    pub stripe: Option<String>,
}

/// Every member: the servers in config order, then the voters. A member's Raft node id is
/// its place in this list, the same on every member.
pub fn members(c: &ClusterConfig) -> Vec<Member> {
    let servers = c.stripes.iter().flat_map(|s| {
        s.servers.iter().map(|v| Member {
            name: v.name.clone(),
            group: format!("{}:{}", v.host, v.group_port()),
            stripe: Some(s.name.clone()),
        })
    });
    let voters = c.voters.iter().map(|v| Member {
        name: v.name.clone(),
        group: format!("{}:{}", v.host, v.group_port),
        stripe: None,
    });
    servers.chain(voters).collect()
}

/// Whether this cluster runs a control plane: `failover_priority: consistency` and more
/// than one member.
pub fn enabled(c: &ClusterConfig) -> bool {
    c.priority() == FailoverPriority::Consistency && members(c).len() > 1
}

/// The slot layout a config gives (`cluster::slots`): what the cluster map commits and
/// servers compare theirs with.
pub fn layout_of(c: &ClusterConfig) -> Layout {
    let names: Vec<&str> = c.stripes.iter().map(|s| s.name.as_str()).collect();
    let slots = crate::cluster::SlotMap::new(&names);
    Layout::new(
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), slots.ranges_of(i)))
            .collect(),
    )
}

/// A running control-plane member.
pub struct ControlPlane {
    /// The Raft node.
    pub raft: Raft<TypeConfig>,
    /// This member's node id.
    pub id: u64,
    /// Every member, by node id.
    pub members: Vec<Member>,
    /// The applied map.
    map: watch::Receiver<ClusterMap>,
    /// `cluster.election_time`: the failure-detection window.
    pub election_time: Duration,
    /// Leader only: the last report of every server, for the monitor and the leases.
    heard: Mutex<HashMap<String, Heard>>,
    /// The monotonic clock's origin for `heard`.
    base: Instant,
    /// The fault-injection switch (`DEBUG CONTROL-ISOLATE`).
    pub isolation: Arc<Isolation>,
    /// The stripes as this member's config lays them out, for the monitor.
    stripes: Vec<StripeLayout>,
    /// The slot layout of this member's config.
    layout: Layout,
    /// Connections to other members for reports and proposals (one call at a time each).
    conns: tokio::sync::Mutex<HashMap<u64, Conn>>,
    /// The runtime the Raft node runs on, for the blocking role thread.
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("id", &self.id)
            .field("members", &self.members)
            .finish()
    }
}

impl ControlPlane {
    /// Starts member `name` of `cluster`, its state in `dir` (memory only when `None`).
    /// A member with no Raft state initialises the group with every configured member
    /// (openraft allows every member to do so with the same membership).
    pub async fn start(
        cluster: &ClusterConfig,
        name: &str,
        dir: Option<PathBuf>,
    ) -> Result<Arc<ControlPlane>, String> {
        let members = members(cluster);
        let id = members
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| format!("{name} is not a member of the cluster"))?
            as u64;
        if let Some(d) = &dir {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        } else {
            tracing::warn!(
                "{name}: no data directory, so the control-plane state is kept in memory: \
                 a restart forgets its votes (give every server and voter `data:`)"
            );
        }
        let store = store::Store::open(dir)?;
        let map = store.map();
        let pristine = store.is_pristine();
        let et = cluster.election_time.0.as_millis().max(50) as u64;
        let heartbeat = (et / 10).clamp(20, 1000);
        let min = (et / 4).max(heartbeat * 3);
        let config = openraft::Config {
            cluster_name: "terrace".into(),
            heartbeat_interval: heartbeat,
            election_timeout_min: min,
            election_timeout_max: (et / 2).max(min + heartbeat),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(200),
            max_in_snapshot_log_to_keep: 50,
            ..Default::default()
        }
        .validate()
        .map_err(|e| format!("control-plane config: {e}"))?;
        let isolation = Arc::new(Isolation::default());
        let network = net::Network {
            isolation: isolation.clone(),
        };
        let (log_store, sm) = Adaptor::new(store);
        let raft = Raft::new(id, Arc::new(config), network, log_store, sm)
            .await
            .map_err(|e| format!("control plane: {e}"))?;
        if pristine {
            let nodes: BTreeMap<u64, BasicNode> = members
                .iter()
                .enumerate()
                .map(|(i, m)| (i as u64, BasicNode::new(&m.group)))
                .collect();
            if let Err(e) = raft.initialize(nodes).await {
                tracing::debug!("control plane initialize: {e}");
            }
        }
        let stripes = cluster
            .stripes
            .iter()
            .map(|s| StripeLayout {
                name: s.name.clone(),
                servers: s.servers.iter().map(|v| v.name.clone()).collect(),
            })
            .collect();
        let cp = Arc::new(ControlPlane {
            raft,
            id,
            members,
            map,
            election_time: cluster.election_time.0,
            heard: Mutex::new(HashMap::new()),
            base: Instant::now(),
            isolation,
            stripes,
            layout: layout_of(cluster),
            conns: tokio::sync::Mutex::new(HashMap::new()),
            runtime: tokio::runtime::Handle::current(),
        });
        tokio::spawn(cp.clone().monitor());
        Ok(cp)
    }

    /// The runtime the Raft node runs on (blocking threads call into it).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// The map as last applied here.
    pub fn map(&self) -> ClusterMap {
        self.map.borrow().clone()
    }

    /// Watches the applied map.
    pub fn watch(&self) -> watch::Receiver<ClusterMap> {
        self.map.clone()
    }

    /// `stripe`'s entry in the applied map.
    pub fn stripe(&self, stripe: &str) -> Option<StripeEntry> {
        self.map.borrow().stripe(stripe).cloned()
    }

    /// The leader's node id, if this member knows one.
    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

    /// True when this member is the Raft leader.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// The current Raft term.
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// How long a granted lease lasts: half the election time (see [`lease`]).
    pub fn lease_len(&self) -> Duration {
        self.election_time / 2
    }

    /// The name of member `id`.
    pub fn member_name(&self, id: u64) -> Option<&str> {
        self.members.get(id as usize).map(|m| m.name.as_str())
    }

    /// Sends `req` to the leader (this member is not it).
    async fn to_leader(&self, req: &Request, timeout: Duration) -> Result<Reply, String> {
        let leader = self.leader().ok_or("no control-plane leader yet")?;
        if leader == self.id {
            return Err("this member is the leader".into());
        }
        let m = self.members.get(leader as usize).ok_or("unknown leader")?;
        let mut conns = self.conns.lock().await;
        let conn = conns
            .entry(leader)
            .or_insert_with(|| Conn::new(m.group.clone(), self.isolation.clone()));
        conn.call(req, timeout).await
    }

    /// Commits `p` through the leader, retrying while there is none, for up to twice the
    /// election time. A refusal is an answer (the map moved on), not an error.
    pub async fn propose(&self, p: Proposal) -> Result<Outcome, String> {
        let deadline = Instant::now() + self.election_time * 2;
        loop {
            let r = if self.is_leader() {
                self.propose_here(p.clone()).await
            } else {
                match self
                    .to_leader(&Request::Propose(p.clone()), self.election_time)
                    .await
                {
                    Ok(Reply::Propose(r)) => r,
                    Ok(_) => Err("unexpected reply".into()),
                    Err(e) => Err(e),
                }
            };
            match r {
                Ok(o) => return Ok(o),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("could not commit {p:?}: {e}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Commits `p` on this member, which must be the leader.
    pub(crate) async fn propose_here(&self, p: Proposal) -> Result<Outcome, String> {
        if self.isolation.is_on() {
            return Err("isolated (fault injection)".into());
        }
        match self.raft.client_write(p).await {
            Ok(r) => Ok(r.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(format!(
                "not the leader (the leader is {:?})",
                f.leader_id.and_then(|l| self.member_name(l))
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Sends a server's report to the leader; `Ok(Some(len))` is a lease of `len` from
    /// when the report was sent.
    pub async fn report(&self, r: Report) -> Result<Option<Duration>, String> {
        let answer = if self.is_leader() {
            self.on_report(r).await
        } else {
            match self
                .to_leader(&Request::Report(r), self.election_time / 2)
                .await?
            {
                Reply::Report(a) => a,
                _ => return Err("unexpected reply".into()),
            }
        };
        match answer {
            Ok(ms) => Ok(ms.map(Duration::from_millis)),
            Err(l) => Err(format!(
                "not the leader (the leader is {:?})",
                l.and_then(|l| self.member_name(l))
            )),
        }
    }

    /// The leader's side of a report: remember it; grant the stripe's active a lease once
    /// a quorum has confirmed this member still leads.
    pub(crate) async fn on_report(&self, r: Report) -> Result<Option<u64>, Option<u64>> {
        if !self.is_leader() || self.isolation.is_on() {
            return Err(self.leader().filter(|&l| l != self.id));
        }
        let holds = |map: &ClusterMap| {
            r.state == crate::replication::State::ActiveCoordinator.name()
                && map
                    .stripe(&r.stripe)
                    .is_some_and(|e| e.active == r.server && e.epoch == r.epoch)
        };
        self.heard.lock().insert(
            r.server.clone(),
            Heard {
                at_ms: self.now_ms(),
                report: r.clone(),
            },
        );
        if !holds(&self.map()) {
            return Ok(None);
        }
        if self.raft.ensure_linearizable().await.is_err() {
            return Err(self.leader().filter(|&l| l != self.id));
        }
        Ok(holds(&self.map()).then(|| self.lease_len().as_millis() as u64))
    }

    /// The leader's failure detector: every tenth of the election time, feeds the reports
    /// to [`Monitor`] and commits what it decides. A new leadership starts a new monitor
    /// (it waits a whole election time before declaring anyone failed).
    async fn monitor(self: Arc<Self>) {
        let et = self.election_time.as_millis() as u64;
        let tick = Duration::from_millis((et / 10).clamp(20, 500));
        let mut current: Option<(u64, Monitor)> = None;
        loop {
            tokio::time::sleep(tick).await;
            if !self.is_leader() || self.isolation.is_on() {
                current = None;
                self.heard.lock().clear();
                continue;
            }
            let term = self.term();
            if current.as_ref().map(|(t, _)| *t) != Some(term) {
                tracing::info!(
                    "{} leads the control plane (term {term})",
                    self.member_name(self.id).unwrap_or("?")
                );
                current = Some((
                    term,
                    Monitor::new(self.stripes.clone(), self.layout.clone(), et, self.now_ms()),
                ));
            }
            let Some((_, mon)) = current.as_mut() else {
                continue;
            };
            let proposals = {
                let heard = self.heard.lock();
                mon.step(self.now_ms(), &self.map(), &heard)
            };
            for p in proposals {
                let cp = self.clone();
                tokio::spawn(async move {
                    tracing::info!("control plane proposes {p:?}");
                    match cp.propose_here(p.clone()).await {
                        Ok(Outcome::Refused(why)) => {
                            tracing::info!("control plane: {p:?} refused: {why}")
                        }
                        Ok(Outcome::Applied { .. }) => {}
                        Err(e) => tracing::warn!("control plane: {p:?} failed: {e}"),
                    }
                });
            }
        }
    }

    /// Starts a server's reporter: a report every quarter of the election time (and at
    /// once when `wake` is notified); a lease answer extends `lease`.
    pub fn spawn_reporter(
        self: &Arc<Self>,
        source: Arc<dyn Fn() -> Report + Send + Sync>,
        lease: Arc<Lease>,
        wake: Arc<Notify>,
    ) {
        let cp = self.clone();
        tokio::spawn(async move {
            let every = cp.election_time / 4;
            loop {
                let r = source();
                let sent = Instant::now();
                match cp.report(r).await {
                    Ok(Some(len)) => lease.grant(sent, len),
                    Ok(None) => lease.clear(),
                    Err(e) => tracing::debug!("report: {e}"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = wake.notified() => {}
                }
            }
        });
    }
}
