//! The server process: listener, connections, shared state, background cron, shutdown.
//!
//! Owns sockets and tasks. It must not interpret commands (command/ does) or touch keys
//! other than through the store.
//!
//! ```text
//!             ┌──────────── run() ─────────────┐
//!  SIGTERM ──▶│ shutdown: watch<bool>          │
//!  SHUTDOWN ─▶│                                │
//!             │ listener ──accept──▶ workers (one thread + runtime per core)
//!             │                            └─▶ connection task per client ──▶ dispatch
//!             │                                (after its TLS handshake, with tls.clients)
//!             │ cron (100 ms): active expiry (keys, hash fields), cache shrink, tier balance,
//!             │                tracking-table trim, invalidations and keyspace notifications
//!             │                of those, ops/sec sample, log rewrite start
//!             │   blocked clients (BLPOP, ...) wait in the `blocking` registry; a command
//!             │   that made their keys grow wakes them, and they run again via dispatch
//!             │ loader (restartable): replays the data dir, then the log writer starts;
//!             │   then replication (stripes with mirrors): the role thread picks active/mirror
//!             │ group listener (clusters of several servers): HELLO, SYNC ─▶ replication::shipper
//!             │   (mutual TLS first, with tls.cluster)
//!             │ cluster view (several servers): who is active in every stripe (cluster::topology)
//!             │ pub/sub relay (several servers): a task per other server sends PUBLISH,
//!             │   SPUBLISH and notifications there from a bounded queue (cluster::relay)
//!             │ on shutdown: stop accepting, connections finish their batch, join workers
//!             └────────────────────────────────┘
//! ```

pub mod blocking;
pub mod client;
pub mod connection;
pub mod dispatch;
pub mod notify;
pub mod output;
pub mod pubsub;
pub mod settings;
pub mod slowlog;
pub mod stats;
pub mod tracking;
pub mod transaction;
pub mod workers;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use client::{Client, ClientHandle, Clients};
pub use settings::Settings;
pub use slowlog::SlowLog;
pub use stats::Stats;

use crate::cache::Caches;
use crate::config::{Config, Placement};
use crate::persist::Persist;
use crate::store::Keyspace;
use crate::store::offheap::Region;

/// How long shutdown waits for connections to finish their current batch. A client that
/// stops reading its replies would otherwise hold shutdown forever in a blocked write.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Due keys removed per shard per cron pass before yielding.
const EXPIRE_BUDGET: usize = 256;

/// Who this server is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Server name from the config (`-n`).
    pub name: String,
    /// Its stripe's name.
    pub stripe: String,
    /// 40 hex characters, new each start (Redis's run_id).
    pub run_id: String,
    /// Address it listens on.
    pub bind: String,
    /// Client port.
    pub port: u16,
    /// Config file, or `None` for the embedded dev config.
    pub config_file: Option<String>,
    /// Process start.
    pub started: Instant,
}

/// State shared by every connection and task of this server.
pub struct Shared {
    /// All keys.
    pub keyspace: Keyspace,
    /// Connected clients.
    pub clients: Clients,
    /// INFO counters.
    pub stats: Stats,
    /// CONFIG GET/SET settings.
    pub settings: Settings,
    /// SLOWLOG.
    pub slowlog: SlowLog,
    /// Per-command calls and latency (INFO commandstats, the Prometheus endpoint), by
    /// `CommandId`.
    pub commands: crate::latency::Striped,
    /// Who we are.
    pub identity: Identity,
    /// The whole config (INFO and later components read their own sections).
    pub config: Config,
    /// Set to true to stop the server (SIGTERM, SIGINT, SHUTDOWN).
    pub shutdown: watch::Sender<bool>,
    /// Pub/sub channels and patterns.
    pub pubsub: pubsub::PubSub,
    /// CLIENT TRACKING clients and the delivery of invalidations.
    pub tracking: tracking::Tracking,
    /// The fast-restart store, when `storage.restartable`.
    pub persist: Option<Arc<Persist>>,
    /// This server's role in its stripe, its mirrors or its active.
    pub repl: crate::replication::Replication,
    /// The slot map, the other stripes and the forwarding connections.
    pub cluster: crate::cluster::Cluster,
    /// Clients blocked on keys (BLPOP, BZPOPMIN, ...), woken when a command makes those
    /// keys grow. An `Arc`: each blocked client's place in line holds it.
    pub blocking: Arc<blocking::Blocking>,
    /// ACL users (config `security.users`, `requirepass`; ACL SETUSER).
    pub acl: crate::acl::Acl,
}

