//! Pub/sub: who is subscribed to which channel or pattern, and delivery.
//!
//! Every connection has an unbounded queue of out-of-band replies (its handle's `push`
//! sender); PUBLISH puts a `Reply::Push` on the queue of each subscriber and the
//! subscriber's connection task writes it in that client's protocol (RESP3 push, RESP2
//! array). This is also the path CLIENT TRACKING invalidations will take.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use super::ClientHandle;
use crate::protocol::Reply;
use crate::store::pattern;

type Subscribers = BTreeMap<u64, Arc<ClientHandle>>;

/// The server's channels and patterns.
#[derive(Debug, Default)]
pub struct PubSub {
    channels: RwLock<HashMap<Bytes, Subscribers, ahash::RandomState>>,
    patterns: RwLock<HashMap<Bytes, Subscribers, ahash::RandomState>>,
    shard_channels: RwLock<HashMap<Bytes, Subscribers, ahash::RandomState>>,
}

/// Which kind of message a delivery is: what PUBLISH and SPUBLISH send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// PUBLISH (and keyspace notifications): channel and pattern subscribers, `message`
    /// and `pmessage`.
    Message,
    /// SPUBLISH: shard-channel subscribers, `smessage`.
    Sharded,
}

impl Delivery {
    /// The wire name used between servers (`PUBSUB.RELAY <kind> ...`).
    pub fn wire(self) -> &'static str {
        match self {
            Delivery::Message => "message",
            Delivery::Sharded => "smessage",
        }
    }

    /// The kind named `name` on the wire.
    pub fn from_wire(name: &[u8]) -> Option<Delivery> {
        if name.eq_ignore_ascii_case(b"message") {
            Some(Delivery::Message)
        } else if name.eq_ignore_ascii_case(b"smessage") {
            Some(Delivery::Sharded)
        } else {
            None
        }
    }
}

fn add(
    map: &RwLock<HashMap<Bytes, Subscribers, ahash::RandomState>>,
    key: &[u8],
    h: &Arc<ClientHandle>,
) {
    map.write()
        .entry(Bytes::copy_from_slice(key))
        .or_default()
        .insert(h.id, h.clone());
}

fn remove(map: &RwLock<HashMap<Bytes, Subscribers, ahash::RandomState>>, key: &[u8], id: u64) {
    let mut m = map.write();
    if let Some(subs) = m.get_mut(key) {
        subs.remove(&id);
        if subs.is_empty() {
            m.remove(key);
        }
    }
}

impl PubSub {
    /// Closes the connections of `user` subscribed to a channel, pattern or shard channel
    /// the user may no longer access (Redis 7 does so on ACL SETUSER). Returns how many.
    pub fn disconnect_denied(&self, user: &crate::acl::User) -> usize {
        let mut killed = std::collections::BTreeSet::new();
        let maps = [
            (&self.channels, false),
            (&self.patterns, true),
            (&self.shard_channels, false),
        ];
        for (map, is_pattern) in maps {
            for (name, subs) in map.read().iter() {
                if user.may_access_channel(name, is_pattern) {
                    continue;
                }
                for (id, h) in subs {
                    if !killed.contains(id) && *h.meta.lock().user == *user.name {
                        h.kill();
                        killed.insert(*id);
                    }
                }
            }
        }
        killed.len()
    }

    /// Subscribes `h` to `channel`.
    pub fn subscribe(&self, channel: &[u8], h: &Arc<ClientHandle>) {
        add(&self.channels, channel, h);
    }

    /// Unsubscribes client `id` from `channel`.
    pub fn unsubscribe(&self, channel: &[u8], id: u64) {
        remove(&self.channels, channel, id);
    }

    /// Subscribes `h` to `pattern`.
    pub fn psubscribe(&self, pattern: &[u8], h: &Arc<ClientHandle>) {
        add(&self.patterns, pattern, h);
    }

    /// Unsubscribes client `id` from `pattern`.
    pub fn punsubscribe(&self, pattern: &[u8], id: u64) {
        remove(&self.patterns, pattern, id);
    }

    /// Subscribes `h` to shard channel `channel`.
    pub fn ssubscribe(&self, channel: &[u8], h: &Arc<ClientHandle>) {
        add(&self.shard_channels, channel, h);
    }

    /// Unsubscribes client `id` from shard channel `channel`.
    pub fn sunsubscribe(&self, channel: &[u8], id: u64) {
        remove(&self.shard_channels, channel, id);
    }

    /// Delivers a message of kind `kind` on this server; returns how many clients got it.
    pub fn deliver(&self, kind: Delivery, channel: &[u8], message: &[u8]) -> usize {
        match kind {
            Delivery::Message => self.publish(channel, message),
            Delivery::Sharded => self.spublish(channel, message),
        }
    }

    /// Delivers `message` to the subscribers of shard channel `channel` (`smessage`);
    /// returns how many clients got it.
    pub fn spublish(&self, channel: &[u8], message: &[u8]) -> usize {
        let map = self.shard_channels.read();
        let Some(subs) = map.get(channel) else {
            return 0;
        };
        let ch = Bytes::copy_from_slice(channel);
        let msg = Bytes::copy_from_slice(message);
        for h in subs.values() {
            h.push(Reply::Push(vec![
                Reply::bulk("smessage"),
                Reply::Bulk(ch.clone()),
                Reply::Bulk(msg.clone()),
            ]));
        }
        subs.len()
    }

