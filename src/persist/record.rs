//! The record: effects as bytes, the one format of the fast-restart files and of
//! replication (DESIGN.md "one record format").
//!
//! ```text
//!  frame   := len u32le | crc u32le | payload[len]        crc = CRC32C(payload)
//!  payload := lsn varint | count varint | effect × count
//!  effect  := 1 Set        key | expire_at varint | value
//!           | 2 Del        key
//!           | 3 Expire     key | at varint
//!           | 4 FlushAll
//!           | 5 ClearCache name
//!           | 6 Patch      key | type u8 | upserts bytes | count varint | removed bytes × count
//!           | 7 ListOps    key | from varint | count varint | op × count
//!  op        := 0 push front bytes | 1 push back bytes | 2 pop front | 3 pop back
//!  key, name := len varint | bytes
//!  value     := type u8 | len varint | bytes   type: 0 string, 1 hash, 2 list, 3 set, 4 zset;
//!               a collection's bytes are its packed form (store::types)
//! ```
//!
//! One record holds every effect of one command (or one EXEC), so a torn write never
//! leaves half a transaction. Decoding never trusts the bytes: every length is checked
//! against what is left, and a wrong byte is an error, never a panic.

use bytes::Bytes;

use crate::store::types::ListOp;
use crate::store::{Effect, Kind, Value, ValueRef};

/// Bytes before a frame's payload: its length and CRC.
pub const FRAME_HEADER: usize = 8;

/// The largest payload a frame may declare: bigger lengths are garbage (a torn write, a
/// flipped bit), not records.
pub const MAX_PAYLOAD: usize = 1 << 31;

const SET: u8 = 1;
const DEL: u8 = 2;
const EXPIRE: u8 = 3;
const FLUSH_ALL: u8 = 4;
const CLEAR_CACHE: u8 = 5;
const PATCH: u8 = 6;
const LIST_OPS: u8 = 7;

/// Why a payload could not be decoded (its CRC matched, so the writer wrote it so: a bug
/// or a file from a newer version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload ended inside a field.
    #[error("record ends inside a field")]
    Short,
    /// An effect or value type this version does not know.
    #[error("unknown {what} tag {tag}")]
    Tag {
        /// `effect` or `value`.
        what: &'static str,
        /// The byte.
        tag: u8,
    },
    /// A cache name that is not UTF-8.
    #[error("cache name is not UTF-8")]
    Name,
    /// A collection value whose packed bytes are malformed.
    #[error("malformed {0} value")]
    Packed(&'static str),
    /// Bytes left after the declared effects.
    #[error("{0} bytes after the last effect")]
    Trailing(usize),
}

/// One frame read from a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete frame whose CRC matches: its payload and total length.
    Ok {
        /// The payload.
        payload: &'a [u8],
        /// Header plus payload.
        len: usize,
    },
    /// The buffer ends before the frame does (a torn or truncated tail).
    Incomplete,
    /// The frame is complete but its CRC does not match, or its length is impossible.
    Bad {
        /// Header plus payload, or 0 when the length itself is garbage.
        len: usize,
    },
}

/// Reads the frame at the start of `buf`.
pub fn frame(buf: &[u8]) -> Frame<'_> {
    let Some((head, rest)) = buf.split_first_chunk::<FRAME_HEADER>() else {
        return Frame::Incomplete;
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len > MAX_PAYLOAD || len == 0 {
        return Frame::Bad { len: 0 };
    }
    let Some(payload) = rest.get(..len) else {
        return Frame::Incomplete;
    };
    if crc32c::crc32c(payload) != crc {
        return Frame::Bad {
            len: FRAME_HEADER + len,
        };
    }
    Frame::Ok {
        payload,
        len: FRAME_HEADER + len,
    }
}

/// A record being built at the end of a buffer: [`begin`](Builder::begin) it, add
/// effects, [`end`](Builder::end) it (which fills in the length, count and CRC). It does
/// not borrow the buffer, so a snapshot can end one record and begin the next in a loop.
#[derive(Debug)]
pub struct Builder {
    start: usize,
    count_at: usize,
    count: u32,
}

