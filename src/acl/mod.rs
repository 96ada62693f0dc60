//! Access control: users, their passwords and permissions (Redis 7's ACL), the check a
//! command passes before it runs, and protected mode.
//!
//! Owns the user registry ([`Acl`]) and the rule language ([`User::apply`]). Must not
//! touch connections: the dispatcher asks [`Acl::check`], AUTH asks
//! [`Acl::authenticate`], the listener asks [`protected_denies`].
//!
//! ```text
//!  config users: / requirepass ──▶ Acl { name → Arc<User>, epoch }
//!  ACL SETUSER / DELUSER ─────────▶   (copy, change, swap; epoch += 1)
//!  connection: Client.user (Arc) ── refreshed when the epoch moved ──▶ check per command
//! ```
//! The default user with every permission skips the check with one flag test.

pub mod category;
pub mod log;
pub mod user;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

pub use user::{KEY_READ, KEY_WRITE, RuleError, User};

use crate::command::{CmdError, CommandId, CommandSpec, Flags};

/// Redis's reply to a non-loopback connection in protected mode (the connection is then
/// closed).
pub const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// True for loopback peers: 127.0.0.0/8, ::1 and IPv4-mapped loopback.
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The users, by name. A user is an `Arc` snapshot: connections hold the one they
/// authenticated as and pick up a changed one when [`Acl::epoch`] moves.
#[derive(Debug)]
pub struct Acl {
    /// Every user; `default` always exists. A lock only writers (ACL SETUSER, DELUSER,
    /// CONFIG SET requirepass) hold for long; readers copy an `Arc`.
    users: RwLock<BTreeMap<String, Arc<User>>>,
    /// Bumped by every change, so a connection knows its `Arc<User>` may be stale.
    epoch: AtomicU64,
    /// ACL LOG.
    pub log: log::Log,
}

impl Default for Acl {
    fn default() -> Self {
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), Arc::new(User::default_user()));
        Acl {
            users: RwLock::new(users),
            epoch: AtomicU64::new(0),
            log: log::Log::default(),
        }
    }
}

impl Acl {
    /// The users of the `security:` section: `users:` (rules with hashed passwords only)
    /// and then `requirepass` for the default user. Errors name the user and the rule.
    pub fn from_config(sec: &crate::config::SecurityConfig) -> Result<Acl, String> {
        let acl = Acl::default();
        for u in &sec.users {
            let rules: Vec<&[u8]> = u.rules.split_whitespace().map(str::as_bytes).collect();
            acl.set_user(&u.name, &rules)
                .map_err(|e| format!("user '{}': {e}", u.name))?;
        }
        if let Some(p) = sec.requirepass.as_deref().filter(|p| !p.is_empty()) {
            acl.set_default_password(Some(p));
        }
        Ok(acl)
    }

