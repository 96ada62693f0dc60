//! The off-heap region: one memory map (anonymous, or a file in the data directory) cut
//! into fixed-size segments. Tables take segments and give them back; a segment belongs to
//! one table at a time, so it is written under that table's shard lock and nothing else.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use memmap2::{MmapMut, MmapOptions};
use parking_lot::Mutex;

/// Smallest and largest segment sizes (see [`segment_size_for`]).
pub const MIN_SEGMENT: usize = 16 << 10;
/// The largest segment: Segcache's 1 MiB, big enough that per-segment metadata is noise.
pub const MAX_SEGMENT: usize = 1 << 20;

/// The segment size for an off-heap tier of `bytes` over `tables` tables: a power of two
/// that gives every table several segments (each keeps one open per expiry group), within
/// [`MIN_SEGMENT`]..=[`MAX_SEGMENT`].
pub fn segment_size_for(bytes: u64, tables: usize) -> usize {
    let per_table = bytes / (tables.max(1) as u64 * 8);
    let floor = if per_table == 0 {
        1
    } else {
        1u64 << (63 - per_table.leading_zeros())
    };
    (floor as usize).clamp(MIN_SEGMENT, MAX_SEGMENT)
}

/// Why the region could not be created.
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    /// The size exceeds what can back it.
    #[error("storage.offheap {want} is larger than the {what} that can back it ({have})")]
    TooLarge {
        /// The configured size, human-readable.
        want: String,
        /// `memory` or `free disk space under <dir>`.
        what: String,
        /// What there is, human-readable.
        have: String,
    },
    /// The map or its file failed.
    #[error("off-heap tier: {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file, or `(anonymous)`.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The memory map and its free segments.
pub struct Region {
    /// Keeps the mapping alive; segments address it through `base`.
    _map: MmapMut,
    base: NonNull<u8>,
    seg_size: usize,
    count: u32,
    /// Free segment ids, highest first so the lowest is taken next: the pages in use stay
    /// at the front of the map (and of the file).
    free: Mutex<Vec<u32>>,
    taken: AtomicUsize,
    file: Option<PathBuf>,
}

// SAFETY: `base` points into `_map`, which lives as long as the region. The region hands
// each segment id to one `Segment` at a time (the free list is under a mutex), and a
// segment's bytes are reached only through that `Segment` (`&self` for reads, `&mut self`
// for writes), so no two threads ever alias the same bytes mutably.
unsafe impl Send for Region {}
// SAFETY: see `Send`; shared access only pops and pushes the free list under its mutex.
unsafe impl Sync for Region {}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("segments", &self.count)
            .field("segment_size", &self.seg_size)
            .field("taken", &self.taken())
            .field("file", &self.file)
            .finish()
    }
}

fn human(n: u64) -> String {
    crate::config::Size(n).to_string()
}

/// Physical memory this process may use: RAM, lowered by a cgroup (container) limit.
fn memory_limit() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let ram = kb * 1024;
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    Some(cgroup.map_or(ram, |c| c.min(ram)))
}

impl Region {
    /// Maps `bytes` of off-heap memory in segments of `seg_size`: anonymous when `file` is
    /// `None`, else backed by that file (created or truncated, and allocated on disk in full
    /// so a full disk is found now rather than as a SIGBUS later). Refused when RAM (or the
    /// disk) cannot hold it.
    pub fn new(bytes: u64, seg_size: usize, file: Option<&Path>) -> Result<Region, RegionError> {
        let count = u32::try_from(bytes / seg_size as u64).unwrap_or(u32::MAX);
        let len = count as usize * seg_size;
        let io = |what, path: &str| {
            let path = path.to_string();
            move |source| RegionError::Io { what, path, source }
        };
        let map = match file {
            None => {
                if let Some(mem) = memory_limit()
                    && bytes > mem
                {
                    return Err(RegionError::TooLarge {
                        want: human(bytes),
                        what: "memory".into(),
                        have: human(mem),
                    });
                }
                MmapOptions::new()
                    .len(len)
                    .map_anon()
                    .map_err(io("mapping", "(anonymous)"))?
            }
            Some(path) => {
                let shown = path.display().to_string();
                let f = Self::backing_file(path, len as u64)?;
                // SAFETY: the file is this server's own, in its data directory, created or
                // truncated just now; nothing else is meant to write it while we run.
                unsafe { MmapOptions::new().len(len).map_mut(&f) }.map_err(io("mapping", &shown))?
            }
        };
        let mut map = map;
        let base = NonNull::new(map.as_mut_ptr()).ok_or_else(|| RegionError::Io {
            what: "mapping",
            path: "(null)".into(),
            source: std::io::Error::other("null mapping"),
        })?;
        Ok(Region {
            _map: map,
            base,
            seg_size,
            count,
            free: Mutex::new((0..count).rev().collect()),
            taken: AtomicUsize::new(0),
            file: file.map(Path::to_path_buf),
        })
    }

