//! [`ServerLocks`]: a backend's byte-range and `flock` locks kept in the server's own
//! [`LockTable`]s instead of the host's, for hosts whose locks cannot carry Linux semantics
//! (NTFS: `LockFileEx` locks are mandatory, per handle, and neither split nor merge) and, on
//! Linux, for shares whose file system has no working locks (`lcow-fs mount --locks server`).
//!
//! The semantics are those of the host locks they replace, which the protocol servers build
//! their per-owner POSIX semantics on (see `fuse/server/lock.rs`): locks belong to backend
//! handles (open file descriptions, so OFD semantics), a lock needs a handle open for reading
//! (read lock) or writing (write lock) as `fcntl` demands (`EBADF`), `getlk` reports the first
//! conflicting lock of another handle with the guest pid that took it, and `flock` locks are a
//! second, independent table of whole-file locks. Releasing a handle ends all of its locks.
//!
//! Locks are keyed by a [`FileKey`] the backend gives (the passthrough backend's
//! `(st_dev, st_ino)`), so every name and node id of one file share them. They are only seen by
//! this server: another process on the host does not see them, and this server does not see
//! the host's (a backend that can, mirrors them itself: the NTFS backend takes `LockFileEx`
//! locks where Windows semantics allow).

use crate::backend::{Error, FlockOp, HandleId, Lock, LockType, Result};
use crate::linux;
use crate::locks::{Held, Kind, LockError, LockTable, Range, WaitToken};

/// The identity of a file whose locks are shared by every handle open on it.
pub type FileKey = (u64, u64);

/// What a handle was opened for, as `fcntl` checks it against a lock's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `O_RDONLY`.
    Read,
    /// `O_WRONLY`.
    Write,
    /// `O_RDWR`.
    ReadWrite,
}

impl Access {
    /// The access mode of Linux `open(2)` flags.
    pub fn of_flags(flags: i32) -> Access {
        match flags & linux::O_ACCMODE {
            linux::O_WRONLY => Access::Write,
            linux::O_RDWR => Access::ReadWrite,
            _ => Access::Read,
        }
    }

    fn permits(self, kind: Kind) -> bool {
        match kind {
            Kind::Read => self != Access::Write,
            Kind::Write => self != Access::Read,
        }
    }
}

/// Where a backend keeps its locks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LockKeeping {
    /// The host's own locks (the passthrough backend's OFD locks and `flock`).
    #[default]
    Host,
    /// The server's [`ServerLocks`].
    Server,
}

/// The bytes a lock covers, as `fcntl` accepts them: start and end within `off_t`.
pub fn lock_range(lock: &Lock) -> Result<Range> {
    let bad = || Error::refused(linux::EINVAL, "lock range beyond off_t");
    let range = Range::from_start_len(lock.start, lock.len).ok_or_else(bad)?;
    let max = i64::MAX as u64;
    if range.start > max || (range.end != u64::MAX && range.end > max) {
        return Err(bad());
    }
    Ok(range)
}

fn kind_of(kind: LockType) -> Option<Kind> {
    match kind {
        LockType::Read => Some(Kind::Read),
        LockType::Write => Some(Kind::Write),
        LockType::Unlock => None,
    }
}

fn lock_of(held: &Held) -> Lock {
    Lock {
        kind: match held.kind {
            Kind::Read => LockType::Read,
            Kind::Write => LockType::Write,
        },
        start: held.range.start,
        len: held.range.len(),
        pid: held.pid,
    }
}

fn error_of(e: LockError, what: &'static str) -> Error {
    Error::refused(e.errno(), what)
}

/// The whole file, as `flock` locks it.
const WHOLE: Range = Range {
    start: 0,
    end: u64::MAX,
};

/// The byte-range and `flock` locks of one share (see the module doc).
#[derive(Debug, Default)]
pub struct ServerLocks {
    ranges: LockTable<FileKey>,
    flocks: LockTable<FileKey>,
}

impl ServerLocks {
    /// No locks held.
    pub fn new() -> Self {
        Self::default()
    }

