//! Client state: [`Client`] is owned by its connection task (hot fields, no locks);
//! [`ClientHandle`] is the part other connections see (CLIENT LIST, CLIENT KILL).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::transaction::{Transaction, Watched};
use crate::protocol::{Proto, Reply};
use crate::store::DbStats;

/// What other connections may read or change about a client.
#[derive(Debug)]
pub struct ClientHandle {
    /// Unique, increasing client id (CLIENT ID).
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// When the connection was accepted.
    pub created: Instant,
    /// Rarely changed descriptive fields; a mutex because CLIENT LIST reads them from
    /// another connection.
    pub meta: Mutex<ClientMeta>,
    /// Last command time, ms since `created` (CLIENT LIST `idle`).
    pub last_active_ms: AtomicU64,
    /// The last command (CLIENT LIST `cmd`): table index << 8 | subcommand position + 1.
    pub last_cmd: AtomicUsize,
    /// Unparsed bytes in the query buffer (CLIENT LIST `qbuf`).
    pub qbuf: AtomicUsize,
    /// Set by CLIENT KILL; the connection closes at its next read.
    pub killed: AtomicBool,
    /// Wakes the connection task out of its read when killed.
    pub kill: Notify,
    /// Commands queued in an open MULTI, or -1 (CLIENT LIST `multi`).
    pub multi: AtomicI64,
    /// Keys watched (CLIENT LIST `watch`).
    pub watching: AtomicUsize,
    /// Channels, patterns and shard channels subscribed to (CLIENT LIST `sub`, `psub`,
    /// `ssub`).
    pub subscriptions: [AtomicUsize; 3],
    /// Out-of-band replies for this client (pub/sub messages, invalidations): other
    /// connections send, this client's connection task writes them. A mutex, so the
    /// sequence number and the queue order agree (see `flushed`).
    outbox: Mutex<Outbox>,
    /// The receiving end, taken by the connection task when it starts.
    pub push_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Reply>>>,
    /// How many out-of-band replies the connection has written to its socket (`u64::MAX`
    /// once it closed): a strong cache's writer waits on it for its invalidations.
    pub flushed: tokio::sync::watch::Sender<u64>,
    /// CLIENT TRACKING settings, `None` when off (CLIENT TRACKINGINFO; delivery reads the
    /// registry's copy).
    pub tracking: Mutex<Option<Arc<super::tracking::Tracker>>>,
    /// Reply bytes the connection has not yet written to the socket (CLIENT LIST `omem`).
    pub omem: AtomicU64,
    /// Bytes of out-of-band replies queued and not yet taken by the connection: with
    /// `omem`, the pending output `client-output-buffer-limit` bounds.
    push_bytes: AtomicU64,
    /// The server's output buffer limits (shared: CONFIG SET changes them for all).
    limits: Arc<super::output::Limits>,
    /// When this client went over its soft output limit.
    obuf: super::output::Watch,
    /// Set once the client broke its output limit: its pending output is dropped.
    pub over_limit: AtomicBool,
}

/// The sending side of a client's out-of-band queue.
#[derive(Debug)]
struct Outbox {
    tx: tokio::sync::mpsc::UnboundedSender<Reply>,
    /// Replies ever queued: the last one's sequence number.
    queued: u64,
}

/// Descriptive client fields.
#[derive(Debug, Default, Clone)]
pub struct ClientMeta {
    /// CLIENT SETNAME.
    pub name: Option<Bytes>,
    /// CLIENT SETINFO LIB-NAME.
    pub lib_name: Option<Bytes>,
    /// CLIENT SETINFO LIB-VER.
    pub lib_ver: Option<Bytes>,
    /// Protocol version, 2 or 3.
    pub resp: i64,
    /// CLIENT NO-EVICT.
    pub no_evict: bool,
    /// CLIENT NO-TOUCH.
    pub no_touch: bool,
    /// The ACL user the client is authenticated as (CLIENT LIST `user`; ACL DELUSER
    /// closes its clients).
    pub user: String,
}

