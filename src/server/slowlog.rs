//! The slow log (SLOWLOG GET/LEN/RESET): commands slower than `slowlog-log-slower-than`.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::protocol::Reply;

/// Arguments kept per entry, and bytes kept per argument (Redis's limits).
const MAX_ARGS: usize = 32;
const MAX_ARG_LEN: usize = 128;

/// One slow command.
#[derive(Debug, Clone)]
pub struct SlowEntry {
    id: u64,
    unix_secs: u64,
    micros: u64,
    args: Vec<Bytes>,
    addr: String,
    name: String,
}

/// The slow log ring.
#[derive(Debug, Default)]
pub struct SlowLog {
    /// Newest first; locked only when a slow command is logged or SLOWLOG runs.
    entries: Mutex<(u64, VecDeque<SlowEntry>)>,
}

impl SlowLog {
    /// Logs a command that took `micros`.
    pub fn push<A: AsRef<[u8]>>(
        &self,
        args: &[A],
        micros: u64,
        addr: String,
        name: String,
        max_len: usize,
    ) {
        let mut kept: Vec<Bytes> = args
            .iter()
            .take(if args.len() > MAX_ARGS {
                MAX_ARGS - 1
            } else {
                MAX_ARGS
            })
            .map(|a| {
                let a = a.as_ref();
                if a.len() > MAX_ARG_LEN {
                    let more = a.len() - MAX_ARG_LEN;
                    let mut v = a[..MAX_ARG_LEN].to_vec();
                    v.extend_from_slice(format!("... ({more} more bytes)").as_bytes());
                    Bytes::from(v)
                } else {
                    Bytes::copy_from_slice(a)
                }
            })
            .collect();
        if args.len() > MAX_ARGS {
            kept.push(Bytes::from(format!(
                "... ({} more arguments)",
                args.len() - MAX_ARGS + 1
            )));
        }
        let mut g = self.entries.lock();
        let id = g.0;
        g.0 += 1;
        g.1.push_front(SlowEntry {
            id,
            unix_secs: crate::store::now_ms() / 1000,
            micros,
            args: kept,
            addr,
            name,
        });
        g.1.truncate(max_len);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.lock().1.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry.
    pub fn reset(&self) {
        self.entries.lock().1.clear();
    }

    /// The newest `count` entries (all when `None`) as SLOWLOG GET replies.
    pub fn get(&self, count: Option<usize>) -> Reply {
        let g = self.entries.lock();
        let n = count.unwrap_or(g.1.len());
        Reply::Array(
            g.1.iter()
                .take(n)
                .map(|e| {
                    Reply::Array(vec![
                        Reply::Int(e.id as i64),
                        Reply::Int(e.unix_secs as i64),
                        Reply::Int(e.micros as i64),
                        Reply::bulks(e.args.iter().cloned()),
                        Reply::bulk(&e.addr),
                        Reply::bulk(&e.name),
                    ])
                })
                .collect(),
        )
    }
}