    /// `F_OFD_GETLK` through `handle` on `file`: the first lock of another handle that would
    /// conflict with `lock`, or `lock` itself as [`LockType::Unlock`].
    pub fn getlk(&self, file: FileKey, handle: HandleId, lock: &Lock) -> Result<Lock> {
        let Some(kind) = kind_of(lock.kind) else {
            return Err(Error::refused(linux::EINVAL, "getlk of F_UNLCK"));
        };
        let range = lock_range(lock)?;
        Ok(match self.ranges.test(file, handle, kind, range) {
            Some(held) => lock_of(&held),
            None => Lock {
                kind: LockType::Unlock,
                ..*lock
            },
        })
    }

    /// `F_OFD_SETLK` (or, with `wait`, `F_OFD_SETLKW`, which waits until no other handle
    /// conflicts: nothing interrupts it, so the protocol servers, which must answer
    /// interrupts, only ask without `wait` and retry) through `handle`, opened for `access`.
    pub fn setlk(
        &self,
        file: FileKey,
        handle: HandleId,
        access: Access,
        lock: &Lock,
        wait: bool,
    ) -> Result<()> {
        let range = lock_range(lock)?;
        let Some(kind) = kind_of(lock.kind) else {
            self.ranges.unlock(file, handle, range);
            return Ok(());
        };
        if !access.permits(kind) {
            return Err(Error::refused(
                linux::EBADF,
                "lock type needs a handle open for it",
            ));
        }
        let result = if wait {
            self.ranges
                .set_wait(file, handle, kind, range, lock.pid, &WaitToken::new())
        } else {
            self.ranges.set(file, handle, kind, range, lock.pid)
        };
        result.map_err(|e| error_of(e, "lock held by another handle"))?;
        tracing::debug!(
            handle,
            ?kind,
            start = range.start,
            len = lock.len,
            wait,
            "server setlk"
        );
        Ok(())
    }

    /// `flock(2)` through `handle` (a conflict without `wait`: `EWOULDBLOCK`).
    pub fn flock(&self, file: FileKey, handle: HandleId, op: FlockOp, wait: bool) -> Result<()> {
        let kind = match op {
            FlockOp::Shared => Kind::Read,
            FlockOp::Exclusive => Kind::Write,
            FlockOp::Unlock => {
                self.flocks.release(file, handle);
                return Ok(());
            }
        };
        let result = if wait {
            self.flocks
                .set_wait(file, handle, kind, WHOLE, 0, &WaitToken::new())
        } else {
            self.flocks.set(file, handle, kind, WHOLE, 0)
        };
        result.map_err(|e| error_of(e, "flock held by another handle"))
    }

