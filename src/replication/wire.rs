//! The group-port protocol between a stripe's servers.
//!
//! A connection opens with one text line, so it can be typed by hand:
//!
//! ```text
//!  HELLO\n                              ─▶ PEER <name> <state> <epoch> <lsn> <was_active 0|1> <index>\n
//!  SYNC <name> <epoch> <lsn> <addr>\n   ─▶ CONTINUE <epoch>\n          (resume from the backlog)
//!                                       ─▶ FULLSYNC <epoch> <start>\n  (snapshot, then records from start)
//!                                       ─▶ -ERR <why>\n
//! ```
//!
//! After `CONTINUE`/`FULLSYNC` both sides exchange binary messages, `tag u8 | len u32 LE |
//! body`. Active → mirror: `S` snapshot records, `E` end of snapshot, `R` records (the
//! epoch that wrote them, then whole frames as the log wrote them, each with its lsn), `H`
//! heartbeat (the active's last lsn and epoch), `Y` you are PASSIVE-STANDBY, `T` take over
//! (last lsn, new epoch). Mirror → active: `A` ack (the last lsn applied), `P` promoted.
//! A mirror refuses `R` and `H` of an epoch older than the one it knows.

/// Snapshot records (lsn 0), applied but not logged as received.
pub const SNAPSHOT: u8 = b'S';
/// The snapshot is complete.
pub const SNAPSHOT_END: u8 = b'E';
/// Records: the epoch that wrote them, then whole frames of the active's log.
pub const RECORDS: u8 = b'R';
/// The active is alive; body: its last lsn and its epoch.
pub const HEARTBEAT: u8 = b'H';
/// The mirror has caught up and counts for strong writes.
pub const STANDBY: u8 = b'Y';
/// Planned switchover: body: the last lsn the old active wrote, and the new epoch.
pub const TAKEOVER: u8 = b'T';
/// Mirror → active: every record up to this lsn is applied.
pub const ACK: u8 = b'A';
/// Mirror → active: it took over (answer to `T`).
pub const PROMOTED: u8 = b'P';

/// The largest message accepted: a bound on what a peer can make us buffer.
pub const MAX_MSG: usize = 256 << 20;
/// Bytes before a message's body.
pub const HEADER: usize = 5;

/// Appends a message.
pub fn put(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    let start = begin(out, tag);
    out.extend_from_slice(body);
    finish(out, start);
}

/// Starts a message whose body the caller appends to `out` next (records are read straight
/// into it, not copied); returns where it starts, for [`finish`].
pub fn begin(out: &mut Vec<u8>, tag: u8) -> usize {
    let start = out.len();
    header(out, tag, 0);
    start
}

/// Writes the length of the message begun at `start`: everything appended since.
pub fn finish(out: &mut [u8], start: usize) {
    let len = (out.len() - start - HEADER) as u32;
    out[start + 1..start + HEADER].copy_from_slice(&len.to_le_bytes());
}

/// Bytes of body appended to the message begun at `start`.
pub fn body_len(out: &[u8], start: usize) -> usize {
    out.len() - start - HEADER
}

/// Appends a message whose body is `u64`s.
pub fn put_u64s(out: &mut Vec<u8>, tag: u8, vals: &[u64]) {
    header(out, tag, vals.len() * 8);
    for v in vals {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Appends a message header for a body of `len` bytes the caller appends next.
fn header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

/// One message read from a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Msg<'a> {
    /// A whole message: its tag, body and total length.
    Ok {
        /// The tag.
        tag: u8,
        /// The body.
        body: &'a [u8],
        /// Header plus body.
        len: usize,
    },
    /// More bytes are needed.
    Incomplete,
    /// Not a message this protocol sends: the link is closed.
    Bad(String),
}

/// Reads the message at the start of `buf`.
pub fn parse(buf: &[u8]) -> Msg<'_> {
    let Some(h) = buf.get(..HEADER) else {
        return Msg::Incomplete;
    };
    let tag = h[0];
    let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize;
    if !matches!(
        tag,
        SNAPSHOT | SNAPSHOT_END | RECORDS | HEARTBEAT | STANDBY | TAKEOVER | ACK | PROMOTED
    ) {
        return Msg::Bad(format!("unknown message tag {tag}"));
    }
    if len > MAX_MSG {
        return Msg::Bad(format!("message of {len} bytes is over the limit"));
    }
    match buf.get(HEADER..HEADER + len) {
        Some(body) => Msg::Ok {
            tag,
            body,
            len: HEADER + len,
        },
        None => Msg::Incomplete,
    }
}

/// The `i`th `u64` of a body.
pub fn u64_at(body: &[u8], i: usize) -> Result<u64, String> {
    body.get(i * 8..i * 8 + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| format!("message body of {} bytes is too short", body.len()))
}

/// What a server says about itself in answer to `HELLO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView {
    /// Its name.
    pub name: String,
    /// Its state name (`ACTIVE-COORDINATOR`, `PASSIVE-STANDBY`, ...).
    pub state: String,
    /// The epoch it knows.
    pub epoch: u64,
    /// Its last lsn.
    pub lsn: u64,
    /// Its data directory (or this process) says it was the last active.
    pub was_active: bool,
    /// Its index in the stripe's server list.
    pub index: usize,
}

impl PeerView {
    /// The `PEER` line.
    pub fn line(&self) -> String {
        format!(
            "PEER {} {} {} {} {} {}\n",
            self.name,
            self.state,
            self.epoch,
            self.lsn,
            u8::from(self.was_active),
            self.index
        )
    }

    /// Reads a `PEER` line.
    pub fn parse(line: &str) -> Result<PeerView, String> {
        let w: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> Result<u64, String> {
            w.get(i)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad PEER line: {line:?}"))
        };
        if w.len() != 7 || w[0] != "PEER" {
            return Err(format!("bad PEER line: {line:?}"));
        }
        Ok(PeerView {
            name: w[1].to_string(),
            state: w[2].to_string(),
            epoch: num(3)?,
            lsn: num(4)?,
            was_active: num(5)? == 1,
            index: num(6)? as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let mut out = Vec::new();
        put_u64s(&mut out, ACK, &[42]);
        put(&mut out, RECORDS, b"abc");
        let Msg::Ok { tag, body, len } = parse(&out) else {
            panic!("whole")
        };
        assert_eq!((tag, u64_at(body, 0), len), (ACK, Ok(42), 13));
        assert_eq!(
            parse(&out[13..]),
            Msg::Ok {
                tag: RECORDS,
                body: b"abc",
                len: 8
            }
        );
        assert_eq!(parse(&out[13..20]), Msg::Incomplete);
        assert!(matches!(parse(b"Zxxxxxx"), Msg::Bad(_)));
        let mut huge = vec![RECORDS];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(parse(&huge), Msg::Bad(_)));
        assert!(u64_at(b"short", 0).is_err());
    }

    #[test]
    fn peer_lines_round_trip() {
        let v = PeerView {
            name: "server1".into(),
            state: "PASSIVE-STANDBY".into(),
            epoch: 3,
            lsn: 99,
            was_active: true,
            index: 1,
        };
        assert_eq!(PeerView::parse(v.line().trim_end()), Ok(v));
        assert!(PeerView::parse("PEER x").is_err());
        assert!(PeerView::parse("PEER a B x 1 0 0").is_err());
    }
}
