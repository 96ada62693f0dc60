//! Hash slots and their stripes.
//!
//! A key's slot is Redis Cluster's: CRC16 of the key, or of its `{hash tag}`, mod 16384
//! (`redis_protocol::redis_keyslot`). Slots go to stripes through a consistent hash ring
//! (the `hashring` crate) over the stripe names, so every server computes the same map
//! from the same config, and adding a stripe moves only the slots its arcs take (about
//! 1/N of them).
//!
//! The ring places blocks of [`BLOCK`] consecutive slots, not single slots: the map then
//! has a few hundred ranges (CLUSTER SLOTS stays small) while each stripe's share stays
//! within a few percent of even.

use hashring::HashRing;

/// Redis Cluster's slot count.
pub const SLOTS: usize = 16384;
/// Consecutive slots placed on the ring together.
pub const BLOCK: usize = 16;
/// Points each stripe has on the ring: more points, more even shares.
const POINTS: u32 = 512;

/// The slot of a key (hash tags included), as Redis Cluster computes it.
#[inline]
pub fn key_slot(key: &[u8]) -> u16 {
    redis_protocol::redis_keyslot(key)
}

/// A stripe's point on the ring; hashed with the ring's fixed SipHash keys, so the
/// placement depends only on the stripe names.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Point {
    stripe: String,
    n: u32,
}

/// Which stripe (by index in `cluster.stripes`) owns each slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMap {
    owner: Box<[u16]>,
}

impl SlotMap {
    /// The map for stripes named `names` (in config order).
    pub fn new(names: &[&str]) -> SlotMap {
        if names.len() <= 1 {
            return SlotMap {
                owner: vec![0; SLOTS].into_boxed_slice(),
            };
        }
        let mut ring = HashRing::new();
        ring.batch_add(
            names
                .iter()
                .flat_map(|name| {
                    (0..POINTS).map(|n| Point {
                        stripe: name.to_string(),
                        n,
                    })
                })
                .collect(),
        );
        let mut owner = vec![0u16; SLOTS];
        for (block, slots) in owner.chunks_mut(BLOCK).enumerate() {
            let stripe = ring
                .get(&(block as u32))
                .and_then(|p| names.iter().position(|n| *n == p.stripe))
                .unwrap_or(0);
            slots.fill(stripe as u16);
        }
        SlotMap {
            owner: owner.into_boxed_slice(),
        }
    }

    /// The stripe that owns `slot`.
    #[inline]
    pub fn owner(&self, slot: u16) -> usize {
        self.owner.get(slot as usize).copied().unwrap_or(0) as usize
    }

    /// Runs of consecutive slots with one owner: `(first, last, stripe)`, in slot order.
    pub fn ranges(&self) -> Vec<(u16, u16, usize)> {
        let mut out: Vec<(u16, u16, usize)> = Vec::new();
        for (slot, &owner) in self.owner.iter().enumerate() {
            match out.last_mut() {
                Some(r) if r.2 == owner as usize => r.1 = slot as u16,
                _ => out.push((slot as u16, slot as u16, owner as usize)),
            }
        }
        out
    }

    /// The ranges of `stripe`, in order.
    pub fn ranges_of(&self, stripe: usize) -> Vec<(u16, u16)> {
        self.ranges()
            .into_iter()
            .filter(|r| r.2 == stripe)
            .map(|r| (r.0, r.1))
            .collect()
    }

    /// Slots owned by `stripe`.
    pub fn count(&self, stripe: usize) -> usize {
        self.owner.iter().filter(|&&o| o as usize == stripe).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_clusters() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"123456789"), 12739);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    /// Pins the placement: a change here moves keys between stripes of running clusters.
    #[test]
    fn placement_is_pinned() {
        let map = SlotMap::new(&["stripe1", "stripe2", "stripe3"]);
        let keys = [
            "user:1",
            "user:2",
            "user:3",
            "events:42",
            "session:abc",
            "{tag}a",
            "foo",
            "bar",
            "baz",
            "counter",
        ];
        let owners: Vec<usize> = keys
            .iter()
            .map(|k| map.owner(key_slot(k.as_bytes())))
            .collect();
        assert_eq!(owners, GOLDEN, "slot placement changed");
        assert_eq!(map.ranges().len(), GOLDEN_RANGES, "slot ranges changed");
        assert_eq!(
            (0..3).map(|s| map.count(s)).collect::<Vec<_>>(),
            [5488, 5184, 5712],
            "slot shares changed"
        );
    }
    const GOLDEN: [usize; 10] = [0, 0, 2, 0, 2, 2, 1, 0, 0, 2];
    const GOLDEN_RANGES: usize = 644;

    #[test]
    fn three_stripes_get_even_shares() {
        for names in [
            ["stripe1", "stripe2", "stripe3"],
            ["a", "b", "c"],
            ["groupA", "groupB", "groupC"],
        ] {
            let map = SlotMap::new(&names);
            for s in 0..3 {
                let n = map.count(s) as f64;
                let even = SLOTS as f64 / 3.0;
                assert!(
                    (n - even).abs() / even <= 0.10,
                    "{names:?}: stripe {s} has {n} slots"
                );
            }
        }
    }

    #[test]
    fn adding_a_stripe_moves_about_a_quarter_to_it() {
        let three = SlotMap::new(&["stripe1", "stripe2", "stripe3"]);
        let four = SlotMap::new(&["stripe1", "stripe2", "stripe3", "stripe4"]);
        let mut moved = 0;
        for slot in 0..SLOTS as u16 {
            if three.owner(slot) != four.owner(slot) {
                moved += 1;
                assert_eq!(four.owner(slot), 3, "slot {slot} moved between old stripes");
            }
        }
        let share = moved as f64 / SLOTS as f64;
        assert!((0.18..=0.32).contains(&share), "moved {share}");
    }

    #[test]
    fn one_stripe_owns_everything() {
        let map = SlotMap::new(&["only"]);
        assert_eq!(map.ranges(), vec![(0, 16383, 0)]);
    }
}