impl ClientHandle {
    /// Asks the connection to close.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        // notify_one stores a permit, so a kill sent while the task is busy is not lost.
        self.kill.notify_one();
    }

    /// Queues an out-of-band reply and returns its sequence number: it is on the socket
    /// once `flushed` reaches it. A client whose pending output breaks its class's
    /// `client-output-buffer-limit` is disconnected instead (0: nothing to wait for).
    pub fn push(&self, r: Reply) -> u64 {
        if self.over_limit.load(Ordering::Relaxed) {
            return 0;
        }
        let mut o = self.outbox.lock();
        self.push_bytes
            .fetch_add(r.wire_size() as u64, Ordering::Relaxed);
        if self.check_output() {
            return 0;
        }
        o.queued += 1;
        let _ = o.tx.send(r);
        o.queued
    }

    /// Notes that the connection took an out-of-band reply off its queue.
    pub fn took_push(&self, r: &Reply) {
        self.push_bytes
            .fetch_sub(r.wire_size() as u64, Ordering::Relaxed);
    }

    /// Pending output: replies not yet written plus queued out-of-band replies.
    pub fn pending_output(&self) -> u64 {
        self.omem.load(Ordering::Relaxed) + self.push_bytes.load(Ordering::Relaxed)
    }

    /// The client's `client-output-buffer-limit` class.
    pub fn class(&self) -> super::output::Class {
        if self.in_pubsub() {
            super::output::Class::Pubsub
        } else {
            super::output::Class::Normal
        }
    }

    /// The limit of the client's class.
    pub fn output_limit(&self) -> super::output::Limit {
        self.limits.get(self.class())
    }

    /// Checks the pending output against the class limit; a client that breaks it is
    /// killed (once, counted and logged as Redis does). True when it is over the limit.
    pub fn check_output(&self) -> bool {
        if self.over_limit.load(Ordering::Relaxed) {
            return true;
        }
        let class = self.class();
        let limit = self.limits.get(class);
        if limit.hard == 0 && limit.soft == 0 {
            return false;
        }
        let pending = self.pending_output();
        if !self.obuf.breaks(limit, pending, self.created) {
            return false;
        }
        if !self.over_limit.swap(true, Ordering::Relaxed) {
            self.limits.disconnected(
                class,
                &format!("id={} addr={}", self.id, self.addr),
                pending,
            );
            self.kill();
        }
        true
    }

    /// Records that the connection wrote `n` more out-of-band replies.
    pub fn wrote_pushes(&self, n: u64) {
        self.flushed.send_modify(|w| *w = w.saturating_add(n));
    }

    /// True when the client speaks RESP3.
    pub fn is_resp3(&self) -> bool {
        self.meta.lock().resp >= 3
    }

    /// True while subscribed to any channel or pattern.
    pub fn in_pubsub(&self) -> bool {
        self.subscriptions
            .iter()
            .any(|n| n.load(Ordering::Relaxed) > 0)
    }

    /// Publishes the MULTI queue length (`None` outside MULTI) and the watched-key count.
    pub fn set_tx_counts(&self, multi: Option<usize>, watching: usize) {
        self.multi
            .store(multi.map_or(-1, |n| n as i64), Ordering::Relaxed);
        self.watching.store(watching, Ordering::Relaxed);
    }

    /// Seconds since the connection was accepted.
    pub fn age_secs(&self) -> u64 {
        self.created.elapsed().as_secs()
    }

    /// Seconds since the last command.
    pub fn idle_secs(&self) -> u64 {
        let since = self.created.elapsed().as_millis() as u64;
        since.saturating_sub(self.last_active_ms.load(Ordering::Relaxed)) / 1000
    }

    /// One CLIENT LIST line, Redis 7 field order.
    pub fn describe(&self) -> String {
        let m = self.meta.lock().clone();
        let s = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let last = self.last_cmd.load(Ordering::Relaxed);
        let cmd = crate::command::SPECS.get(last >> 8).map_or("NULL", |s| {
            match (last & 0xff).checked_sub(1) {
                Some(sub) => s.subcommands.get(sub).map_or(s.name, |x| x.name),
                None => s.name,
            }
        });
        let subscribed = self.in_pubsub();
        let tracking = self.tracking.lock().clone();
        let flags = if m.no_evict || m.no_touch || subscribed || tracking.is_some() {
            format!(
                "{}{}{}{}",
                if subscribed { "P" } else { "" },
                if m.no_evict { "e" } else { "" },
                if m.no_touch { "T" } else { "" },
                match &tracking {
                    Some(t) => format!(
                        "t{}{}",
                        if t.is_broken() { "R" } else { "" },
                        if t.mode.bcast { "B" } else { "" }
                    ),
                    None => String::new(),
                }
            )
        } else {
            "N".to_string()
        };
        let redir = tracking.map_or(-1, |t| t.mode.redirect as i64);
        format!(
            "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db=0 sub={} psub={} ssub={} multi={} watch={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem={} tot-mem=0 events=r cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            s(&m.name),
            self.age_secs(),
            self.idle_secs(),
            flags,
            self.subscriptions[0].load(Ordering::Relaxed),
            self.subscriptions[1].load(Ordering::Relaxed),
            self.subscriptions[2].load(Ordering::Relaxed),
            self.multi.load(Ordering::Relaxed),
            self.watching.load(Ordering::Relaxed),
            self.qbuf.load(Ordering::Relaxed),
            self.pending_output(),
            cmd,
            m.user,
            redir,
            m.resp,
            s(&m.lib_name),
            s(&m.lib_ver),
        )
    }
}

