//! The layout of one entry in a segment: a compact header, the key, the value.
//!
//! ```text
//!  klen u8 | flags u8 | lfu u8 | atime u48 | vlen varint | [expire_at u64] | key | value
//! ```
//! 10 bytes of header for a value under 128 bytes with no TTL (Redis spends about 40 on
//! its dictEntry and object headers). `flags` bit 0 says an expiry follows; bits 1..4 hold
//! the value type. All integers are little-endian and unaligned.

/// Longest key kept off-heap (its length is one byte); longer keys stay on the heap.
pub const MAX_KEY: usize = u8::MAX as usize;

const HAS_EXPIRE: u8 = 1;
const TYPE_SHIFT: u8 = 1;
const TYPE_MASK: u8 = 0b1110;

/// Value type tags.
pub const TYPE_STR: u8 = 0;

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Key length.
    pub klen: usize,
    /// Value length.
    pub vlen: usize,
    /// Value type tag.
    pub ty: u8,
    /// LFU counter.
    pub lfu: u8,
    /// Last access, unix ms.
    pub atime: u64,
    /// Absolute expiry, unix ms; 0 = none.
    pub expire_at: u64,
    /// Header length: the key starts here.
    pub hlen: usize,
}

impl Header {
    /// Bytes of the whole item.
    #[inline]
    pub fn size(&self) -> usize {
        self.hlen + self.klen + self.vlen
    }

    /// Where the value starts.
    #[inline]
    pub fn value_at(&self) -> usize {
        self.hlen + self.klen
    }
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Bytes an item with these lengths takes.
pub fn size(klen: usize, vlen: usize, expire_at: u64) -> usize {
    9 + varint_len(vlen) + if expire_at != 0 { 8 } else { 0 } + klen + vlen
}

/// What to write.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// The key (at most [`MAX_KEY`] bytes).
    pub key: &'a [u8],
    /// The value's encoded bytes.
    pub value: &'a [u8],
    /// Value type tag.
    pub ty: u8,
    /// LFU counter.
    pub lfu: u8,
    /// Last access, unix ms.
    pub atime: u64,
    /// Absolute expiry, unix ms; 0 = none.
    pub expire_at: u64,
}

impl Item<'_> {
    /// Bytes it takes.
    pub fn size(&self) -> usize {
        size(self.key.len(), self.value.len(), self.expire_at)
    }

    /// Writes the item at the start of `buf`, returning its size; `None` (nothing written)
    /// when it does not fit or the key is too long.
    pub fn write(&self, buf: &mut [u8]) -> Option<usize> {
        let n = self.size();
        if self.key.len() > MAX_KEY || n > buf.len() {
            return None;
        }
        let has_expire = self.expire_at != 0;
        buf[0] = self.key.len() as u8;
        buf[1] = u8::from(has_expire) | ((self.ty << TYPE_SHIFT) & TYPE_MASK);
        buf[2] = self.lfu;
        buf[3..9].copy_from_slice(&self.atime.to_le_bytes()[..6]);
        let mut at = 9;
        let mut v = self.value.len();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            buf[at] = byte | if v != 0 { 0x80 } else { 0 };
            at += 1;
            if v == 0 {
                break;
            }
        }
        if has_expire {
            buf[at..at + 8].copy_from_slice(&self.expire_at.to_le_bytes());
            at += 8;
        }
        buf[at..at + self.key.len()].copy_from_slice(self.key);
        at += self.key.len();
        buf[at..at + self.value.len()].copy_from_slice(self.value);
        Some(n)
    }
}

