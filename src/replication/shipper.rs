//! The active's side of the group port: answers HELLO, and for each mirror that sends
//! SYNC, a full sync or a resume, then the record stream, heartbeats and its acks.
//!
//! ```text
//!  group listener ─accept─▶ handshake line
//!     HELLO ─▶ PEER line
//!     RAFT  ─▶ control-plane frames (cluster::control::net)
//!     SYNC  ─▶ resume (backlog holds lsn+1, same history) ─▶ CONTINUE
//!           └▶ FULLSYNC S ─▶ snapshot thread: shard by shard ─mpsc─▶ writer ─▶ S.. E
//!     writer: backlog from S (or lsn+1) ─▶ R messages; idle ─▶ H; caught up ─▶ Y; switchover ─▶ T
//!     reader: A (ack) ─▶ InSync::on_ack; P (promoted) ─▶ switchover completes
//! ```

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::in_sync::Link;
use super::wire;
use crate::server::Shared;
use crate::tls::{Port, Stream};

/// Bytes of records sent per message, about.
const BATCH: usize = 1 << 20;
/// A heartbeat goes out when the stream was idle this long.
const HEARTBEAT: Duration = Duration::from_millis(500);
/// Below this many bytes of records, an eventual-only stream waits [`GATHER`] for more.
const GATHER_BELOW: usize = 64 << 10;
/// How long an eventual-only stream lets records gather.
const GATHER: Duration = Duration::from_millis(1);
/// The longest handshake line.
const LINE_MAX: usize = 1024;

/// Serves the group port until the server stops.
pub async fn listen(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let stream = match crate::tls::accept(stream, Port::Group).await {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::info!("group connection from {peer}: TLS: {e}");
                                return;
                            }
                        };
                        if let Err(e) = handle(&shared, stream).await {
                            tracing::debug!("group connection from {peer}: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("group port accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = crate::server::stopping(&mut shutdown) => return,
        }
    }
}

/// Reads one `\n`-terminated line (bounded), leaving what follows unread.
pub async fn read_line(stream: &mut Stream) -> Result<String, String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < LINE_MAX {
        match stream.read(&mut b).await {
            Ok(0) => return Err("closed before a line".into()),
            Ok(_) if b[0] == b'\n' => return Ok(String::from_utf8_lossy(&line).into_owned()),
            Ok(_) => line.push(b[0]),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("handshake line too long".into())
}

async fn handle(shared: &Arc<Shared>, mut stream: Stream) -> Result<(), String> {
    let line = tokio::time::timeout(Duration::from_secs(5), read_line(&mut stream))
        .await
        .map_err(|_| "no handshake".to_string())??;
    let w: Vec<&str> = line.split_whitespace().collect();
    let io = |e: std::io::Error| e.to_string();
    match w.as_slice() {
        ["HELLO"] => {
            let v = shared.repl.view();
            stream.write_all(v.line().as_bytes()).await.map_err(io)
        }
        ["RAFT"] => match shared.repl.control() {
            Some(cp) => crate::cluster::control::net::serve(cp.clone(), stream).await,
            None => Err("RAFT: this server runs no control plane".into()),
        },
        ["SYNC", name, epoch, lsn, addr] => {
            let (Ok(epoch), Ok(lsn)) = (epoch.parse::<u64>(), lsn.parse::<u64>()) else {
                let _ = stream.write_all(b"-ERR bad SYNC line\n").await;
                return Err(format!("bad SYNC line {line:?}"));
            };
            serve_mirror(shared, stream, name, addr, epoch, lsn).await
        }
        _ => {
            let _ = stream.write_all(b"-ERR unknown handshake\n").await;
            Err(format!("unknown handshake {line:?}"))
        }
    }
}

async fn serve_mirror(
    shared: &Arc<Shared>,
    mut stream: Stream,
    name: &str,
    addr: &str,
    epoch: u64,
    lsn: u64,
) -> Result<(), String> {
    let repl = &shared.repl;
    let io = |e: std::io::Error| e.to_string();
    let (true, Some(log)) = (repl.is_active(), repl.log().cloned()) else {
        let _ = stream.write_all(b"-ERR not the active\n").await;
        return Err("SYNC refused: not the active".into());
    };
    // Epoch 0: a mirror that never synced in this process (its data must be cleared).
    let resume = if epoch > 0 && repl.is_prefix(epoch, lsn) && lsn <= log.last_lsn() {
        log.backlog_find(lsn + 1)
    } else {
        None
    };
    let link = Arc::new(Link::new(name.to_string(), addr.to_string()));
    let (mut cursor, snapshot) = match resume {
        Some(cur) => {
            stream
                .write_all(format!("CONTINUE {}\n", repl.epoch()).as_bytes())
                .await
                .map_err(io)?;
            link.standby_at.store(log.last_lsn(), Ordering::Release);
            tracing::info!(
                "mirror {name} ({addr}) resumes after lsn {lsn} from the backlog (no full sync)"
            );
            (cur, None)
        }
        None => {
            let (cur, start) = log.backlog_end().ok_or("no backlog")?;
            stream
                .write_all(
                    format!(
                        "FULLSYNC {} {start} {}\n",
                        repl.epoch(),
                        repl.epoch_start.load(Ordering::Acquire)
                    )
                    .as_bytes(),
                )
                .await
                .map_err(io)?;
            tracing::info!(
                "mirror {name} ({addr}) gets a full sync: a snapshot, then records from lsn {start}"
            );
            (cur, Some(spawn_snapshot(shared.clone())))
        }
    };
    repl.in_sync.add(link.clone());
    let (rd, mut wr) = stream.into_split();
    let reader = tokio::spawn(read_acks(shared.clone(), link.clone(), rd));
    let r = stream_to(shared, &link, &mut wr, &mut cursor, snapshot).await;
    reader.abort();
    let why = match &r {
        Ok(()) => "its link closed".to_string(),
        Err(e) => e.clone(),
    };
    repl.in_sync.remove(&link, &why);
    let _ = wr.shutdown().await;
    r
}

/// Produces the snapshot: every shard, one at a time, as `S` messages.
fn spawn_snapshot(shared: Arc<Shared>) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        for shard in 0..crate::store::SHARDS {
            let mut msg = Vec::new();
            let start = wire::begin(&mut msg, wire::SNAPSHOT);
            crate::persist::compact::snapshot_shard(&shared.keyspace, shard, &mut msg);
            if wire::body_len(&msg, start) == 0 {
                continue;
            }
            wire::finish(&mut msg, start);
            if tx.blocking_send(msg).is_err() {
                return;
            }
        }
    });
    rx
}

