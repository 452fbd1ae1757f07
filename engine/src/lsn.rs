//! Log sequence numbers: byte positions in one endless WAL stream.

use std::fmt;

/// A WAL byte position. `Lsn(0)` is invalid. End positions mean last byte + 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    pub const INVALID: Lsn = Lsn(0);

    pub fn is_valid(self) -> bool {
        self.0 != 0
    }

    /// Segment number holding this byte.
    pub fn segment(self, segment_size_bytes: u64) -> u64 {
        self.0 / segment_size_bytes
    }

    /// Start of the segment holding this byte.
    pub fn segment_start(self, segment_size_bytes: u64) -> Lsn {
        Lsn(self.0 - self.0 % segment_size_bytes)
    }

    /// Bytes from `earlier` to `self`, 0 if `earlier` is ahead.
    pub fn bytes_since(self, earlier: Lsn) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Lsn {
    /// PostgreSQL's `HI/LO` hexadecimal form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// PostgreSQL's WAL segment file name for a timeline and segment number.
pub fn segment_file_name(timeline: u32, segno: u64, segment_size_bytes: u64) -> String {
    let per_xlogid = 0x1_0000_0000u64 / segment_size_bytes;
    format!("{:08X}{:08X}{:08X}", timeline, segno / per_xlogid, segno % per_xlogid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_matches_postgres() {
        // Spec §1.1: TLI 1, LSN 0/3000148 -> 000000010000000000000003.
        let seg = Lsn(0x300_0148).segment(16 * 1024 * 1024);
        assert_eq!(segment_file_name(1, seg, 16 * 1024 * 1024), "000000010000000000000003");
        assert_eq!(Lsn(0x1_0000_0010).to_string(), "1/10");
    }
}