impl Shared {
    /// The state of a config's first server with no sockets, off-heap tier or tasks (unit
    /// tests, fuzz targets, tools), persisting through `persist` when given.
    pub fn detached(config: Config, persist: Option<Arc<Persist>>) -> Shared {
        let first = Placement {
            stripe: 0,
            server: 0,
        };
        Shared::new(config, &first, None, "127.0.0.1".into(), 0, None, persist)
    }

    /// Shared state for the server at `placement` of `config`.
    pub fn new(
        config: Config,
        placement: &Placement,
        config_file: Option<String>,
        bind: String,
        port: u16,
        region: Option<Arc<Region>>,
        persist: Option<Arc<Persist>>,
    ) -> Shared {
        let (shutdown, _) = watch::channel(false);
        let name = config
            .server(placement)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let stripe = config
            .cluster
            .stripes
            .get(placement.stripe)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let mut settings = Settings::from_config(&config);
        if let Some(p) = &persist {
            // CONFIG SET appendfsync changes what the log writer does.
            settings.appendfsync = p.policy_cell().clone();
        }
        let run_id: String = (0..40)
            .map(|_| char::from_digit(fastrand::u32(..16), 16).unwrap_or('0'))
            .collect();
        let repl = crate::replication::Replication::new(&config, placement, run_id.clone());
        let cluster = crate::cluster::Cluster::new(&config, placement);
        let acl = crate::acl::Acl::from_config(&config.security).unwrap_or_else(|e| {
            // validate() refuses such a config; should one get here, nobody is let in.
            tracing::error!("security.users: {e}; the default user is disabled");
            let acl = crate::acl::Acl::default();
            let _ = acl.set_user("default", &[b"off"]);
            acl
        });
        let track_state = Arc::new(crate::store::TrackingState::new(
            settings.tracking_table_max_keys.clone(),
        ));
        Shared {
            keyspace: Keyspace::with_parts(
                false,
                Arc::new(match &region {
                    Some(r) => {
                        let storage = crate::config::StorageConfig {
                            offheap: crate::config::Size(r.size()),
                            ..config.storage.clone()
                        };
                        Caches::tiered(&config.caches, &storage, r.segment_size())
                    }
                    None => Caches::new(&config.caches),
                }),
                track_state.clone(),
                region,
            ),
            clients: Clients::new(settings.output.clone()),
            stats: Stats::default(),
            settings,
            slowlog: SlowLog::default(),
            commands: crate::latency::Striped::new(crate::command::SPECS.len()),
            identity: Identity {
                name,
                stripe,
                run_id,
                bind,
                port,
                config_file,
                started: Instant::now(),
            },
            config,
            shutdown,
            pubsub: pubsub::PubSub::default(),
            tracking: tracking::Tracking::new(track_state),
            persist,
            repl,
            cluster,
            blocking: Arc::default(),
            acl,
        }
    }

    /// Delivers the invalidations of work no command waited for (expiry, eviction,
    /// tracking-table trimming), and publishes its keyspace notifications.
    pub fn deliver_mailbox(&self) {
        let v = self.keyspace.take_mailbox();
        if !v.is_empty() {
            self.tracking.deliver(v, 0, &mut Vec::new());
        }
        let r = self.keyspace.take_removals();
        if !r.is_empty() {
            self.notify_removals(r);
        }
    }

    /// Publishes a keyspace notification (`notify-keyspace-events`): `event` on
    /// `__keyspace@0__:<key>` and `key` on `__keyevent@0__:<event>`, as the setting asks,
    /// here and on every other server of the cluster.
    pub fn notify(&self, class: notify::Class, event: &str, key: &[u8]) {
        let (keyspace, keyevent) = self.settings.notify_keyspace_events.get().channels(class);
        let kind = pubsub::Delivery::Message;
        if keyspace {
            let ch = notify::keyspace_channel(key);
            self.pubsub.publish(&ch, event.as_bytes());
            self.cluster.relay_everywhere(kind, &ch, event.as_bytes());
        }
        if keyevent {
            let ch = notify::keyevent_channel(event);
            self.pubsub.publish(&ch, key);
            self.cluster.relay_everywhere(kind, &ch, key);
        }
    }