/// Width reserved for the effect count: a fixed-width varint (5 bytes holds any u32), so
/// the count can be patched in place once known.
const COUNT_WIDTH: usize = 5;

impl Builder {
    /// Starts a record with sequence number `lsn` at the end of `out`.
    pub fn begin(out: &mut Vec<u8>, lsn: u64) -> Builder {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_HEADER]);
        varint(out, lsn);
        let count_at = out.len();
        out.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0]);
        Builder {
            start,
            count_at,
            count: 0,
        }
    }

    /// Adds `effect`.
    pub fn effect(&mut self, out: &mut Vec<u8>, effect: &Effect) {
        match effect {
            Effect::Set {
                key,
                value,
                expire_at,
            } => self.set(out, key, value.as_ref(), *expire_at),
            Effect::Del { key } => {
                self.tag(out, DEL);
                bytes(out, key);
            }
            Effect::Expire { key, at } => {
                self.tag(out, EXPIRE);
                bytes(out, key);
                varint(out, *at);
            }
            Effect::Patch {
                key,
                upserts,
                removed,
            } => {
                self.tag(out, PATCH);
                bytes(out, key);
                out.push(upserts.kind().tag());
                let mut packed = Vec::new();
                crate::store::types::encode(upserts, &mut packed);
                bytes(out, &packed);
                varint(out, removed.len() as u64);
                for r in removed {
                    bytes(out, r);
                }
            }
            Effect::ListOps { key, from, ops } => {
                self.tag(out, LIST_OPS);
                bytes(out, key);
                varint(out, *from);
                varint(out, ops.len() as u64);
                for op in ops {
                    match op {
                        ListOp::PushFront(b) => {
                            out.push(0);
                            bytes(out, b);
                        }
                        ListOp::PushBack(b) => {
                            out.push(1);
                            bytes(out, b);
                        }
                        ListOp::PopFront => out.push(2),
                        ListOp::PopBack => out.push(3),
                    }
                }
            }
            Effect::FlushAll => self.tag(out, FLUSH_ALL),
            Effect::ClearCache { cache } => {
                self.tag(out, CLEAR_CACHE);
                bytes(out, cache.as_bytes());
            }
        }
    }

    /// Adds a `Set` of `key` from borrowed parts (a snapshot encodes the store's entries
    /// without copying them into effects first).
    pub fn set(&mut self, out: &mut Vec<u8>, key: &[u8], value: ValueRef<'_>, expire_at: u64) {
        self.tag(out, SET);
        bytes(out, key);
        varint(out, expire_at);
        out.push(value.kind().tag());
        match value {
            ValueRef::Str(s) | ValueRef::Packed(_, s) => bytes(out, s),
            ValueRef::Heap(v) => {
                let mut packed = Vec::new();
                crate::store::types::encode(v, &mut packed);
                bytes(out, &packed);
            }
        }
    }

    /// Bytes of `out` this record holds so far, header included.
    pub fn len(&self, out: &[u8]) -> usize {
        out.len() - self.start
    }

    fn tag(&mut self, out: &mut Vec<u8>, t: u8) {
        self.count += 1;
        out.push(t);
    }

    /// Completes the frame.
    pub fn end(self, out: &mut [u8]) {
        let mut c = self.count;
        for b in &mut out[self.count_at..self.count_at + COUNT_WIDTH - 1] {
            *b = 0x80 | (c & 0x7f) as u8;
            c >>= 7;
        }
        out[self.count_at + COUNT_WIDTH - 1] = (c & 0x7f) as u8;
        let payload = &out[self.start + FRAME_HEADER..];
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let crc = crc32c::crc32c(payload);
        out[self.start..self.start + 4].copy_from_slice(&len.to_le_bytes());
        out[self.start + 4..self.start + 8].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Appends one frame holding `effects` as record `lsn`.
pub fn encode(out: &mut Vec<u8>, lsn: u64, effects: &[Effect]) {
    let mut b = Builder::begin(out, lsn);
    for e in effects {
        b.effect(out, e);
    }
    b.end(out);
}

/// An effect borrowed from a payload: what the loader applies without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectRef<'a> {
    /// See [`Effect::Set`].
    Set {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: ValueRef<'a>,
        /// Absolute expiry, unix ms; 0 = never.
        expire_at: u64,
    },
    /// See [`Effect::Del`].
    Del {
        /// The key.
        key: &'a [u8],
    },
    /// See [`Effect::Expire`].
    Expire {
        /// The key.
        key: &'a [u8],
        /// Absolute expiry, unix ms; 0 = persistent.
        at: u64,
    },
    /// See [`Effect::Patch`].
    Patch {
        /// The key.
        key: &'a [u8],
        /// The collection's type.
        kind: Kind,
        /// The upserted elements, packed (validated).
        upserts: &'a [u8],
        /// The removed elements: count varint, then length-prefixed bytes (validated).
        removed: &'a [u8],
    },
    /// See [`Effect::ListOps`].
    ListOps {
        /// The key.
        key: &'a [u8],
        /// The list's version before the change.
        from: u64,
        /// The ops: count varint, then each op (validated); see [`list_ops_of`].
        ops: &'a [u8],
    },
    /// See [`Effect::FlushAll`].
    FlushAll,
    /// See [`Effect::ClearCache`].
    ClearCache {
        /// The cache.
        cache: &'a str,
    },
}