    /// Creates the backing file at `len` bytes, checking the disk has room first.
    fn backing_file(path: &Path, len: u64) -> Result<File, RegionError> {
        let shown = path.display().to_string();
        let io = |what| {
            let path = shown.clone();
            move |source| RegionError::Io { what, path, source }
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io("creating the directory of"))?;
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io("opening"))?;
        let st = rustix::fs::fstatvfs(&f).map_err(|e| io("checking free space for")(e.into()))?;
        let avail = st.f_bavail.saturating_mul(st.f_frsize);
        if len > avail {
            drop(f);
            let _ = std::fs::remove_file(path);
            return Err(RegionError::TooLarge {
                want: human(len),
                what: format!("free disk space under {}", dir.display()),
                have: human(avail),
            });
        }
        f.set_len(len).map_err(io("sizing"))?;
        // Reserve the blocks now. File systems without fallocate keep a sparse file.
        if let Err(e) = rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, len)
            && e != rustix::io::Errno::OPNOTSUPP
        {
            return Err(io("allocating")(e.into()));
        }
        Ok(f)
    }

    /// Bytes per segment.
    pub fn segment_size(&self) -> usize {
        self.seg_size
    }

    /// Number of segments.
    pub fn segments(&self) -> usize {
        self.count as usize
    }

    /// Segments held by tables.
    pub fn taken(&self) -> usize {
        self.taken.load(Ordering::Relaxed)
    }

    /// Bytes of the whole map.
    pub fn size(&self) -> u64 {
        self.count as u64 * self.seg_size as u64
    }

    /// The backing file, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Takes a free segment, if any.
    pub fn take(self: &Arc<Region>) -> Option<Segment> {
        let id = self.free.lock().pop()?;
        self.taken.fetch_add(1, Ordering::Relaxed);
        Some(Segment {
            region: self.clone(),
            id,
        })
    }
}

/// One segment, owned by one table. Dropping it returns it to the region.
pub struct Segment {
    region: Arc<Region>,
    id: u32,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Segment({})", self.id)
    }
}

impl Segment {
    /// The segment's bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        let size = self.region.seg_size;
        // SAFETY: `id < count`, so the range lies inside the mapping, which outlives `self`
        // (it holds the region). Only this `Segment` reaches these bytes (see `Region`).
        unsafe {
            std::slice::from_raw_parts(self.region.base.as_ptr().add(self.id as usize * size), size)
        }
    }

    /// The segment's bytes, for writing.
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let size = self.region.seg_size;
        // SAFETY: as in `bytes`; `&mut self` makes this the only live view of the range.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.region.base.as_ptr().add(self.id as usize * size),
                size,
            )
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.region.free.lock().push(self.id);
        self.region.taken.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_disjoint_and_return_on_drop() {
        let r = Arc::new(Region::new(4 * MIN_SEGMENT as u64, MIN_SEGMENT, None).expect("map"));
        assert_eq!(r.segments(), 4);
        let mut a = r.take().expect("a");
        let mut b = r.take().expect("b");
        a.bytes_mut().fill(1);
        b.bytes_mut().fill(2);
        assert!(a.bytes().iter().all(|&x| x == 1));
        assert!(b.bytes().iter().all(|&x| x == 2));
        let c = r.take().expect("c");
        let d = r.take().expect("d");
        assert!(r.take().is_none(), "only four");
        assert_eq!(r.taken(), 4);
        drop((c, d));
        assert_eq!(r.taken(), 2);
        assert!(r.take().is_some());
    }

    #[test]
    fn file_backed_region_and_size_checks() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sub/offheap.seg");
        let r =
            Arc::new(Region::new(8 * MIN_SEGMENT as u64, MIN_SEGMENT, Some(&path)).expect("map"));
        let mut s = r.take().expect("segment");
        s.bytes_mut()[..5].copy_from_slice(b"hello");
        assert_eq!(&s.bytes()[..5], b"hello");
        assert_eq!(
            std::fs::metadata(&path).expect("file").len(),
            8 * MIN_SEGMENT as u64
        );
        let huge = Region::new(1 << 60, MAX_SEGMENT, Some(&dir.path().join("huge")));
        assert!(
            matches!(&huge, Err(RegionError::TooLarge { what, .. }) if what.contains("disk")),
            "{huge:?}"
        );
        let ram = Region::new(1 << 60, MAX_SEGMENT, None);
        assert!(
            matches!(&ram, Err(RegionError::TooLarge { what, .. }) if what == "memory"),
            "{ram:?}"
        );
    }

    #[test]
    fn segment_size_scales_with_the_tier() {
        assert_eq!(segment_size_for(0, 64), MIN_SEGMENT);
        assert_eq!(segment_size_for(4 << 30, 64), MAX_SEGMENT);
        assert_eq!(segment_size_for(64 << 20, 64), 128 << 10);
    }
}
