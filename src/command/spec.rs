//! What the command table says about each command: arity, flags, key positions and docs.
//! Routing, locking, COMMAND INFO/DOCS/GETKEYS and ACL-style checks all read this.

/// Command flags (Redis's names; printed by COMMAND INFO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u32);

impl Flags {
    /// Changes data.
    pub const WRITE: Flags = Flags(1);
    /// Reads data only.
    pub const READONLY: Flags = Flags(1 << 1);
    /// May grow memory use (refused under OOM).
    pub const DENYOOM: Flags = Flags(1 << 2);
    /// Administrative.
    pub const ADMIN: Flags = Flags(1 << 3);
    /// O(1) or O(log n).
    pub const FAST: Flags = Flags(1 << 4);
    /// Allowed before AUTH.
    pub const NO_AUTH: Flags = Flags(1 << 5);
    /// Allowed while loading.
    pub const LOADING: Flags = Flags(1 << 6);
    /// Allowed on a stale mirror.
    pub const STALE: Flags = Flags(1 << 7);
    /// Not allowed inside MULTI.
    pub const NO_MULTI: Flags = Flags(1 << 8);
    /// Not allowed in scripts.
    pub const NOSCRIPT: Flags = Flags(1 << 9);
    /// May block the client until a key is ready or a timeout (BLPOP, BZPOPMIN, ...):
    /// never forwarded to another stripe (see `cluster::route`).
    pub const BLOCKING: Flags = Flags(1 << 10);

    const NAMES: [(Flags, &'static str); 11] = [
        (Flags::WRITE, "write"),
        (Flags::READONLY, "readonly"),
        (Flags::DENYOOM, "denyoom"),
        (Flags::ADMIN, "admin"),
        (Flags::FAST, "fast"),
        (Flags::NO_AUTH, "no_auth"),
        (Flags::LOADING, "loading"),
        (Flags::STALE, "stale"),
        (Flags::NO_MULTI, "no_multi"),
        (Flags::NOSCRIPT, "noscript"),
        (Flags::BLOCKING, "blocking"),
    ];

    /// Both sets of flags.
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// True when every flag of `other` is set.
    pub const fn has(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flag names, for COMMAND INFO.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .into_iter()
            .filter(move |(f, _)| self.has(*f))
            .map(|(_, n)| n)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.with(rhs)
    }
}

/// Where a command's keys are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// No keys.
    None,
    /// Keys at `first`, `first + step`, ... up to `last` (negative: from the end),
    /// counted in the full argument vector (0 is the command name).
    Range {
        /// First key position.
        first: i32,
        /// Last key position; -1 means the last argument.
        last: i32,
        /// Distance between keys.
        step: i32,
    },
    /// No key arguments, but the command reads or changes the whole keyspace (KEYS,
    /// DBSIZE, FLUSHALL, INFO keyspace).
    All,
}

impl Keys {
    /// True for commands that name their keys in their arguments (a range, which counted
    /// `numkeys` keys extend).
    pub const fn named(&self) -> bool {
        matches!(self, Keys::Range { .. })
    }
}

/// One command (or one subcommand of a container such as CLIENT).
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// Lower-case name; `container|sub` for subcommands.
    pub name: &'static str,
    /// Redis arity: N means exactly N arguments (name included), -N means at least N.
    pub arity: i32,
    /// Flags.
    pub flags: Flags,
    /// Key positions.
    pub keys: Keys,
    /// Redis's command group (`string`, `generic`, `connection`, `server`, ...).
    pub group: &'static str,
    /// The Redis version that introduced it.
    pub since: &'static str,
    /// One line for COMMAND DOCS.
    pub summary: &'static str,
    /// Subcommands of a container command.
    pub subcommands: &'static [CommandSpec],
    /// Position of a `numkeys` argument (SINTERCARD, ZUNION, ZMPOP, ...): the keys also
    /// include the `numkeys` arguments after it. 0 when the command has none.
    pub numkeys: usize,
}

impl CommandSpec {
    /// A keyless command with no flags.
    pub const fn new(
        name: &'static str,
        arity: i32,
        group: &'static str,
        since: &'static str,
        summary: &'static str,
    ) -> CommandSpec {
        CommandSpec {
            name,
            arity,
            flags: Flags(0),
            keys: Keys::None,
            group,
            since,
            summary,
            subcommands: &[],
            numkeys: 0,
        }
    }

    /// With flags.
    pub const fn flags(mut self, f: Flags) -> CommandSpec {
        self.flags = f;
        self
    }

    /// With keys from `first` to `last` every `step`.
    pub const fn keys(mut self, first: i32, last: i32, step: i32) -> CommandSpec {
        self.keys = Keys::Range { first, last, step };
        self
    }

    /// Touches the whole keyspace.
    pub const fn all_keys(mut self) -> CommandSpec {
        self.keys = Keys::All;
        self
    }

    /// With a `numkeys` argument at position `at` (name included), followed by that many
    /// keys; on top of the keys given with [`keys`](Self::keys) (a STORE's destination).
    /// COMMAND INFO prints (0, 0, 0) for a command whose only keys are counted, as Redis
    /// does for its movable-keys commands.
    pub const fn numkeys(mut self, at: usize) -> CommandSpec {
        self.numkeys = at;
        if matches!(self.keys, Keys::None) {
            self.keys = Keys::Range {
                first: 0,
                last: 0,
                step: 0,
            };
        }
        self
    }

