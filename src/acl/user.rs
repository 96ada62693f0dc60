//! One ACL user and Redis's rule language (`on`, `>pw`, `~pattern`, `+@read`, ...).
//! A user is immutable once built: ACL SETUSER builds a changed copy and swaps it in.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

use super::category::{self, Categories};
use crate::command::{CommandId, CommandSpec, SPECS};
use crate::store::pattern;

/// Why a rule was refused; the text is Redis's (`ACL SETUSER` wraps it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// An unknown command or category.
    #[error("Unknown command or category name in ACL")]
    Unknown,
    /// A rule that does not parse.
    #[error("Syntax error")]
    Syntax,
    /// A key pattern after `allkeys`.
    #[error(
        "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
    )]
    AfterAllKeys,
    /// A channel pattern after `allchannels`.
    #[error(
        "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
    )]
    AfterAllChannels,
    /// `<pw` or `!hash` for a password the user does not have.
    #[error("The password you are trying to remove from the user does not exist")]
    NoSuchPassword,
    /// `#hash` / `!hash` that is not 64 lower-case hex digits.
    #[error(
        "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
    )]
    BadHash,
}

/// Read and write permission bits of a key pattern.
pub const KEY_READ: u8 = 1;
/// See [`KEY_READ`].
pub const KEY_WRITE: u8 = 2;

/// A key pattern with the access it grants (`~p` both, `%R~p` read, `%W~p` write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    /// [`KEY_READ`] | [`KEY_WRITE`].
    pub access: u8,
    /// A Redis glob.
    pub pattern: Vec<u8>,
}

/// Position of every command and subcommand in a user's permission bitmap: top-level
/// commands at their table index, subcommands after them.
struct Layout {
    /// Per command: the index of its first subcommand.
    sub_base: Vec<usize>,
    /// Every entry's spec, by index.
    specs: Vec<&'static CommandSpec>,
}

static LAYOUT: LazyLock<Layout> = LazyLock::new(|| {
    let mut specs: Vec<&'static CommandSpec> = SPECS.iter().collect();
    let mut sub_base = Vec::with_capacity(SPECS.len());
    for s in SPECS {
        sub_base.push(specs.len());
        specs.extend(s.subcommands.iter());
    }
    Layout { sub_base, specs }
});

/// The bitmap index of `spec`, which is command `id` or one of its subcommands.
pub fn index_of(id: CommandId, spec: &'static CommandSpec) -> usize {
    let top = id.spec();
    match top.subcommands.iter().position(|s| std::ptr::eq(s, spec)) {
        Some(p) => LAYOUT.sub_base[id as usize] + p,
        None => id as usize,
    }
}

/// A user: whether it may log in, its passwords and what it may run and touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name.
    pub name: String,
    /// `on` / `off`: a disabled user cannot authenticate.
    pub enabled: bool,
    /// `nopass`: any password authenticates.
    pub nopass: bool,
    /// `sanitize-payload` (Redis's default) or `skip-sanitize-payload`: kept and shown as
    /// Redis does; Terrace takes no serialized payloads (RESTORE) to sanitize.
    pub sanitize_payload: bool,
    /// SHA-256 of each password.
    pub passwords: Vec<[u8; 32]>,
    /// Allowed commands, one bit per [`index_of`].
    allowed: Vec<u64>,
    /// The last `+@all`/`allcommands` (true) or `-@all`/`nocommands` (false).
    all_base: bool,
    /// Command rules since then, as ACL LIST prints them.
    command_rules: Vec<String>,
    /// `~*` / `allkeys`.
    pub allkeys: bool,
    /// Key patterns (empty with `allkeys`).
    pub keys: Vec<KeyPattern>,
    /// `&*` / `allchannels`.
    pub allchannels: bool,
    /// Channel patterns (empty with `allchannels`).
    pub channels: Vec<Vec<u8>>,
    /// Every command, key and channel allowed: the permission check is skipped.
    unrestricted: bool,
}

