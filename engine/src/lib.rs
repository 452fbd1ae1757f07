//! repsim-engine: a PostgreSQL-style physical streaming replication engine, written sans-IO.
//!
//! The engine never reads a clock, draws a random number or performs IO. A driver (the
//! simulator in crate `repsim`, or some day a real event loop) feeds it [`io::Input`]s with the
//! node's local time and carries out the [`io::Output`]s it returns.

pub mod archiver;
pub mod basebackup;
pub mod cancel;
pub mod checkpoint;
pub mod client;
pub mod commit;
pub mod config;
pub mod crc32c;
pub mod fingerprint;
pub mod flush;
pub mod fpw;
pub mod ha;
pub mod io;
pub mod lagtracker;
pub mod logical;
pub mod lsn;
pub mod message;
pub mod node;
pub mod pitr;
pub mod promote;
pub mod prune;
pub mod query;
pub mod recovery;
pub mod replay;
pub mod restore;
pub mod stats;
pub mod storage;
pub mod syncrep;
pub mod timeline;
pub mod visibility;
pub mod wal;
pub mod walreceiver;
pub mod walsender;

pub use io::{Input, Instant, NodeId, Output};
pub use lsn::Lsn;
pub use node::{Node, Role};
pub use recovery::initdb;
