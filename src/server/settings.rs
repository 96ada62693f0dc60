//! Settings that CONFIG GET/SET read and change at runtime, seeded from the config file.
//! Each is an atomic (or a lock for strings) so connections read them without contention.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::config::{Config, Size};
use crate::protocol::FrameLimits;

/// Redis's eight `maxmemory-policy` values.
pub const MAXMEMORY_POLICIES: [&str; 8] = [
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
];

/// Runtime settings.
#[derive(Debug)]
pub struct Settings {
    /// `maxclients` (config `limits.maxclients`).
    pub maxclients: AtomicU64,
    /// `timeout` in seconds; 0 = never (config `limits.timeout`).
    pub timeout_secs: AtomicU64,
    /// `proto-max-bulk-len` (config `limits.proto_max_bulk_len`).
    pub proto_max_bulk_len: AtomicU64,
    /// `client-query-buffer-limit` (config `limits.client_query_buffer_limit`).
    pub client_query_buffer_limit: AtomicU64,
    /// Most elements per request (config `limits.max_multibulk_len`).
    pub max_multibulk_len: AtomicU64,
    /// `requirepass` as last set (config `security.requirepass`, CONFIG SET), for CONFIG
    /// GET; the password itself lives in the ACL default user, which checks AUTH.
    pub requirepass: RwLock<Option<String>>,
    /// `protected-mode` (config `security.protected_mode`); read when a connection starts.
    pub protected_mode: std::sync::atomic::AtomicBool,
    /// `slowlog-log-slower-than` in µs; negative disables (config `slowlog.log_slower_than`).
    pub slowlog_slower_than_us: AtomicI64,
    /// `slowlog-max-len` (config `slowlog.max_len`).
    pub slowlog_max_len: AtomicU64,
    /// `maxmemory` in bytes; 0 = unlimited.
    pub maxmemory: AtomicU64,
    /// `maxmemory-policy`, an index into [`MAXMEMORY_POLICIES`].
    pub maxmemory_policy: AtomicU64,
    /// `tracking-table-max-keys` (config `limits.tracking_table_max_keys`); shared with
    /// the store, which enforces it as it tracks keys.
    pub tracking_table_max_keys: Arc<AtomicU64>,
    /// `appendonly`: yes when the server is restartable (config `storage.restartable`).
    pub appendonly: bool,
    /// `appendfsync` (config `storage.fsync`); shared with the log writer.
    pub appendfsync: Arc<crate::persist::PolicyCell>,
    /// `auto-aof-rewrite-percentage` (config `storage.rewrite_percentage`).
    pub rewrite_percentage: AtomicU64,
    /// `auto-aof-rewrite-min-size` in bytes (config `storage.rewrite_min_size`).
    pub rewrite_min_size: AtomicU64,
    /// `notify-keyspace-events` (config `pubsub.notify_keyspace_events`).
    pub notify_keyspace_events: super::notify::Setting,
    /// `client-output-buffer-limit` (config `limits.client_output_buffer_limit`); shared
    /// with every client and with the shipper (the replica class).
    pub output: Arc<super::output::Limits>,
}

/// Why a CONFIG SET was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SetError {
    /// No such parameter.
    Unknown,
    /// The parameter cannot change at runtime.
    Immutable,
    /// The value is not acceptable; the text says why.
    Invalid(String),
}

impl Settings {
    /// Settings from a validated config.
    pub fn from_config(c: &Config) -> Settings {
        Settings {
            maxclients: AtomicU64::new(c.limits.maxclients),
            timeout_secs: AtomicU64::new(c.limits.timeout.0.as_secs()),
            proto_max_bulk_len: AtomicU64::new(c.limits.proto_max_bulk_len.0),
            client_query_buffer_limit: AtomicU64::new(c.limits.client_query_buffer_limit.0),
            max_multibulk_len: AtomicU64::new(c.limits.max_multibulk_len),
            requirepass: RwLock::new(c.security.requirepass.clone().filter(|p| !p.is_empty())),
            protected_mode: std::sync::atomic::AtomicBool::new(c.security.protected_mode),
            slowlog_slower_than_us: AtomicI64::new(
                i64::try_from(c.slowlog.log_slower_than.0.as_micros()).unwrap_or(i64::MAX),
            ),
            slowlog_max_len: AtomicU64::new(c.slowlog.max_len),
            maxmemory: AtomicU64::new(c.limits.maxmemory.0),
            maxmemory_policy: AtomicU64::new(
                MAXMEMORY_POLICIES
                    .iter()
                    .position(|p| *p == c.limits.maxmemory_policy)
                    .unwrap_or(0) as u64,
            ),
            tracking_table_max_keys: Arc::new(AtomicU64::new(c.limits.tracking_table_max_keys)),
            appendonly: c.storage.restartable,
            appendfsync: Arc::new(crate::persist::PolicyCell::new(c.storage.fsync)),
            rewrite_percentage: AtomicU64::new(c.storage.rewrite_percentage),
            rewrite_min_size: AtomicU64::new(c.storage.rewrite_min_size.0),
            notify_keyspace_events: super::notify::Setting::new(
                super::notify::Events::parse(&c.pubsub.notify_keyspace_events).unwrap_or_default(),
            ),
            output: Arc::new(super::output::Limits::from_config(
                &c.limits.client_output_buffer_limit,
            )),
        }
    }

