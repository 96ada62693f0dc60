//! [`ExecCtx`]: everything a command may use while it runs — the shards it locked, the
//! server's shared state and its own connection's state. Nothing else, and no socket.

use bytes::Bytes;

use super::CmdError;
use crate::server::{Client, Shared};
use crate::store::{Db, EntryRef};

/// The execution context of one command.
pub struct ExecCtx<'a> {
    /// The keyspace shards this command locked.
    pub db: Db<'a>,
    /// Server-wide state: settings, clients, stats, slow log, identity, shutdown.
    pub server: &'a Shared,
    /// This connection's state.
    pub client: &'a mut Client,
}

impl ExecCtx<'_> {
    /// The string at `key` (read lookup), `None` if missing, WRONGTYPE for other types.
    pub fn get_str(&mut self, key: &[u8]) -> Result<Option<Bytes>, CmdError> {
        let v = str_of(self.db.get(key)?)?;
        if v.is_none() {
            self.notify(crate::server::notify::Class::KeyMiss, "keymiss", key);
        }
        Ok(v)
    }

    /// Like [`get_str`](Self::get_str) but for writes: no hit/miss counting.
    pub fn peek_str(&mut self, key: &[u8]) -> Result<Option<Bytes>, CmdError> {
        str_of(self.db.peek(key)?)
    }
}

/// The string in an entry, or WRONGTYPE. Copied out of the store: the shard lock is
/// released before the reply is written, and the entry may be off-heap.
pub fn str_of(e: Option<EntryRef<'_>>) -> Result<Option<Bytes>, CmdError> {
    let Some(e) = e else { return Ok(None) };
    let b = e.value().as_str().ok_or(CmdError::WrongType)?;
    Ok(Some(Bytes::copy_from_slice(b)))
}

impl ExecCtx<'_> {
    /// Reports a change to `key` for keyspace notifications: `event` is Redis's event name
    /// (`hset`, `lpush`, `del`, ...), `class` its `notify-keyspace-events` class.
    /// Published at once, here and on every other server; keys this command's accesses
    /// expired or evicted before are announced first, in the order Redis announces them.
    pub fn notify(&mut self, class: crate::server::notify::Class, event: &'static str, key: &[u8]) {
        self.flush_removals();
        self.server.notify(class, event, key);
    }

    /// Publishes `expired` / `evicted` for the keys this command's accesses removed so
    /// far, then `new` for the keys it created (Redis announces both as they happen,
    /// before the command's own event).
    pub fn flush_removals(&mut self) {
        let r = self.db.take_removals();
        if !r.is_empty() {
            self.server.notify_removals(r);
        }
        for key in self.db.take_created() {
            self.server
                .notify(crate::server::notify::Class::New, "new", &key);
        }
    }
}