impl EffectRef<'_> {
    /// An owned copy.
    pub fn to_effect(&self) -> Effect {
        match *self {
            EffectRef::Set {
                key,
                value,
                expire_at,
            } => Effect::Set {
                key: Bytes::copy_from_slice(key),
                value: value.to_value(),
                expire_at,
            },
            EffectRef::Del { key } => Effect::Del {
                key: Bytes::copy_from_slice(key),
            },
            EffectRef::Expire { key, at } => Effect::Expire {
                key: Bytes::copy_from_slice(key),
                at,
            },
            EffectRef::Patch {
                key,
                kind,
                upserts,
                removed,
            } => Effect::Patch {
                key: Bytes::copy_from_slice(key),
                upserts: ValueRef::Packed(kind, upserts).to_value(),
                removed: removed_of(removed).map(Bytes::copy_from_slice).collect(),
            },
            EffectRef::ListOps { key, from, ops } => Effect::ListOps {
                key: Bytes::copy_from_slice(key),
                from,
                ops: list_ops_of(ops).collect(),
            },
            EffectRef::FlushAll => Effect::FlushAll,
            EffectRef::ClearCache { cache } => Effect::ClearCache {
                cache: cache.to_string(),
            },
        }
    }
}

/// A decoded payload: its sequence number and a cursor over its effects.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// The record's log sequence number.
    pub lsn: u64,
    count: u64,
    rest: &'a [u8],
}

impl<'a> Record<'a> {
    /// Reads a payload's header. The effects are decoded as they are iterated.
    pub fn parse(payload: &'a [u8]) -> Result<Record<'a>, DecodeError> {
        let mut rest = payload;
        let lsn = read_varint(&mut rest)?;
        let count = read_varint(&mut rest)?;
        Ok(Record { lsn, count, rest })
    }

    /// How many effects the record holds.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True for a record without effects.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The effects, in order; an error ends the iteration.
    pub fn effects(&self) -> Effects<'a> {
        Effects {
            left: self.count,
            rest: self.rest,
        }
    }

    /// Owned copies of every effect.
    pub fn to_effects(&self) -> Result<Vec<Effect>, DecodeError> {
        self.effects().map(|e| e.map(|e| e.to_effect())).collect()
    }
}

/// Iterator over a record's effects.
#[derive(Debug, Clone)]
pub struct Effects<'a> {
    left: u64,
    rest: &'a [u8],
}

