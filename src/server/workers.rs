//! Thread-per-core connection workers.
//!
//! Each worker is an OS thread running its own single-threaded tokio runtime; the
//! listener hands every accepted connection to one worker, round-robin, and the connection
//! lives there until it closes. There is no work stealing, so a readable socket never
//! wakes a second thread: on a small machine the cross-thread wake-ups of a work-stealing
//! runtime cost more than the commands themselves. Keys stay shared: the shards' mutexes
//! serialise access, and a command holds them only while it runs.
//!
//! ```text
//!  listener (main runtime) ──round-robin──▶ worker 0: current_thread runtime ─ conn, conn, ...
//!                                      └──▶ worker 1: current_thread runtime ─ conn, conn, ...
//! ```
//! With `tls.clients`, a connection's TLS handshake runs on its worker, bounded by
//! [`crate::tls::HANDSHAKE_TIMEOUT`].

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::{ClientHandle, Shared, connection};

/// A connection handed to a worker.
pub struct Job {
    /// The accepted socket (non-blocking), registered with the worker's own reactor.
    pub stream: std::net::TcpStream,
    /// The client's registry entry.
    pub handle: Arc<ClientHandle>,
}

/// The pool of worker threads.
pub struct Workers {
    /// One queue per worker; unbounded because `maxclients` already bounds connections.
    queues: Vec<mpsc::UnboundedSender<Job>>,
    threads: Vec<JoinHandle<()>>,
    next: usize,
}

impl Workers {
    /// Starts `n` workers (at least one).
    pub fn start(n: usize, shared: &Arc<Shared>) -> std::io::Result<Workers> {
        let mut queues = Vec::new();
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let shared = shared.clone();
            let shutdown = shared.shutdown.subscribe();
            let t = std::thread::Builder::new()
                .name(format!("terrace-io-{i}"))
                .spawn(move || rt.block_on(work(shared, rx, shutdown)))?;
            queues.push(tx);
            threads.push(t);
        }
        Ok(Workers {
            queues,
            threads,
            next: 0,
        })
    }

    /// Hands a connection to the next worker.
    pub fn dispatch(&mut self, job: Job) {
        let q = &self.queues[self.next % self.queues.len()];
        self.next = self.next.wrapping_add(1);
        if let Err(mpsc::error::SendError(job)) = q.send(job) {
            // The worker is gone (shutting down): drop the client.
            job.handle.kill();
        }
    }

    /// Closes the queues and waits for every worker to finish its connections.
    pub fn join(self) {
        drop(self.queues);
        for t in self.threads {
            if t.join().is_err() {
                tracing::error!("a connection worker panicked");
            }
        }
    }
}

async fn work(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            job = rx.recv() => match job {
                Some(job) => match tokio::net::TcpStream::from_std(job.stream) {
                    Ok(stream) => {
                        conns.spawn(serve(shared.clone(), stream, job.handle, shutdown.clone()));
                    }
                    Err(e) => {
                        tracing::warn!("cannot register connection: {e}");
                        shared.clients.remove(job.handle.id);
                    }
                },
                None => break,
            },
            // Reap finished connections so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    while conns.join_next().await.is_some() {}
}

/// Serves one connection, after its TLS handshake when the client port speaks TLS (here,
/// on the worker: the listener never waits for a client).
async fn serve(
    shared: Arc<Shared>,
    tcp: tokio::net::TcpStream,
    handle: Arc<ClientHandle>,
    shutdown: watch::Receiver<bool>,
) {
    match crate::tls::accept(tcp, crate::tls::Port::Client).await {
        Ok(stream) => connection::serve(shared, stream, handle, shutdown).await,
        Err(e) => {
            tracing::debug!(client = handle.id, addr = %handle.addr, "TLS handshake failed: {e}");
            shared.clients.remove(handle.id);
        }
    }
}