impl User {
    /// A new user as Redis 7 creates one: off, no passwords, no commands, keys or
    /// channels.
    pub fn new(name: &str) -> User {
        let words = LAYOUT.specs.len().div_ceil(64);
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            sanitize_payload: true,
            passwords: Vec::new(),
            allowed: vec![0; words],
            all_base: false,
            command_rules: Vec::new(),
            allkeys: false,
            keys: Vec::new(),
            allchannels: false,
            channels: Vec::new(),
            unrestricted: false,
        }
    }

    /// The `default` user of a server with no ACL configuration: on, nopass, everything.
    pub fn default_user() -> User {
        let mut u = User::new("default");
        for r in ["on", "nopass", "allkeys", "allchannels", "allcommands"] {
            // These rules always parse.
            let _ = u.apply(r.as_bytes());
        }
        u
    }

    /// True when a connection is this user without AUTH: on and `nopass`.
    pub fn open(&self) -> bool {
        self.enabled && self.nopass
    }

    /// True when the user may run everything on every key and channel.
    #[inline]
    pub fn unrestricted(&self) -> bool {
        self.unrestricted
    }

    /// Applies one rule.
    pub fn apply(&mut self, rule: &[u8]) -> Result<(), RuleError> {
        let text = std::str::from_utf8(rule).map_err(|_| RuleError::Syntax)?;
        let lower = text.to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "allkeys" => self.add_key(KEY_READ | KEY_WRITE, b"*")?,
            "resetkeys" => {
                self.allkeys = false;
                self.keys.clear();
            }
            "allchannels" => self.add_channel(b"*")?,
            "resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
            }
            "allcommands" => self.set_all(true),
            "nocommands" => self.set_all(false),
            "reset" => {
                let name = std::mem::take(&mut self.name);
                *self = User::new(&name);
            }
            "sanitize-payload" => self.sanitize_payload = true,
            "skip-sanitize-payload" => self.sanitize_payload = false,
            _ => return self.apply_prefixed(rule),
        }
        self.refresh();
        Ok(())
    }

    fn apply_prefixed(&mut self, rule: &[u8]) -> Result<(), RuleError> {
        let (&first, rest) = rule.split_first().ok_or(RuleError::Syntax)?;
        match first {
            b'>' => {
                let h = sha256(rest);
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            b'<' => self.remove_password(&sha256(rest))?,
            b'#' => {
                let h = parse_hash(rest)?;
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            b'!' => self.remove_password(&parse_hash(rest)?)?,
            b'~' => self.add_key(KEY_READ | KEY_WRITE, rest)?,
            b'%' => {
                let tilde = rest
                    .iter()
                    .position(|&b| b == b'~')
                    .ok_or(RuleError::Syntax)?;
                let mut access = 0;
                for &c in &rest[..tilde] {
                    access |= match c.to_ascii_uppercase() {
                        b'R' => KEY_READ,
                        b'W' => KEY_WRITE,
                        _ => return Err(RuleError::Syntax),
                    };
                }
                if access == 0 {
                    return Err(RuleError::Syntax);
                }
                self.add_key(access, &rest[tilde + 1..])?;
            }
            b'&' => self.add_channel(rest)?,
            b'+' | b'-' => self.command_rule(first == b'+', rest)?,
            _ => return Err(RuleError::Syntax),
        }
        self.refresh();
        Ok(())
    }

    fn remove_password(&mut self, h: &[u8; 32]) -> Result<(), RuleError> {
        let before = self.passwords.len();
        self.passwords.retain(|p| p != h);
        if self.passwords.len() == before {
            return Err(RuleError::NoSuchPassword);
        }
        Ok(())
    }

    fn add_key(&mut self, access: u8, pat: &[u8]) -> Result<(), RuleError> {
        if self.allkeys {
            return Err(RuleError::AfterAllKeys);
        }
        if pat == b"*" && access == KEY_READ | KEY_WRITE {
            self.allkeys = true;
            self.keys.clear();
            return Ok(());
        }
        match self.keys.iter_mut().find(|k| k.pattern == pat) {
            Some(k) => k.access |= access,
            None => self.keys.push(KeyPattern {
                access,
                pattern: pat.to_vec(),
            }),
        }
        Ok(())
    }

    fn add_channel(&mut self, pat: &[u8]) -> Result<(), RuleError> {
        if self.allchannels {
            return Err(RuleError::AfterAllChannels);
        }
        if pat == b"*" {
            self.allchannels = true;
            self.channels.clear();
        } else if !self.channels.iter().any(|c| c == pat) {
            self.channels.push(pat.to_vec());
        }
        Ok(())
    }

    fn set_all(&mut self, on: bool) {
        let fill = if on { u64::MAX } else { 0 };
        self.allowed.iter_mut().for_each(|w| *w = fill);
        self.all_base = on;
        self.command_rules.clear();
    }

    fn set_bit(&mut self, i: usize, on: bool) {
        if let Some(w) = self.allowed.get_mut(i / 64) {
            if on {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }

    /// `+name`, `-name`, `+container|sub`, `+@category` and their `-` forms.
    fn command_rule(&mut self, allow: bool, what: &[u8]) -> Result<(), RuleError> {
        let sign = if allow { '+' } else { '-' };
        if let Some(cat) = what.strip_prefix(b"@") {
            let name = std::str::from_utf8(cat).map_err(|_| RuleError::Unknown)?;
            let set = category::by_name(name).ok_or(RuleError::Unknown)?;
            if set == Categories::MAX {
                self.set_all(allow);
                return Ok(());
            }
            for (i, spec) in LAYOUT.specs.iter().enumerate() {
                if category::of(spec) & set != 0 {
                    self.set_bit(i, allow);
                }
            }
            self.command_rules
                .push(format!("{sign}@{}", name.to_ascii_lowercase()));
            return Ok(());
        }
        let text = std::str::from_utf8(what)
            .map_err(|_| RuleError::Unknown)?
            .to_ascii_lowercase();
        let (cmd, sub) = match text.split_once('|') {
            Some((c, s)) => (c, Some(s)),
            None => (text.as_str(), None),
        };
        let id = CommandId::lookup(cmd.as_bytes()).ok_or(RuleError::Unknown)?;
        let spec = id.spec();
        match sub {
            None => {
                self.set_bit(id as usize, allow);
                let base = LAYOUT.sub_base[id as usize];
                for i in 0..spec.subcommands.len() {
                    self.set_bit(base + i, allow);
                }
            }
            Some(sub) => {
                let Some(s) = spec.sub(&[cmd, sub]) else {
                    return Err(RuleError::Unknown);
                };
                self.set_bit(index_of(id, s), allow);
            }
        }
        // A later rule for the same command replaces the earlier one, as in Redis.
        self.command_rules
            .retain(|r| r.get(1..) != Some(text.as_str()));
        self.command_rules.push(format!("{sign}{text}"));
        Ok(())
    }

    fn refresh(&mut self) {
        let n = LAYOUT.specs.len();
        let all = (0..n).all(|i| self.allowed[i / 64] & (1 << (i % 64)) != 0);
        self.unrestricted = all && self.allkeys && self.allchannels;
    }

    /// True when the command (or subcommand) at bitmap index `i` is allowed.
    #[inline]
    pub fn may_run(&self, i: usize) -> bool {
        self.allowed
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// True when a key pattern grants `access` ([`KEY_READ`] | [`KEY_WRITE`]) to `key`.
    pub fn may_access_key(&self, key: &[u8], access: u8) -> bool {
        self.allkeys
            || self
                .keys
                .iter()
                .any(|k| k.access & access == access && pattern::matches(&k.pattern, key, false))
    }

    /// True when the user may publish or subscribe to `channel` (a pattern of
    /// PSUBSCRIBE must equal one of the user's patterns, as in Redis).
    pub fn may_access_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.allchannels
            || self.channels.iter().any(|c| {
                if is_pattern {
                    c == channel
                } else {
                    pattern::matches(c, channel, false)
                }
            })
    }

    /// True when `password` is one of the user's (or the user is `nopass`); compares in
    /// constant time.
    pub fn check_password(&self, password: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let h = sha256(password);
        self.passwords
            .iter()
            .fold(false, |ok, p| ok | constant_time_eq(p, &h))
    }

    /// `on`/`off`, `nopass` and the payload flag, in Redis's order (ACL GETUSER, LIST).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        f.push(if self.sanitize_payload {
            "sanitize-payload"
        } else {
            "skip-sanitize-payload"
        });
        f
    }

    /// The password hashes in hex.
    pub fn password_hashes(&self) -> Vec<String> {
        self.passwords.iter().map(|h| hex(h)).collect()
    }

    /// The command rules (`+@all`, `-@all +get`, ...).
    pub fn describe_commands(&self) -> String {
        let mut s = String::from(if self.all_base { "+@all" } else { "-@all" });
        for r in &self.command_rules {
            s.push(' ');
            s.push_str(r);
        }
        s
    }

    /// The key patterns (`~*`, `~events:* %R~logs:*`, or empty).
    pub fn describe_keys(&self) -> String {
        if self.allkeys {
            return "~*".into();
        }
        let parts: Vec<String> = self
            .keys
            .iter()
            .map(|k| {
                let p = String::from_utf8_lossy(&k.pattern);
                match k.access {
                    KEY_READ => format!("%R~{p}"),
                    KEY_WRITE => format!("%W~{p}"),
                    _ => format!("~{p}"),
                }
            })
            .collect();
        parts.join(" ")
    }

    /// The channel patterns (`&*`, `&news.*`, or empty).
    pub fn describe_channels(&self) -> String {
        if self.allchannels {
            return "&*".into();
        }
        let parts: Vec<String> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        parts.join(" ")
    }

    /// One ACL LIST line: `user <name> on #<hash> ~keys &channels +@commands`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("user {}", self.name)];
        parts.extend(self.flags().iter().map(|f| f.to_string()));
        parts.extend(self.password_hashes().into_iter().map(|h| format!("#{h}")));
        let keys = self.describe_keys();
        if !keys.is_empty() {
            parts.push(keys);
        }
        let channels = self.describe_channels();
        parts.push(if channels.is_empty() {
            "resetchannels".into()
        } else {
            channels
        });
        parts.push(self.describe_commands());
        parts.join(" ")
    }
}