impl<'a> Iterator for Effects<'a> {
    type Item = Result<EffectRef<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            if self.rest.is_empty() {
                return None;
            }
            let n = self.rest.len();
            self.rest = &[];
            return Some(Err(DecodeError::Trailing(n)));
        }
        self.left -= 1;
        let r = read_effect(&mut self.rest);
        if r.is_err() {
            self.left = 0;
            self.rest = &[];
        }
        Some(r)
    }
}

#[inline]
fn read_effect<'a>(buf: &mut &'a [u8]) -> Result<EffectRef<'a>, DecodeError> {
    let tag = read_u8(buf)?;
    Ok(match tag {
        SET => {
            let key = read_bytes(buf)?;
            let expire_at = read_varint(buf)?;
            let tag = read_u8(buf)?;
            let value = match Kind::from_tag(tag) {
                Some(Kind::Str) => ValueRef::Str(read_bytes(buf)?),
                Some(k) => {
                    let b = read_bytes(buf)?;
                    if !crate::store::types::valid(k, b) {
                        return Err(DecodeError::Packed(k.name()));
                    }
                    ValueRef::Packed(k, b)
                }
                None => return Err(DecodeError::Tag { what: "value", tag }),
            };
            EffectRef::Set {
                key,
                value,
                expire_at,
            }
        }
        DEL => EffectRef::Del {
            key: read_bytes(buf)?,
        },
        EXPIRE => EffectRef::Expire {
            key: read_bytes(buf)?,
            at: read_varint(buf)?,
        },
        PATCH => {
            let key = read_bytes(buf)?;
            let tag = read_u8(buf)?;
            let kind = match Kind::from_tag(tag) {
                Some(Kind::Str) | None => return Err(DecodeError::Tag { what: "value", tag }),
                Some(k) => k,
            };
            let upserts = read_bytes(buf)?;
            if !crate::store::types::valid(kind, upserts) {
                return Err(DecodeError::Packed(kind.name()));
            }
            let start = *buf;
            let n = read_varint(buf)?;
            for _ in 0..n {
                read_bytes(buf)?;
            }
            let removed = &start[..start.len() - buf.len()];
            EffectRef::Patch {
                key,
                kind,
                upserts,
                removed,
            }
        }
        LIST_OPS => {
            let key = read_bytes(buf)?;
            let from = read_varint(buf)?;
            let start = *buf;
            let n = read_varint(buf)?;
            for _ in 0..n {
                match read_u8(buf)? {
                    0 | 1 => {
                        read_bytes(buf)?;
                    }
                    2 | 3 => {}
                    tag => {
                        return Err(DecodeError::Tag {
                            what: "list op",
                            tag,
                        });
                    }
                }
            }
            let ops = &start[..start.len() - buf.len()];
            EffectRef::ListOps { key, from, ops }
        }
        FLUSH_ALL => EffectRef::FlushAll,
        CLEAR_CACHE => EffectRef::ClearCache {
            cache: std::str::from_utf8(read_bytes(buf)?).map_err(|_| DecodeError::Name)?,
        },
        tag => {
            return Err(DecodeError::Tag {
                what: "effect",
                tag,
            });
        }
    })
}

/// The elements of a [`EffectRef::Patch`]'s validated `removed` bytes.
pub fn removed_of(mut b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let n = read_varint(&mut b).unwrap_or(0);
    (0..n).map_while(move |_| read_bytes(&mut b).ok())
}

/// The ops of a [`EffectRef::ListOps`]'s validated bytes.
pub fn list_ops_of(mut b: &[u8]) -> impl Iterator<Item = ListOp> + '_ {
    let n = read_varint(&mut b).unwrap_or(0);
    (0..n).map_while(move |_| {
        Some(match read_u8(&mut b).ok()? {
            0 => ListOp::PushFront(Bytes::copy_from_slice(read_bytes(&mut b).ok()?)),
            1 => ListOp::PushBack(Bytes::copy_from_slice(read_bytes(&mut b).ok()?)),
            2 => ListOp::PopFront,
            _ => ListOp::PopBack,
        })
    })
}

