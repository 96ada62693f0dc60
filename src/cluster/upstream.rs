//! Connections to other stripes' actives, pooled and pipelined: the forwarding path of
//! transparent routing.
//!
//! ```text
//!  connection task ──Job (encoded commands, reply count)──▶ writer task ──▶ socket
//!        ▲                                  │ Waiting, in send order
//!        └──────── oneshot: raw replies ◀── reader task ◀── socket
//! ```
//! A connection is kept per (address, protocol, lane); a client always uses the same lane,
//! so its commands to one stripe run there in the order it sent them, while many clients
//! share a connection's pipeline. Replies are kept raw (the bytes the owner sent), so a
//! relayed reply is written to the client without decoding it again. A connection that
//! fails is dropped with every request on it (their callers get an error) and replaced at
//! the next request.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

use crate::protocol::Proto;

/// Connections per (address, protocol).
const LANES: u64 = 2;
/// How long connecting to another server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What a forwarded request gets: one raw reply per command sent, or why it failed.
pub type Answer = Result<Vec<Bytes>, String>;

/// Requests waiting to be written.
struct Job {
    bytes: Bytes,
    replies: usize,
    done: oneshot::Sender<Answer>,
}

/// A request written, waiting for its replies.
struct Waiting {
    replies: usize,
    done: oneshot::Sender<Answer>,
}

/// The pool of connections to other servers.
#[derive(Debug, Default)]
pub struct Pool {
    /// Per address: the connection of each (protocol, lane), at `proto * LANES + lane`.
    conns: Mutex<HashMap<String, Vec<Option<mpsc::UnboundedSender<Job>>>>>,
    /// What forwarding connections authenticate with (`security.peer_user` and
    /// `peer_password`, or `requirepass`).
    auth: Option<crate::config::Credentials>,
}

impl Pool {
    /// A pool whose connections authenticate with `auth`.
    pub fn new(auth: Option<crate::config::Credentials>) -> Pool {
        Pool {
            conns: Mutex::default(),
            auth,
        }
    }

    /// Sends `request` (`replies` encoded commands) to the server at `addr`, on the
    /// connection for `proto` and the client's `lane`. Must run inside a tokio runtime.
    pub fn send(
        &self,
        addr: &str,
        proto: Proto,
        lane: u64,
        request: Bytes,
        replies: usize,
    ) -> oneshot::Receiver<Answer> {
        let (done, answer) = oneshot::channel();
        let mut job = Job {
            bytes: request,
            replies,
            done,
        };
        let at = (proto == Proto::Resp3) as usize * LANES as usize + (lane % LANES) as usize;
        let mut conns = self.conns.lock();
        if !conns.contains_key(addr) {
            conns.insert(addr.to_string(), vec![None; 2 * LANES as usize]);
        }
        let Some(slot) = conns.get_mut(addr).and_then(|v| v.get_mut(at)) else {
            return answer;
        };
        // A connection whose tasks ended is replaced (once: a new one takes any job).
        for _ in 0..2 {
            let tx = slot.get_or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run(addr.to_string(), proto, self.auth.clone(), rx));
                tx
            });
            match tx.send(job) {
                Ok(()) => break,
                Err(mpsc::error::SendError(j)) => {
                    job = j;
                    *slot = None;
                }
            }
        }
        answer
    }
}

