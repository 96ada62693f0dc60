//! CLIENT TRACKING, server side: which clients track in which mode, and delivery of the
//! store's [`Invalidation`]s to their connections. The store decides *which* keys changed
//! and which client ids read them; this module turns that into `invalidate` pushes
//! (RESP3) or `__redis__:invalidate` messages (RESP2 redirect).
//!
//! ```text
//!  write ──under the shard lock──▶ Shard::modified ──▶ Invalidation { key, clients, bcast }
//!                                                            │ (after the command)
//!  dispatch ──Tracking::deliver──▶ ClientHandle::push (queued before the writer's reply)
//!                                          │ strong cache: (handle, seq) into Client::acks
//!  connection ──before writing its replies──▶ waits until each ack's connection wrote it
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::RwLock;

use super::ClientHandle;
use crate::protocol::Reply;
use crate::store::{Invalidation, TrackingState};

/// The channel RESP2 clients subscribe to for redirected invalidations.
pub const INVALIDATE_CHANNEL: &str = "__redis__:invalidate";

/// A client's CLIENT TRACKING options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mode {
    /// REDIRECT target client id; 0 = this connection.
    pub redirect: u64,
    /// BCAST: told about every change under `prefixes`, nothing is remembered per key.
    pub bcast: bool,
    /// OPTIN: only reads right after CLIENT CACHING yes are tracked.
    pub optin: bool,
    /// OPTOUT: reads right after CLIENT CACHING no are not tracked.
    pub optout: bool,
    /// NOLOOP: not told about its own changes.
    pub noloop: bool,
    /// BCAST prefixes (empty: every key).
    pub prefixes: Vec<Bytes>,
}

/// A tracking client, as deliverers see it.
#[derive(Debug)]
pub struct Tracker {
    /// Its options.
    pub mode: Mode,
    /// The client's id.
    id: u64,
    /// The client itself (weak: the registry must not keep a closed connection alive).
    client: Weak<ClientHandle>,
    /// The REDIRECT target, if any.
    redirect: Option<Weak<ClientHandle>>,
    /// Set once the REDIRECT target is gone (CLIENT TRACKINGINFO `broken_redirect`).
    broken: AtomicBool,
}

impl Tracker {
    /// True once the REDIRECT target has disconnected.
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// Queues an invalidation of `key` (`None`: every key) where this client wants it.
    /// Returns the connection and sequence number it was queued under.
    fn send(&self, key: Option<&[u8]>) -> Option<(Arc<ClientHandle>, u64)> {
        let me = self.client.upgrade()?;
        let (to, redirected) = match &self.redirect {
            None => (me, false),
            Some(r) => match r.upgrade() {
                Some(h) => (h, true),
                None => {
                    self.broken.store(true, Ordering::Relaxed);
                    if me.is_resp3() {
                        me.push(Reply::Push(vec![
                            Reply::bulk("tracking-redir-broken"),
                            Reply::Int(self.mode.redirect as i64),
                        ]));
                    }
                    return None;
                }
            },
        };
        let keys = match key {
            Some(k) => Reply::Array(vec![Reply::Bulk(Bytes::copy_from_slice(k))]),
            None => Reply::Nil,
        };
        let msg = if to.is_resp3() {
            Reply::Push(vec![Reply::bulk("invalidate"), keys])
        } else if redirected && to.in_pubsub() {
            Reply::Push(vec![
                Reply::bulk("message"),
                Reply::bulk(INVALIDATE_CHANNEL),
                keys,
            ])
        } else {
            // RESP2 without a subscribed redirect target has no way to receive it.
            return None;
        };
        let seq = to.push(msg);
        Some((to, seq))
    }
}

/// True when one BCAST prefix starts with the other: a client's prefixes must not
/// overlap (a key would be reported twice).
pub fn overlaps(a: &[u8], b: &[u8]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Turns `client`'s tracking off everywhere it is recorded (CLIENT TRACKING OFF, RESET,
/// disconnect).
pub fn stop(shared: &super::Shared, client: &mut super::Client) {
    shared.tracking.disable(&client.handle);
    client.tracking = None;
    client.caching = None;
}

/// Why CLIENT TRACKING ON was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeError {
    /// REDIRECT to a client that is not connected.
    #[error("The client ID you want redirect to does not exist")]
    NoRedirectTarget,
    /// Switching between OPTIN and OPTOUT without turning tracking off first.
    #[error(
        "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."
    )]
    OptSwitch,
    /// Switching BCAST on or off without turning tracking off first.
    #[error(
        "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."
    )]
    BcastSwitch,
    /// A new prefix overlaps one the client already has.
    #[error(
        "Prefix '{new}' overlaps with an existing prefix '{old}'. Prefixes for a single client must not overlap."
    )]
    Overlap {
        /// The prefix given now.
        new: String,
        /// The client's existing prefix.
        old: String,
    },
}

