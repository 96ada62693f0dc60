//! The mirror's side: one session with the active, on the role thread (blocking I/O).
//!
//! ```text
//!  SYNC name epoch lsn ─▶ FULLSYNC e S: clear the data; S msgs applied; E; R msgs from S
//!                     └▶ CONTINUE e:   R msgs from lsn+1
//!  each message batch: apply under every shard lock (effects not re-recorded)
//!     ─▶ R records appended to the own log as received ─▶ ACK last lsn
//!  Y ─▶ PASSIVE-STANDBY     H ─▶ ACK (keep-alive)     T last epoch ─▶ take over, P
//! ```
//! A restarted mirror always asks for a full sync (epoch 0): what it loaded from its own
//! files may hold records the active never acknowledged. A mirror that only lost its link
//! asks to resume from its last lsn.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::wire;
use super::{Peer, State};
use crate::persist::record::{self, Frame, Record};
use crate::server::Shared;

/// How long connecting to the active may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest time the mirror holds every shard lock while applying.
const APPLY_SLICE: Duration = Duration::from_millis(2);
/// How often a waiting read wakes to check that the control plane still names this
/// session's active.
const WAKE: Duration = Duration::from_millis(100);

/// How a session ended without an error.
#[derive(Debug)]
pub enum End {
    /// This server took over (planned switchover).
    Promoted,
    /// The link closed.
    Closed(String),
}

/// Syncs with `active` and applies its stream until the link ends or this server takes
/// over.
pub fn session(shared: &Arc<Shared>, active: &Peer) -> Result<End, String> {
    let repl = &shared.repl;
    let log = repl.log().cloned().ok_or("replication has no log")?;
    let mut s = crate::net::connect_to(&active.group, crate::net::Port::Group, CONNECT_TIMEOUT)?;
    let _ = s.tcp().set_nodelay(true);
    // Reads wake often enough to notice a map change; silence is counted against
    // replica_timeout below. Writes (acks) must not block forever either.
    s.tcp()
        .set_read_timeout(Some(repl.timeout.min(WAKE)))
        .and_then(|()| s.tcp().set_write_timeout(Some(repl.timeout)))
        .map_err(|e| e.to_string())?;
    let (epoch, lsn) = if repl.synced_once.load(Ordering::Acquire) {
        (repl.epoch(), log.last_lsn())
    } else {
        (0, 0)
    };
    let hello = format!("SYNC {} {epoch} {lsn} {}\n", repl.me.name, repl.me.addr);
    s.write_all(hello.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(1 << 20);
    let line = read_line(&mut s, &mut buf)?;
    let w: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| -> Result<u64, String> {
        w.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("bad SYNC answer {line:?}"))
    };
    repl.link_up.store(true, Ordering::Release);
    repl.last_link_end.lock().clear();
    repl.last_io_ms
        .store(crate::store::now_ms(), Ordering::Relaxed);
    match w.first().copied() {
        Some("FULLSYNC") => {
            let (e, start) = (num(1)?, num(2)?);
            // Records this server holds from the active's epoch start on, written in an
            // older epoch, are a history the active never had (a zapped former active).
            let from = num(3).unwrap_or(0);
            let mine = log.last_lsn();
            if from > 0 && repl.epoch() < e && mine >= from {
                tracing::warn!(
                    "{}: discarding {} record(s) (lsn {from}..={mine}, epoch {}) that the \
                     active {} (epoch {e}) never had: writes this server took that are not \
                     in the stripe's history",
                    repl.me.name,
                    mine - from + 1,
                    repl.epoch(),
                    active.name
                );
            }
            repl.synced.store(false, Ordering::Release);
            repl.epoch.store(e, Ordering::Release);
            repl.store_role(false);
            repl.set_state(State::Initializing);
            tracing::info!(
                "{}: full sync from {}: clearing the data, then a snapshot and records from lsn {start}",
                repl.me.name,
                active.name
            );
            {
                let mut db = shared.keyspace.db_replica(crate::store::now_ms());
                db.flush();
                drop(db);
            }
            shared.key_range_lost();
            log.set_follower(true, start);
        }
        Some("CONTINUE") => {
            repl.epoch.store(num(1)?, Ordering::Release);
            repl.store_role(false);
            repl.set_state(State::Initializing);
            tracing::info!(
                "{}: resuming from {} after lsn {lsn}",
                repl.me.name,
                active.name
            );
        }
        _ => return Err(format!("the active refused: {line}")),
    }
    let mut chunk = vec![0u8; 256 << 10];
    // The bytes read with the handshake line may already hold messages: parse, then read.
    let mut first = true;
    let mut heard = Instant::now();
    loop {
        if !first {
            if !repl.still_follows(active) {
                return Ok(End::Closed("the control plane named another active".into()));
            }
            let n = match s.read(&mut chunk) {
                Ok(0) => return Ok(End::Closed("the active closed the link".into())),
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if heard.elapsed() < repl.timeout {
                        continue;
                    }
                    return Err(format!(
                        "nothing from the active for {:?} (replica_timeout)",
                        repl.timeout
                    ));
                }
                Err(e) => return Err(e.to_string()),
            };
            heard = Instant::now();
            repl.last_io_ms
                .store(crate::store::now_ms(), Ordering::Relaxed);
            buf.extend_from_slice(&chunk[..n]);
        }
        first = false;
        let mut pos = 0;
        let mut ack = false;
        loop {
            let (tag, body, len) = match wire::parse(&buf[pos..]) {
                wire::Msg::Ok { tag, body, len } => (tag, body, len),
                wire::Msg::Incomplete => break,
                wire::Msg::Bad(why) => return Err(why),
            };
            pos += len;
            ack = true;
            match tag {
                wire::SNAPSHOT => apply(shared, body, false)?,
                wire::RECORDS => {
                    fence(repl, wire::u64_at(body, 0)?)?;
                    apply(shared, body.get(8..).unwrap_or_default(), true)?
                }
                wire::HEARTBEAT => fence(repl, wire::u64_at(body, 1)?)?,
                wire::SNAPSHOT_END => {
                    tracing::info!(
                        "{}: snapshot from {} loaded ({} keys); catching up",
                        repl.me.name,
                        active.name,
                        shared
                            .keyspace
                            .caches()
                            .iter()
                            .map(|c| c.stats.entries())
                            .sum::<u64>()
                    );
                    if let Some(p) = &shared.persist {
                        // The files still hold the data of before the sync: a rewrite
                        // replaces them with what was just loaded.
                        p.request_rewrite();
                    }
                }
                wire::STANDBY => {
                    repl.synced_once.store(true, Ordering::Release);
                    repl.synced.store(true, Ordering::Release);
                    repl.set_state(State::PassiveStandby);
                }
                wire::TAKEOVER => {
                    let last = wire::u64_at(body, 0)?;
                    let epoch = wire::u64_at(body, 1)?;
                    if log.last_lsn() != last {
                        return Err(format!(
                            "asked to take over at lsn {last} but holding {}",
                            log.last_lsn()
                        ));
                    }
                    let epoch = match repl.control() {
                        // The promotion is the control plane's: it commits only if this
                        // mirror is in the committed in-sync set at the current epoch.
                        Some(cp) => promote_through(cp, repl)?,
                        None => epoch,
                    };
                    repl.become_active(epoch);
                    shared.key_range_lost();
                    tracing::info!(
                        "{}: took over from {} at epoch {epoch} after lsn {last}",
                        repl.me.name,
                        active.name
                    );
                    let mut p = Vec::new();
                    wire::put(&mut p, wire::PROMOTED, &[]);
                    let _ = s.write_all(&p);
                    return Ok(End::Promoted);
                }
                _ => {}
            }
        }
        buf.drain(..pos);
        if ack {
            let mut a = Vec::with_capacity(16);
            wire::put_u64s(&mut a, wire::ACK, &[log.last_lsn()]);
            s.write_all(&a).map_err(|e| e.to_string())?;
        }
    }
}