    /// Delivers `message` to the subscribers of `channel` and of every matching pattern;
    /// returns how many deliveries were made (Redis's PUBLISH reply).
    pub fn publish(&self, channel: &[u8], message: &[u8]) -> usize {
        let mut n = 0;
        let ch = Bytes::copy_from_slice(channel);
        let msg = Bytes::copy_from_slice(message);
        if let Some(subs) = self.channels.read().get(channel) {
            for h in subs.values() {
                h.push(Reply::Push(vec![
                    Reply::bulk("message"),
                    Reply::Bulk(ch.clone()),
                    Reply::Bulk(msg.clone()),
                ]));
                n += 1;
            }
        }
        for (pat, subs) in self.patterns.read().iter() {
            if !pattern::matches(pat, channel, false) {
                continue;
            }
            for h in subs.values() {
                h.push(Reply::Push(vec![
                    Reply::bulk("pmessage"),
                    Reply::Bulk(pat.clone()),
                    Reply::Bulk(ch.clone()),
                    Reply::Bulk(msg.clone()),
                ]));
                n += 1;
            }
        }
        n
    }

    /// Channels with at least one subscriber, matching `pat` if given (PUBSUB CHANNELS).
    pub fn channels(&self, pat: Option<&[u8]>) -> Vec<Bytes> {
        names(&self.channels, pat)
    }

    /// Shard channels with at least one subscriber, matching `pat` if given (PUBSUB
    /// SHARDCHANNELS).
    pub fn shard_channels(&self, pat: Option<&[u8]>) -> Vec<Bytes> {
        names(&self.shard_channels, pat)
    }

    /// Subscribers of shard channel `channel` (PUBSUB SHARDNUMSUB).
    pub fn shard_numsub(&self, channel: &[u8]) -> usize {
        self.shard_channels
            .read()
            .get(channel)
            .map_or(0, BTreeMap::len)
    }

    /// Subscribers of `channel` (PUBSUB NUMSUB).
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.channels.read().get(channel).map_or(0, BTreeMap::len)
    }

    /// Channels, patterns and shard channels with at least one subscriber (INFO
    /// `pubsub_channels`, `pubsub_patterns`, `pubsubshard_channels`).
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.channels.read().len(),
            self.patterns.read().len(),
            self.shard_channels.read().len(),
        )
    }

    /// Patterns with at least one subscriber (PUBSUB NUMPAT).
    pub fn numpat(&self) -> usize {
        self.patterns.read().len()
    }
}

/// The names in `map` matching `pat` (all when `None`), sorted.
fn names(
    map: &RwLock<HashMap<Bytes, Subscribers, ahash::RandomState>>,
    pat: Option<&[u8]>,
) -> Vec<Bytes> {
    let mut v: Vec<Bytes> = map
        .read()
        .keys()
        .filter(|c| pat.is_none_or(|p| pattern::matches(p, c, false)))
        .cloned()
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Clients;

    fn drain(h: &ClientHandle) -> Vec<Reply> {
        let mut rx = h.push_rx.lock().take().expect("queue");
        let mut v = Vec::new();
        while let Ok(r) = rx.try_recv() {
            v.push(r);
        }
        v
    }

    #[test]
    fn shard_channels_are_their_own_name_space() {
        let clients = Clients::default();
        let addr = "127.0.0.1:1".parse().expect("addr");
        let (a, b) = (clients.register(addr, addr), clients.register(addr, addr));
        let ps = PubSub::default();
        ps.ssubscribe(b"ch", &a);
        ps.subscribe(b"ch", &b);
        ps.psubscribe(b"c*", &b);
        assert_eq!(ps.counts(), (1, 1, 1));
        assert_eq!(ps.deliver(Delivery::Sharded, b"ch", b"s"), 1);
        assert_eq!(ps.deliver(Delivery::Message, b"ch", b"m"), 2);
        assert_eq!(ps.shard_channels(Some(b"c?")), vec![Bytes::from("ch")]);
        assert_eq!(ps.shard_numsub(b"ch"), 1);
        assert_eq!(ps.numsub(b"ch"), 1);
        let got = drain(&a);
        assert_eq!(
            got,
            vec![Reply::Push(vec![
                Reply::bulk("smessage"),
                Reply::bulk("ch"),
                Reply::bulk("s")
            ])]
        );
        assert_eq!(drain(&b).len(), 2, "message and pmessage, no smessage");
        ps.sunsubscribe(b"ch", a.id);
        assert_eq!(ps.spublish(b"ch", b"x"), 0);
        assert!(ps.shard_channels(None).is_empty());
    }

    #[test]
    fn wire_names_round_trip() {
        for k in [Delivery::Message, Delivery::Sharded] {
            assert_eq!(Delivery::from_wire(k.wire().as_bytes()), Some(k));
        }
        assert_eq!(Delivery::from_wire(b"pmessage"), None);
    }
}
