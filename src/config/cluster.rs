//! The `cluster:` section: stripes (mirror groups), their servers, voters and failover policy.

use serde::{Deserialize, Serialize};

use super::units::Dur;

/// `cluster:` — every server and voter of the Terrace cluster (Terracotta's TSA).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// `consistency` (failover decided by the control plane's majority: never two actives,
    /// no acknowledged strong write lost) or `availability` (Terracotta's classic mode for
    /// 2-server stripes without voters: a mirror takes over after `election_time` on its
    /// own; after a split brain the higher epoch wins and the other is zapped). Default:
    /// `consistency` when the cluster has at least 3 members (servers plus voters), else
    /// `availability`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_priority: Option<FailoverPriority>,
    /// How long an active may be silent before it is declared failed. Default: `5s`.
    pub election_time: Dur,
    /// How long an active waits for a mirror's acks or heartbeats before it marks the mirror
    /// out of sync: strong writes then stop waiting for it, and it must resync. Default: `5s`.
    pub replica_timeout: Dur,
    /// The replication backlog: the most recent records an active keeps in memory, so a
    /// mirror that lost its link briefly resumes from it instead of a full sync. A mirror that
    /// falls further behind than this during a sync starts over. Default: `64m`.
    pub repl_backlog: super::units::Size,
    /// The stripes; slots are spread over them by consistent hashing. Default: one stripe
    /// `stripe1` with one server `server1` on 127.0.0.1:6379 (the dev shape).
    pub stripes: Vec<StripeConfig>,
    /// Voters: members of the control plane that hold no data. Default: none.
    pub voters: Vec<VoterConfig>,
}

/// How failover trades consistency for availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailoverPriority {
    /// A mirror is promoted only by a majority of the control plane.
    Consistency,
    /// A mirror promotes itself after `election_time`; the loser of a split brain is zapped.
    Availability,
}

/// One stripe: an active server and its mirrors.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// Stripe name, unique in the cluster; it is the consistent-hash ring's node name.
    pub name: String,
    /// The stripe's servers in priority order (the first is the initial active).
    pub servers: Vec<ServerConfig>,
}

/// One server process (Terracotta's `<server>`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Server name, unique across servers and voters; `terrace server -n NAME` picks it.
    pub name: String,
    /// Address other servers and clients use to reach this server. Default: `127.0.0.1`.
    #[serde(default = "default_host")]
    pub host: String,
    /// Address to listen on. Default: `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// RESP port for clients (Terracotta's `tsa-port`). Default: 6379.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Port for replication and the control plane (`tsa-group-port`). Default: `port + 10000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_port: Option<u16>,
    /// Data directory (fast-restart files, the off-heap file). Required when
    /// `storage.restartable` or `storage.offheap_file` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// This server's off-heap size, overriding `storage.offheap` (Terracotta sizes
    /// off-heap per server). A mirror with less than its stripe's other servers is refused
    /// at start. Default: `storage.offheap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offheap: Option<super::units::Size>,
    /// Port of the Prometheus endpoint (`GET /metrics`, on `bind`). Default: none (off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_port: Option<u16>,
}

/// A voter: takes part in control-plane elections, holds no data.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VoterConfig {
    /// Voter name, unique across servers and voters.
    pub name: String,
    /// Address of the voter. Default: `127.0.0.1`.
    #[serde(default = "default_host")]
    pub host: String,
    /// Control-plane port.
    pub group_port: u16,
    /// Directory for its control-plane state (votes, log, the cluster map). Without it
    /// the state is in memory and a restart forgets the voter's votes. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

fn default_host() -> String {
    "127.0.0.1".to_string()
}

fn default_port() -> u16 {
    6379
}

impl ClusterConfig {
    /// The failover priority in force: the configured one, else `consistency` with at
    /// least 3 members and `availability` below.
    pub fn priority(&self) -> FailoverPriority {
        self.failover_priority.unwrap_or_else(|| {
            let members =
                self.stripes.iter().map(|s| s.servers.len()).sum::<usize>() + self.voters.len();
            if members >= 3 {
                FailoverPriority::Consistency
            } else {
                FailoverPriority::Availability
            }
        })
    }
}

impl ServerConfig {
    /// The group port, defaulting to `port + 10000` like Redis Cluster's bus port.
    pub fn group_port(&self) -> u16 {
        self.group_port
            .unwrap_or_else(|| self.port.saturating_add(10000))
    }

    /// The address to listen on.
    pub fn bind(&self) -> &str {
        self.bind.as_deref().unwrap_or(&self.host)
    }

    /// This server's off-heap size: its own `offheap`, else `storage.offheap`.
    pub fn offheap(&self, storage: &super::StorageConfig) -> u64 {
        self.offheap.unwrap_or(storage.offheap).0
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            failover_priority: None,
            election_time: Dur(std::time::Duration::from_secs(5)),
            replica_timeout: Dur(std::time::Duration::from_secs(5)),
            repl_backlog: super::units::Size(64 << 20),
            stripes: vec![StripeConfig {
                name: "stripe1".to_string(),
                servers: vec![ServerConfig {
                    name: "server1".to_string(),
                    host: default_host(),
                    bind: None,
                    port: default_port(),
                    group_port: None,
                    data: None,
                    offheap: None,
                    metrics_port: None,
                }],
            }],
            voters: Vec::new(),
        }
    }
}