    /// Publishes `expired` and `evicted` for keys the store removed. Only an active
    /// announces them: a mirror's copies go when its active's records say so, and the
    /// active has announced those already.
    pub fn notify_removals(&self, removals: Vec<(bytes::Bytes, crate::cache::stats::Removal)>) {
        if !self.repl.is_active() {
            return;
        }
        for (key, why) in removals {
            match why {
                crate::cache::stats::Removal::Evicted => {
                    self.notify(notify::Class::Evicted, "evicted", &key)
                }
                crate::cache::stats::Removal::Deleted => {}
                _ => self.notify(notify::Class::Expired, "expired", &key),
            }
        }
    }

    /// Tells the store whether to collect expired and evicted keys, after
    /// `notify-keyspace-events` was set.
    pub fn notify_setting_changed(&self) {
        let e = self.settings.notify_keyspace_events.get();
        self.keyspace
            .collect_removals(e.wants(notify::Class::Expired) || e.wants(notify::Class::Evicted));
        self.keyspace.collect_new_keys(e.wants(notify::Class::New));
    }

    /// The flush hook for losing a key range (role change, slot move): forgets every
    /// tracked key and tells every tracking client to drop its whole L1, so no L1 keeps
    /// data this server can no longer invalidate.
    pub fn key_range_lost(&self) {
        // Blocked clients retry: their keys may be served elsewhere now (MOVED).
        self.blocking.wake_all();
        self.keyspace.untrack_all();
        self.deliver_mailbox();
        self.tracking.deliver(
            vec![crate::store::Invalidation::flush_all(false)],
            0,
            &mut Vec::new(),
        );
    }

