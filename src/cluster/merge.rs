//! Replies from other stripes: waited for in order and, for split and fanned-out
//! commands, merged into the one reply the client expects.

use bytes::Bytes;
use redis_protocol::resp2::types::OwnedFrame;
use tokio::sync::oneshot;

use super::upstream::Answer;
use crate::protocol::Reply;
use crate::server::Shared;

/// A SCAN cursor's stripe index sits above the local cursor's bits (which use fewer than
/// 48: table << 34 | position).
pub const SCAN_STRIPE_SHIFT: u32 = 52;

/// One stripe's part of a reply.
#[derive(Debug)]
pub enum Part {
    /// Computed here.
    Ready(Reply),
    /// Asked of another stripe's active.
    Remote {
        /// The stripe.
        stripe: usize,
        /// Its raw reply, when it comes.
        answer: oneshot::Receiver<Answer>,
        /// What was sent, to send again where a MOVED points.
        resend: Resend,
    },
}

/// A forwarded request, kept so that it can follow one MOVED (the stripe's active changed
/// before this server noticed).
#[derive(Debug, Clone)]
pub struct Resend {
    /// The encoded command.
    pub request: Bytes,
    /// The protocol it was sent in.
    pub proto: crate::protocol::Proto,
    /// The client's lane.
    pub lane: u64,
}

/// How the parts become one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// One remote part, written as it came.
    Relay,
    /// MGET: for each key in the client's order, (part, index in that part's array).
    Mget(Vec<(usize, usize)>),
    /// DEL, UNLINK, EXISTS, TOUCH, DBSIZE: the integers add up.
    Sum,
    /// MSET, FLUSHALL, FLUSHDB: OK when every part says OK.
    AllOk,
    /// KEYS: the arrays are concatenated.
    Concat,
    /// SCAN on `stripe` of `stripes`: the cursor gets the stripe index back.
    Scan {
        /// The stripe walked.
        stripe: usize,
        /// How many stripes there are.
        stripes: usize,
    },
}

/// A reply being gathered from other stripes.
#[derive(Debug)]
pub struct Pending {
    /// The parts, in the order the merge expects.
    pub parts: Vec<Part>,
    /// How they merge.
    pub merge: Merge,
}

impl Pending {
    /// Waits for every part and merges them. A stripe that fails or does not answer in
    /// time makes the reply a `CLUSTERDOWN` error (the command may have run there).
    pub async fn resolve(self, shared: &Shared) -> Reply {
        let relay = self.merge == Merge::Relay;
        let mut replies = Vec::with_capacity(self.parts.len());
        for part in self.parts {
            let r = match part {
                Part::Ready(r) => r,
                Part::Remote {
                    stripe,
                    answer,
                    resend,
                } => match wait(shared, stripe, answer, resend).await {
                    Ok(raw) if relay => Reply::Raw(raw),
                    Ok(raw) => decode(&raw),
                    Err(e) => e,
                },
            };
            if r.is_error() && !relay {
                return r;
            }
            replies.push(r);
        }
        merge(self.merge, replies)
    }
}

/// One remote answer, or the error reply for its failure. A MOVED answer (the server
/// asked is no longer the stripe's active) is followed once.
async fn wait(
    shared: &Shared,
    stripe: usize,
    mut answer: oneshot::Receiver<Answer>,
    resend: Resend,
) -> Result<Bytes, Reply> {
    let cluster = &shared.cluster;
    let name = cluster.stripe_name(stripe);
    let mut followed = false;
    let got = loop {
        match tokio::time::timeout(cluster.forward_timeout, &mut answer).await {
            Ok(Ok(Ok(mut v))) if v.len() == 1 => {
                let raw = v.pop().unwrap_or_default();
                match moved_to(&raw) {
                    Some(addr) if !followed => {
                        followed = true;
                        cluster.topology.refresh();
                        answer = cluster.pool.send(
                            &addr,
                            resend.proto,
                            resend.lane,
                            resend.request.clone(),
                            1,
                        );
                    }
                    _ => return Ok(raw),
                }
            }
            other => break other,
        }
    };
    let why = match got {
        Ok(Ok(Ok(v))) => format!("{} replies to one command", v.len()),
        Ok(Ok(Err(why))) => why,
        Ok(Err(_)) => "the connection was lost".to_string(),
        Err(_) => format!(
            "no answer within {:?}; the command may have run",
            cluster.forward_timeout
        ),
    };
    // Its active may have changed: look again.
    cluster.topology.refresh();
    Err(Reply::Error(
        format!("CLUSTERDOWN stripe {name} is unreachable: {why}").into(),
    ))
}

/// The address a `-MOVED slot host:port` reply points to.
fn moved_to(raw: &[u8]) -> Option<String> {
    let line = raw.strip_prefix(b"-MOVED ")?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let (_, addr) = line.split_once(' ')?;
    Some(addr.to_string())
}

/// A raw RESP2 reply as a [`Reply`].
fn decode(raw: &[u8]) -> Reply {
    match redis_protocol::resp2::decode::decode(raw) {
        Ok(Some((f, _))) => from_frame(f),
        _ => Reply::Error("ERR a stripe sent a reply that is not RESP2".into()),
    }
}

