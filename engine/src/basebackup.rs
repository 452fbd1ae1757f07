//! `pg_basebackup -X stream -R` and `pg_rewind`, as pure functions over disk images. The driver
//! moves the bytes (charging the network for `copied_bytes`) and boots the result as a standby.
//!
//! Both end in the same state: the source's last checkpoint plus the source's WAL, replayed by
//! the standby's recovery. What differs is what they cost and when they are possible: a clone
//! copies everything; a rewind copies only what changed since the fork (the WAL of both sides
//! past it stands for the changed blocks) but needs the target's WAL back to the fork.

use crate::checkpoint::ControlFile;
use crate::io::{DiskImage, FileId};
use crate::lsn::Lsn;
use crate::timeline::History;

/// The result of a clone or rewind: the image to boot, and the bytes that had to be copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    pub image: DiskImage,
    pub copied_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RewindError {
    /// The target's timeline is not in the source's history: nothing in common.
    NoCommonHistory { target_timeline: u32 },
    /// The target no longer has WAL back to the fork point (it was recycled).
    TargetWalMissing { fork: Lsn, oldest_segment_start: Lsn },
}

impl std::fmt::Display for RewindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RewindError::NoCommonHistory { target_timeline } => {
                write!(f, "target timeline {target_timeline} is not in the source's history")
            }
            RewindError::TargetWalMissing { fork, oldest_segment_start } => write!(
                f,
                "could not find previous WAL record: the target's WAL starts at {oldest_segment_start}, after the fork at {fork}"
            ),
        }
    }
}

fn total_bytes(image: &DiskImage) -> u64 {
    image.files.iter().map(|(&file, bytes)| crate::io::chunked_file_cost_bytes(file, bytes)).sum()
}

/// `pg_basebackup`: a copy of the source's data directory (its durable image: last checkpoint,
/// table image, WAL since, history files).
pub fn clone_image(source: &DiskImage) -> Copy {
    // pg_basebackup leaves pg_replslot's contents out: a clone starts without the slots.
    let mut image = source.clone();
    image.files.retain(|f, _| !matches!(f, FileId::ReplSlots(_)));
    Copy { copied_bytes: total_bytes(&image), image }
}

/// A base backup for the archive (`pg_basebackup -X stream` into WAL-G / Barman): the data
/// directory as of its last checkpoint (control file, that checkpoint's table image, history
/// files) and the WAL from the checkpoint's redo point on, so that the backup is consistent
/// on its own; later WAL comes from the archive. Older WAL segments and unfinished table images
/// are not copied.
pub fn backup_image(source: &DiskImage, segment_size_bytes: u64) -> Option<Copy> {
    let control = image_checkpoint(source)?;
    let first_segno = control.redo.segment(segment_size_bytes);
    let needed = |file: &FileId| match *file {
        FileId::Control | FileId::History(_) => true,
        FileId::Data(id) => id == control.data_file_id,
        FileId::WalSegment { segno, .. } => segno >= first_segno,
        // pg_basebackup leaves pg_replslot's contents out: slots are not cloned.
        FileId::ReplSlots(_) => false,
    };
    let files = source.files.iter().filter(|(f, _)| needed(f)).map(|(f, b)| (*f, b.clone())).collect();
    let image = DiskImage { files };
    Some(Copy { copied_bytes: total_bytes(&image), image })
}

fn wal_bytes_from(image: &DiskImage, from_segno: u64) -> u64 {
    image
        .files
        .iter()
        .filter(|(f, _)| matches!(f, FileId::WalSegment { segno, .. } if *segno >= from_segno))
        .map(|(_, b)| b.len() as u64)
        .sum()
}

/// `pg_rewind --source-server`: rewinds `target` (which diverged on `target_timeline`) to the
/// source whose history is `source_history`.
pub fn rewind(
    target: &DiskImage,
    target_timeline: u32,
    source: &DiskImage,
    source_history: &History,
    segment_size_bytes: u64,
) -> Result<Copy, RewindError> {
    let fork = source_history.end_of(target_timeline).ok_or(RewindError::NoCommonHistory { target_timeline })?;
    let fork_segno = fork.segment(segment_size_bytes);
    let oldest = target
        .files
        .keys()
        .filter_map(|f| if let FileId::WalSegment { segno, .. } = f { Some(*segno) } else { None })
        .min();
    match oldest {
        Some(segno) if segno <= fork_segno => {}
        other => {
            return Err(RewindError::TargetWalMissing {
                fork,
                oldest_segment_start: Lsn(other.unwrap_or(u64::MAX / segment_size_bytes) * segment_size_bytes),
            })
        }
    }
    let control_bytes = source.files.get(&FileId::Control).map_or(0, |b| b.len() as u64);
    let copied_bytes = wal_bytes_from(source, fork_segno) + wal_bytes_from(target, fork_segno) + control_bytes;
    // pg_rewind leaves pg_replslot out, as pg_basebackup does.
    let mut image = source.clone();
    image.files.retain(|f, _| !matches!(f, FileId::ReplSlots(_)));
    Ok(Copy { image, copied_bytes })
}

/// The timeline and redo point of an image, for reports.
pub fn image_checkpoint(image: &DiskImage) -> Option<ControlFile> {
    image.read(FileId::Control).and_then(|b| ControlFile::decode(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with_segments(segnos: &[u64], timeline: u32) -> DiskImage {
        let mut image = DiskImage::default();
        for &segno in segnos {
            image.files.insert(FileId::WalSegment { timeline, segno }, vec![1; 100].into());
        }
        image
    }

    #[test]
    fn rewind_needs_target_wal_back_to_the_fork() {
        let seg = 1 << 20;
        let history = History::default().child(1, Lsn(3 * seg + 10));
        let source = image_with_segments(&[3, 4, 5], 2);
        let kept = image_with_segments(&[2, 3, 4], 1);
        let copy = rewind(&kept, 1, &source, &history, seg).expect("rewindable");
        assert_eq!(copy.image, source);
        // WAL from the fork segment on, both sides: 3 source + 2 target segments of 100 bytes.
        assert_eq!(copy.copied_bytes, 500);
        assert!(copy.copied_bytes < clone_image(&source).copied_bytes + 1_000);
        let recycled = image_with_segments(&[4, 5], 1);
        assert!(matches!(rewind(&recycled, 1, &source, &history, seg), Err(RewindError::TargetWalMissing { .. })));
        assert!(matches!(rewind(&kept, 7, &source, &history, seg), Err(RewindError::NoCommonHistory { .. })));
    }
}