    /// Asks the server to stop. Waiters use [`stopping`].
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

/// Returns once the server is stopping, at once if it already is. Every shutdown waiter
/// uses it rather than `changed()`: a receiver subscribed after the request takes it as
/// already seen, and `changed()` would wait forever.
pub async fn stopping(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Where and how to run a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The validated config.
    pub config: Config,
    /// Which server of the config this process is.
    pub placement: Placement,
    /// The config file, `None` for the embedded dev config.
    pub config_file: Option<String>,
    /// `--bind` override.
    pub bind: Option<String>,
    /// `--port` override.
    pub port: Option<u16>,
    /// Connection worker threads; 0 = one per core but one (at least one).
    pub threads: usize,
    /// `--repair`: cut damaged fast-restart records off instead of refusing to start.
    pub repair: bool,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The worker threads could not start.
    #[error("could not start worker threads: {0}")]
    Workers(std::io::Error),
    /// The off-heap tier could not be set up (too large for RAM or disk, a mirror with
    /// less off-heap than its stripe, a file error).
    #[error("{0}")]
    OffHeap(String),
    /// The control plane could not start (its state file, its config).
    #[error("control plane: {0}")]
    Control(String),
    /// The fast-restart data could not be opened or loaded.
    #[error("{0}")]
    Persist(#[from] crate::persist::PersistError),
    /// The TLS certificates could not be loaded.
    #[error("{0}")]
    Tls(String),
    /// The listening socket could not be opened.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Listens on `addr` (the client, group and metrics ports).
async fn listen(addr: String) -> Result<TcpListener, ServerError> {
    TcpListener::bind(&addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Runs a server until it is told to stop; returns after connections have drained.
pub async fn run(opts: ServerOptions) -> Result<(), ServerError> {
    crate::tls::install(&opts.config.tls).map_err(ServerError::Tls)?;
    let region = open_offheap(&opts.config, &opts.placement)?;
    let persist = open_persist(&opts)?;
    let server = opts.config.server(&opts.placement).cloned();
    let bind = opts
        .bind
        .clone()
        .or_else(|| server.as_ref().map(|s| s.bind().to_string()))
        .unwrap_or_else(|| "127.0.0.1".to_string());
    let port = opts
        .port
        .or(server.as_ref().map(|s| s.port))
        .unwrap_or(6379);
    let listener = listen(format!("{bind}:{port}")).await?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    // The group port, in a cluster of several servers (bound before anyone is told we are
    // up): mirrors sync through it, and every server asks every other who it is.
    let servers: usize = opts
        .config
        .cluster
        .stripes
        .iter()
        .map(|s| s.servers.len())
        .sum();
    let group = match server.as_ref() {
        Some(s) if servers > 1 || !opts.config.cluster.voters.is_empty() => {
            Some(listen(format!("{}:{}", s.bind(), s.group_port())).await?)
        }
        _ => None,
    };
    let metrics = match server.as_ref().and_then(|s| s.metrics_port) {
        Some(mp) => Some(listen(format!("{bind}:{mp}")).await?),
        None => None,
    };
    let shared = Arc::new(Shared::new(
        opts.config,
        &opts.placement,
        opts.config_file.clone(),
        bind.clone(),
        port,
        region,
        persist,
    ));
    // notify-keyspace-events from the config file: expiries and evictions are collected.
    shared.notify_setting_changed();
    // Before anyone is told we are up: a SIGTERM right after start stops the server
    // cleanly instead of killing it by the default action.
    let handlers = install_signals();
    tokio::spawn(signals(shared.clone(), handlers));
    tracing::info!(
        server = %shared.identity.name,
        stripe = %shared.identity.stripe,
        mode = if opts.config_file.is_none() { "dev (embedded config)" } else { "config" },
        "Terrace {} ready to accept {}connections on {bind}:{port}",
        env!("CARGO_PKG_VERSION"),
        if crate::tls::get().is_some_and(|t| t.on_client_port()) { "TLS " } else { "" },
    );

    let threads = if opts.threads == 0 {
        // One core is left to the kernel: on a loaded server the TCP stack does as much
        // work as the command path (half the CPU in perf profiles of GET/SET), and a worker
        // on every core competes with it and with co-located clients.
        std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
    } else {
        opts.threads
    };
    let mut workers = workers::Workers::start(threads, &shared).map_err(ServerError::Workers)?;
    tokio::spawn(cron(shared.clone()));
    // Loading runs beside the listener, so clients get LOADING (and INFO its progress)
    // instead of a refused connection.
    if crate::cluster::control::enabled(&shared.config.cluster) {
        // Before the group port answers RAFT and before a role is chosen.
        let dir = server
            .as_ref()
            .and_then(|s| s.data.clone())
            .map(std::path::PathBuf::from);
        let cp = crate::cluster::control::ControlPlane::start(
            &shared.config.cluster,
            &shared.identity.name,
            dir,
        )
        .await
        .map_err(ServerError::Control)?;
        let mut map = cp.watch();
        let _ = shared.repl.control.set(cp);
        let sh = shared.clone();
        tokio::spawn(async move {
            loop {
                sh.cluster.check_slots(&map.borrow_and_update());
                if map.changed().await.is_err() {
                    break;
                }
            }
        });
    }
    if let Some(g) = group {
        tokio::spawn(crate::replication::shipper::listen(shared.clone(), g));
    }
    if let Some(m) = metrics {
        tracing::info!(
            "Prometheus metrics on http://{}/metrics",
            m.local_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string())
        );
        tokio::spawn(crate::admin::metrics::serve(shared.clone(), m));
    }
    let loader = {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(p) = &shared.persist {
                let r = p.load(&shared.keyspace);
                if let Err(e) = &r {
                    tracing::error!("{e}");
                    shared.request_shutdown();
                    return r.map(|_| ());
                }
            }
            // The role is chosen once the data is loaded: what a server holds decides.
            if let Err(e) = crate::replication::role::start(&shared) {
                tracing::error!("cannot start replication: {e}");
                shared.request_shutdown();
            }
            if let Err(e) = crate::cluster::Topology::start(&shared) {
                tracing::error!("cannot start the cluster view: {e}");
                shared.request_shutdown();
            }
            Ok(())
        })
    };

    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => accept(&shared, &mut workers, stream, peer).await,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = crate::server::stopping(&mut shutdown) => break,
        }
    }
    drop(listener);
    tracing::info!(
        "shutting down: waiting for {} connection(s) to finish",
        shared.clients.len()
    );
    // Connections end at their next read after the shutdown signal; joining the worker
    // threads blocks, so do it off the runtime, and give up after DRAIN_TIMEOUT (the
    // process exits and takes the stuck workers with it).
    let join = tokio::task::spawn_blocking(move || workers.join());
    if tokio::time::timeout(DRAIN_TIMEOUT, join).await.is_err() {
        tracing::warn!("connections did not finish within {DRAIN_TIMEOUT:?}; exiting anyway");
    }
    if let Ok(Err(e)) = loader.await {
        return Err(e.into());
    }
    if let Some(p) = &shared.persist {
        let p = p.clone();
        let _ = tokio::task::spawn_blocking(move || p.stop()).await;
    }
    tracing::info!(
        "Terrace {} is now ready to exit, bye bye...",
        shared.identity.name
    );
    Ok(())
}

