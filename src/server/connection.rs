//! One client connection: read whatever arrived, run every complete request in order,
//! write all replies with one syscall, repeat.
//!
//! ```text
//!  socket ──read──▶ rbuf ──Decoder──▶ &[u8] args ──dispatch::execute──▶ Reply ──encode──▶ wbuf
//!     ▲                    (borrowed; rbuf advances once per batch)                      │
//!     └──────────── one write per batch, after the thread's other ready clients ◀────────┘
//!                   (under `appendfsync always`, after the batch's log records are fsynced;
//!                    for a strong cache, after the in-sync mirrors acknowledged them)
//! ```
//! The task also wakes on CLIENT KILL, on server shutdown and on the idle `timeout`;
//! each of those ends the loop between batches, never in the middle of one.
//!
//! Limits: the query buffer (`client-query-buffer-limit`), the frame limits of the codec,
//! and the output buffer (`client-output-buffer-limit`): replies are counted as pending
//! output until written ([`write_out`]); a batch whose replies pass the hard limit is
//! dropped and the connection closed, and a write that stalls is watched on a timer for
//! the soft limit. While a client cannot run commands (the default user needs a
//! password) and never authenticated, Redis's tighter limits hold: 10 arguments, 16 KB
//! bulks, a 1 MB query buffer, 1 KB of output.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::{Client, ClientHandle, Shared, dispatch};
use crate::protocol::{Decoder, FrameLimits, Reply};
use crate::tls::Stream;

/// Initial buffer sizes; buffers grow for large requests and shrink back after.
const BUF: usize = 16 * 1024;
/// A write buffer that grew beyond this is released after use.
const KEEP_WBUF: usize = 1 << 20;
/// How long a strong cache's writer waits for a tracking connection to write the
/// invalidation it was sent before closing that connection.
const STRONG_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// Query buffer of a client that never authenticated while auth is required (Redis's).
const UNAUTH_QUERY_MAX: u64 = 1 << 20;
/// Output a client that never authenticated may have pending (Redis's).
const UNAUTH_OUTPUT_MAX: usize = 1024;
/// How often a stalled write looks at the output limits and at CLIENT KILL.
const WRITE_TICK: Duration = Duration::from_millis(100);

