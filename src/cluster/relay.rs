//! Cluster-wide pub/sub: carries a PUBLISH, an SPUBLISH or a keyspace notification to the
//! other servers, which deliver it to their own subscribers.
//!
//! ```text
//!  PUBLISH / SPUBLISH / notify ─try_send─▶ per-server queue (bounded, RELAY_QUEUE)
//!                                               │ relay task: everything queued, one batch
//!                                               ▼
//!          upstream pool (CLUSTER.PEER connection) ─▶ PUBSUB.RELAY kind channel message
//!                                                        on the other server: deliver here only
//! ```
//!
//! Fire and forget, like pub/sub itself: the publisher never waits. Each destination has
//! its own bounded queue drained by one task, so messages to one server keep their order
//! and a slow or dead server only fills its own queue; when it is full, messages to it
//! are dropped (and counted) rather than held without bound. A batch that fails (the
//! connection broke, no answer within [`RELAY_TIMEOUT`]) is lost, as a message to a
//! disconnected subscriber is.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;
use tokio::sync::mpsc;

use super::upstream::{Pool, encode_command};
use crate::protocol::Proto;
pub use crate::server::pubsub::Delivery as Kind;

/// Messages waiting for one server before new ones to it are dropped.
pub const RELAY_QUEUE: usize = 16 * 1024;
/// Most messages sent to one server in one batch.
const BATCH: usize = 512;
/// How long a batch may wait for the other server's replies before it counts as lost.
const RELAY_TIMEOUT: Duration = Duration::from_secs(5);
/// The upstream lane relays use (a client's lane is its id; any lane works).
const LANE: u64 = 0;

/// The relay queues, one per destination server.
#[derive(Debug, Default)]
pub struct Relay {
    /// Per client address (`host:port`): the queue its relay task drains. Bounded by
    /// [`RELAY_QUEUE`] so a slow server cannot make this one hold messages without limit.
    queues: RwLock<HashMap<String, mpsc::Sender<Bytes>>>,
    /// Messages sent to other servers (queued; INFO `pubsub_relayed`).
    relayed: AtomicU64,
    /// Messages dropped because a server's queue was full or no runtime could send them
    /// (INFO `pubsub_relay_dropped`).
    dropped: AtomicU64,
}

/// `PUBSUB.RELAY kind channel message`, encoded.
pub fn relay_command(kind: Kind, channel: &[u8], message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(channel.len() + message.len() + 64);
    encode_command(
        &mut out,
        &[
            b"PUBSUB.RELAY".as_slice(),
            kind.wire().as_bytes(),
            channel,
            message,
        ],
    );
    out.into()
}

impl Relay {
    /// Queues `command` (from [`relay_command`]) for each server in `addrs`. Never
    /// blocks; needs a tokio runtime to start a destination's task the first time.
    pub fn send<'a>(
        &self,
        pool: &Arc<Pool>,
        addrs: impl IntoIterator<Item = &'a str>,
        command: &Bytes,
    ) {
        for addr in addrs {
            let sent = match self.queues.read().get(addr) {
                Some(tx) if !tx.is_closed() => Some(tx.try_send(command.clone()).is_ok()),
                _ => None,
            };
            let sent = sent.unwrap_or_else(|| self.start(pool, addr, command));
            let counter = if sent { &self.relayed } else { &self.dropped };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Starts (or restarts) `addr`'s queue and task and queues `command` on it; false if
    /// there is no runtime to run the task on.
    fn start(&self, pool: &Arc<Pool>, addr: &str, command: &Bytes) -> bool {
        let mut queues = self.queues.write();
        if let Some(tx) = queues.get(addr)
            && !tx.is_closed()
        {
            // Another publisher started it meanwhile.
            return tx.try_send(command.clone()).is_ok();
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let (tx, rx) = mpsc::channel(RELAY_QUEUE);
        rt.spawn(forward(pool.clone(), addr.to_string(), rx));
        let sent = tx.try_send(command.clone()).is_ok();
        queues.insert(addr.to_string(), tx);
        sent
    }

    /// Messages queued for other servers so far.
    pub fn relayed(&self) -> u64 {
        self.relayed.load(Ordering::Relaxed)
    }

    /// Messages dropped so far (a full queue, no runtime).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// One destination's task: sends what is queued in batches over the pooled connection
/// and waits for each batch's replies, so at most one batch is in flight and the rest
/// waits in the bounded queue.
async fn forward(pool: Arc<Pool>, addr: String, mut rx: mpsc::Receiver<Bytes>) {
    let mut buf = BytesMut::with_capacity(16 << 10);
    while let Some(first) = rx.recv().await {
        buf.extend_from_slice(&first);
        let mut n = 1;
        while n < BATCH {
            match rx.try_recv() {
                Ok(more) => {
                    buf.extend_from_slice(&more);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        let answer = pool.send(&addr, Proto::Resp2, LANE, buf.split().freeze(), n);
        match tokio::time::timeout(RELAY_TIMEOUT, answer).await {
            Ok(Ok(Ok(_))) => {}
            Ok(Ok(Err(why))) => tracing::debug!("pub/sub relay to {addr}: {why}"),
            Ok(Err(_)) => tracing::debug!("pub/sub relay to {addr}: connection lost"),
            Err(_) => tracing::debug!("pub/sub relay to {addr}: no answer in time"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_command_is_a_resp_array() {
        let c = relay_command(Kind::Sharded, b"ch", b"hi");
        assert_eq!(
            &c[..],
            b"*4\r\n$12\r\nPUBSUB.RELAY\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
    }

    #[tokio::test]
    async fn a_full_queue_drops_instead_of_growing() {
        // A current-thread runtime: the destination's task cannot drain while we send.
        let r = Relay::default();
        let pool = Arc::new(Pool::default());
        let cmd = relay_command(Kind::Message, b"a", b"b");
        for _ in 0..RELAY_QUEUE + 100 {
            r.send(&pool, ["127.0.0.1:1"], &cmd);
        }
        assert_eq!((r.relayed(), r.dropped()), (RELAY_QUEUE as u64, 100));
    }

    #[test]
    fn without_a_runtime_messages_are_dropped_not_queued() {
        let r = Relay::default();
        let pool = Arc::new(Pool::default());
        r.send(
            &pool,
            ["127.0.0.1:1"],
            &relay_command(Kind::Message, b"a", b"b"),
        );
        assert_eq!((r.relayed(), r.dropped()), (0, 1));
    }
}