    /// Ends every lock of `handle` on `file` (the handle is released).
    pub fn release(&self, file: FileKey, handle: HandleId) {
        self.ranges.release(file, handle);
        self.flocks.release(file, handle);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const F: FileKey = (1, 2);

    fn lock(kind: LockType, start: u64, len: u64, pid: u32) -> Lock {
        Lock {
            kind,
            start,
            len,
            pid,
        }
    }

    fn errno(r: Result<impl std::fmt::Debug>) -> i32 {
        r.unwrap_err().errno()
    }

    #[test]
    fn test_two_handles_conflict_and_getlk_names_the_holder() {
        let l = ServerLocks::new();
        l.setlk(
            F,
            1,
            Access::ReadWrite,
            &lock(LockType::Write, 100, 50, 42),
            false,
        )
        .unwrap();
        let r = l.setlk(
            F,
            2,
            Access::ReadWrite,
            &lock(LockType::Read, 120, 1, 7),
            false,
        );
        assert_eq!(errno(r), linux::EAGAIN);
        let got = l.getlk(F, 2, &lock(LockType::Read, 0, 0, 7)).unwrap();
        assert_eq!(got, lock(LockType::Write, 100, 50, 42));
        // The holder's own locks are no conflict to it, and other files are apart.
        let own = l.getlk(F, 1, &lock(LockType::Write, 0, 0, 42)).unwrap();
        assert_eq!(own.kind, LockType::Unlock);
        l.setlk(
            (1, 3),
            2,
            Access::ReadWrite,
            &lock(LockType::Write, 0, 0, 7),
            false,
        )
        .unwrap();
    }

    #[test]
    fn test_access_mode_is_checked_like_fcntl() {
        let l = ServerLocks::new();
        let r = l.setlk(F, 1, Access::Read, &lock(LockType::Write, 0, 1, 1), false);
        assert_eq!(errno(r), linux::EBADF);
        let r = l.setlk(F, 1, Access::Write, &lock(LockType::Read, 0, 1, 1), false);
        assert_eq!(errno(r), linux::EBADF);
        l.setlk(F, 1, Access::Read, &lock(LockType::Read, 0, 1, 1), false)
            .unwrap();
        l.setlk(F, 1, Access::Read, &lock(LockType::Unlock, 0, 0, 1), false)
            .unwrap();
        assert_eq!(Access::of_flags(linux::O_WRONLY), Access::Write);
        assert_eq!(
            Access::of_flags(linux::O_RDWR | linux::O_APPEND),
            Access::ReadWrite
        );
        assert_eq!(Access::of_flags(0), Access::Read);
    }

    #[test]
    fn test_ranges_beyond_off_t_and_getlk_of_unlock_are_einval() {
        let l = ServerLocks::new();
        let r = l.setlk(
            F,
            1,
            Access::ReadWrite,
            &lock(LockType::Write, 1 << 63, 1, 1),
            false,
        );
        assert_eq!(errno(r), linux::EINVAL);
        let r = l.setlk(
            F,
            1,
            Access::ReadWrite,
            &lock(LockType::Write, i64::MAX as u64, 2, 1),
            false,
        );
        assert_eq!(errno(r), linux::EINVAL);
        l.setlk(
            F,
            1,
            Access::ReadWrite,
            &lock(LockType::Write, i64::MAX as u64, 0, 1),
            false,
        )
        .unwrap();
        assert_eq!(
            errno(l.getlk(F, 1, &lock(LockType::Unlock, 0, 0, 1))),
            linux::EINVAL
        );
    }

    #[test]
    fn test_flock_is_apart_from_byte_ranges_and_release_ends_both() {
        let l = ServerLocks::new();
        l.flock(F, 1, FlockOp::Exclusive, false).unwrap();
        assert_eq!(errno(l.flock(F, 2, FlockOp::Shared, false)), linux::EAGAIN);
        // A byte-range lock of the other handle is unaffected by the flock.
        l.setlk(
            F,
            2,
            Access::ReadWrite,
            &lock(LockType::Write, 0, 0, 2),
            false,
        )
        .unwrap();
        // Converting one's own flock never conflicts with itself.
        l.flock(F, 1, FlockOp::Shared, false).unwrap();
        l.flock(F, 2, FlockOp::Shared, false).unwrap();
        l.release(F, 2);
        l.setlk(
            F,
            1,
            Access::ReadWrite,
            &lock(LockType::Write, 0, 0, 1),
            false,
        )
        .unwrap();
        l.flock(F, 1, FlockOp::Exclusive, false).unwrap();
        l.flock(F, 1, FlockOp::Unlock, false).unwrap();
        l.flock(F, 3, FlockOp::Exclusive, false).unwrap();
    }

    #[test]
    fn test_setlk_wait_returns_once_the_holder_releases() {
        let l = std::sync::Arc::new(ServerLocks::new());
        l.setlk(
            F,
            1,
            Access::ReadWrite,
            &lock(LockType::Write, 0, 10, 1),
            false,
        )
        .unwrap();
        let waiter = {
            let l = l.clone();
            std::thread::spawn(move || {
                l.setlk(
                    F,
                    2,
                    Access::ReadWrite,
                    &lock(LockType::Write, 5, 1, 2),
                    true,
                )
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "waits while handle 1 holds");
        l.release(F, 1);
        waiter.join().unwrap().unwrap();
        let got = l.getlk(F, 1, &lock(LockType::Read, 0, 0, 1)).unwrap();
        assert_eq!(got, lock(LockType::Write, 5, 1, 2));
    }
}
