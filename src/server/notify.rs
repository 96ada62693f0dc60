//! Keyspace notifications (`notify-keyspace-events`): the event classes commands report
//! their changes under.
//!
//! Commands call [`ExecCtx::notify`](crate::command::ExecCtx::notify) once per change,
//! with Redis's event name (`hset`, `lpush`, `expire`, `del`, ...) and class.

/// An event class: one letter of `notify-keyspace-events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `g`: DEL, EXPIRE, RENAME, ... (type-independent commands).
    Generic,
    /// `$`: string commands.
    String,
    /// `l`: list commands.
    List,
    /// `s`: set commands.
    Set,
    /// `h`: hash commands.
    Hash,
    /// `z`: sorted-set commands.
    ZSet,
    /// `x`: a key removed because its TTL passed.
    Expired,
    /// `e`: a key evicted to make room.
    Evicted,
    /// `n`: a new key (off in `A`, as in Redis).
    New,
}