/// Opens this server's fast-restart store if it is restartable (loading comes later).
fn open_persist(opts: &ServerOptions) -> Result<Option<Arc<Persist>>, ServerError> {
    if !opts.config.storage.restartable {
        return Ok(None);
    }
    let Some(dir) = opts
        .config
        .server(&opts.placement)
        .and_then(|s| s.data.clone())
    else {
        // Validation requires a data directory with restartable; be explicit anyway.
        return Err(ServerError::Persist(crate::persist::PersistError::Io(
            "storage.restartable needs this server's data directory".into(),
        )));
    };
    let fsync = opts.config.storage.fsync;
    let policy = Arc::new(crate::persist::PolicyCell::new(fsync));
    let p = Persist::open(std::path::Path::new(&dir), policy, opts.repair)?;
    tracing::info!(
        "fast restart: data in {dir}, appendfsync {}",
        crate::persist::policy_name(fsync)
    );
    Ok(Some(Arc::new(p)))
}

/// Maps this server's off-heap tier, if it has one: anonymous memory, or
/// `DATA/offheap.seg` with `offheap_file`. Refused when it is larger than what can back it
/// or smaller than another server of its stripe.
fn open_offheap(config: &Config, at: &Placement) -> Result<Option<Arc<Region>>, ServerError> {
    let bytes = config.offheap(at);
    if let Some(why) = config.offheap_shortfall(at) {
        return Err(ServerError::OffHeap(why));
    }
    if bytes == 0 {
        return Ok(None);
    }
    let file = config
        .storage
        .offheap_file
        .then(|| config.server(at).and_then(|s| s.data.clone()))
        .flatten()
        .map(|d| std::path::Path::new(&d).join("offheap.seg"));
    let segment = config.segment_size(bytes);
    let region = Region::new(bytes, segment, file.as_deref())
        .map_err(|e| ServerError::OffHeap(e.to_string()))?;
    tracing::info!(
        "off-heap tier: {} in {} segments of {} ({})",
        crate::config::Size(region.size()),
        region.segments(),
        crate::config::Size(segment as u64),
        file.as_ref()
            .map_or("anonymous memory".to_string(), |f| format!(
                "file {}",
                f.display()
            )),
    );
    Ok(Some(Arc::new(region)))
}

async fn accept(
    shared: &Arc<Shared>,
    workers: &mut workers::Workers,
    mut stream: TcpStream,
    peer: std::net::SocketAddr,
) {
    shared.stats.connections.fetch_add(1, Ordering::Relaxed);
    let max = shared.settings.maxclients.load(Ordering::Relaxed);
    if shared.clients.len() as u64 >= max {
        shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    }
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(peer);
    match stream.into_std() {
        Ok(stream) => {
            let handle = shared.clients.register(peer, local);
            workers.dispatch(workers::Job { stream, handle });
        }
        Err(e) => tracing::warn!("cannot hand over connection from {peer}: {e}"),
    }
}

