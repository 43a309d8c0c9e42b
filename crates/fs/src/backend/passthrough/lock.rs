//! Locks: POSIX byte-range locks as real open-file-description locks on the host
//! (`F_OFD_SETLK`, `F_OFD_SETLKW`, `F_OFD_GETLK`) on each handle's own descriptor, and `flock`.
//!
//! A lock is granted exactly when the host grants it: there is no path that answers success
//! without the host holding the lock. Locks belong to handles (one host open file description
//! each), so two handles conflict even when the same guest process holds both; a guest kernel
//! keeps one handle per open file, which is the unit OFD locks are defined over.
//!
//! With [`LockKeeping::Server`] the same calls go to the server's own lock table
//! ([`crate::backend::server_locks`]) instead, keyed by the inode: the host then neither sees
//! nor enforces them.

use std::os::fd::AsRawFd;

use super::handles::{Handle, LockRecord};
use super::Passthrough;
use crate::backend::server_locks::{lock_range, Access, LockKeeping};
use crate::backend::{Error, FlockOp, HandleId, Lock, LockType, Result};

fn host_type(kind: LockType) -> libc::c_short {
    (match kind {
        LockType::Read => libc::F_RDLCK,
        LockType::Write => libc::F_WRLCK,
        LockType::Unlock => libc::F_UNLCK,
    }) as libc::c_short
}

/// `start..=end` of a lock (`len == 0` runs to the end of any file).
fn range(lock: &Lock) -> Result<(u64, u64)> {
    let r = lock_range(lock)?;
    Ok((r.start, r.end))
}

/// The access mode a handle's descriptor was opened with.
fn access_of(h: &Handle) -> Result<Access> {
    // SAFETY: F_GETFL on our own descriptor reads no memory of ours.
    let flags = unsafe { libc::fcntl(h.fd().as_raw_fd(), libc::F_GETFL) };
    super::sys::cvt(flags, "fcntl(F_GETFL)")?;
    Ok(Access::of_flags(flags))
}

fn host_flock(lock: &Lock) -> Result<libc::flock> {
    range(lock)?;
    // SAFETY: `flock` is plain data; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = host_type(lock.kind);
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = lock.start as libc::off_t; // checked by `range`
    fl.l_len = lock.len as libc::off_t; // checked by `range`
    fl.l_pid = 0; // must be 0 for OFD locks
    Ok(fl)
}

impl Passthrough {
    pub(super) fn do_setlk(&self, id: HandleId, lock: &Lock, wait: bool) -> Result<()> {
        let h = self.handle(id)?;
        if self.config.locks == LockKeeping::Server {
            return self
                .server_locks
                .setlk(h.key, id, access_of(&h)?, lock, wait);
        }
        let fl = host_flock(lock)?;
        let cmd = if wait {
            libc::F_OFD_SETLKW
        } else {
            libc::F_OFD_SETLK
        };
        // SAFETY: `fl` is a valid flock that the kernel reads; the descriptor is our own.
        let ret = unsafe { libc::fcntl(h.fd().as_raw_fd(), cmd, &fl as *const libc::flock) };
        if ret < 0 {
            let err = std::io::Error::last_os_error();
            // POSIX allows EACCES or EAGAIN for a conflict; send one.
            if err.raw_os_error() == Some(libc::EACCES) {
                return Err(Error::refused(libc::EAGAIN, "lock held by another handle"));
            }
            return Err(Error::Host {
                op: "fcntl(F_OFD_SETLK)",
                source: err,
            });
        }
        let (start, end) = range(lock)?;
        h.record_lock(LockRecord {
            start,
            end,
            kind: lock.kind,
            pid: lock.pid,
        });
        tracing::debug!(handle = id, kind = ?lock.kind, start, len = lock.len, wait, "setlk");
        Ok(())
    }

    pub(super) fn do_getlk(&self, id: HandleId, lock: &Lock) -> Result<Lock> {
        if lock.kind == LockType::Unlock {
            return Err(Error::refused(libc::EINVAL, "getlk of F_UNLCK"));
        }
        let h = self.handle(id)?;
        if self.config.locks == LockKeeping::Server {
            return self.server_locks.getlk(h.key, id, lock);
        }
        let mut fl = host_flock(lock)?;
        // SAFETY: `fl` is a valid, writable flock; the descriptor is our own.
        let ret = unsafe { libc::fcntl(h.fd().as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
        super::sys::cvt(ret, "fcntl(F_OFD_GETLK)")?;
        if fl.l_type == libc::F_UNLCK as libc::c_short {
            return Ok(Lock {
                kind: LockType::Unlock,
                ..*lock
            });
        }
        let kind = if fl.l_type == libc::F_WRLCK as libc::c_short {
            LockType::Write
        } else {
            LockType::Read
        };
        let start = u64::try_from(fl.l_start).unwrap_or(0);
        let len = u64::try_from(fl.l_len).unwrap_or(0);
        let end = if len == 0 {
            u64::MAX
        } else {
            start.saturating_add(len - 1)
        };
        // The host reports an OFD holder as pid -1: find which of our handles holds the range.
        let pid = if fl.l_pid == -1 {
            self.handles
                .same_file(h.key, id)
                .iter()
                .find_map(|other| other.holder(start, end, lock.kind))
                .unwrap_or(0)
        } else {
            // A classic POSIX lock taken by a host process, not by the guest.
            0
        };
        Ok(Lock {
            kind,
            start,
            len,
            pid,
        })
    }

    pub(super) fn do_flock(&self, id: HandleId, op: FlockOp, wait: bool) -> Result<()> {
        let h = self.handle(id)?;
        if self.config.locks == LockKeeping::Server {
            return self.server_locks.flock(h.key, id, op, wait);
        }
        let mut how = match op {
            FlockOp::Shared => libc::LOCK_SH,
            FlockOp::Exclusive => libc::LOCK_EX,
            FlockOp::Unlock => libc::LOCK_UN,
        };
        if !wait {
            how |= libc::LOCK_NB;
        }
        // SAFETY: flock on our own descriptor; no memory is touched.
        super::sys::cvt(unsafe { libc::flock(h.fd().as_raw_fd(), how) }, "flock")?;
        tracing::debug!(handle = id, ?op, wait, "flock");
        Ok(())
    }
}
