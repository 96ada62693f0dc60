//! The `limits:`, `security:`, `slowlog:` and `logging:` sections: per-connection limits
//! and server knobs, named after their redis.conf counterparts.

use serde::{Deserialize, Serialize};

use super::units::{Dur, Size};

/// `limits:` — what one client may send and how many may connect.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Maximum simultaneous client connections (`maxclients`). Default: 10000.
    pub maxclients: u64,
    /// Close a client idle for this long; 0 disables (`timeout`). Default: `0`.
    pub timeout: Dur,
    /// Largest bulk string a client may send (`proto-max-bulk-len`). Default: `512m`.
    pub proto_max_bulk_len: Size,
    /// Largest unparsed query buffer per client (`client-query-buffer-limit`). Default: `1g`.
    pub client_query_buffer_limit: Size,
    /// Most elements in one request array. Default: 1048576 (Redis's limit).
    pub max_multibulk_len: u64,
    /// Server-wide memory limit over all caches (`maxmemory`); 0 = none. Default: `0`.
    pub maxmemory: Size,
    /// What to evict over `maxmemory` (`maxmemory-policy`): Redis's eight policies,
    /// `noeviction` refusing writes with -OOM. Default: `noeviction`.
    pub maxmemory_policy: String,
    /// Most keys the CLIENT TRACKING table remembers (`tracking-table-max-keys`); beyond
    /// it, random keys are dropped from the table and invalidated in the clients that
    /// held them. 0 = unlimited. Default: 1000000.
    pub tracking_table_max_keys: u64,
    /// Output buffer limits per client class (`client-output-buffer-limit`): a client
    /// whose unwritten output passes `hard`, or stays above `soft` for `soft_seconds`, is
    /// disconnected. Defaults: Redis's (normal none, pubsub 32m 8m 60, replica 256m 64m 60).
    pub client_output_buffer_limit: OutputBufferLimits,
}

/// `limits.client_output_buffer_limit:` — one limit per client class.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputBufferLimits {
    /// Ordinary clients. Default: `0 0 0` (no limit).
    pub normal: OutputLimit,
    /// Clients subscribed to a channel, pattern or shard channel. Default: `32m 8m 60`.
    pub pubsub: OutputLimit,
    /// Mirrors: bytes of the replication backlog a mirror has not yet been sent.
    /// Default: `256m 64m 60`.
    pub replica: OutputLimit,
}

impl Default for OutputBufferLimits {
    fn default() -> Self {
        OutputBufferLimits {
            normal: OutputLimit::default(),
            pubsub: OutputLimit {
                hard: Size(32 << 20),
                soft: Size(8 << 20),
                soft_seconds: 60,
            },
            replica: OutputLimit {
                hard: Size(256 << 20),
                soft: Size(64 << 20),
                soft_seconds: 60,
            },
        }
    }
}

/// One class's limit, Redis's `<hard> <soft> <soft seconds>`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputLimit {
    /// Disconnect as soon as pending output exceeds this; 0 = no hard limit. Default: `0`.
    pub hard: Size,
    /// Disconnect when pending output stays above this for `soft_seconds`; 0 = no soft
    /// limit. Default: `0`.
    pub soft: Size,
    /// Seconds pending output may stay above `soft`. Default: 0.
    pub soft_seconds: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            maxclients: 10_000,
            timeout: Dur::default(),
            proto_max_bulk_len: Size(512 << 20),
            client_query_buffer_limit: Size(1 << 30),
            max_multibulk_len: 1 << 20,
            maxmemory: Size(0),
            maxmemory_policy: "noeviction".to_string(),
            tracking_table_max_keys: 1_000_000,
            client_output_buffer_limit: OutputBufferLimits::default(),
        }
    }
}

/// `security:` — authentication, ACL users and protected mode.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Password of the `default` user (`requirepass`); none means no AUTH needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirepass: Option<String>,
    /// Refuse connections from non-loopback addresses while the default user is enabled
    /// and has no password (`protected-mode`). Default: true.
    pub protected_mode: bool,
    /// ACL users, created at start in this order (Redis's ACL file). Passwords only as
    /// SHA-256 hashes (`#<64 hex>`); a `>plaintext` rule is a config error. Default: none
    /// (only `default`, with every permission).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserConfig>,
    /// The user this server (forwarding to other stripes, PUBSUB.RELAY) and the CLI
    /// (`terrace status`, `stop`, `failover`) authenticate as on servers' client ports
    /// (Redis's `masteruser`). It needs every command, key and channel. Default: none
    /// (the default user with `requirepass`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_user: Option<String>,
    /// `peer_user`'s password in clear (Redis's `masterauth`): the servers and the CLI
    /// send it. Default: none (`requirepass`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_password: Option<String>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            requirepass: None,
            protected_mode: true,
            users: Vec::new(),
            peer_user: None,
            peer_password: None,
        }
    }
}

impl SecurityConfig {
    /// What servers and the CLI send to authenticate on a client port: `(user, password)`,
    /// the user `None` for the default one. `None` when no password is configured.
    pub fn peer_credentials(&self) -> Option<Credentials> {
        match (&self.peer_user, &self.peer_password) {
            (Some(u), Some(p)) => Some(Credentials {
                user: Some(u.clone()),
                password: p.clone(),
            }),
            (None, Some(p)) => Some(Credentials {
                user: None,
                password: p.clone(),
            }),
            _ => self
                .requirepass
                .clone()
                .filter(|p| !p.is_empty())
                .map(|password| Credentials {
                    user: None,
                    password,
                }),
        }
    }
}

/// A user name (none: `default`) and password to send with AUTH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user; `None` sends `AUTH <password>`.
    pub user: Option<String>,
    /// The password.
    pub password: String,
}

impl Credentials {
    /// The AUTH command's arguments.
    pub fn auth_args(&self) -> Vec<&str> {
        let mut v = vec!["AUTH"];
        v.extend(self.user.as_deref());
        v.push(&self.password);
        v
    }
}

/// One entry of `security.users`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The user name.
    pub name: String,
    /// Redis ACL rules separated by spaces, e.g. `on #<sha256 hex> ~events:* +@read`.
    pub rules: String,
}

/// `slowlog:` — the slow command log.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlowlogConfig {
    /// Log commands slower than this (`slowlog-log-slower-than`). Default: `10ms`.
    pub log_slower_than: Dur,
    /// Entries kept (`slowlog-max-len`). Default: 128.
    pub max_len: u64,
}

impl Default for SlowlogConfig {
    fn default() -> Self {
        SlowlogConfig {
            log_slower_than: Dur(std::time::Duration::from_millis(10)),
            max_len: 128,
        }
    }
}

/// `pubsub:` — pub/sub and keyspace notifications.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PubSubConfig {
    /// Keyspace notifications at start (`notify-keyspace-events`, CONFIG SET changes it):
    /// Redis's flag letters `K E g $ l s h z x e n t m d A`. Default: empty (off).
    pub notify_keyspace_events: String,
}

/// `logging:` — tracing output.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// A tracing filter: `error`, `warn`, `info`, `debug`, `trace` or per-module directives
    /// (`terrace=debug`). Default: `info`. `--log-level` and `RUST_LOG` override it.
    pub level: String,
    /// `text` (for people) or `json` (one object per line, for log pipelines). Default:
    /// `text`. `--log-format` overrides it.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".to_string(),
            format: LogFormat::Text,
        }
    }
}
