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
    let answer = Answer::parse(&line);
    repl.link_up.store(true, Ordering::Release);
    repl.last_link_end.lock().clear();
    repl.last_io_ms
        .store(crate::store::now_ms(), Ordering::Relaxed);
    match answer? {
        Answer::FullSync {
            epoch: e,
            start,
            from,
        } => {
            // Records this server holds from the active's epoch start on, written in an
            // older epoch, are a history the active never had (a zapped former active).
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
        Answer::Continue { epoch } => {
            repl.epoch.store(epoch, Ordering::Release);
            repl.store_role(false);
            repl.set_state(State::Initializing);
            tracing::info!(
                "{}: resuming from {} after lsn {lsn}",
                repl.me.name,
                active.name
            );
        }
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
        let handled = handle(shared, &active.name, &buf)?;
        if let Some((last, epoch)) = handled.takeover {
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
        buf.drain(..handled.consumed);
        if handled.ack {
            let mut a = Vec::with_capacity(16);
            wire::put_u64s(&mut a, wire::ACK, &[log.last_lsn()]);
            s.write_all(&a).map_err(|e| e.to_string())?;
        }
    }
}

/// How the active answered `SYNC` (the handshake line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `FULLSYNC <epoch> <start> [<from>]`: clear the data, load a snapshot, then records
    /// from `start`; `from` is the first lsn of the active's epoch (0 when not sent).
    FullSync {
        /// The active's epoch.
        epoch: u64,
        /// The lsn the records after the snapshot start at.
        start: u64,
        /// The first lsn of the active's epoch.
        from: u64,
    },
    /// `CONTINUE <epoch>`: resume from the backlog.
    Continue {
        /// The active's epoch.
        epoch: u64,
    },
}

impl Answer {
    /// Reads the answer line; anything else (`-ERR ...`, garbage) is the active refusing.
    pub fn parse(line: &str) -> Result<Answer, String> {
        let w: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> Result<u64, String> {
            w.get(i)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("bad SYNC answer {line:?}"))
        };
        match w.first().copied() {
            Some("FULLSYNC") => Ok(Answer::FullSync {
                epoch: num(1)?,
                start: num(2)?,
                from: num(3).unwrap_or(0),
            }),
            Some("CONTINUE") => Ok(Answer::Continue { epoch: num(1)? }),
            _ => Err(format!("the active refused: {line}")),
        }
    }
}

/// What [`handle`] did with the bytes buffered from the active.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Handled {
    /// Bytes of whole messages consumed from the front of the buffer.
    pub consumed: usize,
    /// At least one message came: the mirror acks its last lsn.
    pub ack: bool,
    /// A `T` message: the old active's last lsn and the new epoch. The session takes over
    /// (it holds the log, the socket and the control plane); nothing after `T` is read.
    pub takeover: Option<(u64, u64)>,
}