/// SHA-256 of `b`.
pub fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    b.iter()
        .flat_map(|x| [D[(x >> 4) as usize] as char, D[(x & 15) as usize] as char])
        .collect()
}

/// A `#hash` argument: exactly 64 lower-case hex digits.
pub fn parse_hash(h: &[u8]) -> Result<[u8; 32], RuleError> {
    if h.len() != 64 {
        return Err(RuleError::BadHash);
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(RuleError::BadHash),
    };
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(h.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Ok(out)
}

/// Equality that takes the same time wherever the inputs differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &str) -> Result<User, RuleError> {
        let mut u = User::new("alice");
        for r in rules.split_whitespace() {
            u.apply(r.as_bytes())?;
        }
        Ok(u)
    }

    fn idx(name: &str) -> usize {
        let parts: Vec<&str> = name.split('|').collect();
        let id = CommandId::lookup(parts[0].as_bytes()).expect("command");
        match id.spec().sub(&parts) {
            Some(s) => index_of(id, s),
            None => id as usize,
        }
    }

    #[test]
    fn new_user_is_locked_down() {
        let u = User::new("bob");
        assert!(!u.enabled && !u.nopass && !u.unrestricted());
        assert!(!u.may_run(idx("get")));
        assert!(!u.may_access_key(b"k", KEY_READ));
        assert!(!u.may_access_channel(b"c", false));
        assert_eq!(
            u.describe(),
            "user bob off sanitize-payload resetchannels -@all"
        );
        assert!(User::default_user().unrestricted());
        assert_eq!(
            User::default_user().describe(),
            "user default on nopass sanitize-payload ~* &* +@all"
        );
    }

    #[test]
    fn passwords_are_hashed_and_removable() {
        let mut u = user("on >secret").expect("rules");
        assert!(u.check_password(b"secret") && !u.check_password(b"Secret"));
        let h = hex(&sha256(b"secret"));
        assert_eq!(u.password_hashes(), vec![h.clone()]);
        assert_eq!(u.apply(b"<nope"), Err(RuleError::NoSuchPassword));
        u.apply(format!("!{h}").as_bytes()).expect("remove");
        assert!(!u.check_password(b"secret"));
        u.apply(format!("#{h}").as_bytes()).expect("add hash");
        assert!(u.check_password(b"secret"));
        assert_eq!(u.apply(b"#ABC"), Err(RuleError::BadHash));
        assert_eq!(u.apply(&[b'#'; 65]), Err(RuleError::BadHash));
        u.apply(b"nopass").expect("nopass");
        assert!(u.check_password(b"anything") && u.passwords.is_empty());
        u.apply(b"resetpass").expect("resetpass");
        assert!(!u.check_password(b"anything"));
    }

    #[test]
    fn commands_by_name_category_and_subcommand() {
        let u = user("+@read -strlen +set +client|id").expect("rules");
        assert!(u.may_run(idx("get")) && u.may_run(idx("hgetall")));
        assert!(!u.may_run(idx("strlen")));
        assert!(u.may_run(idx("set")) && !u.may_run(idx("del")));
        assert!(u.may_run(idx("client|id")) && !u.may_run(idx("client|kill")));
        assert_eq!(
            u.describe_commands(),
            "-@all +@read -strlen +set +client|id"
        );
        let u = user("+@all -@dangerous").expect("rules");
        assert!(u.may_run(idx("get")) && !u.may_run(idx("flushall")));
        assert!(!u.may_run(idx("client|kill")) && u.may_run(idx("client|id")));
        let u = user("+client -client|kill").expect("rules");
        assert!(u.may_run(idx("client|list")) && !u.may_run(idx("client|kill")));
        // A later rule for the same command replaces the earlier one in the description.
        let u = user("+get -get +get").expect("rules");
        assert_eq!(u.describe_commands(), "-@all +get");
        assert_eq!(user("+nosuch").err(), Some(RuleError::Unknown));
        assert_eq!(user("+@nosuch").err(), Some(RuleError::Unknown));
        assert_eq!(user("+client|nosuch").err(), Some(RuleError::Unknown));
        assert_eq!(user("bogus").err(), Some(RuleError::Syntax));
        assert_eq!(
            user("allcommands").map(|u| u.describe_commands()),
            Ok("+@all".into())
        );
    }

    #[test]
    fn key_patterns_and_access() {
        let u = user("~events:* %R~logs:* %W~sink:*").expect("rules");
        assert!(u.may_access_key(b"events:1", KEY_READ | KEY_WRITE));
        assert!(!u.may_access_key(b"sessions:1", KEY_READ));
        assert!(u.may_access_key(b"logs:1", KEY_READ) && !u.may_access_key(b"logs:1", KEY_WRITE));
        assert!(u.may_access_key(b"sink:1", KEY_WRITE) && !u.may_access_key(b"sink:1", KEY_READ));
        assert_eq!(u.describe_keys(), "~events:* %R~logs:* %W~sink:*");
        assert_eq!(user("allkeys ~x").err(), Some(RuleError::AfterAllKeys));
        assert_eq!(user("%X~x").err(), Some(RuleError::Syntax));
        assert_eq!(user("%R").err(), Some(RuleError::Syntax));
        let u = user("~a resetkeys ~*").expect("rules");
        assert!(u.allkeys && u.keys.is_empty() && u.describe_keys() == "~*");
    }

    #[test]
    fn channels() {
        let u = user("&news.*").expect("rules");
        assert!(u.may_access_channel(b"news.today", false));
        assert!(!u.may_access_channel(b"sports", false));
        assert!(u.may_access_channel(b"news.*", true) && !u.may_access_channel(b"news.t*", true));
        assert_eq!(
            user("allchannels &x").err(),
            Some(RuleError::AfterAllChannels)
        );
        let u = user("on ~* &* +@all").expect("rules");
        assert!(u.unrestricted());
        let mut u = u;
        u.apply(b"reset").expect("reset");
        assert_eq!(
            u.describe(),
            "user alice off sanitize-payload resetchannels -@all"
        );
        u.apply(b"skip-sanitize-payload").expect("flag");
        assert_eq!(u.flags(), ["off", "skip-sanitize-payload"]);
    }
}