/// Appends `v` as a LEB128 varint.
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

#[inline]
fn read_u8(buf: &mut &[u8]) -> Result<u8, DecodeError> {
    let (&b, rest) = buf.split_first().ok_or(DecodeError::Short)?;
    *buf = rest;
    Ok(b)
}

#[inline]
fn read_varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    // Most lengths fit one byte: the loader decodes every effect more than once.
    if let Some((&b, rest)) = buf.split_first()
        && b < 0x80
    {
        *buf = rest;
        return Ok(u64::from(b));
    }
    let mut v = 0u64;
    let mut shift = 0;
    while shift < 64 {
        let b = read_u8(buf)?;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
    }
    Err(DecodeError::Short)
}

#[inline]
fn read_bytes<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let len = usize::try_from(read_varint(buf)?).map_err(|_| DecodeError::Short)?;
    if len > buf.len() {
        return Err(DecodeError::Short);
    }
    let (b, rest) = buf.split_at(len);
    *buf = rest;
    Ok(b)
}

/// A `Set` effect of a string, for tests and callers that build effects by hand.
pub fn set_str(key: &[u8], value: &[u8], expire_at: u64) -> Effect {
    Effect::Set {
        key: Bytes::copy_from_slice(key),
        value: Value::str(value),
        expire_at,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn arb_effect() -> impl Strategy<Value = Effect> {
        let key = proptest::collection::vec(any::<u8>(), 0..40);
        prop_oneof![
            (
                key.clone(),
                proptest::collection::vec(any::<u8>(), 0..300),
                any::<u64>()
            )
                .prop_map(|(k, v, at)| set_str(&k, &v, at)),
            key.clone().prop_map(|k| Effect::Del { key: k.into() }),
            (key, any::<u64>()).prop_map(|(k, at)| Effect::Expire { key: k.into(), at }),
            Just(Effect::FlushAll),
            "[a-z:]{0,12}".prop_map(|cache| Effect::ClearCache { cache }),
        ]
    }

    fn arb_records() -> impl Strategy<Value = Vec<(u64, Vec<Effect>)>> {
        proptest::collection::vec(
            (any::<u64>(), proptest::collection::vec(arb_effect(), 0..6)),
            1..8,
        )
    }

    /// Every complete frame of `buf`, decoded, and where reading stopped.
    fn read_all(mut buf: &[u8]) -> (Vec<(u64, Vec<Effect>)>, Frame<'_>) {
        let mut out = Vec::new();
        loop {
            match frame(buf) {
                Frame::Ok { payload, len } => {
                    let r = Record::parse(payload).expect("header");
                    out.push((r.lsn, r.to_effects().expect("effects")));
                    buf = &buf[len..];
                }
                other => return (out, other),
            }
        }
    }

    proptest! {
        #[test]
        fn records_round_trip(records in arb_records()) {
            let mut buf = Vec::new();
            for (lsn, fx) in &records {
                encode(&mut buf, *lsn, fx);
            }
            let (got, end) = read_all(&buf);
            prop_assert_eq!(got, records);
            prop_assert_eq!(end, Frame::Incomplete);
        }

        #[test]
        fn a_truncated_tail_is_incomplete_and_keeps_every_whole_record(
            records in arb_records(),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut buf = Vec::new();
            let mut ends = Vec::new();
            for (lsn, fx) in &records {
                encode(&mut buf, *lsn, fx);
                ends.push(buf.len());
            }
            let at = cut.index(buf.len());
            let (got, end) = read_all(&buf[..at]);
            let whole = ends.iter().filter(|&&e| e <= at).count();
            prop_assert_eq!(&got[..], &records[..whole]);
            prop_assert_eq!(end, Frame::Incomplete);
        }

        #[test]
        fn a_flipped_bit_is_never_read_as_a_record(
            records in arb_records(),
            pos in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut buf = Vec::new();
            let mut ends = vec![0];
            for (lsn, fx) in &records {
                encode(&mut buf, *lsn, fx);
                ends.push(buf.len());
            }
            let at = pos.index(buf.len());
            buf[at] ^= 1 << bit;
            let damaged = ends.iter().rposition(|&e| e <= at).expect("some record start");
            let (got, end) = read_all(&buf);
            // Records before the damaged one are intact; the damaged one never decodes.
            prop_assert_eq!(&got[..], &records[..damaged]);
            let stopped_on_damage = !matches!(end, Frame::Ok { .. });
            prop_assert!(stopped_on_damage);
        }

        #[test]
        fn garbage_payloads_decode_to_errors_not_panics(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            if let Ok(r) = Record::parse(&payload) {
                for e in r.effects().take(100) {
                    let _ = e;
                }
            }
        }
    }

    #[test]
    fn a_zero_filled_tail_is_bad_not_a_record() {
        assert_eq!(frame(&[0u8; 64]), Frame::Bad { len: 0 });
    }

    #[test]
    fn count_is_patched_for_many_effects() {
        let fx: Vec<Effect> = (0..300u32)
            .map(|i| Effect::Del {
                key: i.to_string().into_bytes().into(),
            })
            .collect();
        let mut buf = Vec::new();
        encode(&mut buf, 7, &fx);
        let Frame::Ok { payload, .. } = frame(&buf) else {
            panic!("frame");
        };
        let r = Record::parse(payload).expect("parse");
        assert_eq!(r.lsn, 7);
        assert_eq!(r.to_effects().expect("effects"), fx);
    }

    #[test]
    fn collections_round_trip_and_bad_packed_bytes_are_refused() {
        use crate::store::{Coll, HashV, ZSetV};
        let mut h = HashV::default();
        h.insert(b"f", b"v");
        h.insert_with(b"g", b"w", 77);
        let mut z = ZSetV::default();
        z.insert(b"m", 2.5);
        let fx = vec![
            Effect::ListOps {
                key: Bytes::from("l"),
                from: 7,
                ops: vec![
                    crate::store::types::ListOp::PushFront(Bytes::from("a")),
                    crate::store::types::ListOp::PopBack,
                    crate::store::types::ListOp::PushBack(Bytes::from("")),
                    crate::store::types::ListOp::PopFront,
                ],
            },
            Effect::Patch {
                key: Bytes::from("p"),
                upserts: h.clone().into_value(),
                removed: vec![Bytes::from("x"), Bytes::from("")],
            },
            Effect::Set {
                key: Bytes::from("h"),
                value: h.into_value(),
                expire_at: 5,
            },
            Effect::Set {
                key: Bytes::from("z"),
                value: z.into_value(),
                expire_at: 0,
            },
        ];
        let mut out = Vec::new();
        encode(&mut out, 9, &fx);
        let Frame::Ok { payload, .. } = frame(&out) else {
            panic!("frame")
        };
        let rec = Record::parse(payload).expect("parse");
        assert_eq!(rec.to_effects().expect("decode"), fx);
        // A hash whose packed bytes claim a field that is not there: a decode error.
        let mut b = Builder::begin(&mut out, 1);
        out.push(SET);
        b.count += 1;
        bytes(&mut out, b"k");
        varint(&mut out, 0);
        out.push(crate::store::Kind::Hash.tag());
        bytes(&mut out, &[1, 3, b'a']);
        b.end(&mut out);
        let second = match frame(&out) {
            Frame::Ok { len, .. } => len,
            _ => panic!("frame"),
        };
        let Frame::Ok { payload, .. } = frame(&out[second..]) else {
            panic!("frame 2")
        };
        let rec = Record::parse(payload).expect("parse");
        assert!(matches!(rec.to_effects(), Err(DecodeError::Packed("hash"))));
    }
}
