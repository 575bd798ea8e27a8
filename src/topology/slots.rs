//! Slot math: the 16384 hash slots, CRC16 with `{hash tags}`, and the even contiguous split.

use std::fmt;

pub const SLOTS: u16 = 16384;

/// An inclusive range of slots, `start..=end`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
}

impl SlotRange {
    pub fn new(start: u16, end: u16) -> Self {
        debug_assert!(start <= end && end < SLOTS);
        SlotRange { start, end }
    }
    pub fn len(&self) -> u32 {
        u32::from(self.end - self.start) + 1
    }
    pub fn contains(&self, slot: u16) -> bool {
        self.start <= slot && slot <= self.end
    }
}

impl fmt::Display for SlotRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// Collapse a sorted or unsorted list of slots into ranges.
pub fn ranges_of(slots: impl IntoIterator<Item = u16>) -> Vec<SlotRange> {
    let mut v: Vec<u16> = slots.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    let mut out: Vec<SlotRange> = Vec::new();
    for s in v {
        match out.last_mut() {
            Some(r) if r.end + 1 == s => r.end = s,
            _ => out.push(SlotRange::new(s, s)),
        }
    }
    out
}

pub fn count(ranges: &[SlotRange]) -> u32 {
    ranges.iter().map(SlotRange::len).sum()
}

pub fn format_ranges(ranges: &[SlotRange]) -> String {
    if ranges.is_empty() {
        return "-".into();
    }
    ranges
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Split the 16384 slots over `shards` in contiguous ranges, exactly as
/// `redis-cli --cluster create` does (3 shards: 0-5460, 5461-10922, 10923-16383).
#[cfg(test)]
pub fn even_split(shards: usize) -> Vec<SlotRange> {
    weighted_split(&vec![1; shards])
}

/// Contiguous ranges in shard order, shard i getting a share proportional to `weights[i]`
/// (each at least 1 slot). With equal weights this is exactly redis-cli's split.
pub fn weighted_split(weights: &[u32]) -> Vec<SlotRange> {
    let shards = weights.len();
    assert!(shards > 0 && shards <= usize::from(SLOTS));
    let total: f64 = weights.iter().map(|w| f64::from((*w).max(1))).sum();
    let mut out = Vec::with_capacity(shards);
    let mut first: i64 = 0;
    let mut cursor = 0.0f64;
    for (i, w) in weights.iter().enumerate() {
        let per = f64::from(SLOTS) * f64::from((*w).max(1)) / total;
        let mut last = (cursor + per - 1.0).round() as i64;
        // Leave at least one slot for each shard after this one.
        let reserve = (shards - 1 - i) as i64;
        if last > i64::from(SLOTS) - 1 - reserve {
            last = i64::from(SLOTS) - 1 - reserve;
        }
        if i == shards - 1 {
            last = i64::from(SLOTS) - 1;
        }
        if last < first {
            last = first;
        }
        out.push(SlotRange::new(first as u16, last as u16));
        first = last + 1;
        cursor += per;
    }
    out
}

/// CRC16-CCITT (XMODEM), the checksum Redis Cluster uses for key slots.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot of a key: CRC16 of the key, or of the first non-empty `{tag}`, mod 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_reference_vector() {
        // The check value of CRC-16/XMODEM, also quoted in the Redis Cluster spec.
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn key_slot_hash_tags() {
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"{user1000}.followers"), key_slot(b"user1000"));
        // Empty tag: the whole key is hashed.
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
        // Only the first tag counts.
        assert_eq!(key_slot(b"foo{{bar}}zap"), crc16(b"{bar") % SLOTS);
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        // Unclosed brace: whole key.
        assert_eq!(key_slot(b"foo{bar"), crc16(b"foo{bar") % SLOTS);
    }

    #[test]
    fn weighted_split_is_proportional_and_leaves_every_shard_a_slot() {
        let sizes = |w: &[u32]| -> Vec<u32> { weighted_split(w).iter().map(|r| r.len()).collect() };
        assert_eq!(sizes(&[1, 1, 2]), [4096, 4096, 8192]);
        assert_eq!(sizes(&[3, 1]), [12288, 4096]);
        assert_eq!(sizes(&[1000, 1, 1]).iter().sum::<u32>(), 16384);
        assert!(sizes(&[1000, 1, 1]).iter().all(|&n| n >= 1));
        for n in 1..=20 {
            assert_eq!(weighted_split(&vec![7; n]), even_split(n), "{n} shards");
        }
        // Contiguous, in order, covering everything.
        let r = weighted_split(&[5, 1, 3, 2]);
        assert_eq!(r[0].start, 0);
        assert_eq!(r[3].end, 16383);
        assert!(r.windows(2).all(|w| w[1].start == w[0].end + 1));
    }

    #[test]
    fn even_split_matches_redis_cli() {
        let s = even_split(3);
        assert_eq!(
            s,
            vec![
                SlotRange::new(0, 5460),
                SlotRange::new(5461, 10922),
                SlotRange::new(10923, 16383)
            ]
        );
        assert_eq!(
            s.iter().map(SlotRange::len).collect::<Vec<_>>(),
            vec![5461, 5462, 5461]
        );
        for n in 1..=64 {
            let s = even_split(n);
            assert_eq!(s.len(), n);
            assert_eq!(s[0].start, 0);
            assert_eq!(s[n - 1].end, SLOTS - 1);
            for w in s.windows(2) {
                assert_eq!(w[0].end + 1, w[1].start);
            }
            let (min, max) = s
                .iter()
                .fold((u32::MAX, 0), |(a, b), r| (a.min(r.len()), b.max(r.len())));
            assert!(max - min <= 1, "uneven split for {n}: {min}..{max}");
        }
    }

    #[test]
    fn ranges_collapse() {
        assert_eq!(
            ranges_of([5, 1, 2, 3, 7, 6, 10]),
            vec![
                SlotRange::new(1, 3),
                SlotRange::new(5, 7),
                SlotRange::new(10, 10)
            ]
        );
        assert_eq!(format_ranges(&ranges_of([1, 2, 4])), "1-2,4");
    }
}