/// Every tracking client, and the BCAST prefixes.
#[derive(Debug)]
pub struct Tracking {
    /// Tracking clients by id; read by every delivery, written by CLIENT TRACKING.
    clients: RwLock<HashMap<u64, Arc<Tracker>, ahash::RandomState>>,
    /// BCAST prefix → ids of the clients registered for it.
    prefixes: RwLock<HashMap<Bytes, Vec<u64>, ahash::RandomState>>,
    /// Key counts and `tracking-table-max-keys`, shared with the store.
    pub state: Arc<TrackingState>,
}

impl Tracking {
    /// A registry over the store's tracking state.
    pub fn new(state: Arc<TrackingState>) -> Tracking {
        Tracking {
            clients: RwLock::default(),
            prefixes: RwLock::default(),
            state,
        }
    }

    /// Turns tracking on for `client` with `mode` (CLIENT TRACKING ON), or changes its
    /// options; BCAST prefixes add to those it has. `redirect_to` resolves a client id.
    /// Returns the mode now in force.
    pub fn enable(
        &self,
        client: &Arc<ClientHandle>,
        mut mode: Mode,
        redirect_to: impl FnOnce(u64) -> Option<Arc<ClientHandle>>,
    ) -> Result<Mode, ModeError> {
        let redirect = match mode.redirect {
            0 => None,
            id => Some(Arc::downgrade(
                &redirect_to(id).ok_or(ModeError::NoRedirectTarget)?,
            )),
        };
        let mut clients = self.clients.write();
        let old = clients.get(&client.id).map(|t| t.mode.clone());
        if let Some(old) = &old {
            if old.bcast != mode.bcast {
                return Err(ModeError::BcastSwitch);
            }
            if (old.optin && mode.optout) || (old.optout && mode.optin) {
                return Err(ModeError::OptSwitch);
            }
            for new in &mode.prefixes {
                if let Some(o) = old.prefixes.iter().find(|o| overlaps(o, new)) {
                    return Err(ModeError::Overlap {
                        new: String::from_utf8_lossy(new).into_owned(),
                        old: String::from_utf8_lossy(o).into_owned(),
                    });
                }
            }
            let mut all = old.prefixes.clone();
            all.extend(mode.prefixes.iter().cloned());
            mode.prefixes = all;
        }
        if mode.bcast {
            if mode.prefixes.is_empty() {
                mode.prefixes.push(Bytes::new());
            }
            let mut p = self.prefixes.write();
            for pre in &mode.prefixes {
                let ids = p.entry(pre.clone()).or_default();
                if !ids.contains(&client.id) {
                    ids.push(client.id);
                }
            }
            if old.is_none() {
                self.state.bcast_clients.fetch_add(1, Ordering::Relaxed);
            }
        }
        let t = Arc::new(Tracker {
            mode: mode.clone(),
            id: client.id,
            client: Arc::downgrade(client),
            redirect,
            broken: AtomicBool::new(false),
        });
        clients.insert(client.id, t.clone());
        *client.tracking.lock() = Some(t);
        Ok(mode)
    }

