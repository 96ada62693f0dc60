//! Commands: one table, one struct per command, one file per family.
//!
//! Owns parsing arguments into command values and executing them against an
//! [`ExecCtx`]. A command never touches a socket: `exec` returns a [`Reply`] and its
//! writes go through the `Db`, which records their effects. That is what lets the same
//! command be logged, replicated, queued in MULTI, forwarded or unit-tested.
//!
//! Adding a command: write its struct with `Exec` in the family file, add one line to
//! `command_table!` below.

/// A command that is another one's parsing and running with a fixed time unit (EXPIRE and
/// PEXPIREAT are `SetExpiry` in seconds and in absolute milliseconds; HEXPIRE and its
/// kin are `FieldExpire`): one struct per name, for the command table.
macro_rules! unit_variant {
    ($name:ident, $inner:ident, $unit:expr, $cmd:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $name<'a>($inner<'a>);

        impl<'a> Exec<'a> for $name<'a> {
            fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
                Ok($name($inner::parse(args)?))
            }
            fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
                self.0.run(ctx, $unit, $cmd)
            }
        }
    };
}

pub mod acl;
pub mod cache;
pub mod client;
pub mod cluster;
pub mod connection;
pub mod ctx;
pub mod debug;
pub mod docs;
pub mod expire;
pub mod hash;
pub mod introspect;
pub mod keys;
pub mod list;
pub mod pubsub;
pub mod replication;
pub mod server;
pub mod set;
pub mod spec;
pub mod strings;
pub mod tracking;
pub mod tx;
pub mod zset;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

pub use ctx::ExecCtx;
pub use spec::{CommandSpec, Flags, Keys};

use crate::protocol::{Args, Reply};
use crate::store::{NotLocked, WriteError};

/// An error reply. Each variant is one Redis error, word for word.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CmdError {
    /// `ERR <message>`.
    #[error("ERR {0}")]
    Err(Cow<'static, str>),
    /// An error with its own prefix (`NOPROTO ...`, `EXECABORT ...`).
    #[error("{0}")]
    Prefixed(Cow<'static, str>),
    /// The key holds another type.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// Options that do not parse.
    #[error("ERR syntax error")]
    Syntax,
    /// An argument or stored value that is not a 64-bit integer.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// An argument or stored value that is not a float.
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// INCR/DECR past the i64 range.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// Wrong argument count; holds the command name as the client typed it (lower-cased).
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    /// The command does not exist.
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand {
        /// The name sent.
        name: String,
        /// The first arguments, quoted as Redis does.
        args: String,
    },
    /// A container command's subcommand does not exist.
    #[error("ERR unknown subcommand '{sub}'. Try {cmd} HELP.")]
    UnknownSubcommand {
        /// The container (upper case).
        cmd: &'static str,
        /// The subcommand sent.
        sub: String,
    },
    /// `requirepass` is set and the client has not authenticated.
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    /// AUTH with a wrong password.
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    /// Over `maxmemory` with nothing evictable (Redis's text).
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    OutOfMemory,
    /// A Terrace bug (a key outside the locked shards), reported instead of a deadlock.
    #[error("ERR internal error: {0}")]
    Internal(Cow<'static, str>),
}

impl CmdError {
    /// `ERR <msg>`.
    pub fn err(msg: impl Into<Cow<'static, str>>) -> CmdError {
        CmdError::Err(msg.into())
    }

    /// `ERR invalid expire time in '<cmd>' command`.
    pub fn invalid_expire(cmd: &str) -> CmdError {
        CmdError::Err(format!("invalid expire time in '{cmd}' command").into())
    }

    /// The error as a reply.
    pub fn into_reply(self) -> Reply {
        Reply::Error(self.to_string().into())
    }

    /// The unknown-command error for `args`, quoting the first arguments like Redis.
    pub fn unknown_command<A: AsRef<[u8]>>(args: &[A]) -> CmdError {
        let name = args
            .first()
            .map(|n| lossy(n.as_ref(), 128))
            .unwrap_or_default();
        let quoted: String = args
            .iter()
            .skip(1)
            .take(3)
            .map(|a| format!("'{}' ", lossy(a.as_ref(), 128)))
            .collect();
        CmdError::UnknownCommand { name, args: quoted }
    }
}

impl From<NotLocked> for CmdError {
    fn from(e: NotLocked) -> CmdError {
        CmdError::Internal(e.to_string().into())
    }
}

impl From<WriteError> for CmdError {
    fn from(e: WriteError) -> CmdError {
        match e {
            WriteError::NotLocked(e) => e.into(),
            full @ WriteError::CacheFull { .. } => CmdError::Prefixed(full.to_string().into()),
        }
    }
}

impl From<crate::store::CollError> for CmdError {
    fn from(e: crate::store::CollError) -> CmdError {
        match e {
            crate::store::CollError::NotLocked(e) => e.into(),
            crate::store::CollError::WrongType => CmdError::WrongType,
            crate::store::CollError::Full(e) => e.into(),
        }
    }
}

/// Lossy UTF-8 of at most `max` bytes, for error messages.
pub fn lossy(b: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&b[..b.len().min(max)]).into_owned()
}

/// Implemented by every command struct. A command borrows its arguments (`'a`) from the
/// connection's read buffer: parsing copies nothing, and only what a command stores is
/// copied, by the store.
pub trait Exec<'a>: Sized {
    /// Builds the command from its arguments (after the name, and after the subcommand for
    /// a container's subcommand). Arity has already been checked against the table.
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError>;
    /// Runs it.
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError>;
}