/// Writes the snapshot (if any), then records as they come, until the link fails, the
/// mirror falls out of the backlog or out of sync, or a switchover ends this role.
async fn stream_to(
    shared: &Arc<Shared>,
    link: &Arc<Link>,
    wr: &mut crate::tls::WriteHalf,
    cursor: &mut super::backlog::Cursor,
    snapshot: Option<tokio::sync::mpsc::Receiver<Vec<u8>>>,
) -> Result<(), String> {
    let repl = &shared.repl;
    let log = repl.log().cloned().ok_or("no log")?;
    let timeout = repl.timeout;
    let limit = Pending::new();
    if let Some(mut rx) = snapshot {
        while let Some(msg) = rx.recv().await {
            send(wr, link, timeout, &msg).await?;
            limit.check(shared, link, &log, cursor)?;
        }
        let mut end = Vec::new();
        wire::put_u64s(&mut end, wire::SNAPSHOT_END, &[0]);
        send(wr, link, timeout, &end).await?;
        // It is in sync once it has applied what the active had when its load ended.
        link.standby_at.store(log.last_lsn(), Ordering::Release);
    }
    let mut told_standby = false;
    // One message buffer, reused: records are read from the backlog straight into it.
    let mut msg = Vec::with_capacity(BATCH + 64);
    let lost = |_| "the mirror fell behind the replication backlog (repl_backlog); it will resync";
    loop {
        if link.is_out() {
            return Err("out of sync".into());
        }
        let silent =
            crate::store::now_ms().saturating_sub(link.last_contact_ms.load(Ordering::Relaxed));
        if silent > timeout.as_millis() as u64 {
            let why = format!("no ack for {silent} ms (replica_timeout {timeout:?})");
            repl.in_sync.mark_out_of_sync(link, &why);
            return Err(why);
        }
        limit.check(shared, link, &log, cursor)?;
        msg.clear();
        let start = wire::begin(&mut msg, wire::RECORDS);
        // The epoch that writes them: a mirror that knows a newer one refuses them.
        msg.extend_from_slice(&repl.epoch().to_le_bytes());
        let epoch_only = wire::body_len(&msg, start);
        let records = |msg: &Vec<u8>| wire::body_len(msg, start) - epoch_only;
        // A pending takeover goes out as soon as the last records have.
        let wait = if link.takeover.lock().is_some() {
            Duration::ZERO
        } else {
            HEARTBEAT
        };
        let idle = tokio::select! {
            r = log.next_records(cursor, &mut msg, BATCH, wait) => {
                r.map_err(lost)?;
                records(&msg) == 0
            }
            _ = link.wake.notified() => true,
        };
        if records(&msg) > 0 && records(&msg) < GATHER_BELOW && gather_ok(shared) {
            // Nobody waits for these acks (eventual writes only): let records gather for a
            // moment, so the mirror applies (and acks) in batches, not once per record.
            tokio::time::sleep(GATHER).await;
            log.next_records(cursor, &mut msg, BATCH, Duration::ZERO)
                .await
                .map_err(lost)?;
        }
        if records(&msg) > 0 {
            wire::finish(&mut msg, start);
            send(wr, link, timeout, &msg).await?;
            continue;
        }
        let mut control = Vec::new();
        if idle {
            wire::put_u64s(
                &mut control,
                wire::HEARTBEAT,
                &[log.last_lsn(), repl.epoch()],
            );
        }
        if !told_standby && link.is_standby() {
            wire::put(&mut control, wire::STANDBY, &[]);
            told_standby = true;
        }
        let sent_all = log.backlog_end().map(|(c, _)| c) == Some(*cursor);
        // Taken in one step: the switchover's timeout takes it too, and whoever takes it
        // decides (sent here, or withdrawn there: never both).
        let takeover = if sent_all {
            link.takeover.lock().take()
        } else {
            None
        };
        if let Some((last, epoch)) = takeover {
            // Writes are paused and every record up to `last` has been sent.
            wire::put_u64s(&mut control, wire::TAKEOVER, &[last, epoch]);
        }
        if !control.is_empty() {
            send(wr, link, timeout, &control).await?;
        }
        if link.promoted.load(Ordering::Acquire) {
            return Ok(());
        }
    }
}

