//! The control plane's transport: Raft RPCs, reports and proposals between members, on
//! the group port. A connection opens with the handshake line `RAFT`; then each request
//! and each reply is one frame: a 4-byte little-endian length and that many bytes of
//! JSON. One request is in flight per connection; a failed call drops the connection and
//! the next one reconnects.
//!
//! [`Isolation`] is the fault-injection filter of the cluster tests (TiKV's transport
//! filters): an isolated member neither sends nor answers control-plane messages, as if
//! its group port were cut off from the other members, while clients and mirrors still
//! reach it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::tls::{Port, Stream};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::TypeConfig;
use super::map::{Outcome, Proposal};
use super::monitor::Report;

/// The largest frame accepted (the control plane's messages are small; snapshots of the
/// map are a few KiB).
const FRAME_MAX: usize = 16 << 20;
/// How long connecting to a member may take.
const CONNECT: Duration = Duration::from_millis(500);

/// A request from one member to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Raft AppendEntries.
    Append(AppendEntriesRequest<TypeConfig>),
    /// Raft RequestVote.
    Vote(VoteRequest<u64>),
    /// Raft InstallSnapshot.
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// A server's report to the leader (answered with a lease for the active).
    Report(Report),
    /// A proposal for the leader to commit.
    Propose(Proposal),
}

/// The answer to a [`Request`].
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// To Append.
    Append(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    /// To Vote.
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    /// To Snapshot.
    Snapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    /// To Report: `Ok(Some(ms))` grants the active a lease of that many ms from when it
    /// sent the report; `Ok(None)` acknowledges a server that holds no lease;
    /// `Err(leader)` says this member is not the leader (and who is, if known).
    Report(Result<Option<u64>, Option<u64>>),
    /// To Propose: the outcome, or why it could not be committed here.
    Propose(Result<Outcome, String>),
}

/// The isolation switch (fault injection for tests).
#[derive(Debug, Default)]
pub struct Isolation(AtomicBool);

impl Isolation {
    /// Cuts (true) or restores (false) this member's control-plane traffic.
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Release);
    }

    /// Whether it is cut off.
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Writes one frame.
pub async fn write_frame<T: Serialize>(s: &mut Stream, v: &T) -> Result<(), String> {
    let body = serde_json::to_vec(v).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    s.write_all(&out).await.map_err(|e| e.to_string())
}

/// Reads one frame.
pub async fn read_frame<T: for<'de> Deserialize<'de>>(s: &mut Stream) -> Result<T, String> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.map_err(|e| e.to_string())?;
    let len = u32::from_le_bytes(len) as usize;
    if len > FRAME_MAX {
        return Err(format!("control-plane frame of {len} bytes is too large"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| format!("bad control-plane frame: {e}"))
}

/// A connection to one member, opened on first use and after a failure.
#[derive(Debug)]
pub struct Conn {
    addr: String,
    stream: Option<Stream>,
    isolation: Arc<Isolation>,
}

impl Conn {
    /// A connection to the member whose group address is `addr`.
    pub fn new(addr: String, isolation: Arc<Isolation>) -> Conn {
        Conn {
            addr,
            stream: None,
            isolation,
        }
    }

    /// Sends `req` and waits up to `timeout` for the reply.
    pub async fn call(&mut self, req: &Request, timeout: Duration) -> Result<Reply, String> {
        if self.isolation.is_on() {
            self.stream = None;
            return Err("isolated (fault injection)".into());
        }
        let r = tokio::time::timeout(timeout, self.call_inner(req)).await;
        let r = match r {
            Ok(r) => r,
            Err(_) => Err(format!("no answer from {} within {timeout:?}", self.addr)),
        };
        if r.is_err() {
            self.stream = None;
        }
        r
    }

    async fn call_inner(&mut self, req: &Request) -> Result<Reply, String> {
        if self.stream.is_none() {
            let mut s = crate::tls::connect(&self.addr, Port::Group, CONNECT)
                .await
                .map_err(|e| format!("connect to {}: {e}", self.addr))?;
            s.write_all(b"RAFT\n").await.map_err(|e| e.to_string())?;
            self.stream = Some(s);
        }
        let s = self.stream.as_mut().ok_or("no connection")?;
        write_frame(s, req).await?;
        read_frame(s).await
    }
}

/// Makes a [`Client`] per member for openraft.
#[derive(Debug, Clone)]
pub struct Network {
    /// Shared with every client.
    pub isolation: Arc<Isolation>,
}

/// openraft's client to one member.
#[derive(Debug)]
pub struct Client {
    target: u64,
    conn: Conn,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Client;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Client {
        Client {
            target,
            conn: Conn::new(node.addr.clone(), self.isolation.clone()),
        }
    }
}

#[derive(Debug)]
struct Failed(String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}

fn unreachable<E: std::error::Error>(why: String) -> RPCError<u64, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&Failed(why)))
}

fn unexpected<E: std::error::Error>() -> RPCError<u64, BasicNode, E> {
    RPCError::Network(NetworkError::new(&Failed("unexpected reply".into())))
}

// openraft's traits fix these error types; they are what the callers return.
#[allow(clippy::result_large_err)]
fn remote<T, E: std::error::Error>(
    target: u64,
    r: Result<T, E>,
) -> Result<T, RPCError<u64, BasicNode, E>> {
    r.map_err(|e| RPCError::RemoteError(openraft::error::RemoteError::new(target, e)))
}

impl RaftNetwork<TypeConfig> for Client {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        match self
            .conn
            .call(&Request::Append(rpc), option.hard_ttl())
            .await
        {
            Ok(Reply::Append(r)) => remote(self.target, r),
            Ok(_) => Err(unexpected()),
            Err(why) => Err(unreachable(why)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        match self
            .conn
            .call(&Request::Snapshot(rpc), option.hard_ttl())
            .await
        {
            Ok(Reply::Snapshot(r)) => remote(self.target, r),
            Ok(_) => Err(unexpected()),
            Err(why) => Err(unreachable(why)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        match self.conn.call(&Request::Vote(rpc), option.hard_ttl()).await {
            Ok(Reply::Vote(r)) => remote(self.target, r),
            Ok(_) => Err(unexpected()),
            Err(why) => Err(unreachable(why)),
        }
    }
}

/// Serves one `RAFT` connection (the handshake line was read) until it closes.
pub async fn serve(cp: Arc<super::ControlPlane>, mut stream: Stream) -> Result<(), String> {
    loop {
        let req: Request = match read_frame(&mut stream).await {
            Ok(r) => r,
            Err(e) => return Err(e),
        };
        if cp.isolation.is_on() {
            return Err("isolated (fault injection)".into());
        }
        let reply = match req {
            Request::Append(r) => Reply::Append(cp.raft.append_entries(r).await),
            Request::Vote(r) => Reply::Vote(cp.raft.vote(r).await),
            Request::Snapshot(r) => Reply::Snapshot(cp.raft.install_snapshot(r).await),
            Request::Report(r) => Reply::Report(cp.on_report(r).await),
            Request::Propose(p) => Reply::Propose(cp.propose_here(p).await),
        };
        write_frame(&mut stream, &reply).await?;
    }
}