/// Background work every 100 ms (Redis's `hz 10`): active expiry and the ops/sec sample.
async fn cron(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = crate::server::stopping(&mut shutdown) => return,
        }
        shared.stats.sample_ops();
        if let Some(p) = &shared.persist {
            if p.is_loading() {
                continue;
            }
            start_rewrite_if_due(&shared, p);
        }
        // A mirror removes keys only when its active's records say so: its own expiry or
        // eviction could choose differently and make the copies differ.
        if shared.repl.is_active() {
            expire_and_shrink(&shared).await;
        }
        // Move what writes left over the heap budget off-heap.
        let (expired, evicted) = shared.keyspace.balance_tiers(crate::store::now_ms());
        shared.stats.add_expired(expired);
        shared.stats.add_evicted(evicted);
        // Keep the tracking table within tracking-table-max-keys (after CONFIG SET lowered
        // it), then tell the L1s about everything removed above.
        shared.keyspace.trim_tracking();
        shared.deliver_mailbox();
    }
}

/// The cron's active expiry and cache shrinking (an active's job only).
async fn expire_and_shrink(shared: &Shared) {
    // Reclaim due keys; keep going (yielding between passes) while a shard had more.
    let deadline = Instant::now() + Duration::from_millis(25);
    loop {
        let (n, more) = shared
            .keyspace
            .expire_due(crate::store::now_ms(), EXPIRE_BUDGET);
        shared.stats.add_expired(n as u64);
        if !more || Instant::now() >= deadline {
            break;
        }
        tokio::task::yield_now().await;
    }
    // Reclaim expired hash fields (Redis 7.4 field TTLs) of hashes that have some due.
    let (_, changed) = shared
        .keyspace
        .expire_fields(crate::store::now_ms(), EXPIRE_BUDGET);
    for (key, deleted) in changed {
        use crate::server::notify::Class;
        notify_background(shared, Class::Hash, "hexpired", &key);
        if deleted {
            notify_background(shared, Class::Generic, "del", &key);
        }
    }
    // Bring caches back within their limits where writes raced past them.
    let now = crate::store::now_ms();
    for id in 0..shared.keyspace.caches().len() {
        let n = shared.keyspace.shrink_cache(id, now);
        shared.stats.add_evicted(n);
    }
}

/// Reports a change the cron made (no command, so no `ExecCtx::notify`) for keyspace
/// notifications, with Redis's event name and class.
fn notify_background(shared: &Shared, class: notify::Class, event: &'static str, key: &[u8]) {
    shared.notify(class, event, key);
}

/// Starts a log rewrite on its own thread when one was asked for or is due (see
/// [`Persist::claim_rewrite`]).
fn start_rewrite_if_due(shared: &Arc<Shared>, p: &Arc<Persist>) {
    let pct = shared.settings.rewrite_percentage.load(Ordering::Relaxed);
    let min = shared.settings.rewrite_min_size.load(Ordering::Relaxed);
    if !p.claim_rewrite(pct, min) {
        return;
    }
    let (shared, p) = (shared.clone(), p.clone());
    let spawned = std::thread::Builder::new()
        .name("log-rewrite".into())
        .spawn(move || {
            tracing::info!("background append only file rewriting started");
            let _ = p.rewrite(&shared.keyspace);
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start a log rewrite: {e}");
    }
}

/// SIGTERM and SIGINT streams, registered now (in the runtime); `None` when they could
/// not be.
type Handlers = Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>;

fn install_signals() -> Handlers {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => Some((t, i)),
        _ => None,
    }
}

async fn signals(shared: Arc<Shared>, handlers: Handlers) {
    use tokio::signal::unix::{SignalKind, signal};
    // SIGXFSZ (25 on Linux): a write past the file-size limit kills a process by default.
    // Handled (and ignored), the write fails with EFBIG instead, which poisons the log and
    // refuses writes like any other write error: never a silent death mid-write.
    #[cfg(target_os = "linux")]
    let _xfsz = signal(SignalKind::from_raw(25));
    let Some((mut term, mut int)) = handlers else {
        tracing::warn!("cannot install signal handlers; use SHUTDOWN to stop");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM, shutting down"),
        _ = int.recv() => tracing::info!("received SIGINT, shutting down"),
    }
    shared.request_shutdown();
}
