//! The replication backlog: the most recent records, as the encoded frames the log wrote,
//! so each mirror's shipper sends bytes without re-encoding, and a mirror that lost its
//! link briefly resumes from where it was (Redis's `repl-backlog`).
//!
//! Records are kept in chunks; the oldest chunks are dropped once the backlog holds more
//! than its limit. A [`Cursor`] names a byte position (chunk, offset): a shipper that
//! falls so far behind that its chunk was dropped gets [`Lost`] and its mirror resyncs.

use std::collections::VecDeque;

use crate::persist::record::{self, Frame, Record};

/// Bytes a chunk takes before a new one starts (a chunk may hold one larger record).
const CHUNK: usize = 256 << 10;

/// A run of whole records.
#[derive(Debug)]
struct Chunk {
    /// The lsn of its first record.
    first_lsn: u64,
    buf: Vec<u8>,
}

/// A reader's position: everything before it has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The chunk's sequence number.
    seq: u64,
    /// The offset in that chunk.
    off: usize,
}

/// The cursor's records were dropped before it read them: the reader must start over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost;

/// The backlog itself (kept under the log's tail lock, so it sees records in lsn order).
#[derive(Debug)]
pub struct Backlog {
    chunks: VecDeque<Chunk>,
    /// The sequence number of `chunks[0]` (or of the next chunk, when there is none).
    first_seq: u64,
    /// Bytes held.
    bytes: usize,
    /// Bytes held before the oldest chunks are dropped.
    limit: usize,
}

impl Backlog {
    /// An empty backlog that keeps about `limit` bytes.
    pub fn new(limit: usize) -> Backlog {
        Backlog {
            chunks: VecDeque::new(),
            first_seq: 0,
            bytes: 0,
            limit: limit.max(CHUNK),
        }
    }

    /// Appends the frames of one or more records, the first of which is `lsn` (records
    /// arrive in lsn order).
    pub fn push(&mut self, lsn: u64, frame: &[u8]) {
        let fits = self
            .chunks
            .back()
            .is_some_and(|c| c.buf.len() + frame.len() <= CHUNK);
        if !fits {
            self.chunks.push_back(Chunk {
                first_lsn: lsn,
                buf: Vec::with_capacity(CHUNK.max(frame.len())),
            });
        }
        if let Some(c) = self.chunks.back_mut() {
            c.buf.extend_from_slice(frame);
        }
        self.bytes += frame.len();
        while self.bytes > self.limit && self.chunks.len() > 1 {
            if let Some(c) = self.chunks.pop_front() {
                self.bytes -= c.buf.len();
                self.first_seq += 1;
            }
        }
    }

    /// The position after the last record.
    pub fn end(&self) -> Cursor {
        match self.chunks.back() {
            Some(c) => Cursor {
                seq: self.first_seq + self.chunks.len() as u64 - 1,
                off: c.buf.len(),
            },
            None => Cursor {
                seq: self.first_seq,
                off: 0,
            },
        }
    }

    /// The position of record `lsn`, given that `next_lsn` is the lsn the next record will
    /// get; `None` when the backlog no longer (or never) held it.
    pub fn find(&self, lsn: u64, next_lsn: u64) -> Option<Cursor> {
        if lsn == next_lsn {
            return Some(self.end());
        }
        if lsn > next_lsn {
            return None;
        }
        let i = self.chunks.partition_point(|c| c.first_lsn <= lsn);
        let c = self.chunks.get(i.checked_sub(1)?)?;
        let mut off = 0;
        while off < c.buf.len() {
            let Frame::Ok { payload, len } = record::frame(&c.buf[off..]) else {
                return None;
            };
            if Record::parse(payload).ok()?.lsn == lsn {
                return Some(Cursor {
                    seq: self.first_seq + (i - 1) as u64,
                    off,
                });
            }
            off += len;
        }
        None
    }

    /// Copies records from `cur` into `out`, about `max` bytes at most (always whole records,
    /// and at least one chunk's worth when the chunk is bigger), and moves `cur` past them.
    pub fn read(&self, cur: &mut Cursor, out: &mut Vec<u8>, max: usize) -> Result<(), Lost> {
        if cur.seq < self.first_seq {
            return Err(Lost);
        }
        let mut copied = 0;
        loop {
            let i = (cur.seq - self.first_seq) as usize;
            let Some(c) = self.chunks.get(i) else {
                return Ok(());
            };
            let rest = &c.buf[cur.off.min(c.buf.len())..];
            if !rest.is_empty() {
                if copied > 0 && copied + rest.len() > max {
                    return Ok(());
                }
                out.extend_from_slice(rest);
                copied += rest.len();
                cur.off += rest.len();
            }
            if i + 1 >= self.chunks.len() {
                return Ok(());
            }
            cur.seq += 1;
            cur.off = 0;
        }
    }

