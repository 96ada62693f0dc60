//! The server process: listener, connections, shared state, background cron, shutdown.
//!
//! Owns sockets and tasks. It must not interpret commands (command/ does) or touch keys
//! other than through the store.
//!
//! ```text
//!             ┌──────────── run() ─────────────┐
//!  SIGTERM ──▶│ shutdown: watch<bool>          │
//!  SHUTDOWN ─▶│                                │
//!             │ listener ──accept──▶ connection task (one per client) ──▶ dispatch
//!             │                           │ holds a `done` sender: when every task
//!             │                           │ has dropped it, shutdown is complete
//!             │ cron (100 ms): active expiry, ops/sec sample
//!             └────────────────────────────────┘
//! ```

pub mod client;
pub mod connection;
pub mod dispatch;
pub mod settings;
pub mod slowlog;
pub mod stats;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

pub use client::{Client, ClientHandle, Clients};
pub use settings::Settings;
pub use slowlog::SlowLog;
pub use stats::Stats;

use crate::config::{Config, Placement};
use crate::store::Keyspace;

/// How long shutdown waits for connections to finish their current batch.
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
    /// Who we are.
    pub identity: Identity,
    /// The whole config (INFO and later components read their own sections).
    pub config: Config,
    /// Set to true to stop the server (SIGTERM, SIGINT, SHUTDOWN).
    pub shutdown: watch::Sender<bool>,
}

impl Shared {
    /// Shared state for the server at `placement` of `config`.
    pub fn new(
        config: Config,
        placement: &Placement,
        config_file: Option<String>,
        bind: String,
        port: u16,
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
        Shared {
            keyspace: Keyspace::new(false),
            clients: Clients::default(),
            stats: Stats::default(),
            settings: Settings::from_config(&config),
            slowlog: SlowLog::default(),
            identity: Identity {
                name,
                stripe,
                run_id: (0..40)
                    .map(|_| char::from_digit(fastrand::u32(..16), 16).unwrap_or('0'))
                    .collect(),
                bind,
                port,
                config_file,
                started: Instant::now(),
            },
            config,
            shutdown,
        }
    }

    /// Asks the server to stop.
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
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
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listening socket could not be opened.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Runs a server until it is told to stop; returns after connections have drained.
pub async fn run(opts: ServerOptions) -> Result<(), ServerError> {
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
    let addr = format!("{bind}:{port}");
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    let shared = Arc::new(Shared::new(
        opts.config,
        &opts.placement,
        opts.config_file.clone(),
        bind.clone(),
        port,
    ));
    tracing::info!(
        server = %shared.identity.name,
        stripe = %shared.identity.stripe,
        mode = if opts.config_file.is_none() { "dev (embedded config)" } else { "config" },
        "Terrace {} ready to accept connections on {bind}:{port}",
        env!("CARGO_PKG_VERSION"),
    );

    tokio::spawn(cron(shared.clone()));
    tokio::spawn(signals(shared.clone()));

    let mut shutdown = shared.shutdown.subscribe();
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => accept(&shared, stream, peer, done_tx.clone()).await,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    drop(done_tx);
    tracing::info!(
        "shutting down: waiting for {} connection(s) to finish",
        shared.clients.len()
    );
    if tokio::time::timeout(DRAIN_TIMEOUT, done_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("connections did not finish within {DRAIN_TIMEOUT:?}; exiting anyway");
    }
    tracing::info!(
        "Terrace {} is now ready to exit, bye bye...",
        shared.identity.name
    );
    Ok(())
}

async fn accept(
    shared: &Arc<Shared>,
    mut stream: TcpStream,
    peer: std::net::SocketAddr,
    done: mpsc::Sender<()>,
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
    let handle = shared.clients.register(peer, local);
    let rx = shared.shutdown.subscribe();
    let shared = shared.clone();
    tokio::spawn(async move {
        connection::serve(shared, stream, handle, rx).await;
        drop(done);
    });
}

/// Background work every 100 ms (Redis's `hz 10`): active expiry and the ops/sec sample.
async fn cron(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        shared.stats.sample_ops();
        // Reclaim due keys; keep going (yielding between passes) while a shard had more.
        let deadline = Instant::now() + Duration::from_millis(25);
        loop {
            let (n, more) = shared
                .keyspace
                .expire_due(crate::store::now_ms(), EXPIRE_BUDGET);
            shared.stats.expired.fetch_add(n as u64, Ordering::Relaxed);
            if !more || Instant::now() >= deadline {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
}

async fn signals(shared: Arc<Shared>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; use SHUTDOWN to stop");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM, shutting down"),
        _ = int.recv() => tracing::info!("received SIGINT, shutting down"),
    }
    shared.request_shutdown();
}
