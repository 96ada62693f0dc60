//! Redis's ACL command categories (`@read`, `@write`, `@admin`, ...) and the category set
//! of every command in the table: derived from the command's flags and group, with the
//! exceptions Redis's command JSON files (`acl_categories`) make listed by name.

use crate::command::{CommandSpec, Flags, SPECS};

/// A set of categories, one bit each.
pub type Categories = u32;

/// The categories, in Redis's ACL CAT order, with their bits.
pub const ALL: [(&str, Categories); 21] = [
    ("keyspace", KEYSPACE),
    ("read", READ),
    ("write", WRITE),
    ("set", SET),
    ("sortedset", SORTEDSET),
    ("list", LIST),
    ("hash", HASH),
    ("string", STRING),
    ("bitmap", BITMAP),
    ("hyperloglog", HYPERLOGLOG),
    ("geo", GEO),
    ("stream", STREAM),
    ("pubsub", PUBSUB),
    ("admin", ADMIN),
    ("fast", FAST),
    ("slow", SLOW),
    ("blocking", BLOCKING),
    ("dangerous", DANGEROUS),
    ("connection", CONNECTION),
    ("transaction", TRANSACTION),
    ("scripting", SCRIPTING),
];

#[allow(missing_docs)]
pub const KEYSPACE: Categories = 1;
#[allow(missing_docs)]
pub const READ: Categories = 1 << 1;
#[allow(missing_docs)]
pub const WRITE: Categories = 1 << 2;
#[allow(missing_docs)]
pub const SET: Categories = 1 << 3;
#[allow(missing_docs)]
pub const SORTEDSET: Categories = 1 << 4;
#[allow(missing_docs)]
pub const LIST: Categories = 1 << 5;
#[allow(missing_docs)]
pub const HASH: Categories = 1 << 6;
#[allow(missing_docs)]
pub const STRING: Categories = 1 << 7;
#[allow(missing_docs)]
pub const BITMAP: Categories = 1 << 8;
#[allow(missing_docs)]
pub const HYPERLOGLOG: Categories = 1 << 9;
#[allow(missing_docs)]
pub const GEO: Categories = 1 << 10;
#[allow(missing_docs)]
pub const STREAM: Categories = 1 << 11;
#[allow(missing_docs)]
pub const PUBSUB: Categories = 1 << 12;
#[allow(missing_docs)]
pub const ADMIN: Categories = 1 << 13;
#[allow(missing_docs)]
pub const FAST: Categories = 1 << 14;
#[allow(missing_docs)]
pub const SLOW: Categories = 1 << 15;
#[allow(missing_docs)]
pub const BLOCKING: Categories = 1 << 16;
#[allow(missing_docs)]
pub const DANGEROUS: Categories = 1 << 17;
#[allow(missing_docs)]
pub const CONNECTION: Categories = 1 << 18;
#[allow(missing_docs)]
pub const TRANSACTION: Categories = 1 << 19;
#[allow(missing_docs)]
pub const SCRIPTING: Categories = 1 << 20;

/// The bit of category `name` (without the `@`), case-insensitively; `all` is every bit.
pub fn by_name(name: &str) -> Option<Categories> {
    if name.eq_ignore_ascii_case("all") {
        return Some(Categories::MAX);
    }
    ALL.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, c)| *c)
}

/// The category names of `set`, in [`ALL`] order.
pub fn names(set: Categories) -> impl Iterator<Item = &'static str> {
    ALL.iter()
        .filter(move |(_, c)| set & c != 0)
        .map(|(n, _)| *n)
}

/// Commands whose data-type or purpose categories differ from their group's (Redis's
/// `acl_categories`); the flag-derived ones (`@read`, `@write`, `@fast`/`@slow`,
/// `@admin @dangerous`, `@blocking`) are added to these.
const EXCEPTIONS: &[(&str, Categories)] = &[
    ("keys", KEYSPACE | DANGEROUS),
    ("flushdb", KEYSPACE | DANGEROUS),
    ("flushall", KEYSPACE | DANGEROUS),
    ("dbsize", KEYSPACE),
    ("info", DANGEROUS),
    ("wait", CONNECTION),
    ("role", ADMIN | DANGEROUS),
    ("readonly", CONNECTION),
    ("readwrite", CONNECTION),
    ("command", CONNECTION),
    ("command|count", CONNECTION),
    ("command|info", CONNECTION),
    ("command|docs", CONNECTION),
    ("command|list", CONNECTION),
    ("command|getkeys", CONNECTION),
    ("command|help", CONNECTION),
    ("client|list", ADMIN | DANGEROUS | CONNECTION),
    ("client|kill", ADMIN | DANGEROUS | CONNECTION),
    ("client|unblock", ADMIN | DANGEROUS | CONNECTION),
    ("client|no-evict", ADMIN | DANGEROUS | CONNECTION),
    ("config", ADMIN | DANGEROUS),
    ("config|get", ADMIN | DANGEROUS),
    ("config|set", ADMIN | DANGEROUS),
    ("config|resetstat", ADMIN | DANGEROUS),
    ("config|help", 0),
    ("slowlog", ADMIN | DANGEROUS),
    ("slowlog|get", ADMIN | DANGEROUS),
    ("slowlog|len", ADMIN | DANGEROUS),
    ("slowlog|reset", ADMIN | DANGEROUS),
    ("slowlog|help", 0),
    ("memory|usage", READ),
    ("object", KEYSPACE),
    ("object|encoding", KEYSPACE | READ),
    ("object|freq", KEYSPACE | READ),
    ("object|idletime", KEYSPACE | READ),
    ("object|refcount", KEYSPACE | READ),
    ("object|help", KEYSPACE),
    ("debug", ADMIN | DANGEROUS),
    ("shutdown", ADMIN | DANGEROUS),
    ("failover", ADMIN | DANGEROUS),
    ("bgrewriteaof", ADMIN | DANGEROUS),
    // Terrace's own: a cache is a keyspace; wiping one is as dangerous as FLUSHDB.
    ("cache.list", KEYSPACE),
    ("cache.info", KEYSPACE),
    ("cache.size", KEYSPACE),
    ("cache.clear", KEYSPACE | DANGEROUS),
    ("cache.config", ADMIN | DANGEROUS),
    // Server-to-server commands: only the peer user should run them.
    ("cluster.peer", ADMIN | DANGEROUS),
    ("pubsub.relay", ADMIN | DANGEROUS),
    // ACL: reading or changing users is administration; asking about oneself is not.
    ("acl|cat", 0),
    ("acl|whoami", 0),
    ("acl|genpass", 0),
    ("acl|help", 0),
    ("acl", 0),
];