    /// Bytes after `cur` not yet read: what a mirror's shipper has pending (its
    /// `client-output-buffer-limit replica`); `None` when its records were dropped.
    pub fn behind(&self, cur: &Cursor) -> Option<usize> {
        if cur.seq < self.first_seq {
            return None;
        }
        let i = (cur.seq - self.first_seq) as usize;
        let mut n = 0;
        for (k, c) in self.chunks.iter().enumerate().skip(i) {
            n += if k == i {
                c.buf.len().saturating_sub(cur.off)
            } else {
                c.buf.len()
            };
        }
        Some(n)
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// The lsn of the oldest record held, if any.
    pub fn first_lsn(&self) -> Option<u64> {
        self.chunks.front().map(|c| c.first_lsn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::record::set_str;

    fn frame(lsn: u64, size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        record::encode(&mut out, lsn, &[set_str(b"k", &vec![b'v'; size], 0)]);
        out
    }

    fn lsns(mut buf: &[u8]) -> Vec<u64> {
        let mut v = Vec::new();
        while let Frame::Ok { payload, len } = record::frame(buf) {
            v.push(Record::parse(payload).expect("parse").lsn);
            buf = &buf[len..];
        }
        assert!(buf.is_empty(), "whole records only");
        v
    }

    #[test]
    fn readers_get_every_record_in_order_and_resume_by_lsn() {
        let mut b = Backlog::new(CHUNK * 8);
        let mut start = b.end();
        for lsn in 1..=2000 {
            b.push(lsn, &frame(lsn, 500));
        }
        let mut out = Vec::new();
        while {
            let before = out.len();
            b.read(&mut start, &mut out, 100_000).expect("kept");
            out.len() > before
        } {}
        assert_eq!(lsns(&out), (1..=2000).collect::<Vec<_>>());
        assert_eq!(start, b.end());

        let mut cur = b.find(1500, 2001).expect("still held");
        out.clear();
        b.read(&mut cur, &mut out, usize::MAX).expect("kept");
        assert_eq!(lsns(&out), (1500..=2000).collect::<Vec<_>>());
        assert_eq!(b.find(2001, 2001), Some(b.end()));
        assert_eq!(b.find(2002, 2001), None);
    }

    #[test]
    fn behind_counts_the_bytes_a_reader_has_not_read() {
        let mut b = Backlog::new(CHUNK * 2);
        let mut cur = b.end();
        let mut total = 0;
        for lsn in 1..=1000 {
            let f = frame(lsn, 500);
            total += f.len();
            b.push(lsn, &f);
        }
        assert_eq!(b.behind(&cur), Some(total));
        let mut out = Vec::new();
        b.read(&mut cur, &mut out, 100_000).expect("kept");
        assert_eq!(b.behind(&cur), Some(total - out.len()));
        assert_eq!(b.behind(&b.end()), Some(0));
        let old = cur;
        for lsn in 1001..=3000 {
            b.push(lsn, &frame(lsn, 500));
        }
        assert_eq!(b.behind(&old), None, "its records were dropped");
    }

    #[test]
    fn a_reader_behind_the_limit_is_told_it_lost_records() {
        let mut b = Backlog::new(CHUNK * 2);
        let mut old = b.end();
        for lsn in 1..=3000 {
            b.push(lsn, &frame(lsn, 500));
        }
        assert!(b.len() <= CHUNK * 3, "{}", b.len());
        assert_eq!(b.read(&mut old, &mut Vec::new(), 1000), Err(Lost));
        assert_eq!(b.find(1, 3001), None, "trimmed");
        let first = b.first_lsn().expect("some");
        let mut cur = b.find(first, 3001).expect("first held");
        let mut out = Vec::new();
        b.read(&mut cur, &mut out, usize::MAX).expect("kept");
        assert_eq!(lsns(&out), (first..=3000).collect::<Vec<_>>());
    }

    #[test]
    fn a_batch_of_frames_pushed_at_once_is_found_record_by_record() {
        let mut b = Backlog::new(CHUNK * 4);
        let batch: Vec<u8> = (1..=100).flat_map(|lsn| frame(lsn, 20)).collect();
        b.push(1, &batch);
        b.push(101, &frame(101, 20));
        let mut cur = b.find(57, 102).expect("inside the batch");
        let mut out = Vec::new();
        b.read(&mut cur, &mut out, usize::MAX).expect("kept");
        assert_eq!(lsns(&out), (57..=101).collect::<Vec<_>>());
    }

    #[test]
    fn a_record_bigger_than_a_chunk_is_kept_whole() {
        let mut b = Backlog::new(CHUNK * 4);
        let mut cur = b.end();
        b.push(1, &frame(1, 10));
        b.push(2, &frame(2, CHUNK * 2));
        b.push(3, &frame(3, 10));
        let mut out = Vec::new();
        b.read(&mut cur, &mut out, 100).expect("kept");
        b.read(&mut cur, &mut out, 100).expect("kept");
        b.read(&mut cur, &mut out, 100).expect("kept");
        assert_eq!(lsns(&out), vec![1, 2, 3]);
    }
}
