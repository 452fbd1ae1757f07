//! Full-page writes (`full_page_writes = on`, PostgreSQL's default): the first change to a heap
//! page after the redo point of the latest checkpoint carries an image of the whole page, so
//! that crash recovery can repair a torn 8 KB page (`XLogRecordAssemble` in xloginsert.c, which
//! compares the page LSN with `RedoRecPtr`). The image leaves out the page's free-space "hole"
//! (`wal_compression` off). WAL volume therefore rises after every checkpoint and falls as the
//! touched pages are imaged, as PostgreSQL's does.
//!
//! Rows map to pages by key: `rows_per_page` rows of a table's value size fit a page (page
//! header, line pointers, tuple headers). A page with no rows yet is a new page: PostgreSQL logs
//! its initialisation (`XLOG_HEAP_INIT_PAGE`), not an image.
//! Simplification: a node starts without the set of imaged pages, so after a restart or a
//! promotion every page is imaged on its first change (PostgreSQL would skip pages replayed
//! since the redo point).

use std::collections::BTreeSet;

pub const PAGE_BYTES: u64 = 8192;
const PAGE_HEADER_BYTES: u64 = 24;
const LINE_POINTER_BYTES: u64 = 4;
/// `HeapTupleHeaderData` (23 bytes) MAXALIGNed.
const TUPLE_HEADER_BYTES: u64 = 24;

fn row_bytes(value_len: u32) -> u64 {
    LINE_POINTER_BYTES + TUPLE_HEADER_BYTES + u64::from(value_len)
}

/// Rows of `value_len` bytes that fit one heap page.
pub fn rows_per_page(value_len: u32) -> u64 {
    ((PAGE_BYTES - PAGE_HEADER_BYTES) / row_bytes(value_len)).max(1)
}

/// Pages imaged since the redo point.
#[derive(Clone, Debug, Default)]
pub struct FullPageWrites {
    imaged: BTreeSet<(u32, u64)>,
}

impl FullPageWrites {
    /// A checkpoint began: its redo point is the new `RedoRecPtr`.
    pub fn redo_moved(&mut self) {
        self.imaged.clear();
    }

    /// The image a change to `(table, key)` carries: its page and length, if the page was not
    /// imaged since the redo point and holds rows. `rows_present(first_key, end_key)` counts
    /// the page's rows before the change.
    pub fn image_for(
        &mut self,
        table: u32,
        key: u64,
        value_len: u32,
        rows_present: impl Fn(u64, u64) -> u64,
    ) -> Option<(u64, u32)> {
        let per_page = rows_per_page(value_len);
        let page = key / per_page;
        if !self.imaged.insert((table, page)) {
            return None;
        }
        let first = page * per_page;
        let rows = rows_present(first, first.saturating_add(per_page));
        let len = (rows > 0).then(|| (PAGE_HEADER_BYTES + rows * row_bytes(value_len)).min(PAGE_BYTES))?;
        Some((page, len as u32))
    }

    /// Pages imaged since the redo point (bounded by the pages one checkpoint cycle touches).
    pub fn imaged_pages(&self) -> usize {
        self.imaged.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_imaged_once_per_checkpoint_cycle_without_its_hole() {
        let mut f = FullPageWrites::default();
        assert_eq!(rows_per_page(100), 63);
        let full = |_: u64, _: u64| 63;
        assert_eq!(f.image_for(1, 5, 100, full), Some((0, 24 + 63 * 128)));
        assert_eq!(f.image_for(1, 62, 100, full), None, "same page, already imaged");
        assert_eq!(f.image_for(1, 63, 100, |_, _| 10), Some((1, 24 + 10 * 128)), "the hole is left out");
        assert_eq!(f.image_for(2, 5, 100, full), Some((0, 24 + 63 * 128)), "another table's page");
        assert_eq!(f.image_for(1, 200, 100, |_, _| 0), None, "a new page is initialised, not imaged");
        f.redo_moved();
        assert_eq!(f.imaged_pages(), 0);
        assert!(f.image_for(1, 5, 100, full).is_some(), "imaged again after the next checkpoint");
    }
}