/// Serves one connection until it closes, is killed, idles out or the server stops.
pub async fn serve(
    shared: Arc<Shared>,
    mut stream: Stream,
    handle: Arc<ClientHandle>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Protected mode, once the connection (TLS included) is up, as in Redis: the DENIED
    // text reaches a TLS client readable.
    if shared.acl.protected_denies(
        shared.settings.protected_mode.load(Ordering::Relaxed),
        handle.addr.ip(),
    ) {
        shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
        let _ = stream.write_all(crate::acl::DENIED.as_bytes()).await;
        let _ = stream.shutdown().await;
        shared.clients.remove(handle.id);
        return;
    }
    let mut client = Client::new(handle.clone(), &shared.acl);
    // Redis's limits for unauthenticated clients hold until the first success.
    let mut never_authed = !client.authenticated;
    let mut rbuf = BytesMut::with_capacity(BUF);
    let mut wbuf = BytesMut::with_capacity(BUF);
    let mut decoder = Decoder::default();
    let Some(mut pushes) = handle.push_rx.lock().take() else {
        return;
    };
    // Bytes read while a command was blocked (see `wait_keys`): the next batch's input.
    let mut spill = BytesMut::new();

    loop {
        if rbuf.capacity() - rbuf.len() < BUF / 4 {
            rbuf.reserve(BUF);
        }
        let idle = shared.settings.timeout_secs.load(Ordering::Relaxed);
        let read = if !spill.is_empty() {
            // Requests that arrived while a command was blocked run now, without
            // waiting for more bytes.
            let n = spill.len();
            rbuf.extend_from_slice(&spill);
            spill.clear();
            Ok(n)
        } else {
            tokio::select! {
                r = stream.read_buf(&mut rbuf) => r,
                Some(first) = pushes.recv() => {
                    // Out-of-band replies (pub/sub messages, invalidations): write all that
                    // are queued.
                    let mut n = 1;
                    handle.took_push(&first);
                    first.encode(client.proto, &mut wbuf);
                    while let Ok(more) = pushes.try_recv() {
                        handle.took_push(&more);
                        more.encode(client.proto, &mut wbuf);
                        n += 1;
                    }
                    if over_output(&handle, never_authed, wbuf.len())
                        || !write_out(&mut stream, &wbuf, &handle).await
                    {
                        break;
                    }
                    handle.wrote_pushes(n);
                    shared.stats.add_net(0, wbuf.len() as u64);
                    wbuf.clear();
                    continue;
                }
                _ = handle.kill.notified() => break,
                _ = crate::server::stopping(&mut shutdown) => break,
                _ = idle_timer(idle) => {
                    tracing::debug!(client = handle.id, "closing idle client");
                    break;
                }
            }
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => shared.stats.add_net(n as u64, 0),
        }

        let base_limits = shared.settings.frame_limits();
        // Below this many reply bytes no output limit can be broken: the common case
        // checks nothing per reply.
        let out_check = output_check_at(&handle, never_authed);
        let mut clock = dispatch::BatchClock::start();
        // Requests run on arguments borrowed from `rbuf`; it is advanced once, after the
        // batch.
        let mut pos = 0;
        let mut replies = 0;
        // Once a command of the batch was sent to another stripe, the replies after it
        // wait their turn here (in order), instead of going straight to `wbuf`.
        let mut deferred: Vec<Deferred> = Vec::new();
        // Bytes of the replies waiting in `deferred`: pending output like `wbuf`'s.
        let mut deferred_bytes = 0;
        loop {
            let limits = FrameLimits {
                unauthenticated: !client.authenticated,
                ..base_limits
            };
            match decoder.decode(&rbuf[pos..], &limits) {
                Ok(Some(frame)) => {
                    let start = pos;
                    pos += frame.len;
                    let argv = frame.args(&rbuf[start..pos]);
                    if argv.is_empty() {
                        continue;
                    }
                    let mut reply = dispatch::execute(&shared, &mut client, &argv, &mut clock);
                    if let Some(b) = client.blocked.take() {
                        // WAIT, FAILOVER: the batch waits here, in order.
                        reply = crate::replication::run_blocked(&shared, b).await;
                    }
                    if client.block.is_some() {
                        // BLPOP and the like: the batch waits here too. The replies before
                        // it go out first when nothing holds them back (a strong cache's
                        // acks, an fsync, another stripe's answer), as Redis writes them
                        // before a client blocks.
                        if deferred.is_empty()
                            && client.wait_lsn == 0
                            && client.strong_lsn == 0
                            && client.acks.is_empty()
                            && !wbuf.is_empty()
                        {
                            if !write_out(&mut stream, &wbuf, &handle).await {
                                client.block = None;
                                client.close = true;
                                break;
                            }
                            shared.stats.add_net(0, wbuf.len() as u64);
                            wbuf.clear();
                            replies = 0;
                        }
                        let io = Io {
                            stream: &mut stream,
                            pushes: &mut pushes,
                            shutdown: &mut shutdown,
                            wbuf: &mut wbuf,
                            spill: &mut spill,
                            limit: shared
                                .settings
                                .client_query_buffer_limit
                                .load(Ordering::Relaxed),
                        };
                        reply = wait_keys(&shared, &mut client, &argv, io).await;
                    }
                    if let Some(p) = client.routed.take() {
                        deferred.push(Deferred::Routed(p));
                    } else if deferred.is_empty() {
                        reply.encode(client.proto, &mut wbuf);
                    } else {
                        deferred_bytes += reply.wire_size();
                        deferred.push(Deferred::Ready(reply));
                    }
                    replies += 1;
                    let pending = wbuf.len() + deferred_bytes;
                    if pending >= out_check && over_output(&handle, never_authed, pending) {
                        // Redis drops the output of a client over its limit and closes it;
                        // the rest of the batch does not run.
                        wbuf.clear();
                        deferred.clear();
                        client.close = true;
                        break;
                    }
                    never_authed &= !client.authenticated;
                    if client.close {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(client = handle.id, "protocol error: {e}");
                    deferred.push(Deferred::Ready(Reply::Error(format!("ERR {e}").into())));
                    client.close = true;
                    break;
                }
            }
        }
        for d in deferred {
            let reply = match d {
                Deferred::Ready(r) => r,
                Deferred::Routed(p) => p.resolve(&shared).await,
            };
            reply.encode(client.proto, &mut wbuf);
        }
        rbuf.advance(pos);
        flush_stats(&shared, &mut client);
        handle.qbuf.store(rbuf.len(), Ordering::Relaxed);
        handle.last_active_ms.store(
            handle.created.elapsed().as_millis() as u64,
            Ordering::Relaxed,
        );
        let mut qlimit = shared
            .settings
            .client_query_buffer_limit
            .load(Ordering::Relaxed);
        if never_authed {
            qlimit = qlimit.min(UNAUTH_QUERY_MAX);
        }
        if rbuf.len() as u64 > qlimit {
            tracing::warn!(client = handle.id, addr = %handle.addr, "closing client that reached max query buffer length");
            shared
                .stats
                .qbuf_disconnections
                .fetch_add(1, Ordering::Relaxed);
            client.close = true;
        }
        if client.strong_lsn != 0 {
            // A strong cache: no reply of this batch leaves before every in-sync mirror has
            // its writes (acks are cumulative: the last one covers the batch).
            let lsn = std::mem::take(&mut client.strong_lsn);
            if let Err(why) = shared.repl.confirm_strong(lsn).await {
                wbuf.clear();
                for _ in 0..replies {
                    Reply::Error(why.clone().into()).encode(client.proto, &mut wbuf);
                }
            }
        }
        if client.wait_lsn != 0 {
            // appendfsync always: no reply of this batch leaves before its writes are on
            // disk; if they were lost, each command is answered with the error instead.
            let lsn = std::mem::take(&mut client.wait_lsn);
            if let Some(p) = &shared.persist
                && let Err(why) = p.durable(lsn).await
            {
                wbuf.clear();
                let e = crate::persist::misconf(&why);
                for _ in 0..replies {
                    Reply::Error(e.clone().into()).encode(client.proto, &mut wbuf);
                }
            }
        }
        if !wbuf.is_empty() {
            // Let the other ready connections of this thread run their batches first, then
            // write: the writes of many connections come together (Redis writes in
            // `beforeSleep` for the same reason), so a client woken by the first reply
            // finds the rest already there instead of being woken once per reply.
            tokio::task::yield_now().await;
            if !client.acks.is_empty() {
                let acks = std::mem::take(&mut client.acks);
                let own = Own {
                    handle: &handle,
                    proto: client.proto,
                    pushes: &mut pushes,
                };
                if !await_flushes(acks, own, &mut stream, &mut wbuf).await {
                    break;
                }
            }
            if (wbuf.len() >= out_check && over_output(&handle, never_authed, wbuf.len()))
                || !write_out(&mut stream, &wbuf, &handle).await
            {
                break;
            }
            shared.stats.add_net(0, wbuf.len() as u64);
            wbuf.clear();
            if wbuf.capacity() > KEEP_WBUF {
                wbuf = BytesMut::with_capacity(BUF);
            }
        }
        if client.close || handle.killed.load(Ordering::Acquire) {
            break;
        }
    }
    flush_stats(&shared, &mut client);
    // Writers of strong caches waiting for this connection's invalidations stop waiting:
    // a closed connection's L1 is gone with it.
    handle.flushed.send_replace(u64::MAX);
    super::tracking::stop(&shared, &mut client);
    super::transaction::unwatch(&shared, &mut client);
    crate::command::pubsub::unsubscribe_all(&shared, &mut client);
    let _ = stream.shutdown().await;
    shared.clients.remove(handle.id);
}

/// What a blocked command watches besides its keys.
struct Io<'a> {
    stream: &'a mut Stream,
    pushes: &'a mut tokio::sync::mpsc::UnboundedReceiver<Reply>,
    shutdown: &'a mut watch::Receiver<bool>,
    wbuf: &'a mut BytesMut,
    /// What the client sends meanwhile (read so that a closed connection is noticed);
    /// bounded by `client-query-buffer-limit`.
    spill: &'a mut BytesMut,
    limit: u64,
}