/// Appends a command as a RESP array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    put_header(out, b'*', args.len());
    for a in args {
        let a = a.as_ref();
        put_header(out, b'$', a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn put_header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// One connection: connects, says who it is, then writes jobs as they come while a
/// reader task hands replies back in order. Dropping the job queue or the waiting list
/// fails their requests (their senders are dropped).
async fn run(
    addr: String,
    proto: Proto,
    auth: Option<crate::config::Credentials>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    let port = crate::tls::Port::Client;
    let stream = match crate::tls::connect(&addr, port, CONNECT_TIMEOUT).await {
        Ok(s) => s,
        Err(e) => return fail_all(&mut jobs, &format!("cannot connect to {addr}: {e}")),
    };
    let (rd, mut wr) = stream.into_split();
    let (waiting, replies) = mpsc::unbounded_channel::<Waiting>();
    tokio::spawn(read_replies(rd, replies, proto));
    // Who this connection is: served locally, never routed on (see CLUSTER.PEER).
    let mut hello = Vec::new();
    let mut n = 1;
    if let Some(p) = &auth {
        encode_command(&mut hello, &p.auth_args());
        n += 1;
    }
    if proto == Proto::Resp3 {
        encode_command(&mut hello, &[b"HELLO".as_slice(), b"3"]);
        n += 1;
    }
    encode_command(&mut hello, &[b"CLUSTER.PEER".as_slice()]);
    let (done, _) = oneshot::channel();
    if waiting.send(Waiting { replies: n, done }).is_err() || wr.write_all(&hello).await.is_err() {
        return fail_all(&mut jobs, &format!("connection to {addr} lost"));
    }
    let mut buf = Vec::with_capacity(16 << 10);
    while let Some(job) = jobs.recv().await {
        // Everything queued goes out in one write.
        let mut next = Some(job);
        while let Some(job) = next {
            buf.extend_from_slice(&job.bytes);
            if waiting
                .send(Waiting {
                    replies: job.replies,
                    done: job.done,
                })
                .is_err()
            {
                return fail_all(&mut jobs, &format!("connection to {addr} lost"));
            }
            next = jobs.try_recv().ok();
        }
        if let Err(e) = wr.write_all(&buf).await {
            return fail_all(&mut jobs, &format!("connection to {addr} lost: {e}"));
        }
        buf.clear();
        if buf.capacity() > 1 << 20 {
            buf = Vec::with_capacity(16 << 10);
        }
    }
}

/// Answers every queued job with `why` and closes the queue.
fn fail_all(jobs: &mut mpsc::UnboundedReceiver<Job>, why: &str) {
    tracing::debug!("forwarding: {why}");
    jobs.close();
    while let Ok(j) = jobs.try_recv() {
        let _ = j.done.send(Err(why.to_string()));
    }
}

/// Reads replies and hands each request its own, in order. Ends at EOF, at a read error
/// or at bytes that are not RESP; the requests still waiting then fail.
async fn read_replies(
    mut rd: crate::tls::ReadHalf,
    mut waiting: mpsc::UnboundedReceiver<Waiting>,
    proto: Proto,
) {
    let mut buf = BytesMut::with_capacity(16 << 10);
    // The request whose replies are arriving, and those it has so far.
    let mut current: Option<(Waiting, Vec<Bytes>)> = None;
    let why = loop {
        loop {
            let frame = match proto {
                Proto::Resp2 => redis_protocol::resp2::decode::decode_bytes_mut(&mut buf)
                    .map(|f| f.map(|(_, _, raw)| raw)),
                Proto::Resp3 => redis_protocol::resp3::decode::complete::decode_bytes_mut(&mut buf)
                    .map(|f| f.map(|(_, _, raw)| raw)),
            };
            let raw = match frame {
                Ok(Some(raw)) => raw,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("forwarding: a reply that is not RESP: {e:?}");
                    return;
                }
            };
            let (w, mut got) = match current.take() {
                Some(c) => c,
                None => match waiting.try_recv() {
                    Ok(w) => {
                        let n = w.replies;
                        (w, Vec::with_capacity(n))
                    }
                    Err(_) => {
                        tracing::warn!("forwarding: a reply nobody asked for");
                        return;
                    }
                },
            };
            got.push(raw);
            if got.len() >= w.replies {
                let _ = w.done.send(Ok(got));
            } else {
                current = Some((w, got));
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 << 10);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => break "closed by the peer".to_string(),
            Ok(_) => {}
            Err(e) => break e.to_string(),
        }
    };
    tracing::debug!("forwarding connection ended: {why}");
}