    /// Framing limits for the codec.
    pub fn frame_limits(&self) -> FrameLimits {
        FrameLimits {
            max_bulk: usize::try_from(self.proto_max_bulk_len.load(Ordering::Relaxed))
                .unwrap_or(usize::MAX),
            max_multibulk: usize::try_from(self.max_multibulk_len.load(Ordering::Relaxed))
                .unwrap_or(usize::MAX),
            unauthenticated: false,
        }
    }

    /// The maxmemory policy name.
    pub fn policy(&self) -> &'static str {
        MAXMEMORY_POLICIES
            .get(self.maxmemory_policy.load(Ordering::Relaxed) as usize)
            .copied()
            .unwrap_or("noeviction")
    }

    /// The parameters CONFIG knows, in CONFIG GET order, with their current values.
    /// `port` and `bind` come from the server's identity, so the caller passes them.
    pub fn all(&self, port: u16, bind: &str) -> Vec<(&'static str, String)> {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        vec![
            ("maxclients", g(&self.maxclients)),
            ("timeout", g(&self.timeout_secs)),
            ("proto-max-bulk-len", g(&self.proto_max_bulk_len)),
            (
                "client-query-buffer-limit",
                g(&self.client_query_buffer_limit),
            ),
            (
                "requirepass",
                self.requirepass.read().clone().unwrap_or_default(),
            ),
            (
                "protected-mode",
                if self.protected_mode.load(Ordering::Relaxed) {
                    "yes"
                } else {
                    "no"
                }
                .to_string(),
            ),
            (
                "slowlog-log-slower-than",
                self.slowlog_slower_than_us
                    .load(Ordering::Relaxed)
                    .to_string(),
            ),
            ("slowlog-max-len", g(&self.slowlog_max_len)),
            ("maxmemory", g(&self.maxmemory)),
            ("maxmemory-policy", self.policy().to_string()),
            ("tracking-table-max-keys", g(&self.tracking_table_max_keys)),
            ("client-output-buffer-limit", self.output.format()),
            ("port", port.to_string()),
            ("bind", bind.to_string()),
            ("databases", "1".to_string()),
            ("save", String::new()),
            (
                "appendonly",
                if self.appendonly { "yes" } else { "no" }.to_string(),
            ),
            (
                "appendfsync",
                crate::persist::policy_name(self.appendfsync.get()).to_string(),
            ),
            ("auto-aof-rewrite-percentage", g(&self.rewrite_percentage)),
            ("auto-aof-rewrite-min-size", g(&self.rewrite_min_size)),
            ("cluster-enabled", "yes".to_string()),
            (
                "notify-keyspace-events",
                self.notify_keyspace_events.get().to_letters(),
            ),
        ]
    }

    /// CONFIG SET of one parameter.
    pub fn set(&self, name: &str, value: &str) -> Result<(), SetError> {
        let int = || {
            value.parse::<i64>().map_err(|_| {
                SetError::Invalid("argument couldn't be parsed into an integer".into())
            })
        };
        let size = || {
            Size::parse(value)
                .map(|s| s.0)
                .map_err(|_| SetError::Invalid("argument must be a memory value".into()))
        };
        let non_neg = |v: i64| {
            u64::try_from(v).map_err(|_| {
                SetError::Invalid(
                    "argument must be between 0 and 9223372036854775807 inclusive".into(),
                )
            })
        };
        match name {
            "maxclients" => {
                let v = non_neg(int()?)?;
                if v == 0 {
                    return Err(SetError::Invalid(
                        "argument must be between 1 and 4294967295 inclusive".into(),
                    ));
                }
                self.maxclients.store(v, Ordering::Relaxed);
            }
            "timeout" => self.timeout_secs.store(non_neg(int()?)?, Ordering::Relaxed),
            "proto-max-bulk-len" => {
                let v = size()?;
                if v < 1 << 20 {
                    return Err(SetError::Invalid(
                        "argument must be between 1048576 and 9223372036854775807 inclusive".into(),
                    ));
                }
                self.proto_max_bulk_len.store(v, Ordering::Relaxed);
            }
            "client-query-buffer-limit" => {
                let v = size()?;
                if v < 1 << 20 {
                    return Err(SetError::Invalid(
                        "argument must be between 1048576 and 9223372036854775807 inclusive".into(),
                    ));
                }
                self.client_query_buffer_limit.store(v, Ordering::Relaxed);
            }
            "requirepass" => {
                *self.requirepass.write() = Some(value.to_string()).filter(|p| !p.is_empty())
            }
            "protected-mode" => {
                let on = match value.to_ascii_lowercase().as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => {
                        return Err(SetError::Invalid("argument must be 'yes' or 'no'".into()));
                    }
                };
                self.protected_mode.store(on, Ordering::Relaxed);
            }
            "slowlog-log-slower-than" => {
                self.slowlog_slower_than_us.store(int()?, Ordering::Relaxed)
            }
            "slowlog-max-len" => self
                .slowlog_max_len
                .store(non_neg(int()?)?, Ordering::Relaxed),
            "maxmemory" => self.maxmemory.store(size()?, Ordering::Relaxed),
            "maxmemory-policy" => {
                let idx = MAXMEMORY_POLICIES
                    .iter()
                    .position(|p| p.eq_ignore_ascii_case(value))
                    .ok_or_else(|| SetError::Invalid("argument(s) must be one of the following: noeviction, allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random, volatile-ttl".into()))?;
                self.maxmemory_policy.store(idx as u64, Ordering::Relaxed);
            }
            "tracking-table-max-keys" => self
                .tracking_table_max_keys
                .store(non_neg(int()?)?, Ordering::Relaxed),
            "client-output-buffer-limit" => self
                .output
                .set(value)
                .map_err(|e| SetError::Invalid(e.into()))?,
            "appendfsync" => {
                let p = match value.to_ascii_lowercase().as_str() {
                    "always" => crate::config::FsyncPolicy::Always,
                    "everysec" => crate::config::FsyncPolicy::Everysec,
                    "no" => crate::config::FsyncPolicy::No,
                    _ => {
                        return Err(SetError::Invalid(
                            "argument(s) must be one of the following: always, everysec, no".into(),
                        ));
                    }
                };
                self.appendfsync.set(p);
            }
            "auto-aof-rewrite-percentage" => self
                .rewrite_percentage
                .store(non_neg(int()?)?, Ordering::Relaxed),
            "auto-aof-rewrite-min-size" => self.rewrite_min_size.store(size()?, Ordering::Relaxed),
            "notify-keyspace-events" => self.notify_keyspace_events.set(
                super::notify::Events::parse(value)
                    .ok_or_else(|| SetError::Invalid(super::notify::INVALID.into()))?,
            ),
            "port" | "bind" | "databases" | "save" | "appendonly" | "cluster-enabled" => {
                return Err(SetError::Immutable);
            }
            _ => return Err(SetError::Unknown),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_validates() {
        let s = Settings::from_config(&Config::dev());
        assert_eq!(s.set("maxclients", "5"), Ok(()));
        assert_eq!(s.maxclients.load(Ordering::Relaxed), 5);
        assert!(matches!(
            s.set("maxclients", "x"),
            Err(SetError::Invalid(_))
        ));
        assert!(matches!(
            s.set("maxclients", "0"),
            Err(SetError::Invalid(_))
        ));
        assert_eq!(s.set("proto-max-bulk-len", "2mb"), Ok(()));
        assert_eq!(s.proto_max_bulk_len.load(Ordering::Relaxed), 2 << 20);
        assert_eq!(s.set("maxmemory-policy", "ALLKEYS-LRU"), Ok(()));
        assert_eq!(s.policy(), "allkeys-lru");
        assert_eq!(s.set("port", "1"), Err(SetError::Immutable));
        assert_eq!(s.set("appendfsync", "ALWAYS"), Ok(()));
        assert_eq!(s.appendfsync.get(), crate::config::FsyncPolicy::Always);
        assert!(matches!(
            s.set("appendfsync", "sometimes"),
            Err(SetError::Invalid(_))
        ));
        assert_eq!(s.set("auto-aof-rewrite-min-size", "1mb"), Ok(()));
        assert_eq!(s.rewrite_min_size.load(Ordering::Relaxed), 1 << 20);
        assert_eq!(s.set("nope", "1"), Err(SetError::Unknown));
        assert_eq!(
            s.set("client-output-buffer-limit", "pubsub 1mb 0 0"),
            Ok(())
        );
        assert_eq!(
            s.output.get(super::super::output::Class::Pubsub).hard,
            1 << 20
        );
        assert_eq!(s.set("requirepass", "pw"), Ok(()));
        assert_eq!(s.requirepass.read().as_deref(), Some("pw"));
        assert_eq!(s.set("requirepass", ""), Ok(()));
        assert_eq!(*s.requirepass.read(), None);
        assert_eq!(s.set("notify-keyspace-events", "KEA"), Ok(()));
        assert_eq!(s.notify_keyspace_events.get().to_letters(), "AKE");
        assert_eq!(
            s.set("notify-keyspace-events", "Kq"),
            Err(SetError::Invalid(
                "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()
            ))
        );
        assert_eq!(s.notify_keyspace_events.get().to_letters(), "AKE");
    }
}