/// Reads the header of the item at the start of `buf`; `None` if `buf` cannot hold it.
#[inline]
pub fn header(buf: &[u8]) -> Option<Header> {
    let fixed = buf.get(..9)?;
    let flags = fixed[1];
    let mut t = [0u8; 8];
    t[..6].copy_from_slice(&fixed[3..9]);
    let mut at = 9;
    let mut vlen = 0usize;
    let mut shift = 0;
    loop {
        let b = *buf.get(at)?;
        at += 1;
        vlen |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 35 {
            return None;
        }
    }
    let expire_at = if flags & HAS_EXPIRE != 0 {
        let b = buf.get(at..at + 8)?;
        at += 8;
        u64::from_le_bytes(b.try_into().ok()?)
    } else {
        0
    };
    let h = Header {
        klen: usize::from(fixed[0]),
        vlen,
        ty: (flags & TYPE_MASK) >> TYPE_SHIFT,
        lfu: fixed[2],
        atime: u64::from_le_bytes(t),
        expire_at,
        hlen: at,
    };
    (h.size() <= buf.len()).then_some(h)
}

/// Rewrites the access metadata of the item at the start of `buf`.
#[inline]
pub fn set_access(buf: &mut [u8], lfu: u8, atime: u64) {
    if buf.len() >= 9 {
        buf[2] = lfu;
        buf[3..9].copy_from_slice(&atime.to_le_bytes()[..6]);
    }
}

/// Rewrites the expiry of the item at the start of `buf` in place: possible only when it
/// has an expiry field and `at` is not 0 (the caller rewrites the item otherwise).
pub fn set_expire(buf: &mut [u8], h: &Header, at: u64) -> bool {
    if h.expire_at == 0 || at == 0 {
        return false;
    }
    let field = h.hlen - 8;
    buf[field..h.hlen].copy_from_slice(&at.to_le_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item<'a>(key: &'a [u8], value: &'a [u8], expire_at: u64) -> Item<'a> {
        Item {
            key,
            value,
            ty: TYPE_STR,
            lfu: 7,
            atime: 1_700_000_000_123,
            expire_at,
        }
    }

    #[test]
    fn round_trip_and_sizes() {
        let mut buf = vec![0u8; 4096];
        for (vlen, at) in [(0, 0), (5, 0), (127, 42), (128, 0), (3000, u64::MAX)] {
            let value = vec![9u8; vlen];
            let it = item(b"key:1", &value, at);
            let n = it.write(&mut buf).expect("fits");
            assert_eq!(n, it.size());
            let h = header(&buf).expect("header");
            assert_eq!(h.size(), n);
            assert_eq!((h.klen, h.vlen, h.expire_at, h.lfu), (5, vlen, at, 7));
            assert_eq!(h.atime, 1_700_000_000_123);
            assert_eq!(&buf[h.hlen..h.value_at()], b"key:1");
            assert_eq!(&buf[h.value_at()..h.size()], &value[..]);
        }
        assert_eq!(item(b"k", &[0; 32], 0).size(), 10 + 1 + 32);
    }

    #[test]
    fn refuses_what_does_not_fit_and_reads_no_garbage() {
        let mut small = [0u8; 20];
        assert!(item(b"key", &[1; 16], 0).write(&mut small).is_none());
        assert!(item(&[b'k'; 256], b"", 0).write(&mut [0u8; 512]).is_none());
        assert!(
            header(&[3, 0, 0, 0, 0, 0, 0, 0, 0, 0xff]).is_none(),
            "truncated varint"
        );
        assert!(
            header(&[200, 0, 0, 0, 0, 0, 0, 0, 0, 1]).is_none(),
            "key past the end"
        );
    }

    #[test]
    fn metadata_updates_in_place() {
        let mut buf = vec![0u8; 128];
        item(b"k", b"v", 100).write(&mut buf).expect("fits");
        set_access(&mut buf, 9, 5_000);
        let h = header(&buf).expect("header");
        assert_eq!((h.lfu, h.atime), (9, 5_000));
        assert!(set_expire(&mut buf, &h, 900));
        assert_eq!(header(&buf).expect("header").expire_at, 900);
        assert!(
            !set_expire(&mut buf, &h, 0),
            "removing the field needs a rewrite"
        );
    }
}