/// Proposes this server's own promotion (a planned switchover) and returns the new epoch.
fn promote_through(
    cp: &Arc<crate::cluster::control::ControlPlane>,
    repl: &super::Replication,
) -> Result<u64, String> {
    use crate::cluster::control::{Outcome, Proposal};
    let epoch = cp
        .stripe(&repl.stripe)
        .map(|e| e.epoch)
        .ok_or("the control plane has no entry for this stripe")?;
    let p = Proposal::Promote {
        stripe: repl.stripe.clone(),
        server: repl.me.name.clone(),
        run: repl.run_id.clone(),
        epoch,
    };
    match cp.runtime().block_on(cp.propose(p))? {
        Outcome::Applied { epoch } => Ok(epoch),
        Outcome::Refused(why) => Err(format!("the control plane refused the takeover: {why}")),
    }
}

/// Refuses records (and heartbeats) of an epoch older than the one this mirror knows: they
/// come from an active that has been replaced (fencing, REPLICATION.md "Writes" rule 4).
fn fence(repl: &super::Replication, epoch: u64) -> Result<(), String> {
    let known = repl.epoch();
    if epoch < known {
        return Err(format!(
            "fenced: the stream is of epoch {epoch} but this mirror knows epoch {known}"
        ));
    }
    Ok(())
}

/// Reads the handshake answer line; bytes after it stay in `buf`.
fn read_line(s: &mut crate::net::SyncStream, buf: &mut Vec<u8>) -> Result<String, String> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&buf[..i]).into_owned();
            buf.drain(..=i);
            return Ok(line);
        }
        if buf.len() > 1024 {
            return Err("handshake answer too long".into());
        }
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the active closed the link during the handshake".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Applies the records of a message; `logged` records (not snapshot ones) also go to
/// this server's own log, as received.
fn apply(shared: &Shared, mut body: &[u8], logged: bool) -> Result<(), String> {
    let ks = &shared.keyspace;
    let log = shared.repl.log().filter(|_| logged);
    while !body.is_empty() {
        let now = crate::store::now_ms();
        let started = Instant::now();
        let mut db = ks.db_replica(now);
        let slice = body;
        let (mut first, mut last) = (0, 0);
        let mut n = 0u32;
        // The clock is read every 64 records: a read per record costs more than the record.
        let applied = loop {
            if body.is_empty() || (n.is_multiple_of(64) && started.elapsed() >= APPLY_SLICE) {
                break Ok(());
            }
            n = n.wrapping_add(1);
            let Frame::Ok { payload, len } = record::frame(body) else {
                break Err("a damaged record from the active".to_string());
            };
            let rec = match Record::parse(payload) {
                Ok(r) => r,
                Err(e) => break Err(format!("a bad record: {e}")),
            };
            if !crate::persist::loader::apply_all(&mut db, ks, &rec, now) {
                break Err(format!("record {} does not decode", rec.lsn));
            }
            if first == 0 {
                first = rec.lsn;
            }
            last = rec.lsn;
            body = &body[len..];
        };
        // What was applied goes to the own log as received, in one append per slice.
        if let Some(log) = log
            && last != 0
        {
            log.append_raw(first, last, &slice[..slice.len() - body.len()]);
        }
        let inv = db.take_invalidations();
        drop(db);
        if !inv.is_empty() {
            shared.tracking.deliver(inv, 0, &mut Vec::new());
        }
        applied?;
    }
    Ok(())
}
