//! What a run produced, for people and tools: the summary (JSON, Markdown, text), the plots,
//! JUnit. Reads results, never the world.

pub mod archive;
pub mod compare;
pub mod endpoints;
pub mod format;
pub mod junit;
pub mod monitoring;
pub mod multimaster;
pub mod plot;
pub mod pooler;
pub mod restore;
pub mod subscriptions;
pub mod summary;
pub mod sweep;
pub mod timeline;
