//! Write-ahead log: record encoding and the in-memory log.
pub mod blocks;
pub mod chunks;
pub mod log;
pub mod record;
