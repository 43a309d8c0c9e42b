//! The handle table: one host open file description per [`HandleId`].
//!
//! Each handle owns its own host descriptor, opened afresh, so it is its own open file
//! description: OFD byte-range locks and `flock` locks taken through it belong to it alone, and
//! go away when it is released. The handle also remembers which guest pid took which range, so
//! `getlk` can name the holder (the host reports OFD holders as pid -1).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

use crate::backend::table::Keyed;
use crate::backend::LockType;

/// A byte-range lock held through a handle: `start..=end`, `end == u64::MAX` meaning "to EOF".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockRecord {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) kind: LockType,
    pub(crate) pid: u32,
}

/// One open file or directory.
#[derive(Debug)]
pub(crate) struct Handle {
    fd: OwnedFd,
    /// The node's `(st_dev, st_ino)`.
    pub(crate) key: (u64, u64),
    /// Serialises the seek + getdents pair of `readdir`.
    pub(crate) dir_lock: Mutex<()>,
    /// The ranges this handle holds, as granted by the host.
    locks: Mutex<Vec<LockRecord>>,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is complete or not done, so poisoning is harmless.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Handle {
    /// A handle over a freshly opened descriptor.
    pub(crate) fn new(fd: OwnedFd, key: (u64, u64)) -> Self {
        Handle {
            fd,
            key,
            dir_lock: Mutex::new(()),
            locks: Mutex::new(Vec::new()),
        }
    }

    /// The host descriptor.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Records a lock change the host has granted (`Unlock` clears the range).
    pub(crate) fn record_lock(&self, rec: LockRecord) {
        apply_lock(&mut relock(&self.locks), rec);
    }

    /// The pid that holds a lock through this handle overlapping `start..=end` and conflicting
    /// with `kind`.
    pub(crate) fn holder(&self, start: u64, end: u64, kind: LockType) -> Option<u32> {
        relock(&self.locks)
            .iter()
            .find(|r| {
                r.start <= end
                    && start <= r.end
                    && (kind == LockType::Write || r.kind == LockType::Write)
            })
            .map(|r| r.pid)
    }
}

/// Applies `rec` to a list of non-overlapping ranges, splitting the ranges it covers.
pub(crate) fn apply_lock(list: &mut Vec<LockRecord>, rec: LockRecord) {
    let mut out = Vec::with_capacity(list.len() + 2);
    for r in list.drain(..) {
        if r.end < rec.start || rec.end < r.start {
            out.push(r);
            continue;
        }
        if r.start < rec.start {
            out.push(LockRecord {
                end: rec.start - 1,
                ..r
            });
        }
        if rec.end < r.end {
            out.push(LockRecord {
                start: rec.end + 1,
                ..r
            });
        }
    }
    if rec.kind != LockType::Unlock {
        out.push(rec);
    }
    *list = out;
}

impl Keyed for Handle {
    fn key(&self) -> (u64, u64) {
        self.key
    }
}

/// All open handles.
pub(crate) type HandleTable = crate::backend::table::HandleTable<Handle>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rec(start: u64, end: u64, kind: LockType) -> LockRecord {
        LockRecord {
            start,
            end,
            kind,
            pid: 7,
        }
    }

    #[test]
    fn test_apply_lock_unlock_middle_splits_range() {
        let mut list = vec![rec(0, 99, LockType::Write)];
        apply_lock(&mut list, rec(10, 19, LockType::Unlock));
        list.sort_by_key(|r| r.start);
        assert_eq!(
            list,
            vec![rec(0, 9, LockType::Write), rec(20, 99, LockType::Write)]
        );
    }

    #[test]
    fn test_apply_lock_downgrade_replaces_overlap() {
        let mut list = vec![rec(0, u64::MAX, LockType::Write)];
        apply_lock(&mut list, rec(0, u64::MAX, LockType::Read));
        assert_eq!(list, vec![rec(0, u64::MAX, LockType::Read)]);
    }
}