/// Handles every whole message at the front of `buf` as the active sent it: applies `S`
/// and `R` records, fences `R` and `H` by epoch, notes `E` and `Y`. Everything the mirror
/// reads from the active after the handshake goes through here, so the fuzz target `repl`
/// drives it with arbitrary bytes. A message the protocol does not allow ends the link.
pub fn handle(shared: &Shared, active: &str, buf: &[u8]) -> Result<Handled, String> {
    let repl = &shared.repl;
    let mut out = Handled::default();
    loop {
        let (tag, body, len) = match wire::parse(&buf[out.consumed..]) {
            wire::Msg::Ok { tag, body, len } => (tag, body, len),
            wire::Msg::Incomplete => return Ok(out),
            wire::Msg::Bad(why) => return Err(why),
        };
        out.consumed += len;
        out.ack = true;
        match tag {
            wire::SNAPSHOT => apply(shared, body, false)?,
            wire::RECORDS => {
                fence(repl, wire::u64_at(body, 0)?)?;
                apply(shared, body.get(8..).unwrap_or_default(), true)?
            }
            wire::HEARTBEAT => fence(repl, wire::u64_at(body, 1)?)?,
            wire::SNAPSHOT_END => {
                tracing::info!(
                    "{}: snapshot from {active} loaded ({} keys); catching up",
                    repl.me.name,
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
                out.takeover = Some((wire::u64_at(body, 0)?, wire::u64_at(body, 1)?));
                return Ok(out);
            }
            _ => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::ShardSet;

    fn shared() -> Shared {
        Shared::detached(Config::dev(), None)
    }

    #[test]
    fn answers() {
        assert_eq!(
            Answer::parse("FULLSYNC 3 10"),
            Ok(Answer::FullSync {
                epoch: 3,
                start: 10,
                from: 0
            })
        );
        assert_eq!(
            Answer::parse("FULLSYNC 3 10 7"),
            Ok(Answer::FullSync {
                epoch: 3,
                start: 10,
                from: 7
            })
        );
        assert_eq!(
            Answer::parse("CONTINUE 4"),
            Ok(Answer::Continue { epoch: 4 })
        );
        assert!(Answer::parse("FULLSYNC x 1").is_err_and(|e| e.starts_with("bad SYNC answer")));
        assert!(Answer::parse("CONTINUE").is_err());
        assert!(Answer::parse("-ERR no").is_err_and(|e| e == "the active refused: -ERR no"));
        assert!(Answer::parse("").is_err());
    }

    #[test]
    fn stream_is_applied_fenced_and_stops_at_takeover() {
        let s = shared();
        let mut snap = Vec::new();
        record::encode(&mut snap, 0, &[record::set_str(b"a", b"1", 0)]);
        let mut recs = 2u64.to_le_bytes().to_vec();
        record::encode(&mut recs, 1, &[record::set_str(b"b", b"2", 0)]);
        let mut stream = Vec::new();
        wire::put(&mut stream, wire::SNAPSHOT, &snap);
        wire::put(&mut stream, wire::SNAPSHOT_END, &[]);
        wire::put(&mut stream, wire::RECORDS, &recs);
        wire::put_u64s(&mut stream, wire::HEARTBEAT, &[1, 2]);
        wire::put(&mut stream, wire::STANDBY, &[]);
        let whole = stream.len();
        wire::put_u64s(&mut stream, wire::TAKEOVER, &[1, 3]);
        wire::put(&mut stream, wire::STANDBY, &[]);

        // A message cut short waits for the rest.
        assert_eq!(
            handle(&s, "a1", &stream[..HEADER_CUT]),
            Ok(Handled::default())
        );
        let h = handle(&s, "a1", &stream).expect("handled");
        assert_eq!(h.takeover, Some((1, 3)));
        assert_eq!(
            h.consumed,
            whole + wire::HEADER + 16,
            "nothing read after T"
        );
        assert!(h.ack);
        assert_eq!(s.repl.state(), State::PassiveStandby);
        let mut db = s.keyspace.db(ShardSet::All, 1, false);
        assert!(db.get(b"a").expect("get").is_some());
        assert!(db.get(b"b").expect("get").is_some());
        drop(db);

        // Records of an older epoch than the mirror knows are refused.
        s.repl.epoch.store(5, Ordering::Release);
        let mut old = Vec::new();
        wire::put(&mut old, wire::RECORDS, &recs);
        assert!(handle(&s, "a1", &old).is_err_and(|e| e.starts_with("fenced")));
        // So are a short body, a damaged record and an unknown tag.
        assert!(
            handle(
                &s,
                "a1",
                &[wire::HEARTBEAT, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
            )
            .is_err()
        );
        let mut bad = 9u64.to_le_bytes().to_vec();
        bad.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut msg = Vec::new();
        wire::put(&mut msg, wire::RECORDS, &bad);
        assert!(handle(&s, "a1", &msg).is_err_and(|e| e.contains("damaged")));
        assert!(handle(&s, "a1", b"Zxxxx").is_err());
    }

    /// Bytes of the first message's header and part of its body.
    const HEADER_CUT: usize = wire::HEADER + 3;
}