    /// Changes since start: a connection compares it with the one its user came from.
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The user `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    /// The default user.
    pub fn default_user(&self) -> Arc<User> {
        self.get("default")
            .unwrap_or_else(|| Arc::new(User::default_user()))
    }

    /// Every user, ordered by name.
    pub fn all(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// Creates or changes a user by applying `rules` in order; nothing changes when one
    /// fails (the error is Redis's `ACL SETUSER` text).
    pub fn set_user(&self, name: &str, rules: &[&[u8]]) -> Result<(), CmdError> {
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(CmdError::err(
                "Usernames can't contain spaces or null characters",
            ));
        }
        let mut users = self.users.write();
        let mut u = users
            .get(name)
            .map_or_else(|| User::new(name), |u| (**u).clone());
        for r in rules {
            u.apply(r).map_err(|e| {
                CmdError::err(format!(
                    "Error in ACL SETUSER modifier '{}': {e}",
                    String::from_utf8_lossy(r)
                ))
            })?;
        }
        users.insert(name.to_string(), Arc::new(u));
        self.epoch.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Deletes users; returns how many existed. `default` cannot be deleted.
    pub fn del_users(&self, names: &[&str]) -> Result<usize, CmdError> {
        if names.contains(&"default") {
            return Err(CmdError::err("The 'default' user cannot be removed"));
        }
        let mut users = self.users.write();
        let n = names.iter().filter(|n| users.remove(**n).is_some()).count();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        Ok(n)
    }

    /// `requirepass`: the default user's only password, or `nopass` when `None`.
    pub fn set_default_password(&self, password: Option<&str>) {
        let rules: Vec<Vec<u8>> = match password {
            Some(p) => vec![b"resetpass".to_vec(), [b">", p.as_bytes()].concat()],
            None => vec![b"nopass".to_vec()],
        };
        let rules: Vec<&[u8]> = rules.iter().map(Vec::as_slice).collect();
        // These rules always apply to the default user.
        let _ = self.set_user("default", &rules);
    }

    /// The user that `name`/`password` authenticates as: it exists, is enabled and the
    /// password is one of its own (or it is `nopass`).
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Result<Arc<User>, CmdError> {
        let name = std::str::from_utf8(name).map_err(|_| CmdError::WrongPass)?;
        match self.get(name) {
            Some(u) if u.enabled && u.check_password(password) => Ok(u),
            _ => Err(CmdError::WrongPass),
        }
    }

    /// True when a new connection starts authenticated: the default user is on and
    /// `nopass`.
    pub fn default_is_open(&self) -> bool {
        self.default_user().open()
    }

    /// Protected mode: refuse a non-loopback peer while the default user is enabled and
    /// has no password.
    pub fn protected_denies(&self, protected_mode: bool, peer: IpAddr) -> bool {
        protected_mode && !is_local(peer) && self.default_is_open()
    }
}

/// What a user may not do: the NOPERM error for `args` run as `spec` (command `id` or its
/// subcommand), or `None` when allowed. Keys need the access the command's flags say;
/// PUBLISH and (S|P)SUBSCRIBE check their channels.
pub fn check(
    user: &User,
    id: CommandId,
    spec: &'static CommandSpec,
    args: &[&[u8]],
) -> Result<(), Denied> {
    if user.unrestricted() {
        return Ok(());
    }
    if !user.may_run(user::index_of(id, spec)) {
        return Err(Denied::Command);
    }
    if !user.allkeys
        && spec.keys.named()
        && !matches!(
            id,
            CommandId::SSubscribe | CommandId::SUnsubscribe | CommandId::SPublish
        )
    {
        for (nth, p) in spec.key_positions(args).enumerate() {
            if let Some(k) = args.get(p)
                && !user.may_access_key(k, key_access(id, spec, nth, args))
            {
                return Err(Denied::Key(p));
            }
        }
    }
    if !user.allkeys
        && let CommandId::CacheClear | CommandId::CacheInfo | CommandId::CacheSize = id
        && let Some(name) = args.get(1)
    {
        // A whole cache: the user needs its pattern (`~events:*`) itself; `default`
        // holds every key no other cache claims, so only `allkeys` covers it.
        let access = if id == CommandId::CacheClear {
            KEY_WRITE
        } else {
            KEY_READ
        };
        let whole = [*name, b":*"].concat();
        let covered = !name.eq_ignore_ascii_case(b"default")
            && user
                .keys
                .iter()
                .any(|k| k.access & access == access && (k.pattern == whole || k.pattern == b"*"));
        if !covered {
            return Err(Denied::Key(1));
        }
    }
    if !user.allchannels {
        let (from, pattern) = match id {
            CommandId::Publish | CommandId::SPublish => (1..2, false),
            CommandId::Subscribe | CommandId::SSubscribe => (1..args.len(), false),
            CommandId::PSubscribe => (1..args.len(), true),
            _ => (0..0, false),
        };
        for p in from {
            if let Some(c) = args.get(p)
                && !user.may_access_channel(c, pattern)
            {
                return Err(Denied::Channel(p));
            }
        }
    }
    Ok(())
}

/// Why [`check`] refused a command; `usize` is the argument's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The command itself.
    Command,
    /// A key argument.
    Key(usize),
    /// A channel argument.
    Channel(usize),
}

impl Denied {
    /// ACL LOG's `reason` and `object` for this refusal of `args` run as `spec`.
    pub fn log_fields(self, spec: &CommandSpec, args: &[&[u8]]) -> (&'static str, String) {
        let arg = |p: usize| {
            args.get(p)
                .map_or_else(String::new, |a| String::from_utf8_lossy(a).into_owned())
        };
        match self {
            Denied::Command => ("command", spec.name.to_string()),
            Denied::Key(p) => ("key", arg(p)),
            Denied::Channel(p) => ("channel", arg(p)),
        }
    }

    /// The error reply (Redis's words).
    pub fn to_error(self, user: &User, spec: &CommandSpec) -> CmdError {
        CmdError::Prefixed(format!("NOPERM {}", self.message(user, spec, None)).into())
    }

    /// The message without the prefix; ACL DRYRUN names the key or channel.
    pub fn message(self, user: &User, spec: &CommandSpec, arg: Option<&[u8]>) -> String {
        match (self, arg) {
            (Denied::Command, _) => format!(
                "User {} has no permissions to run the '{}' command",
                user.name, spec.name
            ),
            (Denied::Key(_), Some(k)) => format!(
                "No permissions to access the '{}' key",
                String::from_utf8_lossy(k)
            ),
            (Denied::Key(_), None) => "No permissions to access a key".into(),
            (Denied::Channel(_), Some(c)) => format!(
                "No permissions to access the '{}' channel",
                String::from_utf8_lossy(c)
            ),
            (Denied::Channel(_), None) => "No permissions to access a channel".into(),
        }
    }
}

/// The access a command needs on its `nth` key, as Redis's key specs say: a key read
/// needs read (`%R~`), a key changed needs write (`%W~`), and a key whose value the
/// command returns while changing it (INCR, GETDEL, SET ... GET, the pops, a move's
/// source) needs both. A destination written from other keys (SINTERSTORE's first key,
/// LMOVE's and COPY's second) needs write only, and its sources read only: a user
/// allowed to write somewhere cannot copy keys it may not read into it.
fn key_access(id: CommandId, spec: &CommandSpec, nth: usize, args: &[&[u8]]) -> u8 {
    use CommandId as C;
    const BOTH: u8 = KEY_READ | KEY_WRITE;
    let f = spec.flags;
    if f.has(Flags::READONLY) {
        return KEY_READ;
    }
    if !f.has(Flags::WRITE) {
        return 0;
    }
    match id {
        // destination first, then sources
        C::SInterStore
        | C::SUnionStore
        | C::SDiffStore
        | C::ZUnionStore
        | C::ZInterStore
        | C::ZDiffStore
        | C::ZRangeStore => {
            if nth == 0 {
                KEY_WRITE
            } else {
                KEY_READ
            }
        }
        // source, then destination
        C::Copy if nth == 0 => KEY_READ,
        C::LMove
        | C::RPopLPush
        | C::BLMove
        | C::BRPopLPush
        | C::SMove
        | C::Rename
        | C::RenameNx
        | C::Copy => {
            if nth == 0 {
                BOTH
            } else {
                KEY_WRITE
            }
        }
        C::GetSet
        | C::GetDel
        | C::GetEx
        | C::Incr
        | C::Decr
        | C::IncrBy
        | C::DecrBy
        | C::IncrByFloat
        | C::HIncrBy
        | C::HIncrByFloat
        | C::ZIncrBy
        | C::LPop
        | C::RPop
        | C::LMPop
        | C::BLPop
        | C::BRPop
        | C::BLMPop
        | C::SPop
        | C::ZPopMin
        | C::ZPopMax
        | C::BZPopMin
        | C::BZPopMax
        | C::ZMPop
        | C::BZMPop => BOTH,
        C::Set if args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"GET")) => BOTH,
        _ => KEY_WRITE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(u: &User, args: &[&str]) -> Result<(), Denied> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let id = CommandId::lookup(args[0]).expect("command");
        let spec = id.spec().sub(&args).unwrap_or(id.spec());
        check(u, id, spec, &args)
    }

    fn user(rules: &str) -> User {
        let mut u = User::new("alice");
        for r in rules.split_whitespace() {
            u.apply(r.as_bytes()).expect("rule");
        }
        u
    }

    #[test]
    fn locality_of_peers() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(is_local(ip("127.0.0.1")) && is_local(ip("127.8.9.1")));
        assert!(is_local(ip("::1")) && is_local(ip("::ffff:127.0.0.1")));
        assert!(!is_local(ip("172.17.0.1")) && !is_local(ip("10.0.0.1")));
        assert!(!is_local(ip("::ffff:10.0.0.1")) && !is_local(ip("fe80::1")));
        let acl = Acl::default();
        assert!(acl.protected_denies(true, ip("10.0.0.1")));
        assert!(!acl.protected_denies(true, ip("127.0.0.1")));
        assert!(!acl.protected_denies(false, ip("10.0.0.1")));
        acl.set_default_password(Some("pw"));
        assert!(!acl.protected_denies(true, ip("10.0.0.1")));
        assert!(!acl.default_is_open());
        acl.set_default_password(None);
        assert!(acl.default_is_open());
    }

    #[test]
    fn write_access_does_not_read_other_keys() {
        // May write secret:*, read and write mine:*: nothing copies secret data to mine:*.
        let u = user("+@all ~mine:* %W~secret:*");
        let denied = |args: &[&str]| run(&u, args) == Err(Denied::Key(2));
        assert!(denied(&["sunionstore", "mine:x", "secret:a"]));
        assert_eq!(
            run(&u, &["zunionstore", "mine:x", "1", "secret:a"]),
            Err(Denied::Key(3))
        );
        assert_eq!(
            run(&u, &["zrangestore", "mine:x", "secret:a", "0", "-1"]),
            Err(Denied::Key(2))
        );
        assert_eq!(
            run(&u, &["copy", "secret:a", "mine:x"]),
            Err(Denied::Key(1))
        );
        assert_eq!(
            run(&u, &["lmove", "secret:a", "mine:x", "LEFT", "LEFT"]),
            Err(Denied::Key(1))
        );
        // Returning what a write changes needs read too.
        assert_eq!(run(&u, &["zpopmin", "secret:a"]), Err(Denied::Key(1)));
        assert_eq!(
            run(&u, &["set", "secret:a", "v", "GET"]),
            Err(Denied::Key(1))
        );
        // Writing into a write-only key from readable ones is fine.
        assert_eq!(run(&u, &["sunionstore", "secret:a", "mine:x"]), Ok(()));
        assert_eq!(run(&u, &["copy", "mine:x", "secret:a"]), Ok(()));
        assert_eq!(
            run(&u, &["lmove", "mine:x", "secret:a", "LEFT", "LEFT"]),
            Ok(())
        );
        assert_eq!(run(&u, &["set", "secret:a", "v"]), Ok(()));
    }

    #[test]
    fn the_check() {
        let u = user("+@read +set ~events:* %R~logs:*");
        assert_eq!(run(&u, &["get", "events:1"]), Ok(()));
        assert_eq!(run(&u, &["get", "sessions:1"]), Err(Denied::Key(1)));
        assert_eq!(run(&u, &["mget", "events:1", "x"]), Err(Denied::Key(2)));
        assert_eq!(run(&u, &["set", "events:1", "v"]), Ok(()));
        assert_eq!(run(&u, &["set", "logs:1", "v"]), Err(Denied::Key(1)));
        assert_eq!(run(&u, &["get", "logs:1"]), Ok(()));
        assert_eq!(run(&u, &["del", "events:1"]), Err(Denied::Command));
        let u = user("+@all ~events:* %R~logs:*");
        assert_eq!(run(&u, &["cache.clear", "events"]), Ok(()));
        assert_eq!(run(&u, &["cache.clear", "sessions"]), Err(Denied::Key(1)));
        assert_eq!(run(&u, &["cache.clear", "logs"]), Err(Denied::Key(1)));
        assert_eq!(run(&u, &["cache.size", "logs"]), Ok(()));
        assert_eq!(run(&u, &["cache.size", "default"]), Err(Denied::Key(1)));
        let u = user("+@all %W~w:*");
        assert_eq!(run(&u, &["set", "w:1", "v"]), Ok(()));
        assert_eq!(run(&u, &["incr", "w:1"]), Err(Denied::Key(1)));
        let u = user("+@pubsub &news.*");
        assert_eq!(run(&u, &["publish", "news.a", "m"]), Ok(()));
        assert_eq!(run(&u, &["publish", "sport", "m"]), Err(Denied::Channel(1)));
        assert_eq!(
            run(&u, &["subscribe", "news.a", "x"]),
            Err(Denied::Channel(2))
        );
        assert_eq!(run(&u, &["psubscribe", "news.*"]), Ok(()));
        assert_eq!(run(&u, &["psubscribe", "*"]), Err(Denied::Channel(1)));
        let e = Denied::Command.to_error(&u, CommandId::Get.spec());
        assert_eq!(
            e.to_string(),
            "NOPERM User alice has no permissions to run the 'get' command"
        );
        assert_eq!(DENIED.len(), 1066);
    }

    #[test]
    fn registry() {
        let acl = Acl::default();
        let e0 = acl.epoch();
        acl.set_user("bob", &[b"on", b">pw", b"+get"])
            .expect("setuser");
        assert!(acl.epoch() > e0);
        assert!(acl.authenticate(b"bob", b"pw").is_ok());
        assert_eq!(
            acl.authenticate(b"bob", b"no").err(),
            Some(CmdError::WrongPass)
        );
        assert_eq!(
            acl.authenticate(b"nobody", b"pw").err(),
            Some(CmdError::WrongPass)
        );
        let e = acl
            .set_user("bob", &[b"off", b"+nosuch"])
            .expect_err("error");
        assert_eq!(
            e.to_string(),
            "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
        );
        // Nothing changed: bob is still on.
        assert!(acl.authenticate(b"bob", b"pw").is_ok());
        acl.set_user("bob", &[b"off"]).expect("off");
        assert_eq!(
            acl.authenticate(b"bob", b"pw").err(),
            Some(CmdError::WrongPass)
        );
        assert!(acl.del_users(&["default"]).is_err());
        assert_eq!(acl.del_users(&["bob", "nobody"]), Ok(1));
    }
}
