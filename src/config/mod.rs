//! The cluster config file (one YAML file for every server, voter and the admin tool, like
//! Terracotta's `tc-config.xml`).
//!
//! Owns: the config model, its defaults, unit parsing and validation. It does not start
//! anything: each component receives only its own section (`&StorageConfig`, ...).
//!
//! `Config::load(path)` = read → serde_yaml (unknown fields are errors) → `validate`, which
//! collects *every* problem, each named by its field path (`cluster.stripes[0].servers[1].port`).

pub mod caches;
pub mod cluster;
pub mod limits;
pub mod storage;
pub mod tls;
pub mod units;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use caches::{CacheConfig, Consistency, Eviction};
pub use cluster::{ClusterConfig, FailoverPriority, ServerConfig, StripeConfig, VoterConfig};
pub use limits::{
    Credentials, LimitsConfig, LogFormat, LoggingConfig, OutputBufferLimits, OutputLimit,
    PubSubConfig, SecurityConfig, SlowlogConfig, UserConfig,
};
pub use storage::{FsyncPolicy, StorageConfig};
pub use tls::{AuthClients, TlsConfig};
pub use units::{Dur, Size};

/// The embedded default: `terrace server` with no `-f` runs this (dev mode, 127.0.0.1:6379).
pub const DEV_YAML: &str = include_str!("../../conf/dev.yaml");

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Stripes, servers, voters, failover policy.
    pub cluster: ClusterConfig,
    /// Memory tiers and persistence.
    pub storage: StorageConfig,
    /// Named caches; `default` is added when missing.
    pub caches: Vec<CacheConfig>,
    /// Client limits.
    pub limits: LimitsConfig,
    /// Authentication.
    pub security: SecurityConfig,
    /// TLS on the client and group ports.
    pub tls: TlsConfig,
    /// The slow log.
    pub slowlog: SlowlogConfig,
    /// Pub/sub and keyspace notifications.
    pub pubsub: PubSubConfig,
    /// Log output.
    pub logging: LoggingConfig,
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `cluster.stripes[0].servers[1].port`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The config file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML is malformed or has an unknown field or a wrongly typed value.
    #[error("{file}: {message}")]
    Parse {
        /// The config file.
        file: String,
        /// serde_yaml's message, which names the field path and line.
        message: String,
    },
    /// The file parsed but some values are not acceptable.
    #[error("{}", FieldErrors(file, errors))]
    Invalid {
        /// The config file.
        file: String,
        /// Every problem found.
        errors: Vec<FieldError>,
    },
    /// `-n NAME` names no server in the file.
    #[error("{file}: no server named '{name}' (servers: {known})")]
    UnknownServer {
        /// The config file.
        file: String,
        /// The name asked for.
        name: String,
        /// The names the file has.
        known: String,
    },
    /// No `-n` was given and the file has several servers.
    #[error("{file}: the file has several servers ({known}); choose one with -n NAME")]
    NameRequired {
        /// The config file.
        file: String,
        /// The names the file has.
        known: String,
    },
}

struct FieldErrors<'a>(&'a String, &'a Vec<FieldError>);

impl fmt::Display for FieldErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.1.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {}: {}", self.0, e.path, e.message)?;
        }
        Ok(())
    }
}