/// What a mirror has pending: the backlog's bytes after its cursor, written for it but
/// not yet sent. Nothing else is buffered per mirror (one message of about [`BATCH`]
/// bytes, and a snapshot channel of 4 messages), so this is what Redis's
/// `client-output-buffer-limit replica` bounds here: a mirror that falls behind by more
/// than the hard limit, or by more than the soft one for the soft seconds, is
/// disconnected (it reconnects and resumes from the backlog, or resyncs).
struct Pending {
    watch: crate::server::output::Watch,
    /// The watch's clock base.
    started: std::time::Instant,
}

impl Pending {
    fn new() -> Pending {
        Pending {
            watch: Default::default(),
            started: std::time::Instant::now(),
        }
    }

    fn check(
        &self,
        shared: &Shared,
        link: &Link,
        log: &crate::persist::Log,
        cursor: &super::backlog::Cursor,
    ) -> Result<(), String> {
        use crate::server::output::Class;
        let limits = &shared.settings.output;
        let limit = limits.get(Class::Replica);
        if limit.hard == 0 && limit.soft == 0 {
            return Ok(());
        }
        let Some(behind) = log.backlog_behind(cursor) else {
            return Ok(());
        };
        if !self.watch.breaks(limit, behind as u64, self.started) {
            return Ok(());
        }
        let who = format!("mirror {} ({})", link.name, link.addr);
        limits.disconnected(Class::Replica, &who, behind as u64);
        Err(format!(
            "{who} passed client-output-buffer-limit replica ({behind} bytes pending)"
        ))
    }
}

/// Whether the stream may wait a moment for more records: only when every cache is
/// eventual and no WAIT is pending (a strong writer's record is shipped before it even
/// starts to wait, so "nobody waits yet" says nothing about strong records).
fn gather_ok(shared: &Shared) -> bool {
    !shared.keyspace.caches().iter().any(|c| c.is_strong()) && !shared.repl.in_sync.has_waiters()
}

/// Writes `bytes` to a mirror; a mirror that takes nothing for `timeout` is out of sync.
async fn send(
    wr: &mut crate::tls::WriteHalf,
    link: &Link,
    timeout: Duration,
    bytes: &[u8],
) -> Result<(), String> {
    match tokio::time::timeout(timeout, wr.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "mirror {} took no data for {timeout:?} (replica_timeout)",
            link.name
        )),
    }
}

/// Most bytes of one message a mirror may send to the active (its acks are 13 bytes).
const MIRROR_MSG_MAX: usize = 64 << 10;

