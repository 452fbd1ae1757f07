//! Logical replication on the publisher: decoding WAL into committed transactions of row
//! changes ([`decode`]) and the logical slots that remember how far a subscriber got
//! ([`slot`]). Issue 14 builds logical replication, multi-master and trigger capture on these.

pub mod admin;
pub mod apply;
pub mod conflict;
pub mod decode;
pub mod sender;
pub mod slot;
pub mod slotsync;
pub mod tablesync;
pub mod trigger;

#[cfg(test)]
mod tests;