/// Connection-local state, owned by the connection task.
#[derive(Debug)]
pub struct Client {
    /// The shared part.
    pub handle: Arc<ClientHandle>,
    /// RESP2 or RESP3.
    pub proto: Proto,
    /// May run commands: the default user is on and `nopass`, or AUTH/HELLO AUTH
    /// succeeded. Limits for unauthenticated clients read it.
    pub authenticated: bool,
    /// The ACL user whose permissions apply (the default user before AUTH).
    pub user: Arc<crate::acl::User>,
    /// The [`Acl::epoch`](crate::acl::Acl::epoch) `user` was read at: when it moved, the
    /// dispatcher reads the user again (ACL SETUSER applies to connected clients).
    pub acl_epoch: u64,
    /// CLIENT NO-TOUCH: reads do not update access time or frequency.
    pub no_touch: bool,
    /// Close after this batch's replies are written (QUIT, CLIENT KILL of itself).
    pub close: bool,
    /// Lookup counters not yet added to the server stats (flushed once per batch).
    pub pending: DbStats,
    /// Commands executed and not yet added to the server stats.
    pub pending_cmds: u64,
    /// Error replies not yet added to the server stats.
    pub pending_errors: u64,
    /// The open MULTI, if any.
    pub tx: Option<Transaction>,
    /// Keys this client WATCHes.
    pub watched: Option<Watched>,
    /// Channels (0), patterns (1) and shard channels (2) this client is subscribed to.
    pub subscribed: [std::collections::BTreeSet<Bytes>; 3],
    /// CLIENT TRACKING mode, `None` when off.
    pub tracking: Option<super::tracking::Mode>,
    /// CLIENT CACHING yes|no for the next command (OPTIN / OPTOUT).
    pub caching: Option<bool>,
    /// Out-of-band replies to strong-cache invalidations this batch queued: the batch's
    /// replies are written once these are on their connections' sockets.
    pub acks: Vec<(Arc<ClientHandle>, u64)>,
    /// The last log record this batch's writes produced: under `appendfsync always` the
    /// batch's replies wait until it is fsynced (0: nothing to wait for).
    pub wait_lsn: u64,
    /// The last record of a strong cache this batch wrote: the batch's replies wait until
    /// every in-sync mirror has acknowledged it (0: nothing to wait for).
    pub strong_lsn: u64,
    /// The last record this connection wrote (WAIT waits for the mirrors to have it).
    pub last_lsn: u64,
    /// READONLY: a mirror serves this connection's reads of eventual caches.
    pub readonly: bool,
    /// How commands for other stripes are handled (a cluster client is redirected, a
    /// plain one forwarded).
    pub routing: crate::cluster::Mode,
    /// A reply being gathered from other stripes: the connection awaits it in the
    /// command's place.
    pub routed: Option<crate::cluster::merge::Pending>,
    /// A command that must wait before it can answer (WAIT, FAILOVER): the connection
    /// awaits it and puts its reply in the command's place.
    pub blocked: Option<crate::replication::Blocked>,
    /// The place in line of a command blocked on keys (BLPOP, BZPOPMIN, ...): the
    /// connection waits and runs the command again when woken (see `server::blocking`).
    pub block: Option<super::blocking::Block>,
}