    /// Turns tracking off for `client` (CLIENT TRACKING OFF, RESET, disconnect). Keys it
    /// read stay in the table until they change or are evicted from it, as in Redis.
    pub fn disable(&self, client: &ClientHandle) {
        let Some(t) = self.clients.write().remove(&client.id) else {
            return;
        };
        *client.tracking.lock() = None;
        if t.mode.bcast {
            let mut p = self.prefixes.write();
            for pre in &t.mode.prefixes {
                if let Some(ids) = p.get_mut(pre) {
                    ids.retain(|&id| id != client.id);
                    if ids.is_empty() {
                        p.remove(pre);
                    }
                }
            }
            self.state.bcast_clients.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Number of tracking clients (INFO `tracking_clients`).
    pub fn clients(&self) -> usize {
        self.clients.read().len()
    }

    /// Number of distinct BCAST prefixes (INFO `tracking_total_prefixes`).
    pub fn prefixes(&self) -> usize {
        self.prefixes.read().len()
    }

    /// Queues each invalidation to the clients it concerns. `writer` is the client whose
    /// command caused them (0 for none): NOLOOP clients are not told of their own changes.
    /// For strong caches, the (connection, sequence) of every message queued is added to
    /// `acks`, for the writer's reply to wait on.
    pub fn deliver(
        &self,
        invalidations: Vec<Invalidation>,
        writer: u64,
        acks: &mut Vec<(Arc<ClientHandle>, u64)>,
    ) {
        let clients = self.clients.read();
        let mut to = |t: &Tracker, key: Option<&[u8]>, strong: bool| {
            if t.mode.noloop && t.id == writer {
                return;
            }
            if let Some(ack) = t.send(key)
                && strong
                && ack.0.id != writer
            {
                acks.push(ack);
            }
        };
        for inv in invalidations {
            let key = inv.key.as_deref();
            for id in &inv.clients {
                // A client that turned tracking off (or over to BCAST) since its read is
                // no longer told: as in Redis.
                if let Some(t) = clients.get(id)
                    && !t.mode.bcast
                {
                    to(t, key, inv.strong);
                }
            }
            if key.is_none() {
                // A flush: every client (FLUSHALL) or every BCAST client (CACHE.CLEAR).
                for t in clients.values() {
                    if inv.everyone || (inv.bcast && t.mode.bcast) {
                        to(t, None, inv.strong);
                    }
                }
                continue;
            }
            if inv.bcast && self.state.any_bcast() {
                let prefixes = self.prefixes.read();
                for (pre, ids) in prefixes.iter() {
                    if key.is_some_and(|k| k.starts_with(pre)) {
                        for id in ids {
                            if let Some(t) = clients.get(id) {
                                to(t, key, inv.strong);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// After a read-only command of a tracking client, remembers the keys it read, under the
/// command's locks (so no write can slip between the read and the tracking). OPTIN reads
/// count only right after CLIENT CACHING yes, OPTOUT reads not right after CLIENT CACHING
/// no. BCAST clients are not remembered per key, but `l1: false` keys still get their
/// immediate invalidation.
pub fn remember(
    db: &mut crate::store::Db<'_>,
    client: &super::Client,
    spec: &crate::command::CommandSpec,
    args: &[&[u8]],
) {
    let Some(m) = &client.tracking else { return };
    if !spec.flags.has(crate::command::Flags::READONLY) {
        return;
    }
    if (m.optin && client.caching != Some(true)) || (m.optout && client.caching == Some(false)) {
        return;
    }
    for pos in spec.key_positions(args) {
        if let Some(k) = args.get(pos) {
            // The command ran on these locks, so a key outside them cannot occur.
            let _ = db.track(k, client.id(), !m.bcast);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::server::Shared;

    /// A RESP3 client of `shared` and the receiving end of its push queue.
    fn client(
        shared: &Shared,
    ) -> (
        Arc<ClientHandle>,
        tokio::sync::mpsc::UnboundedReceiver<Reply>,
    ) {
        let addr = "127.0.0.1:1".parse().expect("addr");
        let h = shared.clients.register(addr, addr);
        h.meta.lock().resp = 3;
        let rx = h.push_rx.lock().take().expect("queue");
        (h, rx)
    }

    fn shared() -> Shared {
        Shared::detached(Config::dev(), None)
    }

    fn invalidate(key: Option<&str>) -> Reply {
        Reply::Push(vec![
            Reply::bulk("invalidate"),
            key.map_or(Reply::Nil, |k| Reply::Array(vec![Reply::bulk(k)])),
        ])
    }

    fn drained(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Reply>) -> Vec<Reply> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn delivery_follows_each_clients_mode() {
        let s = shared();
        let t = &s.tracking;
        let (plain, mut plain_rx) = client(&s);
        let (noloop, mut noloop_rx) = client(&s);
        let (bcast, mut bcast_rx) = client(&s);
        let none = |_| None;
        t.enable(&plain, Mode::default(), none).expect("on");
        let nl = Mode {
            noloop: true,
            ..Mode::default()
        };
        t.enable(&noloop, nl, none).expect("on");
        let bc = Mode {
            bcast: true,
            prefixes: vec![Bytes::from_static(b"a")],
            ..Mode::default()
        };
        t.enable(&bcast, bc, none).expect("on");
        assert_eq!(t.clients(), 3);
        assert_eq!(t.prefixes(), 1);

        let mut acks = Vec::new();
        let inv = Invalidation::of_key(b"ab", vec![plain.id, noloop.id], true, true);
        t.deliver(vec![inv], noloop.id, &mut acks);
        assert_eq!(drained(&mut plain_rx), vec![invalidate(Some("ab"))]);
        assert!(drained(&mut noloop_rx).is_empty(), "NOLOOP: its own write");
        assert_eq!(drained(&mut bcast_rx), vec![invalidate(Some("ab"))]);
        let mut acked: Vec<u64> = acks.iter().map(|(h, _)| h.id).collect();
        acked.sort();
        assert_eq!(
            acked,
            vec![plain.id, bcast.id],
            "strong: the writer waits on both"
        );

        let other = Invalidation::of_key(b"zz", vec![], true, false);
        t.deliver(vec![other], 0, &mut acks);
        assert!(drained(&mut bcast_rx).is_empty(), "outside the prefix");

        t.disable(&bcast);
        assert_eq!((t.clients(), t.prefixes()), (2, 0));
        assert!(!t.state.any_bcast());
    }

    #[test]
    fn losing_a_key_range_flushes_every_l1_and_forgets_the_table() {
        let s = shared();
        let (h, mut rx) = client(&s);
        s.tracking
            .enable(&h, Mode::default(), |_| None)
            .expect("on");
        let mut db = s.keyspace.db(crate::store::ShardSet::All, 0, true);
        db.track(b"k", h.id, true).expect("locked");
        assert!(db.take_invalidations().is_empty());
        drop(db);
        assert_eq!(s.tracking.state.keys(), 1);

        s.key_range_lost();
        assert_eq!(s.tracking.state.keys(), 0);
        assert_eq!(drained(&mut rx), vec![invalidate(None)]);
    }
}