    /// With subcommands.
    pub const fn subs(mut self, s: &'static [CommandSpec]) -> CommandSpec {
        self.subcommands = s;
        self
    }

    /// True when `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let a = i64::from(self.arity);
        if a >= 0 { argc == a } else { argc >= -a }
    }

    /// The subcommand named by `args[1]`, if this is a container and it exists.
    pub fn sub<A: AsRef<[u8]>>(&self, args: &[A]) -> Option<&'static CommandSpec> {
        let sub = args.get(1)?.as_ref();
        self.subcommands.iter().find(|s| {
            s.name
                .split_once('|')
                .is_some_and(|(_, n)| n.as_bytes().eq_ignore_ascii_case(sub))
        })
    }

    /// Positions of the keys in `args` (which includes the command name). A `numkeys`
    /// count that is not a positive integer, or larger than the arguments left, gives no
    /// counted keys: the command's own parser then reports the error.
    pub fn key_positions<A: AsRef<[u8]>>(&self, args: &[A]) -> impl Iterator<Item = usize> {
        let argc = args.len();
        let (first, last, step) = match self.keys {
            Keys::Range { first, last, step } => {
                let last = if last < 0 {
                    argc as i64 + i64::from(last)
                } else {
                    i64::from(last)
                };
                (
                    i64::from(first).max(1),
                    last.min(argc as i64 - 1),
                    i64::from(step.max(1)),
                )
            }
            Keys::None | Keys::All => (1, 0, 1),
        };
        let counted = match self.numkeys {
            0 => 0..0,
            at => {
                let n = args
                    .get(at)
                    .and_then(|a| crate::protocol::args::parse_i64(a.as_ref()).ok())
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(0);
                // A count beyond the arguments gives no counted keys (COMMAND GETKEYS then
                // answers Redis's error; the command's own parser reports its own).
                let start = at + 1;
                match start.checked_add(n) {
                    Some(end) if end <= argc => start..end,
                    _ => 0..0,
                }
            }
        };
        (first..=last)
            .step_by(step as usize)
            .map(|i| i as usize)
            .chain(counted)
    }

    /// (first, last, step) as COMMAND INFO prints them.
    pub fn key_triple(&self) -> (i64, i64, i64) {
        match self.keys {
            Keys::Range { first, last, step } => (first.into(), last.into(), step.into()),
            Keys::None | Keys::All => (0, 0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arity_and_keys() {
        let mset = CommandSpec::new("mset", -3, "string", "1.0.1", "").keys(1, -1, 2);
        assert!(mset.arity_ok(3) && mset.arity_ok(5) && !mset.arity_ok(2));
        assert_eq!(
            mset.key_positions(&["mset", "a", "1", "b", "2"])
                .collect::<Vec<_>>(),
            vec![1, 3]
        );
        let get = CommandSpec::new("get", 2, "string", "1.0.0", "").keys(1, 1, 1);
        assert!(get.arity_ok(2) && !get.arity_ok(3));
        assert_eq!(
            get.key_positions(&["get", "a"]).collect::<Vec<_>>(),
            vec![1]
        );
        let ping = CommandSpec::new("ping", -1, "connection", "1.0.0", "");
        assert_eq!(ping.key_positions(&["ping", "a", "b"]).count(), 0);
        let lmpop = CommandSpec::new("lmpop", -4, "list", "7.0.0", "").numkeys(1);
        let keys = |args: &[&str]| lmpop.key_positions(args).collect::<Vec<_>>();
        assert_eq!(keys(&["lmpop", "2", "a", "b", "LEFT"]), vec![2, 3]);
        assert_eq!(keys(&["lmpop", "1", "a", "LEFT"]), vec![2]);
        for bad in ["0", "-1", "x"] {
            assert!(keys(&["lmpop", bad, "a", "LEFT"]).is_empty(), "{bad}");
        }
        assert!(Flags::WRITE.with(Flags::FAST).has(Flags::FAST));
        assert_eq!(
            (Flags::WRITE | Flags::DENYOOM).names().collect::<Vec<_>>(),
            vec!["write", "denyoom"]
        );
    }

    #[test]
    fn counted_keys() {
        let zunion = CommandSpec::new("zunion", -3, "sorted-set", "6.2.0", "").numkeys(1);
        let keys = |s: &CommandSpec, a: &[&str]| s.key_positions(a).collect::<Vec<_>>();
        assert_eq!(
            keys(&zunion, &["zunion", "2", "a", "b", "WITHSCORES"]),
            vec![2, 3]
        );
        assert_eq!(zunion.key_triple(), (0, 0, 0));
        // Bad or oversized counts: no keys past the arguments, none at all for junk.
        assert!(keys(&zunion, &["zunion", "5", "a"]).is_empty());
        assert!(keys(&zunion, &["zunion", "x", "a"]).is_empty());
        assert!(keys(&zunion, &["zunion", "-1", "a"]).is_empty());
        let store = CommandSpec::new("zunionstore", -4, "sorted-set", "2.0.0", "")
            .keys(1, 1, 1)
            .numkeys(2);
        assert_eq!(
            keys(
                &store,
                &["zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"]
            ),
            vec![1, 3, 4]
        );
        assert_eq!(store.key_triple(), (1, 1, 1));
    }
}