impl Client {
    /// A new client in its initial state.
    pub fn new(handle: Arc<ClientHandle>, acl: &crate::acl::Acl) -> Client {
        let acl_epoch = acl.epoch();
        let user = acl.default_user();
        handle.meta.lock().user = user.name.clone();
        Client {
            handle,
            proto: Proto::Resp2,
            authenticated: user.open(),
            user,
            acl_epoch,
            no_touch: false,
            close: false,
            pending: DbStats::default(),
            pending_cmds: 0,
            pending_errors: 0,
            tx: None,
            watched: None,
            subscribed: Default::default(),
            tracking: None,
            caching: None,
            acks: Vec::new(),
            wait_lsn: 0,
            strong_lsn: 0,
            last_lsn: 0,
            readonly: false,
            routing: crate::cluster::Mode::Plain,
            routed: None,
            blocked: None,
            block: None,
        }
    }

    /// Notes the record a command's writes became: what this batch's replies wait for.
    pub fn committed(&mut self, c: crate::store::Committed) {
        if c.lsn == 0 {
            return;
        }
        self.wait_lsn = c.lsn;
        self.last_lsn = c.lsn;
        if c.strong {
            self.strong_lsn = c.lsn;
        }
    }

    /// True while subscribed to any channel or pattern (RESP2 clients may then only
    /// (un)subscribe, PING, QUIT and RESET).
    pub fn in_pubsub(&self) -> bool {
        self.subscribed.iter().any(|s| !s.is_empty())
    }

    /// This client's id.
    pub fn id(&self) -> u64 {
        self.handle.id
    }

    /// Authenticated as `user` from now on.
    pub fn login(&mut self, user: Arc<crate::acl::User>, epoch: u64) {
        self.handle.meta.lock().user = user.name.clone();
        self.user = user;
        self.acl_epoch = epoch;
        self.authenticated = true;
    }

    /// Picks up a changed ACL user (ACL SETUSER since the last command); one atomic load
    /// when nothing changed.
    #[inline]
    pub fn refresh_user(&mut self, acl: &crate::acl::Acl) {
        let epoch = acl.epoch();
        if epoch != self.acl_epoch {
            self.acl_epoch = epoch;
            // A deleted user's connection is closing (ACL DELUSER kills it); until it
            // has, the rest of its pipeline runs with no permissions at all.
            self.user = acl
                .get(&self.user.name)
                .unwrap_or_else(|| Arc::new(crate::acl::User::new(&self.user.name)));
        }
    }
}

/// Every connected client.
#[derive(Debug, Default)]
pub struct Clients {
    /// Ordered by id for CLIENT LIST; locked only on connect, disconnect and CLIENT
    /// LIST/KILL, never on the command path.
    map: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
    next_id: AtomicU64,
    /// `client-output-buffer-limit`, handed to every client.
    limits: Arc<super::output::Limits>,
}

impl Clients {
    /// No clients yet; each one will be held to `limits`.
    pub fn new(limits: Arc<super::output::Limits>) -> Clients {
        Clients {
            limits,
            ..Clients::default()
        }
    }

    /// Registers a new connection and returns its handle.
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientHandle> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (push_tx, push_rx) = tokio::sync::mpsc::unbounded_channel();
        let h = Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            created: Instant::now(),
            meta: Mutex::new(ClientMeta {
                resp: 2,
                ..ClientMeta::default()
            }),
            last_active_ms: AtomicU64::new(0),
            last_cmd: AtomicUsize::new(usize::MAX),
            qbuf: AtomicUsize::new(0),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
            multi: AtomicI64::new(-1),
            watching: AtomicUsize::new(0),
            subscriptions: [
                AtomicUsize::new(0),
                AtomicUsize::new(0),
                AtomicUsize::new(0),
            ],
            outbox: Mutex::new(Outbox {
                tx: push_tx,
                queued: 0,
            }),
            push_rx: Mutex::new(Some(push_rx)),
            flushed: tokio::sync::watch::Sender::new(0),
            tracking: Mutex::new(None),
            omem: AtomicU64::new(0),
            push_bytes: AtomicU64::new(0),
            limits: self.limits.clone(),
            obuf: super::output::Watch::default(),
            over_limit: AtomicBool::new(false),
        });
        self.map.lock().insert(id, h.clone());
        h
    }

    /// Removes a closed connection.
    pub fn remove(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// True when no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The client with this id, if connected.
    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.map.lock().get(&id).cloned()
    }

    /// A snapshot of every handle, ordered by id.
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        self.map.lock().values().cloned().collect()
    }
}