macro_rules! command_table {
    ($( $variant:ident ( $ty:ty ) = $spec:expr ; )*) => {
        /// A parsed command, ready to execute; it borrows its arguments.
        #[derive(Debug)]
        pub enum Command<'a> {
            $( #[allow(missing_docs)] $variant($ty), )*
        }

        /// Index of a command in the table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CommandId {
            $( #[allow(missing_docs)] $variant, )*
        }

        /// Every command's spec, in table order.
        pub static SPECS: &[CommandSpec] = &[ $( $spec, )* ];

        const IDS: &[CommandId] = &[ $( CommandId::$variant, )* ];

        impl<'a> Command<'a> {
            /// Parses the arguments of command `id` (name and subcommand not included for
            /// plain commands; containers see their subcommand first).
            pub fn parse(id: CommandId, args: &mut Args<'a>) -> Result<Command<'a>, CmdError> {
                Ok(match id {
                    $( CommandId::$variant => Command::$variant(<$ty as Exec<'a>>::parse(args)?), )*
                })
            }

            /// Executes the command.
            pub fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
                match self {
                    $( Command::$variant(c) => c.exec(ctx), )*
                }
            }
        }
    };
}

command_table! {
    // strings
    Get(strings::Get<'a>) = CommandSpec::new("get", 2, "string", "1.0.0", "Returns the string value of a key.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    Set(strings::Set<'a>) = CommandSpec::new("set", -3, "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, 1, 1);
    SetNx(strings::SetNx<'a>) = CommandSpec::new("setnx", 3, "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    SetEx(strings::SetEx<'a>) = CommandSpec::new("setex", 4, "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, 1, 1);
    PSetEx(strings::PSetEx<'a>) = CommandSpec::new("psetex", 4, "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, 1, 1);
    GetSet(strings::GetSet<'a>) = CommandSpec::new("getset", 3, "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    GetDel(strings::GetDel<'a>) = CommandSpec::new("getdel", 2, "string", "6.2.0", "Returns the string value of a key after deleting the key.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    GetEx(strings::GetEx<'a>) = CommandSpec::new("getex", -2, "string", "6.2.0", "Returns the string value of a key after setting its expiration time.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    MGet(strings::MGet<'a>) = CommandSpec::new("mget", -2, "string", "1.0.0", "Atomically returns the string values of one or more keys.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, -1, 1);
    MSet(strings::MSet<'a>) = CommandSpec::new("mset", -3, "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, -1, 2);
    MSetNx(strings::MSetNx<'a>) = CommandSpec::new("msetnx", -3, "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, -1, 2);
    Append(strings::Append<'a>) = CommandSpec::new("append", 3, "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    StrLen(strings::StrLen<'a>) = CommandSpec::new("strlen", 2, "string", "2.2.0", "Returns the length of a string value.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    Incr(strings::Incr<'a>) = CommandSpec::new("incr", 2, "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    Decr(strings::Decr<'a>) = CommandSpec::new("decr", 2, "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    IncrBy(strings::IncrBy<'a>) = CommandSpec::new("incrby", 3, "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    DecrBy(strings::DecrBy<'a>) = CommandSpec::new("decrby", 3, "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    IncrByFloat(strings::IncrByFloat<'a>) = CommandSpec::new("incrbyfloat", 3, "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    GetRange(strings::GetRange<'a>) = CommandSpec::new("getrange", 4, "string", "2.4.0", "Returns a substring of the string stored at a key.").flags(Flags::READONLY).keys(1, 1, 1);
    SetRange(strings::SetRange<'a>) = CommandSpec::new("setrange", 4, "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, 1, 1);
    DelIfEq(strings::DelIfEq<'a>) = CommandSpec::new("delifeq", 3, "string", "9.0.0", "Deletes the key if its value matches the given string.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    Substr(strings::GetRange<'a>) = CommandSpec::new("substr", 4, "string", "1.0.0", "Returns a substring from a string value.").flags(Flags::READONLY).keys(1, 1, 1);
    // keys
    Del(keys::Del<'a>) = CommandSpec::new("del", -2, "generic", "1.0.0", "Deletes one or more keys.").flags(Flags::WRITE).keys(1, -1, 1);
    Unlink(keys::Del<'a>) = CommandSpec::new("unlink", -2, "generic", "4.0.0", "Asynchronously deletes one or more keys.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, -1, 1);
    Exists(keys::Exists<'a>) = CommandSpec::new("exists", -2, "generic", "1.0.0", "Determines whether one or more keys exist.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, -1, 1);
    Type(keys::Type<'a>) = CommandSpec::new("type", 2, "generic", "1.0.0", "Determines the type of value stored at a key.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    Keys(keys::KeysCmd<'a>) = CommandSpec::new("keys", 2, "generic", "1.0.0", "Returns all key names that match a pattern.").flags(Flags::READONLY).all_keys();
    Scan(keys::Scan<'a>) = CommandSpec::new("scan", -2, "generic", "2.8.0", "Iterates over the key names in the database.").flags(Flags::READONLY).all_keys();
    Rename(keys::Rename<'a>) = CommandSpec::new("rename", 3, "generic", "1.0.0", "Renames a key and overwrites the destination.").flags(Flags::WRITE).keys(1, 2, 1);
    RenameNx(keys::RenameNx<'a>) = CommandSpec::new("renamenx", 3, "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 2, 1);
    RandomKey(keys::RandomKey) = CommandSpec::new("randomkey", 1, "generic", "1.0.0", "Returns a random key name from the database.").flags(Flags::READONLY).all_keys();
    Touch(keys::Touch<'a>) = CommandSpec::new("touch", -2, "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, -1, 1);
    Copy(keys::Copy<'a>) = CommandSpec::new("copy", -3, "generic", "6.2.0", "Copies the value of a key to a new key.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, 2, 1);
    DbSize(keys::DbSize) = CommandSpec::new("dbsize", 1, "server", "1.0.0", "Returns the number of keys in the database.").flags(Flags::READONLY.with(Flags::FAST)).all_keys();
    FlushDb(keys::Flush) = CommandSpec::new("flushdb", -1, "server", "1.0.0", "Remove all keys from the current database.").flags(Flags::WRITE).all_keys();
    FlushAll(keys::Flush) = CommandSpec::new("flushall", -1, "server", "1.0.0", "Removes all keys from all databases.").flags(Flags::WRITE).all_keys();
    Object(keys::Object<'a>) = CommandSpec::new("object", -2, "generic", "2.2.3", "A container for object introspection commands.").subs(keys::OBJECT_SUBS);
    // expiry
    Expire(expire::Expire<'a>) = CommandSpec::new("expire", -3, "generic", "1.0.0", "Sets the expiration time of a key in seconds.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    PExpire(expire::PExpire<'a>) = CommandSpec::new("pexpire", -3, "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    ExpireAt(expire::ExpireAt<'a>) = CommandSpec::new("expireat", -3, "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    PExpireAt(expire::PExpireAt<'a>) = CommandSpec::new("pexpireat", -3, "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    Ttl(expire::Ttl<'a>) = CommandSpec::new("ttl", 2, "generic", "1.0.0", "Returns the expiration time in seconds of a key.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    PTtl(expire::PTtl<'a>) = CommandSpec::new("pttl", 2, "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    ExpireTime(expire::ExpireTime<'a>) = CommandSpec::new("expiretime", 2, "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    PExpireTime(expire::PExpireTime<'a>) = CommandSpec::new("pexpiretime", 2, "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    Persist(expire::Persist<'a>) = CommandSpec::new("persist", 2, "generic", "2.2.0", "Removes the expiration time of a key.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    // transactions
    Multi(tx::Multi) = CommandSpec::new("multi", 1, "transactions", "1.2.0", "Starts a transaction.").flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE).with(Flags::FAST));
    Exec(tx::ExecCmd) = CommandSpec::new("exec", 1, "transactions", "1.2.0", "Executes all commands in a transaction.").flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE));
    Discard(tx::Discard) = CommandSpec::new("discard", 1, "transactions", "2.0.0", "Discards a transaction.").flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE).with(Flags::FAST));
    Watch(tx::WatchCmd<'a>) = CommandSpec::new("watch", -2, "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction.").flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE).with(Flags::FAST)).keys(1, -1, 1);
    Unwatch(tx::Unwatch) = CommandSpec::new("unwatch", 1, "transactions", "2.2.0", "Forgets about watched keys of a transaction.").flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE).with(Flags::FAST));
    // pub/sub
    Subscribe(pubsub::Subscribe<'a>) = CommandSpec::new("subscribe", -2, "pubsub", "2.0.0", "Listens for messages published to channels.").flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE));
    Unsubscribe(pubsub::Unsubscribe<'a>) = CommandSpec::new("unsubscribe", -1, "pubsub", "2.0.0", "Stops listening to messages posted to channels.").flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE));
    PSubscribe(pubsub::PSubscribe<'a>) = CommandSpec::new("psubscribe", -2, "pubsub", "2.0.0", "Listens for messages published to channels that match one or more patterns.").flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE));
    PUnsubscribe(pubsub::PUnsubscribe<'a>) = CommandSpec::new("punsubscribe", -1, "pubsub", "2.0.0", "Stops listening to messages published to channels that match one or more patterns.").flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE));
    Publish(pubsub::Publish<'a>) = CommandSpec::new("publish", 3, "pubsub", "2.0.0", "Posts a message to a channel.").flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE).with(Flags::FAST));
    PubSub(pubsub::PubSubCmd<'a>) = CommandSpec::new("pubsub", -2, "pubsub", "2.8.0", "A container for Pub/Sub commands.").subs(pubsub::SUBS);
    // hash
    HSet(hash::HSet<'a>) = CommandSpec::new("hset", -4, "hash", "2.0.0", "Creates or modifies the value of a field in a hash.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    HGet(hash::HGet<'a>) = CommandSpec::new("hget", 3, "hash", "2.0.0", "Returns the value of a field in a hash.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    HMGet(hash::HMGet<'a>) = CommandSpec::new("hmget", -3, "hash", "2.0.0", "Returns the values of all fields in a hash.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    HMSet(hash::HMSet<'a>) = CommandSpec::new("hmset", -4, "hash", "2.0.0", "Sets the values of multiple fields.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    HGetAll(hash::HGetAll<'a>) = CommandSpec::new("hgetall", 2, "hash", "2.0.0", "Returns all fields and values in a hash.").flags(Flags::READONLY).keys(1, 1, 1);
    HDel(hash::HDel<'a>) = CommandSpec::new("hdel", -3, "hash", "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    HExists(hash::HExists<'a>) = CommandSpec::new("hexists", 3, "hash", "2.0.0", "Determines whether a field exists in a hash.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    HLen(hash::HLen<'a>) = CommandSpec::new("hlen", 2, "hash", "2.0.0", "Returns the number of fields in a hash.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    HKeys(hash::HKeys<'a>) = CommandSpec::new("hkeys", 2, "hash", "2.0.0", "Returns all fields in a hash.").flags(Flags::READONLY).keys(1, 1, 1);
    HVals(hash::HVals<'a>) = CommandSpec::new("hvals", 2, "hash", "2.0.0", "Returns all values in a hash.").flags(Flags::READONLY).keys(1, 1, 1);
    HIncrBy(hash::HIncrBy<'a>) = CommandSpec::new("hincrby", 4, "hash", "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    HIncrByFloat(hash::HIncrByFloat<'a>) = CommandSpec::new("hincrbyfloat", 4, "hash", "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    HSetNx(hash::HSetNx<'a>) = CommandSpec::new("hsetnx", 4, "hash", "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    HStrLen(hash::HStrLen<'a>) = CommandSpec::new("hstrlen", 3, "hash", "3.2.0", "Returns the length of the value of a field.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    HRandField(hash::HRandField<'a>) = CommandSpec::new("hrandfield", -2, "hash", "6.2.0", "Returns one or more random fields from a hash.").flags(Flags::READONLY).keys(1, 1, 1);
    HScan(hash::HScan<'a>) = CommandSpec::new("hscan", -3, "hash", "2.8.0", "Iterates over fields and values of a hash.").flags(Flags::READONLY).keys(1, 1, 1);
    HExpire(hash::HExpire<'a>) = CommandSpec::new("hexpire", -6, "hash", "7.4.0", "Set expiry for hash field using relative time to expire (seconds)").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    HPExpire(hash::HPExpire<'a>) = CommandSpec::new("hpexpire", -6, "hash", "7.4.0", "Set expiry for hash field using relative time to expire (milliseconds)").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    HExpireAt(hash::HExpireAt<'a>) = CommandSpec::new("hexpireat", -6, "hash", "7.4.0", "Set expiry for hash field using an absolute Unix timestamp (seconds)").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    HPExpireAt(hash::HPExpireAt<'a>) = CommandSpec::new("hpexpireat", -6, "hash", "7.4.0", "Set expiry for hash field using an absolute Unix timestamp (milliseconds)").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    HTtl(hash::HTtl<'a>) = CommandSpec::new("httl", -5, "hash", "7.4.0", "Returns the TTL in seconds of a hash field.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    HPTtl(hash::HPTtl<'a>) = CommandSpec::new("hpttl", -5, "hash", "7.4.0", "Returns the TTL in milliseconds of a hash field.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    HExpireTime(hash::HExpireTime<'a>) = CommandSpec::new("hexpiretime", -5, "hash", "7.4.0", "Returns the expiration time of a hash field as a Unix timestamp, in seconds.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    HPExpireTime(hash::HPExpireTime<'a>) = CommandSpec::new("hpexpiretime", -5, "hash", "7.4.0", "Returns the expiration time of a hash field as a Unix timestamp, in msec.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    HPersist(hash::HPersist<'a>) = CommandSpec::new("hpersist", -5, "hash", "7.4.0", "Removes the expiration time for each specified field").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    SSubscribe(pubsub::SSubscribe<'a>) = CommandSpec::new("ssubscribe", -2, "pubsub", "7.0.0", "Listens for messages published to shard channels.").flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE)).keys(1, -1, 1);
    SUnsubscribe(pubsub::SUnsubscribe<'a>) = CommandSpec::new("sunsubscribe", -1, "pubsub", "7.0.0", "Stops listening to messages posted to shard channels.").flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE)).keys(1, -1, 1);
    SPublish(pubsub::SPublish<'a>) = CommandSpec::new("spublish", 3, "pubsub", "7.0.0", "Post a message to a shard channel").flags(Flags::LOADING.with(Flags::STALE).with(Flags::FAST)).keys(1, 1, 1);
    PubSubRelay(pubsub::Relay<'a>) = CommandSpec::new("pubsub.relay", 4, "terrace", "0.1.0", "Delivers another Terrace server's PUBLISH, SPUBLISH or keyspace notification to this server's subscribers (peer connections only).").flags(Flags::LOADING.with(Flags::STALE).with(Flags::FAST));
    // sets
    SAdd(set::SAdd<'a>) = CommandSpec::new("sadd", -3, "set", "1.0.0", "Adds one or more members to a set. Creates the key if it doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    SRem(set::SRem<'a>) = CommandSpec::new("srem", -3, "set", "1.0.0", "Removes one or more members from a set. Deletes the set if the last member was removed.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    SMembers(set::SMembers<'a>) = CommandSpec::new("smembers", 2, "set", "1.0.0", "Returns all members of a set.").flags(Flags::READONLY).keys(1, 1, 1);
    SIsMember(set::SIsMember<'a>) = CommandSpec::new("sismember", 3, "set", "1.0.0", "Determines whether a member belongs to a set.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    SMIsMember(set::SMIsMember<'a>) = CommandSpec::new("smismember", -3, "set", "6.2.0", "Determines whether multiple members belong to a set.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    SCard(set::SCard<'a>) = CommandSpec::new("scard", 2, "set", "1.0.0", "Returns the number of members in a set.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    SPop(set::SPop<'a>) = CommandSpec::new("spop", -2, "set", "1.0.0", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    SRandMember(set::SRandMember<'a>) = CommandSpec::new("srandmember", -2, "set", "1.0.0", "Get one or multiple random members from a set").flags(Flags::READONLY).keys(1, 1, 1);
    SMove(set::SMove<'a>) = CommandSpec::new("smove", 4, "set", "1.0.0", "Moves a member from one set to another.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 2, 1);
    SInter(set::SInter<'a>) = CommandSpec::new("sinter", -2, "set", "1.0.0", "Returns the intersect of multiple sets.").flags(Flags::READONLY).keys(1, -1, 1);
    SInterCard(set::SInterCard<'a>) = CommandSpec::new("sintercard", -3, "set", "7.0.0", "Returns the number of members of the intersect of multiple sets.").flags(Flags::READONLY).numkeys(1);
    SUnion(set::SUnion<'a>) = CommandSpec::new("sunion", -2, "set", "1.0.0", "Returns the union of multiple sets.").flags(Flags::READONLY).keys(1, -1, 1);
    SDiff(set::SDiff<'a>) = CommandSpec::new("sdiff", -2, "set", "1.0.0", "Returns the difference of multiple sets.").flags(Flags::READONLY).keys(1, -1, 1);
    SInterStore(set::SInterStore<'a>) = CommandSpec::new("sinterstore", -3, "set", "1.0.0", "Stores the intersect of multiple sets in a key.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, -1, 1);
    SUnionStore(set::SUnionStore<'a>) = CommandSpec::new("sunionstore", -3, "set", "1.0.0", "Stores the union of multiple sets in a key.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, -1, 1);
    SDiffStore(set::SDiffStore<'a>) = CommandSpec::new("sdiffstore", -3, "set", "1.0.0", "Stores the difference of multiple sets in a key.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, -1, 1);
    SScan(set::SScan<'a>) = CommandSpec::new("sscan", -3, "set", "2.8.0", "Iterates over members of a set.").flags(Flags::READONLY).keys(1, 1, 1);
    // sorted sets
    ZAdd(zset::ZAdd<'a>) = CommandSpec::new("zadd", -4, "sorted-set", "1.2.0", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    ZIncrBy(zset::ZIncrBy<'a>) = CommandSpec::new("zincrby", 4, "sorted-set", "1.2.0", "Increments the score of a member in a sorted set.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    ZRem(zset::ZRem<'a>) = CommandSpec::new("zrem", -3, "sorted-set", "1.2.0", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    ZScore(zset::ZScore<'a>) = CommandSpec::new("zscore", 3, "sorted-set", "1.2.0", "Returns the score of a member in a sorted set.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    ZMScore(zset::ZMScore<'a>) = CommandSpec::new("zmscore", -3, "sorted-set", "6.2.0", "Returns the score of one or more members in a sorted set.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    ZCard(zset::ZCard<'a>) = CommandSpec::new("zcard", 2, "sorted-set", "1.2.0", "Returns the number of members in a sorted set.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    ZCount(zset::ZCount<'a>) = CommandSpec::new("zcount", 4, "sorted-set", "2.0.0", "Returns the count of members in a sorted set that have scores within a range.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    ZLexCount(zset::ZLexCount<'a>) = CommandSpec::new("zlexcount", 4, "sorted-set", "2.8.9", "Returns the number of members in a sorted set within a lexicographical range.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    ZRange(zset::ZRange<'a>) = CommandSpec::new("zrange", -4, "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes.").flags(Flags::READONLY).keys(1, 1, 1);
    ZRevRange(zset::ZRevRange<'a>) = CommandSpec::new("zrevrange", -4, "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes in reverse order.").flags(Flags::READONLY).keys(1, 1, 1);
    ZRangeByScore(zset::ZRangeByScore<'a>) = CommandSpec::new("zrangebyscore", -4, "sorted-set", "1.0.5", "Returns members in a sorted set within a range of scores.").flags(Flags::READONLY).keys(1, 1, 1);
    ZRevRangeByScore(zset::ZRevRangeByScore<'a>) = CommandSpec::new("zrevrangebyscore", -4, "sorted-set", "2.2.0", "Returns members in a sorted set within a range of scores in reverse order.").flags(Flags::READONLY).keys(1, 1, 1);
    ZRangeByLex(zset::ZRangeByLex<'a>) = CommandSpec::new("zrangebylex", -4, "sorted-set", "2.8.9", "Returns members in a sorted set within a lexicographical range.").flags(Flags::READONLY).keys(1, 1, 1);
    ZRevRangeByLex(zset::ZRevRangeByLex<'a>) = CommandSpec::new("zrevrangebylex", -4, "sorted-set", "2.8.9", "Returns members in a sorted set within a lexicographical range in reverse order.").flags(Flags::READONLY).keys(1, 1, 1);
    ZRangeStore(zset::ZRangeStore<'a>) = CommandSpec::new("zrangestore", -5, "sorted-set", "6.2.0", "Stores a range of members from sorted set in a key.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, 2, 1);
    ZRank(zset::ZRank<'a>) = CommandSpec::new("zrank", -3, "sorted-set", "2.0.0", "Returns the index of a member in a sorted set ordered by ascending scores.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    ZRevRank(zset::ZRevRank<'a>) = CommandSpec::new("zrevrank", -3, "sorted-set", "2.0.0", "Returns the index of a member in a sorted set ordered by descending scores.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    ZPopMin(zset::ZPopMin<'a>) = CommandSpec::new("zpopmin", -2, "sorted-set", "5.0.0", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    ZPopMax(zset::ZPopMax<'a>) = CommandSpec::new("zpopmax", -2, "sorted-set", "5.0.0", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    ZMPop(zset::ZMPop<'a>) = CommandSpec::new("zmpop", -4, "sorted-set", "7.0.0", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.").flags(Flags::WRITE).numkeys(1);
    BZPopMin(zset::BZPopMin<'a>) = CommandSpec::new("bzpopmin", -3, "sorted-set", "5.0.0", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.").flags(Flags::WRITE.with(Flags::BLOCKING).with(Flags::FAST)).keys(1, -2, 1);
    BZPopMax(zset::BZPopMax<'a>) = CommandSpec::new("bzpopmax", -3, "sorted-set", "5.0.0", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.").flags(Flags::WRITE.with(Flags::BLOCKING).with(Flags::FAST)).keys(1, -2, 1);
    BZMPop(zset::BZMPop<'a>) = CommandSpec::new("bzmpop", -5, "sorted-set", "7.0.0", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.").flags(Flags::WRITE.with(Flags::BLOCKING)).numkeys(2);
    ZRandMember(zset::ZRandMember<'a>) = CommandSpec::new("zrandmember", -2, "sorted-set", "6.2.0", "Returns one or more random members from a sorted set.").flags(Flags::READONLY).keys(1, 1, 1);
    ZRemRangeByScore(zset::ZRemRangeByScore<'a>) = CommandSpec::new("zremrangebyscore", 4, "sorted-set", "1.2.0", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.").flags(Flags::WRITE).keys(1, 1, 1);
    ZRemRangeByRank(zset::ZRemRangeByRank<'a>) = CommandSpec::new("zremrangebyrank", 4, "sorted-set", "2.0.0", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.").flags(Flags::WRITE).keys(1, 1, 1);
    ZRemRangeByLex(zset::ZRemRangeByLex<'a>) = CommandSpec::new("zremrangebylex", 4, "sorted-set", "2.8.9", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.").flags(Flags::WRITE).keys(1, 1, 1);
    ZUnion(zset::ZUnion<'a>) = CommandSpec::new("zunion", -3, "sorted-set", "6.2.0", "Returns the union of multiple sorted sets.").flags(Flags::READONLY).numkeys(1);
    ZInter(zset::ZInter<'a>) = CommandSpec::new("zinter", -3, "sorted-set", "6.2.0", "Returns the intersect of multiple sorted sets.").flags(Flags::READONLY).numkeys(1);
    ZDiff(zset::ZDiff<'a>) = CommandSpec::new("zdiff", -3, "sorted-set", "6.2.0", "Returns the difference between multiple sorted sets.").flags(Flags::READONLY).numkeys(1);
    ZUnionStore(zset::ZUnionStore<'a>) = CommandSpec::new("zunionstore", -4, "sorted-set", "2.0.0", "Stores the union of multiple sorted sets in a key.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, 1, 1).numkeys(2);
    ZInterStore(zset::ZInterStore<'a>) = CommandSpec::new("zinterstore", -4, "sorted-set", "2.0.0", "Stores the intersect of multiple sorted sets in a key.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, 1, 1).numkeys(2);
    ZDiffStore(zset::ZDiffStore<'a>) = CommandSpec::new("zdiffstore", -4, "sorted-set", "6.2.0", "Stores the difference of multiple sorted sets in a key.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, 1, 1).numkeys(2);
    ZInterCard(zset::ZInterCard<'a>) = CommandSpec::new("zintercard", -3, "sorted-set", "7.0.0", "Returns the number of members of the intersect of multiple sorted sets.").flags(Flags::READONLY).numkeys(1);
    ZScan(zset::ZScan<'a>) = CommandSpec::new("zscan", -3, "sorted-set", "2.8.0", "Iterates over members and scores of a sorted set.").flags(Flags::READONLY).keys(1, 1, 1);
    // lists
    LPush(list::LPush<'a>) = CommandSpec::new("lpush", -3, "list", "1.0.0", "Prepends one or more elements to a list. Creates the key if it doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    RPush(list::RPush<'a>) = CommandSpec::new("rpush", -3, "list", "1.0.0", "Appends one or more elements to a list. Creates the key if it doesn't exist.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    LPushX(list::LPushX<'a>) = CommandSpec::new("lpushx", -3, "list", "2.2.0", "Prepends one or more elements to a list only when the list exists.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    RPushX(list::RPushX<'a>) = CommandSpec::new("rpushx", -3, "list", "2.2.0", "Appends an element to a list only when the list exists.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST)).keys(1, 1, 1);
    LPop(list::LPop<'a>) = CommandSpec::new("lpop", -2, "list", "1.0.0", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    RPop(list::RPop<'a>) = CommandSpec::new("rpop", -2, "list", "1.0.0", "Returns and removes the last elements of a list. Deletes the list if the last element was popped.").flags(Flags::WRITE.with(Flags::FAST)).keys(1, 1, 1);
    LLen(list::LLen<'a>) = CommandSpec::new("llen", 2, "list", "1.0.0", "Returns the length of a list.").flags(Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1);
    LRange(list::LRange<'a>) = CommandSpec::new("lrange", 4, "list", "1.0.0", "Returns a range of elements from a list.").flags(Flags::READONLY).keys(1, 1, 1);
    LIndex(list::LIndex<'a>) = CommandSpec::new("lindex", 3, "list", "1.0.0", "Returns an element from a list by its index.").flags(Flags::READONLY).keys(1, 1, 1);
    LSet(list::LSet<'a>) = CommandSpec::new("lset", 4, "list", "1.0.0", "Sets the value of an element in a list by its index.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, 1, 1);
    LInsert(list::LInsert<'a>) = CommandSpec::new("linsert", 5, "list", "2.2.0", "Inserts an element before or after another element in a list.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, 1, 1);
    LRem(list::LRem<'a>) = CommandSpec::new("lrem", 4, "list", "1.0.0", "Removes elements from a list. Deletes the list if the last element was removed.").flags(Flags::WRITE).keys(1, 1, 1);
    LTrim(list::LTrim<'a>) = CommandSpec::new("ltrim", 4, "list", "1.0.0", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.").flags(Flags::WRITE).keys(1, 1, 1);
    LPos(list::LPos<'a>) = CommandSpec::new("lpos", -3, "list", "6.0.6", "Returns the index of matching elements in a list.").flags(Flags::READONLY).keys(1, 1, 1);
    LMove(list::LMove<'a>) = CommandSpec::new("lmove", 5, "list", "6.2.0", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, 2, 1);
    RPopLPush(list::RPopLPush<'a>) = CommandSpec::new("rpoplpush", 3, "list", "1.2.0", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.").flags(Flags::WRITE.with(Flags::DENYOOM)).keys(1, 2, 1);
    LMPop(list::LMPop<'a>) = CommandSpec::new("lmpop", -4, "list", "7.0.0", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.").flags(Flags::WRITE).numkeys(1);
    BLPop(list::BLPop<'a>) = CommandSpec::new("blpop", -3, "list", "2.0.0", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.").flags(Flags::WRITE.with(Flags::BLOCKING)).keys(1, -2, 1);
    BRPop(list::BRPop<'a>) = CommandSpec::new("brpop", -3, "list", "2.0.0", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.").flags(Flags::WRITE.with(Flags::BLOCKING)).keys(1, -2, 1);
    BLMove(list::BLMove<'a>) = CommandSpec::new("blmove", 6, "list", "6.2.0", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::BLOCKING)).keys(1, 2, 1);
    BRPopLPush(list::BRPopLPush<'a>) = CommandSpec::new("brpoplpush", 4, "list", "2.2.0", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.").flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::NOSCRIPT).with(Flags::BLOCKING)).keys(1, 2, 1);
    BLMPop(list::BLMPop<'a>) = CommandSpec::new("blmpop", -5, "list", "7.0.0", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.").flags(Flags::WRITE.with(Flags::BLOCKING)).numkeys(2);
    // caches
    CacheList(cache::CacheList) = CommandSpec::new("cache.list", 1, "terrace", "0.1.0", "Lists the named caches.").flags(Flags::READONLY.with(Flags::FAST));
    CacheInfo(cache::CacheInfo<'a>) = CommandSpec::new("cache.info", 2, "terrace", "0.1.0", "Returns a cache's policy and figures: entries, memory, hits, misses, evictions, expirations.").flags(Flags::READONLY);
    CacheSize(cache::CacheSize<'a>) = CommandSpec::new("cache.size", 2, "terrace", "0.1.0", "Returns the number of entries in a cache.").flags(Flags::READONLY.with(Flags::FAST));
    CacheClear(cache::CacheClear<'a>) = CommandSpec::new("cache.clear", 2, "terrace", "0.1.0", "Removes every entry of one cache.").flags(Flags::WRITE).all_keys();
    CacheConfig(cache::CacheConfigCmd<'a>) = CommandSpec::new("cache.config", -2, "terrace", "0.1.0", "Returns or changes a cache's ttl, tti, max_entries, max_memory or eviction.").flags(Flags::ADMIN);
    // connection
    Ping(connection::Ping<'a>) = CommandSpec::new("ping", -1, "connection", "1.0.0", "Returns the server's liveliness response.").flags(Flags::FAST.with(Flags::STALE));
    Echo(connection::Echo<'a>) = CommandSpec::new("echo", 2, "connection", "1.0.0", "Returns the given string.").flags(Flags::FAST.with(Flags::STALE));
    Quit(connection::Quit) = CommandSpec::new("quit", -1, "connection", "1.0.0", "Closes the connection.").flags(Flags::NO_AUTH.with(Flags::FAST).with(Flags::STALE).with(Flags::LOADING));
    Reset(connection::Reset) = CommandSpec::new("reset", 1, "connection", "6.2.0", "Resets the connection.").flags(Flags::NO_AUTH.with(Flags::FAST).with(Flags::STALE).with(Flags::LOADING));
    Select(connection::Select) = CommandSpec::new("select", 2, "connection", "1.0.0", "Changes the selected database.").flags(Flags::FAST.with(Flags::STALE).with(Flags::LOADING));
    Auth(connection::Auth<'a>) = CommandSpec::new("auth", -2, "connection", "1.0.0", "Authenticates the connection.").flags(Flags::NO_AUTH.with(Flags::FAST).with(Flags::STALE).with(Flags::LOADING));
    Hello(connection::Hello<'a>) = CommandSpec::new("hello", -1, "connection", "6.0.0", "Handshakes with the Redis server.").flags(Flags::NO_AUTH.with(Flags::FAST).with(Flags::STALE).with(Flags::LOADING));
    Acl(acl::AclCmd<'a>) = CommandSpec::new("acl", -2, "server", "6.0.0", "A container for Access List Control commands.").subs(acl::SUBS);
    Client(client::ClientCmd<'a>) = CommandSpec::new("client", -2, "connection", "2.4.0", "A container for client connection commands.").subs(client::SUBS);
    // server
    Command(introspect::CommandCmd<'a>) = CommandSpec::new("command", -1, "server", "2.8.13", "Returns detailed information about all commands.").flags(Flags::LOADING.with(Flags::STALE)).subs(introspect::SUBS);
    Info(server::Info) = CommandSpec::new("info", -1, "server", "1.0.0", "Returns information and statistics about the server.").flags(Flags::LOADING.with(Flags::STALE)).all_keys();
    Config(server::ConfigCmd<'a>) = CommandSpec::new("config", -2, "server", "2.0.0", "A container for server configuration commands.").subs(server::CONFIG_SUBS);
    Time(server::Time) = CommandSpec::new("time", 1, "server", "2.6.0", "Returns the server time.").flags(Flags::FAST.with(Flags::LOADING).with(Flags::STALE));
    Memory(server::MemoryCmd<'a>) = CommandSpec::new("memory", -2, "server", "4.0.0", "A container for memory diagnostics commands.").subs(server::MEMORY_SUBS);
    Slowlog(server::SlowlogCmd) = CommandSpec::new("slowlog", -2, "server", "2.2.12", "A container for slow log commands.").subs(server::SLOWLOG_SUBS);
    BgRewriteAof(server::BgRewriteAof) = CommandSpec::new("bgrewriteaof", 1, "server", "1.0.0", "Asynchronously rewrites the append-only file to disk.").flags(Flags::ADMIN.with(Flags::NOSCRIPT));
    // replication
    Wait(replication::Wait) = CommandSpec::new("wait", 3, "generic", "3.0.0", "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.").flags(Flags::NOSCRIPT.with(Flags::NO_MULTI));
    ReadOnly(replication::ReadOnly) = CommandSpec::new("readonly", 1, "cluster", "3.0.0", "Enables read-only queries for a connection to a Redis Cluster replica node.").flags(Flags::FAST.with(Flags::LOADING).with(Flags::STALE));
    ReadWrite(replication::ReadWrite) = CommandSpec::new("readwrite", 1, "cluster", "3.0.0", "Enables read-write queries for a connection to a Redis Cluster replica node.").flags(Flags::FAST.with(Flags::LOADING).with(Flags::STALE));
    Failover(replication::Failover) = CommandSpec::new("failover", -1, "server", "6.2.0", "Starts a coordinated failover from a server to one of its replicas.").flags(Flags::ADMIN.with(Flags::NOSCRIPT).with(Flags::STALE).with(Flags::NO_MULTI));
    Role(replication::Role) = CommandSpec::new("role", 1, "server", "2.8.12", "Returns the replication role.").flags(Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE).with(Flags::FAST));
    Cluster(cluster::ClusterCmd<'a>) = CommandSpec::new("cluster", -2, "cluster", "3.0.0", "A container for Redis Cluster commands.").subs(cluster::SUBS);
    ClusterPeer(cluster::Peer) = CommandSpec::new("cluster.peer", 1, "terrace", "0.1.0", "Marks this connection as another Terrace server's forwarding connection: it is served only this stripe's keys (MOVED otherwise) and never routed on.").flags(Flags::FAST.with(Flags::STALE).with(Flags::LOADING));
    Debug(debug::Debug<'a>) = CommandSpec::new("debug", -2, "server", "1.0.0", "A container for debugging commands (DIGEST, DIGEST-VALUE, CONTROL-ISOLATE).").flags(Flags::ADMIN.with(Flags::NOSCRIPT).with(Flags::LOADING).with(Flags::STALE));
    Shutdown(server::Shutdown) = CommandSpec::new("shutdown", -1, "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server.").flags(Flags::ADMIN.with(Flags::NOSCRIPT).with(Flags::LOADING).with(Flags::STALE).with(Flags::NO_MULTI));
}

/// Looks a request's command up and checks its arity (its subcommand's, for a container):
/// what every request goes through before it is authorized, parsed or queued. Returns the
/// command and its spec (the subcommand's, for a container).
pub fn resolve<A: AsRef<[u8]>>(args: &[A]) -> Result<(CommandId, &'static CommandSpec), CmdError> {
    let Some(id) = args.first().and_then(|n| CommandId::lookup(n.as_ref())) else {
        return Err(CmdError::unknown_command(args));
    };
    let spec = id.spec();
    if !spec.arity_ok(args.len()) {
        return Err(CmdError::WrongArity(spec.name.to_string()));
    }
    match spec.sub(args) {
        Some(sub) if !sub.arity_ok(args.len()) => Err(CmdError::WrongArity(sub.name.to_string())),
        Some(sub) => Ok((id, sub)),
        None => Ok((id, spec)),
    }
}

/// Parses a whole request (name first) into a command without running it: [`resolve`],
/// then the command's own argument parsing. The fuzz target `resp` drives this with
/// arbitrary arguments.
pub fn parse_request<'a>(args: &'a [&'a [u8]]) -> Result<Command<'a>, CmdError> {
    let (id, _) = resolve(args)?;
    Command::parse(id, &mut Args::new(&args[1..]))
}

/// Name → command, built once. Keys are lower case.
static BY_NAME: LazyLock<HashMap<&'static str, CommandId, ahash::RandomState>> =
    LazyLock::new(|| SPECS.iter().zip(IDS).map(|(s, id)| (s.name, *id)).collect());

impl CommandId {
    /// Looks a command up by name, case-insensitively.
    pub fn lookup(name: &[u8]) -> Option<CommandId> {
        let mut buf = [0u8; 32];
        let lower = buf.get_mut(..name.len())?;
        for (d, s) in lower.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        BY_NAME.get(std::str::from_utf8(lower).ok()?).copied()
    }

    /// The command's spec.
    pub fn spec(self) -> &'static CommandSpec {
        &SPECS[self as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(CommandId::lookup(b"GeT"), Some(CommandId::Get));
        assert_eq!(CommandId::lookup(b"flushall"), Some(CommandId::FlushAll));
        assert_eq!(CommandId::lookup(b"nosuch"), None);
        assert_eq!(CommandId::lookup(&[b'a'; 100]), None);
    }

    #[test]
    fn table_names_are_unique_and_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for s in SPECS {
            assert!(seen.insert(s.name), "duplicate {}", s.name);
            assert_eq!(s.name, s.name.to_lowercase());
            for sub in s.subcommands {
                assert!(
                    sub.name.starts_with(&format!("{}|", s.name)),
                    "{}",
                    sub.name
                );
            }
        }
    }

    #[test]
    fn requests_resolve_and_parse_without_running() {
        assert!(matches!(
            resolve(&[b"get".as_slice()]),
            Err(CmdError::WrongArity(n)) if n == "get"
        ));
        assert!(matches!(
            resolve(&[b"config".as_slice(), b"get"]),
            Err(CmdError::WrongArity(n)) if n == "config|get"
        ));
        assert!(matches!(
            resolve(&[b"nosuch".as_slice()]),
            Err(CmdError::UnknownCommand { .. })
        ));
        let (id, spec) = resolve(&[b"CONFIG".as_slice(), b"GET", b"x"]).expect("resolves");
        assert_eq!((id, spec.name), (CommandId::Config, "config|get"));
        assert!(matches!(
            parse_request(&[b"SET".as_slice(), b"k", b"v", b"EX", b"10"]),
            Ok(Command::Set(_))
        ));
        assert_eq!(
            parse_request(&[b"SETRANGE".as_slice(), b"k", b"x", b"v"]).map(|_| ()),
            Err(CmdError::NotInteger)
        );
    }

    #[test]
    fn unknown_command_text_matches_redis() {
        let e = CmdError::unknown_command(&[b"foo".as_slice(), b"a", b"b"]);
        assert_eq!(
            e.to_string(),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        let e = CmdError::unknown_command(&[b"foo".as_slice()]);
        assert_eq!(
            e.to_string(),
            "ERR unknown command 'foo', with args beginning with: "
        );
    }
}