/// How a blocked command's wait ended, besides a wake-up.
enum Waited {
    Woken(super::blocking::Wake),
    Deadline,
    Closing,
    Push(Reply),
    Read,
}

/// Waits for the keys a blocking command (BLPOP, ...) registered on, running it again
/// (through dispatch, so its effect is logged and replicated like any write) each time
/// one of them may have grown. On timeout (or CLIENT UNBLOCK ... TIMEOUT) the reply is
/// Redis's null array, whatever the command: Redis answers every timed-out list or sorted
/// set wait so (the command's own reply, given when it cannot block, may be a null bulk).
/// Out-of-band replies are written meanwhile (an invalidation must not wait for a push
/// that may never come), and also appended after the batch's earlier replies still held
/// back, as [`await_flushes`] does. A kill, the server's shutdown or the client closing its end
/// ends the wait without a reply and closes the connection (a client that is gone must
/// not take an element); requests sent meanwhile wait in `spill`.
async fn wait_keys(shared: &Arc<Shared>, client: &mut Client, argv: &[&[u8]], io: Io<'_>) -> Reply {
    use super::blocking::Wake;
    loop {
        let Some(b) = client.block.as_ref() else {
            return Reply::NilArray;
        };
        let deadline = b.deadline;
        let handle = client.handle.clone();
        let waited = tokio::select! {
            w = b.woken() => Waited::Woken(w),
            _ = sleep_until(deadline) => Waited::Deadline,
            _ = handle.kill.notified() => Waited::Closing,
            _ = crate::server::stopping(io.shutdown) => Waited::Closing,
            Some(p) = io.pushes.recv() => {
                handle.took_push(&p);
                Waited::Push(p)
            }
            r = io.stream.read_buf(io.spill) => match r {
                Ok(n) if n > 0 && (io.spill.len() as u64) <= io.limit => Waited::Read,
                _ => Waited::Closing,
            },
        };
        match waited {
            // Counted when the next batch takes them.
            Waited::Read => {}
            Waited::Push(p) => {
                let mut early = BytesMut::new();
                p.encode(client.proto, &mut early);
                // Replies of this batch still held back (fsync, strong acks): the push
                // follows them again, so an invalidation never reaches the client only
                // before a reply it invalidates (as `await_flushes` does).
                if !io.wbuf.is_empty() {
                    io.wbuf.extend_from_slice(&early);
                }
                if !write_out(io.stream, &early, &handle).await {
                    client.block = None;
                    client.close = true;
                    return Reply::NoReply;
                }
                handle.wrote_pushes(1);
            }
            Waited::Closing => {
                client.block = None;
                client.close = true;
                return Reply::NoReply;
            }
            Waited::Deadline | Waited::Woken(Wake::Timeout) => {
                client.block = None;
                return Reply::NilArray;
            }
            Waited::Woken(Wake::Error) => {
                client.block = None;
                return super::blocking::unblocked_error();
            }
            Waited::Woken(Wake::Retry) => {
                let mut clock = dispatch::BatchClock::start();
                let reply = dispatch::retry(shared, client, argv, &mut clock);
                if client.block.as_ref().is_some_and(|b| b.again) {
                    continue;
                }
                if let Some(mut b) = client.block.take() {
                    b.served = true;
                }
                return reply;
            }
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending::<()>().await,
    }
}

/// A reply of the batch that waits for an earlier one sent to another stripe.
enum Deferred {
    /// Computed here.
    Ready(Reply),
    /// Coming from other stripes.
    Routed(crate::cluster::merge::Pending),
}

/// This connection's side of [`await_flushes`].
struct Own<'a> {
    handle: &'a ClientHandle,
    proto: crate::protocol::Proto,
    pushes: &'a mut tokio::sync::mpsc::UnboundedReceiver<Reply>,
}