/// Where one server sits in the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// Index of its stripe in `cluster.stripes`.
    pub stripe: usize,
    /// Index of the server in the stripe.
    pub server: usize,
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Config::from_yaml(&text, &file)
    }

    /// Parses and validates YAML text; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| ConfigError::Parse {
                file: file.to_string(),
                message: e.to_string(),
            })?
        };
        config.validate(file)
    }

    /// The embedded dev config.
    pub fn dev() -> Config {
        // The embedded file is checked by a unit test; fall back to the built-in default
        // rather than panic if it were ever broken.
        Config::from_yaml(DEV_YAML, "<embedded conf/dev.yaml>")
            .unwrap_or_else(|_| Config::default().validate("<default>").unwrap_or_default())
    }

    /// Checks every field and returns the config with defaults filled in (the `default`
    /// cache added), or every problem found.
    pub fn validate(mut self, file: &str) -> Result<Config, ConfigError> {
        let mut errs = Vec::new();
        let mut err = |path: String, message: String| errs.push(FieldError { path, message });

        if crate::server::notify::Events::parse(&self.pubsub.notify_keyspace_events).is_none() {
            err(
                "pubsub.notify_keyspace_events".into(),
                format!(
                    "'{}': {}",
                    self.pubsub.notify_keyspace_events,
                    crate::server::notify::INVALID
                ),
            );
        }
        for (i, u) in self.security.users.iter().enumerate() {
            let p = format!("security.users[{i}]");
            if let Some(r) = u
                .rules
                .split_whitespace()
                .find(|r| r.starts_with('>') || r.starts_with('<'))
            {
                err(
                    format!("{p}.rules"),
                    format!(
                        "'{}...': passwords in the config must be SHA-256 hashes ('#<64 hex digits>', e.g. from `echo -n PASSWORD | sha256sum`), never clear text",
                        &r[..1]
                    ),
                );
            }
        }
        let sec = &self.security;
        if let Some(u) = &sec.peer_user {
            if sec.peer_password.is_none() {
                err(
                    "security.peer_password".into(),
                    format!("required with security.peer_user ('{u}')"),
                );
            }
            if u != "default" && !sec.users.iter().any(|x| &x.name == u) {
                err(
                    "security.peer_user".into(),
                    format!("'{u}' is not one of security.users"),
                );
            }
        }
        let plain = crate::config::SecurityConfig {
            users: self
                .security
                .users
                .iter()
                .filter(|u| {
                    !u.rules
                        .split_whitespace()
                        .any(|r| r.starts_with('>') || r.starts_with('<'))
                })
                .cloned()
                .collect(),
            ..self.security.clone()
        };
        if let Err(e) = crate::acl::Acl::from_config(&plain) {
            err("security.users".into(), e);
        }
        let c = &self.cluster;
        if c.replica_timeout.is_zero() {
            err(
                "cluster.replica_timeout".into(),
                "must be greater than 0".into(),
            );
        }
        if c.repl_backlog.0 < 1 << 20 {
            err("cluster.repl_backlog".into(), "must be at least 1m".into());
        }
        if c.election_time.is_zero() {
            err(
                "cluster.election_time".into(),
                "must be greater than 0".into(),
            );
        }
        if c.stripes.is_empty() {
            err(
                "cluster.stripes".into(),
                "at least one stripe is required".into(),
            );
        }
        let mut names: HashMap<&str, String> = HashMap::new();
        let mut stripe_names: HashMap<&str, String> = HashMap::new();
        let mut endpoints: HashMap<(&str, u16), String> = HashMap::new();
        let mut data_dirs: HashMap<&str, String> = HashMap::new();
        for (si, stripe) in c.stripes.iter().enumerate() {
            let sp = format!("cluster.stripes[{si}]");
            if stripe.name.trim().is_empty() {
                err(format!("{sp}.name"), "must not be empty".into());
            } else if let Some(prev) = stripe_names.insert(&stripe.name, sp.clone()) {
                err(
                    format!("{sp}.name"),
                    format!("'{}' is used twice (also {prev})", stripe.name),
                );
            }
            if stripe.servers.is_empty() {
                err(
                    format!("{sp}.servers"),
                    "a stripe needs at least one server".into(),
                );
            }
            for (vi, s) in stripe.servers.iter().enumerate() {
                let p = format!("{sp}.servers[{vi}]");
                if s.name.trim().is_empty() {
                    err(format!("{p}.name"), "must not be empty".into());
                } else if let Some(prev) = names.insert(&s.name, p.clone()) {
                    err(
                        format!("{p}.name"),
                        format!("'{}' is used twice (also {prev})", s.name),
                    );
                }
                if s.host.trim().is_empty() {
                    err(format!("{p}.host"), "must not be empty".into());
                }
                if s.port == 0 {
                    err(format!("{p}.port"), "must be between 1 and 65535".into());
                } else if let Some(prev) = endpoints.insert((&s.host, s.port), format!("{p}.port"))
                {
                    err(
                        format!("{p}.port"),
                        format!("{} is used twice (also {prev})", s.port),
                    );
                }
                let gp = s.group_port();
                if s.group_port == Some(0) {
                    err(
                        format!("{p}.group_port"),
                        "must be between 1 and 65535".into(),
                    );
                } else if gp == s.port {
                    err(
                        format!("{p}.group_port"),
                        format!("{gp} is the same as port"),
                    );
                } else if let Some(prev) =
                    endpoints.insert((&s.host, gp), format!("{p}.group_port"))
                {
                    err(
                        format!("{p}.group_port"),
                        format!("{gp} is used twice (also {prev})"),
                    );
                }
                match s.metrics_port {
                    Some(0) => err(
                        format!("{p}.metrics_port"),
                        "must be between 1 and 65535".into(),
                    ),
                    Some(mp) if mp == s.port || mp == gp => err(
                        format!("{p}.metrics_port"),
                        format!("{mp} is the same as port or group_port"),
                    ),
                    Some(mp) => {
                        if let Some(prev) =
                            endpoints.insert((&s.host, mp), format!("{p}.metrics_port"))
                        {
                            err(
                                format!("{p}.metrics_port"),
                                format!("{mp} is used twice (also {prev})"),
                            );
                        }
                    }
                    None => {}
                }
                match &s.data {
                    Some(d) if d.trim().is_empty() => {
                        err(format!("{p}.data"), "must not be empty".into());
                    }
                    Some(d) => {
                        if let Some(prev) = data_dirs.insert(d, format!("{p}.data")) {
                            err(
                                format!("{p}.data"),
                                format!("'{d}' is used twice (also {prev})"),
                            );
                        }
                    }
                    None if self.storage.restartable => {
                        err(
                            format!("{p}.data"),
                            "is required because storage.restartable is true".into(),
                        );
                    }
                    None if self.storage.offheap_file && s.offheap(&self.storage) > 0 => {
                        err(
                            format!("{p}.data"),
                            "is required because storage.offheap_file is true".into(),
                        );
                    }
                    None => {}
                }
            }
        }
        for (vi, v) in c.voters.iter().enumerate() {
            let p = format!("cluster.voters[{vi}]");
            if v.name.trim().is_empty() {
                err(format!("{p}.name"), "must not be empty".into());
            } else if let Some(prev) = names.insert(&v.name, p.clone()) {
                err(
                    format!("{p}.name"),
                    format!("'{}' is used twice (also {prev})", v.name),
                );
            }
            if v.group_port == 0 {
                err(
                    format!("{p}.group_port"),
                    "must be between 1 and 65535".into(),
                );
            } else if let Some(prev) =
                endpoints.insert((&v.host, v.group_port), format!("{p}.group_port"))
            {
                err(
                    format!("{p}.group_port"),
                    format!("{} is used twice (also {prev})", v.group_port),
                );
            }
        }

        let mut cache_names: HashMap<&str, String> = HashMap::new();
        for (i, cache) in self.caches.iter().enumerate() {
            let p = format!("caches[{i}]");
            if cache.name.is_empty() {
                err(format!("{p}.name"), "must not be empty".into());
            } else if cache.name.contains(char::is_whitespace) {
                err(
                    format!("{p}.name"),
                    format!("'{}' must not contain white space", cache.name),
                );
            } else if let Some(prev) = cache_names.insert(&cache.name, p.clone()) {
                err(
                    format!("{p}.name"),
                    format!("'{}' is used twice (also {prev})", cache.name),
                );
            }
            if cache.ttl.is_some_and(|d| d.is_zero()) {
                err(
                    format!("{p}.ttl"),
                    "must be greater than 0 (leave it out for no TTL)".into(),
                );
            }
            if cache.tti.is_some_and(|d| d.is_zero()) {
                err(
                    format!("{p}.tti"),
                    "must be greater than 0 (leave it out for no TTI)".into(),
                );
            }
            if cache.max_entries == Some(0) {
                err(format!("{p}.max_entries"), "must be greater than 0".into());
            }
            if cache.max_memory.is_some_and(|s| s.0 == 0) {
                err(format!("{p}.max_memory"), "must be greater than 0".into());
            }
        }
        self.validate_tiers(&mut err);

        let l = &self.limits;
        if l.maxclients == 0 {
            err("limits.maxclients".into(), "must be at least 1".into());
        }
        if l.proto_max_bulk_len.0 < (1 << 20) {
            err(
                "limits.proto_max_bulk_len".into(),
                "must be at least 1m".into(),
            );
        }
        if l.client_query_buffer_limit.0 < (1 << 20) {
            err(
                "limits.client_query_buffer_limit".into(),
                "must be at least 1m".into(),
            );
        }
        if l.max_multibulk_len == 0 {
            err(
                "limits.max_multibulk_len".into(),
                "must be at least 1".into(),
            );
        }
        if !crate::server::settings::MAXMEMORY_POLICIES.contains(&l.maxmemory_policy.as_str()) {
            err(
                "limits.maxmemory_policy".into(),
                format!(
                    "'{}' is not one of {}",
                    l.maxmemory_policy,
                    crate::server::settings::MAXMEMORY_POLICIES.join(", ")
                ),
            );
        }
        if self.logging.level.trim().is_empty() {
            err("logging.level".into(), "must not be empty".into());
        }
        self.tls.validate(&mut err);

        if !errs.is_empty() {
            return Err(ConfigError::Invalid {
                file: file.to_string(),
                errors: errs,
            });
        }
        if !self.caches.iter().any(|c| c.name == "default") {
            self.caches.push(CacheConfig::default_cache());
        }
        Ok(self)
    }

    /// Finds the server `name`, or the only server when `name` is `None`.
    pub fn placement(&self, name: Option<&str>, file: &str) -> Result<Placement, ConfigError> {
        let all: Vec<(usize, usize, &ServerConfig)> = self
            .cluster
            .stripes
            .iter()
            .enumerate()
            .flat_map(|(si, st)| {
                st.servers
                    .iter()
                    .enumerate()
                    .map(move |(vi, s)| (si, vi, s))
            })
            .collect();
        let known = || {
            all.iter()
                .map(|(_, _, s)| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name {
            Some(n) => all
                .iter()
                .find(|(_, _, s)| s.name == n)
                .map(|&(stripe, server, _)| Placement { stripe, server })
                .ok_or_else(|| ConfigError::UnknownServer {
                    file: file.to_string(),
                    name: n.to_string(),
                    known: known(),
                }),
            None if all.len() == 1 => Ok(Placement {
                stripe: 0,
                server: 0,
            }),
            None => Err(ConfigError::NameRequired {
                file: file.to_string(),
                known: known(),
            }),
        }
    }

    /// The server at `p`.
    pub fn server(&self, p: &Placement) -> Option<&ServerConfig> {
        self.cluster.stripes.get(p.stripe)?.servers.get(p.server)
    }

    /// The off-heap size of the server at `p` (its own or `storage.offheap`).
    pub fn offheap(&self, p: &Placement) -> u64 {
        self.server(p)
            .map_or(self.storage.offheap.0, |s| s.offheap(&self.storage))
    }

    /// Why the server at `p` may not start with its off-heap size: Terracotta refuses a
    /// server with less off-heap than another server of its stripe, which it could not
    /// mirror (or be mirrored by) without running out of room.
    pub fn offheap_shortfall(&self, p: &Placement) -> Option<String> {
        let stripe = self.cluster.stripes.get(p.stripe)?;
        let me = self.server(p)?;
        let mine = me.offheap(&self.storage);
        let bigger = stripe
            .servers
            .iter()
            .filter(|o| o.name != me.name)
            .max_by_key(|o| o.offheap(&self.storage))
            .filter(|o| o.offheap(&self.storage) > mine)?;
        Some(format!(
            "server '{}' has offheap {} but '{}' in stripe '{}' has {}: a mirror needs at least \
             the off-heap of its stripe's other servers",
            me.name,
            Size(mine),
            bigger.name,
            stripe.name,
            Size(bigger.offheap(&self.storage)),
        ))
    }

    /// Number of caches, counting `default` whether listed or not.
    pub fn cache_count(&self) -> usize {
        self.caches.len() + usize::from(!self.caches.iter().any(|c| c.name == "default"))
    }

    /// The off-heap segment size for a tier of `offheap` bytes with these caches.
    pub fn segment_size(&self, offheap: u64) -> usize {
        crate::store::offheap::segment_size_for(offheap, crate::store::SHARDS * self.cache_count())
    }

    /// Tier sizes: per-cache pools fit in the server's, and are large enough to give every
    /// shard a segment.
    fn validate_tiers(&self, err: &mut impl FnMut(String, String)) {
        let st = &self.storage;
        let offheap = self
            .cluster
            .stripes
            .iter()
            .flat_map(|s| &s.servers)
            .map(|s| s.offheap(st))
            .min()
            .unwrap_or(st.offheap.0);
        let min = crate::store::offheap::min_size(self.cache_count());
        if offheap > 0 && offheap < min {
            err(
                "storage.offheap".into(),
                format!("must be 0 (no off-heap tier) or at least {}", Size(min)),
            );
        }
        let segment = self.segment_size(offheap) as u64;
        let (mut heap_sum, mut off_sum) = (0u64, 0u64);
        for (i, c) in self.caches.iter().enumerate() {
            let p = format!("caches[{i}]");
            if let Some(h) = c.heap {
                heap_sum += h.0;
                if offheap == 0 {
                    err(
                        format!("{p}.heap"),
                        "needs an off-heap tier (storage.offheap) to move entries to".into(),
                    );
                }
            }
            if let Some(o) = c.offheap {
                off_sum += o.0;
                let need = crate::store::SHARDS as u64 * segment;
                if offheap == 0 {
                    err(
                        format!("{p}.offheap"),
                        "needs storage.offheap to carve it from".into(),
                    );
                } else if o.0 < need {
                    err(
                        format!("{p}.offheap"),
                        format!(
                            "must be at least {} (a {} segment for each of {} shards)",
                            Size(need),
                            Size(segment),
                            crate::store::SHARDS
                        ),
                    );
                }
            }
        }
        if heap_sum > st.heap.0 {
            err(
                "caches".into(),
                format!(
                    "the caches' heap pools add up to {}, more than storage.heap {}",
                    Size(heap_sum),
                    st.heap
                ),
            );
        }
        if offheap > 0 && off_sum > offheap {
            err(
                "caches".into(),
                format!(
                    "the caches' offheap pools add up to {}, more than the server's off-heap {}",
                    Size(off_sum),
                    Size(offheap)
                ),
            );
        }
    }

    /// A few lines describing the cluster, printed by `terrace check`.
    pub fn summary(&self) -> String {
        let c = &self.cluster;
        let servers: usize = c.stripes.iter().map(|s| s.servers.len()).sum();
        let mut out = format!(
            "{} stripe(s), {} server(s), {} voter(s); failover_priority: {:?}, election_time: {}\n",
            c.stripes.len(),
            servers,
            c.voters.len(),
            c.priority(),
            c.election_time
        )
        .to_lowercase();
        for st in &c.stripes {
            let list: Vec<String> = st
                .servers
                .iter()
                .map(|s| {
                    format!(
                        "{} {}:{} (group {})",
                        s.name,
                        s.host,
                        s.port,
                        s.group_port()
                    )
                })
                .collect();
            out.push_str(&format!("  stripe {}: {}\n", st.name, list.join(", ")));
        }
        out.push_str(&format!(
            "storage: heap {}, offheap {}, restartable {}, fsync {:?}\n",
            self.storage.heap, self.storage.offheap, self.storage.restartable, self.storage.fsync
        ));
        let caches: Vec<&str> = self.caches.iter().map(|c| c.name.as_str()).collect();
        out.push_str(&format!("caches: {}\n", caches.join(", ")));
        out
    }

    /// The effective config (defaults filled in) as YAML.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_else(|e| format!("# cannot print config: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(yaml: &str) -> Vec<FieldError> {
        match Config::from_yaml(yaml, "t.yaml") {
            Err(ConfigError::Invalid { errors, .. }) => errors,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn embedded_dev_config_is_valid() {
        let c = Config::from_yaml(DEV_YAML, "dev.yaml").expect("dev.yaml must be valid");
        let p = c.placement(None, "dev.yaml").expect("one server");
        let s = c.server(&p).expect("server");
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 6379));
        assert!(c.caches.iter().any(|c| c.name == "default"));
    }

    #[test]
    fn reference_config_is_valid() {
        let text = include_str!("../../conf/reference.yaml");
        let c = Config::from_yaml(text, "reference.yaml").expect("reference.yaml must be valid");
        assert!(c.cluster.stripes.len() >= 2);
        assert!(!c.cluster.voters.is_empty());
        assert_eq!(
            c.limits.client_output_buffer_limit,
            OutputBufferLimits::default(),
            "reference.yaml shows the defaults"
        );
    }

    #[test]
    fn output_buffer_limits_by_class() {
        let base = "cluster:\n  stripes:\n    - name: a\n      servers:\n        - { name: s1, port: 7001 }\n";
        let c = Config::from_yaml(
            &format!("{base}limits:\n  client_output_buffer_limit:\n    normal: {{ hard: 1m, soft: 512k, soft_seconds: 5 }}\n"),
            "t",
        )
        .expect("valid");
        let l = &c.limits.client_output_buffer_limit;
        assert_eq!(
            (l.normal.hard.0, l.normal.soft.0, l.normal.soft_seconds),
            (1 << 20, 512 << 10, 5)
        );
        assert_eq!(
            l.pubsub,
            OutputBufferLimits::default().pubsub,
            "others keep Redis's defaults"
        );
        for bad in [
            "limits:\n  client_output_buffer_limit:\n    master: { hard: 1m }\n",
            "limits:\n  client_output_buffer_limit:\n    normal: { hard: lots }\n",
        ] {
            assert!(
                Config::from_yaml(&format!("{base}{bad}"), "t").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn notify_keyspace_events_letters_are_checked() {
        let errs = invalid(
            "cluster:\n  stripes:\n    - name: a\n      servers:\n        - { name: s1, port: 7001 }\npubsub:\n  notify_keyspace_events: KEq\n",
        );
        assert!(
            errs.iter()
                .any(|e| e.path == "pubsub.notify_keyspace_events"
                    && e.message.contains("Invalid event class character")),
            "{errs:?}"
        );
    }

    #[test]
    fn duplicate_port_names_both_fields() {
        let errs = invalid(
            "cluster:\n  stripes:\n    - name: a\n      servers:\n        - { name: s1, port: 7001 }\n        - { name: s2, port: 7001 }\n",
        );
        assert!(
            errs.iter()
                .any(|e| e.path == "cluster.stripes[0].servers[1].port"
                    && e.message.contains("7001 is used twice")
                    && e.message.contains("cluster.stripes[0].servers[0].port"))
        );
    }

    #[test]
    fn every_error_is_reported() {
        let errs = invalid(
            "cluster:\n  election_time: 0s\n  stripes:\n    - name: a\n      servers:\n        - { name: s1, port: 0 }\n        - { name: s1, port: 7002, group_port: 7002 }\ncaches:\n  - { name: ev, max_entries: 0, ttl: 0s }\n  - { name: ev }\nlimits:\n  maxclients: 0\n",
        );
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        for p in [
            "cluster.election_time",
            "cluster.stripes[0].servers[0].port",
            "cluster.stripes[0].servers[1].name",
            "cluster.stripes[0].servers[1].group_port",
            "caches[0].max_entries",
            "caches[0].ttl",
            "caches[1].name",
            "limits.maxclients",
        ] {
            assert!(paths.contains(&p), "missing {p} in {paths:?}");
        }
    }

    #[test]
    fn unknown_field_is_an_error_naming_the_path() {
        let e = Config::from_yaml(
            "cluster:\n  stripes:\n    - name: a\n      servers:\n        - { name: s1, prot: 1 }\n",
            "t.yaml",
        );
        match e {
            Err(ConfigError::Parse { message, .. }) => {
                assert!(message.contains("prot"), "{message}");
                assert!(
                    message.contains("cluster.stripes[0].servers[0]"),
                    "{message}"
                );
            }
            other => panic!("expected Parse, got {other:?}"),
        }
    }

    #[test]
    fn restartable_requires_data_dirs() {
        let errs = invalid(
            "storage: { restartable: true }\ncluster:\n  stripes:\n    - name: a\n      servers: [{ name: s1 }]\n",
        );
        assert_eq!(errs[0].path, "cluster.stripes[0].servers[0].data");
    }

    #[test]
    fn units_in_yaml() {
        let c = Config::from_yaml(
            "storage: { heap: 64m, offheap: 4g }\ncaches:\n  - { name: events, ttl: 6h, tti: 500ms, max_memory: 1g }\n",
            "t.yaml",
        )
        .expect("valid");
        assert_eq!(c.storage.heap, Size(64 << 20));
        assert_eq!(c.storage.offheap, Size(4 << 30));
        assert_eq!(c.caches[0].ttl.map(|d| d.as_millis()), Some(6 * 3_600_000));
        assert_eq!(c.caches[0].tti.map(|d| d.as_millis()), Some(500));
        let bad = Config::from_yaml("storage: { heap: 64q }\n", "t.yaml");
        assert!(
            matches!(bad, Err(ConfigError::Parse { message, .. }) if message.contains("storage.heap"))
        );
    }

    #[test]
    fn placement_needs_a_name_with_several_servers() {
        let c = Config::from_yaml(
            "cluster:\n  stripes:\n    - name: a\n      servers: [{ name: s1, port: 7001 }, { name: s2, port: 7002 }]\n",
            "t.yaml",
        )
        .expect("valid");
        assert!(matches!(
            c.placement(None, "t"),
            Err(ConfigError::NameRequired { .. })
        ));
        assert!(matches!(
            c.placement(Some("zz"), "t"),
            Err(ConfigError::UnknownServer { .. })
        ));
        assert_eq!(
            c.placement(Some("s2"), "t").ok(),
            Some(Placement {
                stripe: 0,
                server: 1
            })
        );
    }

    #[test]
    fn acl_users_need_hashed_passwords_and_valid_rules() {
        let base = "cluster:\n  stripes:\n    - name: a\n      servers:\n        - { name: s1, port: 7001 }\nsecurity:\n  users:\n";
        let errs = invalid(&format!(
            "{base}    - {{ name: eve, rules: \"on >clear ~*\" }}\n"
        ));
        assert!(
            errs.iter()
                .any(|e| e.path == "security.users[0].rules" && e.message.contains("SHA-256")),
            "{errs:?}"
        );
        let errs = invalid(&format!(
            "{base}    - {{ name: eve, rules: \"on +nosuch\" }}\n"
        ));
        assert!(
            errs.iter().any(|e| e.path == "security.users"
                && e.message
                    .contains("Unknown command or category name in ACL")),
            "{errs:?}"
        );
        let errs = invalid(&format!(
            "{base}    - {{ name: app, rules: \"on\" }}\n  peer_user: peer\n"
        ));
        assert!(
            errs.iter().any(|e| e.path == "security.peer_password"),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.path == "security.peer_user"),
            "{errs:?}"
        );
        let ok = format!(
            "{base}    - {{ name: app, rules: \"on #{} ~events:* +@read\" }}\n",
            "a".repeat(64)
        );
        let c = Config::from_yaml(&ok, "t").expect("valid");
        assert!(c.security.protected_mode);
        assert_eq!(c.security.users.len(), 1);
    }

    #[test]
    fn printed_config_reloads_to_the_same() {
        let c = Config::from_yaml(include_str!("../../conf/reference.yaml"), "r").expect("valid");
        let again = Config::from_yaml(&c.to_yaml(), "printed").expect("printed config valid");
        assert_eq!(c, again);
    }
}