/// What a command's group says about it.
fn of_group(group: &str) -> Categories {
    match group {
        "string" => STRING,
        "hash" => HASH,
        "list" => LIST,
        "set" => SET,
        "sorted-set" => SORTEDSET,
        "pubsub" => PUBSUB,
        "transactions" => TRANSACTION,
        "connection" => CONNECTION,
        "generic" => KEYSPACE,
        _ => 0,
    }
}

/// The categories of one command or subcommand.
pub fn of(spec: &CommandSpec) -> Categories {
    let base = EXCEPTIONS
        .iter()
        .find(|(n, _)| *n == spec.name)
        .map_or_else(|| of_group(spec.group), |(_, c)| *c);
    // ACL subcommands other than the harmless ones administer users.
    let admin_acl = spec.name.starts_with("acl|") && base == of_group(spec.group) && {
        !matches!(
            spec.name,
            "acl|cat" | "acl|whoami" | "acl|genpass" | "acl|help"
        )
    };
    let f = spec.flags;
    let mut c = base;
    if f.has(Flags::WRITE) {
        c |= WRITE;
    }
    if f.has(Flags::READONLY) && c & PUBSUB == 0 {
        c |= READ;
    }
    if f.has(Flags::ADMIN) || admin_acl {
        c |= ADMIN | DANGEROUS;
    }
    if f.has(Flags::BLOCKING) {
        c |= BLOCKING;
    }
    c | if f.has(Flags::FAST) { FAST } else { SLOW }
}

/// Every command and subcommand in `set`, by name (`container|sub` for subcommands), in
/// table order (ACL CAT category).
pub fn commands_in(set: Categories) -> Vec<&'static str> {
    let mut out = Vec::new();
    for s in SPECS {
        if s.subcommands.is_empty() {
            if of(s) & set != 0 {
                out.push(s.name);
            }
        } else {
            out.extend(
                s.subcommands
                    .iter()
                    .filter(|x| of(x) & set != 0)
                    .map(|x| x.name),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::CommandId;

    fn cats(name: &[u8]) -> Vec<&'static str> {
        let id = CommandId::lookup(name).expect("command");
        names(of(id.spec())).collect()
    }

    #[test]
    fn categories_match_redis() {
        assert_eq!(cats(b"get"), ["read", "string", "fast"]);
        assert_eq!(cats(b"set"), ["write", "string", "slow"]);
        assert_eq!(cats(b"hset"), ["write", "hash", "fast"]);
        assert_eq!(cats(b"zadd"), ["write", "sortedset", "fast"]);
        assert_eq!(cats(b"blpop"), ["write", "list", "slow", "blocking"]);
        assert_eq!(cats(b"del"), ["keyspace", "write", "slow"]);
        assert_eq!(cats(b"keys"), ["keyspace", "read", "slow", "dangerous"]);
        assert_eq!(
            cats(b"flushall"),
            ["keyspace", "write", "slow", "dangerous"]
        );
        assert_eq!(cats(b"publish"), ["pubsub", "fast"]);
        assert_eq!(cats(b"subscribe"), ["pubsub", "slow"]);
        assert_eq!(cats(b"multi"), ["fast", "transaction"]);
        assert_eq!(cats(b"ping"), ["fast", "connection"]);
        assert_eq!(cats(b"debug"), ["admin", "slow", "dangerous"]);
        assert_eq!(cats(b"pubsub.relay"), ["admin", "fast", "dangerous"]);
        let kill = CommandId::lookup(b"client")
            .and_then(|c| c.spec().sub(&["client", "kill"]))
            .expect("client kill");
        assert_eq!(
            names(of(kill)).collect::<Vec<_>>(),
            ["admin", "slow", "dangerous", "connection"]
        );
    }

    #[test]
    fn every_command_is_fast_or_slow() {
        for s in SPECS {
            for x in std::iter::once(s).chain(s.subcommands) {
                let c = of(x);
                assert!((c & FAST == 0) != (c & SLOW == 0), "{}", x.name);
            }
        }
        assert!(commands_in(DANGEROUS).contains(&"flushall"));
        assert!(commands_in(READ).contains(&"get"));
        assert!(!commands_in(READ).contains(&"set"));
        assert_eq!(by_name("READ"), Some(READ));
        assert_eq!(by_name("nosuch"), None);
    }
}
