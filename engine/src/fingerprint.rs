//! A stable 64-bit fingerprint folded a word at a time: the run's trace hash and a store's data
//! hash. Stable means the same on every machine, build and release (std's hashers promise none
//! of that). A word costs one multiply and a shift, where byte-wise FNV-1a cost eight dependent
//! multiplies: the trace folds every event of a run (issue 11's profile: 6 % of a run).
//!
//! It detects divergence; it is not a cryptographic hash.

/// The fingerprint of nothing.
pub const FINGERPRINT_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Folds one word: multiply by the 64-bit golden ratio (odd, so a bijection), then fold the high
/// half into the low so that every input bit reaches every output bit within two words.
#[inline]
pub fn fold_u64(hash: u64, word: u64) -> u64 {
    let h = (hash ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

/// Folds bytes eight at a time (the last word zero-padded), then their length, so that "ab" +
/// "c" and "a" + "bc" differ.
#[inline]
pub fn fold_bytes(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        hash = fold_u64(hash, u64::from_le_bytes(w.try_into().expect("eight bytes")));
    }
    let rest = words.remainder().len();
    if rest > 0 {
        hash = fold_u64(hash, tail_word(bytes, rest));
    }
    fold_u64(hash, bytes.len() as u64)
}

/// The little-endian word of the last `n` (1 to 7) bytes of `bytes`, zero-padded, read in at
/// most two loads: no variable-length copy (a call to memcpy) and no loop over the bytes (the
/// trace folds two short strings per event).
#[inline]
fn tail_word(bytes: &[u8], n: usize) -> u64 {
    let len = bytes.len();
    debug_assert!((1..8).contains(&n) && n <= len);
    if len >= 8 {
        // The last eight bytes, shifted down past those already folded.
        let last8: [u8; 8] = bytes[len - 8..].try_into().expect("eight bytes");
        u64::from_le_bytes(last8) >> (8 * (8 - n))
    } else if n >= 4 {
        // Two four-byte loads that overlap in the middle (the same bytes in both).
        let first: [u8; 4] = bytes[..4].try_into().expect("four bytes");
        let last: [u8; 4] = bytes[n - 4..n].try_into().expect("four bytes");
        u64::from(u32::from_le_bytes(first)) | u64::from(u32::from_le_bytes(last)) << (8 * (n - 4))
    } else {
        // One to three bytes: the first, the middle and the last cover them all.
        let byte = |i: usize| u64::from(bytes[i]) << (8 * i);
        byte(0) | byte(n / 2) | byte(n - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned values: a change to the function changes every trace hash, so it must be seen.
    #[test]
    fn fingerprint_values_are_pinned() {
        assert_eq!(fold_u64(FINGERPRINT_START, 0), 17_923_080_556_155_263_046);
        assert_eq!(fold_bytes(FINGERPRINT_START, b""), fold_u64(FINGERPRINT_START, 0));
        assert_eq!(fold_bytes(FINGERPRINT_START, b"replication"), 833_182_139_412_076_054);
        assert_ne!(fold_bytes(FINGERPRINT_START, b"ab"), fold_bytes(FINGERPRINT_START, b"ab\0"));
    }

    /// The tail's word is the zero-padded little-endian word of the last bytes, at every length.
    #[test]
    fn tail_words_are_the_zero_padded_last_bytes() {
        let bytes: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
        for len in 1..=bytes.len() {
            let n = len % 8;
            if n == 0 {
                continue;
            }
            let slice = &bytes[..len];
            let expected = slice[len - n..].iter().rev().fold(0u64, |word, &b| (word << 8) | u64::from(b));
            assert_eq!(tail_word(slice, n), expected, "length {len}");
        }
    }

    /// Splitting bytes differently, reordering words, or flipping any one bit changes the result.
    #[test]
    fn boundaries_order_and_every_bit_matter() {
        let h = FINGERPRINT_START;
        assert_ne!(fold_bytes(fold_bytes(h, b"ab"), b"c"), fold_bytes(fold_bytes(h, b"a"), b"bc"));
        assert_ne!(fold_u64(fold_u64(h, 1), 2), fold_u64(fold_u64(h, 2), 1));
        let base = fold_u64(fold_u64(h, 0x1234_5678_9abc_def0), 7);
        for bit in 0..64 {
            let flipped = fold_u64(fold_u64(h, 0x1234_5678_9abc_def0 ^ (1 << bit)), 7);
            assert_ne!(flipped, base, "bit {bit}");
            // The avalanche reaches the low half too (a plain multiply would not move high bits down).
            assert_ne!(flipped as u32, base as u32, "bit {bit} does not reach the low word");
        }
    }
}