/// Reads the mirror's acks (and its answer to a takeover) until the link closes.
async fn read_acks(shared: Arc<Shared>, link: Arc<Link>, mut rd: crate::tls::ReadHalf) {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut pos = 0;
        loop {
            match wire::parse(&buf[pos..]) {
                wire::Msg::Ok { tag, body, len } => {
                    pos += len;
                    match tag {
                        wire::ACK => {
                            if let Ok(lsn) = wire::u64_at(body, 0)
                                && shared.repl.in_sync.on_ack(&link, lsn)
                            {
                                // Tell it at once that it is PASSIVE-STANDBY.
                                link.wake.notify_one();
                            }
                        }
                        wire::PROMOTED => {
                            link.promoted.store(true, Ordering::Release);
                            link.wake.notify_one();
                        }
                        _ => {}
                    }
                }
                wire::Msg::Incomplete => break,
                wire::Msg::Bad(why) => {
                    tracing::warn!("mirror {}: {why}; closing its link", link.name);
                    shared.repl.in_sync.mark_out_of_sync(&link, &why);
                    return;
                }
            }
        }
        buf.drain(..pos);
        if buf.len() > MIRROR_MSG_MAX {
            // A mirror sends only acks and PROMOTED (a few bytes each): a peer announcing a
            // bigger message would make the active buffer up to wire::MAX_MSG for nothing.
            let why = format!("a message from the mirror over {MIRROR_MSG_MAX} bytes");
            tracing::warn!("mirror {}: {why}; closing its link", link.name);
            shared.repl.in_sync.mark_out_of_sync(&link, &why);
            return;
        }
    }
    shared
        .repl
        .in_sync
        .mark_out_of_sync(&link, "its link closed");
}

/// A planned switchover (FAILOVER): writes pause, the chosen PASSIVE-STANDBY mirror
/// receives every record, takes over at the next epoch, and this server becomes its
/// mirror. No acknowledged write is lost: every write that got a reply is at or before
/// the last lsn the new active applied before it took over.
pub async fn switchover(
    shared: &Arc<Shared>,
    to: Option<String>,
    timeout: Duration,
) -> Result<(), String> {
    let repl = &shared.repl;
    if !repl.is_active() {
        return Err("FAILOVER is only possible on the active".into());
    }
    let link = repl
        .in_sync
        .links()
        .into_iter()
        .filter(|l| l.is_standby())
        .filter(|l| to.as_ref().is_none_or(|t| *t == l.addr || *t == l.name))
        .max_by_key(|l| l.acked.load(Ordering::Acquire))
        .ok_or_else(|| match &to {
            Some(t) => format!("FAILOVER target {t} is not a PASSIVE-STANDBY mirror"),
            None => "FAILOVER requires connected replicas.".to_string(),
        })?;
    let log = repl.log().cloned().ok_or("no log")?;
    repl.pause_writes(true);
    // Every write that passed the gate holds its shard locks until it is logged: taking
    // all the locks once waits for them, and later writes see the pause.
    {
        let shared = shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            drop(shared.keyspace.db(crate::store::ShardSet::All, 0, false));
        })
        .await;
    }
    let last = log.last_lsn();
    let epoch = repl.epoch() + 1;
    tracing::info!(
        "switchover: writes paused at lsn {last}; {} takes over at epoch {epoch}",
        link.name
    );
    *link.takeover.lock() = Some((last, epoch));
    link.wake.notify_one();
    let deadline = tokio::time::Instant::now() + timeout;
    // Under a control plane the committed map may say so before the mirror's answer
    // arrives (this server then already stepped down, which closes the link).
    let taken_over = || {
        link.promoted.load(Ordering::Acquire)
            || repl.control().is_some_and(|cp| {
                cp.stripe(&repl.stripe)
                    .is_some_and(|e| e.active == link.name && e.epoch >= epoch)
            })
    };
    while !taken_over() {
        if link.is_out() || tokio::time::Instant::now() >= deadline {
            if link.takeover.lock().take().is_some() {
                // The takeover was never sent: this server is still the only active.
                repl.pause_writes(false);
                return Err(format!(
                    "FAILOVER target {} did not catch up in time; writes resumed here",
                    link.name
                ));
            }
            // Sent, not answered: the target may have taken over. Never risk two actives.
            repl.become_mirror("a switchover's target did not answer in time");
            return Err(format!(
                "FAILOVER target {} did not confirm; this server stepped down",
                link.name
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    repl.epoch.fetch_max(epoch, Ordering::AcqRel);
    repl.become_mirror(&format!("switchover to {}", link.name));
    // Its log is exactly the new active's up to `last`: it resumes, no full sync.
    repl.synced_once.store(true, Ordering::Release);
    repl.set_active_peer(Some(super::Peer {
        name: link.name.clone(),
        addr: link.addr.clone(),
        group: repl
            .peers
            .iter()
            .find(|p| p.name == link.name)
            .map(|p| p.group.clone())
            .unwrap_or_default(),
        index: repl
            .peers
            .iter()
            .find(|p| p.name == link.name)
            .map_or(0, |p| p.index),
    }));
    shared.key_range_lost();
    Ok(())
}