/// Waits until every strong-cache invalidation this batch queued (`acks`) is on its
/// connection's socket, so the batch's replies (in `wbuf`) go out after it. A connection
/// that has not written one within [`STRONG_FLUSH_TIMEOUT`] is closed: its client then
/// drops its L1 (as clients do on disconnect) instead of serving a stale value.
///
/// Meanwhile this connection writes its own out-of-band replies at once, so two writers
/// waiting on each other cannot deadlock. Each is also appended to `wbuf`, after the
/// replies: an invalidation must never reach a client only *before* a reply carrying the
/// value it invalidates. False if this connection's socket failed.
async fn await_flushes(
    acks: Vec<(Arc<ClientHandle>, u64)>,
    own: Own<'_>,
    stream: &mut Stream,
    wbuf: &mut BytesMut,
) -> bool {
    let deadline = tokio::time::Instant::now() + STRONG_FLUSH_TIMEOUT;
    let mut early = BytesMut::new();
    for (h, seq) in acks {
        if h.id == own.handle.id {
            continue;
        }
        let mut flushed = h.flushed.subscribe();
        while *flushed.borrow_and_update() < seq {
            tokio::select! {
                r = flushed.changed() => if r.is_err() { break },
                Some(p) = own.pushes.recv() => {
                    own.handle.took_push(&p);
                    p.encode(own.proto, &mut early);
                    wbuf.extend_from_slice(&early);
                    if !write_out(stream, &early, own.handle).await {
                        return false;
                    }
                    early.clear();
                    own.handle.wrote_pushes(1);
                }
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(client = h.id, addr = %h.addr, "closing tracking client that did not take a strong cache's invalidation in time");
                    h.kill();
                    break;
                }
            }
        }
    }
    true
}