fn from_frame(f: OwnedFrame) -> Reply {
    match f {
        OwnedFrame::SimpleString(s) if s == b"OK" => Reply::Ok,
        OwnedFrame::SimpleString(s) => {
            Reply::Status(String::from_utf8_lossy(&s).into_owned().into())
        }
        OwnedFrame::Error(e) => Reply::Error(e.into()),
        OwnedFrame::Integer(i) => Reply::Int(i),
        OwnedFrame::BulkString(b) => Reply::Bulk(Bytes::from(b)),
        OwnedFrame::Array(v) => Reply::Array(v.into_iter().map(from_frame).collect()),
        OwnedFrame::Null => Reply::Nil,
    }
}

fn merge(how: Merge, mut replies: Vec<Reply>) -> Reply {
    let bad = || Reply::Error("ERR a stripe sent an unexpected reply".into());
    match how {
        Merge::Relay => replies.pop().unwrap_or(Reply::Nil),
        Merge::Sum => {
            let mut n = 0i64;
            for r in replies {
                let Reply::Int(i) = r else { return bad() };
                n = n.saturating_add(i);
            }
            Reply::Int(n)
        }
        Merge::AllOk => replies
            .into_iter()
            .find(|r| !matches!(r, Reply::Ok))
            .unwrap_or(Reply::Ok),
        Merge::Concat => {
            let mut all = Vec::new();
            for r in replies {
                let Reply::Array(v) = r else { return bad() };
                all.extend(v);
            }
            Reply::Array(all)
        }
        Merge::Mget(order) => {
            let mut parts: Vec<Vec<Option<Reply>>> = Vec::with_capacity(replies.len());
            for r in replies {
                let Reply::Array(v) = r else { return bad() };
                parts.push(v.into_iter().map(Some).collect());
            }
            let mut out = Vec::with_capacity(order.len());
            for (p, i) in order {
                match parts
                    .get_mut(p)
                    .and_then(|v| v.get_mut(i))
                    .and_then(Option::take)
                {
                    Some(r) => out.push(r),
                    None => return bad(),
                }
            }
            Reply::Array(out)
        }
        Merge::Scan { stripe, stripes } => {
            let Some(Reply::Array(mut v)) = replies.pop() else {
                return bad();
            };
            let cursor = match v.first() {
                Some(Reply::Bulk(b)) => std::str::from_utf8(b)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok()),
                _ => None,
            };
            let Some(cursor) = cursor else { return bad() };
            let next = if cursor != 0 {
                ((stripe as u64) << SCAN_STRIPE_SHIFT) | cursor
            } else if stripe + 1 < stripes {
                ((stripe + 1) as u64) << SCAN_STRIPE_SHIFT
            } else {
                0
            };
            if let Some(c) = v.first_mut() {
                *c = Reply::Bulk(Bytes::from(next.to_string()));
            }
            Reply::Array(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(Bytes::from(s.to_string()))
    }

    #[test]
    fn mget_parts_return_in_the_clients_order() {
        let local = Reply::Array(vec![bulk("a"), Reply::Nil]);
        let remote = decode(b"*1\r\n$1\r\nb\r\n");
        // Keys: k0 (local 0), k1 (remote 0), k2 (local 1).
        let r = merge(
            Merge::Mget(vec![(0, 0), (1, 0), (0, 1)]),
            vec![local, remote],
        );
        assert_eq!(r, Reply::Array(vec![bulk("a"), bulk("b"), Reply::Nil]));
        // A part shorter than promised is an error, not a panic.
        let r = merge(Merge::Mget(vec![(0, 5)]), vec![Reply::Array(vec![])]);
        assert!(r.is_error());
    }

    #[test]
    fn moved_replies_name_their_address() {
        assert_eq!(
            moved_to(b"-MOVED 3999 127.0.0.1:7002\r\n").as_deref(),
            Some("127.0.0.1:7002")
        );
        assert_eq!(moved_to(b"-ERR MOVED\r\n"), None);
        assert_eq!(moved_to(b"+OK\r\n"), None);
    }

    #[test]
    fn sums_and_oks_merge() {
        assert_eq!(
            merge(Merge::Sum, vec![Reply::Int(2), decode(b":3\r\n")]),
            Reply::Int(5)
        );
        assert!(merge(Merge::Sum, vec![Reply::Ok]).is_error());
        assert_eq!(
            merge(Merge::AllOk, vec![Reply::Ok, decode(b"+OK\r\n")]),
            Reply::Ok
        );
        assert_eq!(
            merge(Merge::AllOk, vec![Reply::Ok, decode(b"-ERR no\r\n")]),
            Reply::Error("ERR no".into())
        );
    }

    #[test]
    fn scan_cursors_walk_the_stripes_in_turn() {
        let page = |c: &str| Reply::Array(vec![bulk(c), Reply::Array(vec![bulk("k")])]);
        let first = |r: Reply| match r {
            Reply::Array(v) => v.into_iter().next(),
            _ => None,
        };
        let mid = merge(
            Merge::Scan {
                stripe: 1,
                stripes: 3,
            },
            vec![page("7")],
        );
        assert_eq!(first(mid), Some(bulk(&((1u64 << 52) | 7).to_string())));
        let next = merge(
            Merge::Scan {
                stripe: 1,
                stripes: 3,
            },
            vec![page("0")],
        );
        assert_eq!(first(next), Some(bulk(&(2u64 << 52).to_string())));
        let done = merge(
            Merge::Scan {
                stripe: 2,
                stripes: 3,
            },
            vec![page("0")],
        );
        assert_eq!(first(done), Some(bulk("0")));
    }
}