/// The reply-buffer size at which a batch starts checking its output limit.
fn output_check_at(handle: &ClientHandle, never_authed: bool) -> usize {
    if never_authed {
        return UNAUTH_OUTPUT_MAX + 1;
    }
    let l = handle.output_limit();
    let smallest = [l.hard, l.soft].into_iter().filter(|&v| v > 0).min();
    // Out-of-band replies queued meanwhile count too: start a little early.
    smallest.map_or(usize::MAX, |v| usize::try_from(v / 2).unwrap_or(usize::MAX))
}

/// True when `pending` reply bytes (plus queued out-of-band replies) break the client's
/// output limit: the client is then closed without its replies (Redis's "closed ASAP").
fn over_output(handle: &ClientHandle, never_authed: bool, pending: usize) -> bool {
    if never_authed && pending > UNAUTH_OUTPUT_MAX {
        tracing::warn!(client = handle.id, addr = %handle.addr, "closing unauthenticated client whose output passed {UNAUTH_OUTPUT_MAX} bytes");
        return true;
    }
    handle.omem.store(pending as u64, Ordering::Relaxed);
    let over = handle.check_output();
    if over {
        handle.omem.store(0, Ordering::Relaxed);
    }
    over
}

/// Writes `buf`, counting what is not yet written as the client's pending output
/// (CLIENT LIST `omem`). A write the client does not take is looked at every
/// [`WRITE_TICK`]: it ends (false) once the client breaks its output limit (the soft one
/// by staying above it; out-of-band replies keep queuing meanwhile) or is killed.
/// Generic over the stream so a TLS stream writes the same way.
async fn write_out<S: AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &[u8],
    handle: &ClientHandle,
) -> bool {
    let mut done = 0;
    handle.omem.store(buf.len() as u64, Ordering::Relaxed);
    let ok = loop {
        if done == buf.len() {
            // TLS holds the last record back until flushed (a no-op for plain TCP): no
            // timer unless the flush has to wait.
            if let Some(r) = poll_once(|cx| Pin::new(&mut *stream).poll_flush(cx)).await {
                break r.is_ok();
            }
            break loop {
                tokio::select! {
                    r = stream.flush() => break r.is_ok(),
                    _ = tokio::time::sleep(WRITE_TICK) => {
                        if handle.check_output() || handle.killed.load(Ordering::Acquire) {
                            break false;
                        }
                    }
                }
            };
        }
        // Most writes are taken at once: no timer for them.
        let r = match poll_once(|cx| Pin::new(&mut *stream).poll_write(cx, &buf[done..])).await {
            Some(r) => r,
            None => tokio::select! {
                r = stream.write(&buf[done..]) => r,
                _ = tokio::time::sleep(WRITE_TICK) => {
                    if handle.check_output() || handle.killed.load(Ordering::Acquire) {
                        break false;
                    }
                    continue;
                }
            },
        };
        match r {
            Ok(n) if n > 0 => {
                done += n;
                handle
                    .omem
                    .store((buf.len() - done) as u64, Ordering::Relaxed);
            }
            _ => break false,
        }
    };
    handle.omem.store(0, Ordering::Relaxed);
    ok
}

/// One poll of `f`: `None` when it would have to wait (the socket would block).
async fn poll_once<R>(mut f: impl FnMut(&mut Context<'_>) -> Poll<R>) -> Option<R> {
    std::future::poll_fn(|cx| {
        Poll::Ready(match f(cx) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        })
    })
    .await
}

fn flush_stats(shared: &Shared, client: &mut Client) {
    shared.stats.add(
        std::mem::take(&mut client.pending),
        client.pending_cmds,
        client.pending_errors,
    );
    client.pending_cmds = 0;
    client.pending_errors = 0;
}

/// Sleeps for the idle timeout, or forever when it is 0 (disabled).
async fn idle_timer(secs: u64) {
    if secs == 0 {
        std::future::pending::<()>().await;
    } else {
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
}
