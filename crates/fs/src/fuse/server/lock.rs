//! Locks: GETLK, SETLK and SETLKW, POSIX (`fcntl`) and, with `FUSE_LK_FLOCK`, BSD `flock`.
//!
//! A lock either locks or fails: no reply says success unless the backend holds the lock.
//!
//! # POSIX locks: one backend handle per lock owner
//!
//! The guest kernel sends POSIX locks with a `lock_owner` (its `files_struct`, i.e. the
//! process, or the open file for OFD locks), and expects per-owner semantics: locks of one
//! owner never conflict with each other whichever descriptor they came through, locks of two
//! owners do, and closing any descriptor of a file ends that owner's locks on it. The backend's
//! locks belong to handles (open file descriptions). So the server keeps, per `(node, owner)`,
//! a dedicated backend handle that only it uses (the guest cannot name it: see `files.rs`), and
//! takes and tests that owner's locks there. It is opened `O_RDWR` so that one handle can hold
//! both read and write locks; if the backend refuses that (a read-only share, a directory, a
//! file the server may not write), with the access mode of the guest's handle. Whether the
//! guest's handle permits the lock type is checked first (`EBADF`, as `fcntl` answers). GETLK
//! asks through the owner's handle, so the owner's own locks are not reported as conflicts;
//! an owner without a handle holds nothing there, so GETLK asks through the guest's handle.
//!
//! An owner's handle, and with it every lock it holds, is released:
//! - on FLUSH with that `lock_owner` on that node: the kernel sends FLUSH at every `close(2)`,
//!   which is exactly when POSIX ends the process's locks on the file (the kernel keeps no
//!   POSIX lock state of its own under `POSIX_LOCKS`, so it relies on this);
//! - on RELEASE with `FUSE_RELEASE_FLOCK_UNLOCK` or `FUSE_RELEASE_FLUSH`, for the
//!   `lock_owner` it names (the open file itself: the owner of its OFD locks);
//! - on RELEASE of the last guest handle through which the owner ever locked on that node: once
//!   those are all closed, FLUSH has ended any POSIX owner's locks already, so this only ends
//!   OFD locks (whose RELEASE names no owner unless the file was also `flock`ed) and locks
//!   granted after their owner's FLUSH (a SETLKW racing with `close`);
//! - at DESTROY.
//!
//! The whole range is unlocked before the handle is released, so the locks end at once even
//! while some backend call still holds the handle. At most [`MAX_OWNERS`] owner handles exist at
//! once (each is a host descriptor); beyond that, SETLK answers `ENOLCK`.
//!
//! # flock
//!
//! `flock` locks belong to the open file description, which is the guest's handle itself: they
//! are taken on the request's `fh` and end when it is released. `LOCK_NB` arrives as SETLK,
//! waiting as SETLKW.
//!
//! # Waiting (SETLKW)
//!
//! Like the 9P server's Tlock, a waiting lock retries the non-blocking backend call with a
//! growing pause (1 ms up to 50 ms), so that FUSE_INTERRUPT for its `unique` can end the wait:
//! it then answers `EINTR` holding no lock. The price: a waiter notices a release up to 50 ms
//! late, waiters are not served in arrival order, and there is no deadlock detection (`EDEADLK`)
//! between owners. Each attempt holds the owner table's mutex for one non-blocking backend
//! call, never across a pause.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::files::{OpenFile, OpenFiles};
use super::{body, relock, Reply, Server};
use crate::backend::{Backend, Error, FlockOp, HandleId, Lock, LockType, NodeId, Result};
use crate::fuse::abi::{FileLock, InHeader, LkIn, LkOut};
use crate::fuse::consts::flags::FUSE_LK_FLOCK;
use crate::linux;

/// The first pause between attempts of a waiting lock.
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause between attempts of a waiting lock.
const MAX_PAUSE: Duration = Duration::from_millis(50);
/// The most POSIX lock-owner handles held at once.
pub const MAX_OWNERS: usize = 4096;
/// The last byte a lock can cover (`OFFSET_MAX`); `end` at or past it means "to the end".
const OFFSET_MAX: u64 = i64::MAX as u64;

/// One lock owner's handle on one node.
#[derive(Debug)]
struct Owner {
    /// The backend handle its locks are taken on.
    handle: HandleId,
    /// The guest handles it has locked through (see the module doc on release).
    fhs: Vec<HandleId>,
}

#[derive(Debug, Default)]
struct Table {
    /// node → lock owner → its handle.
    nodes: HashMap<NodeId, HashMap<u64, Owner>>,
    /// How many owners there are in all.
    count: usize,
}

impl Table {
    fn remove(&mut self, node: NodeId, owner: u64) -> Option<Owner> {
        let owners = self.nodes.get_mut(&node)?;
        let removed = owners.remove(&owner)?;
        if owners.is_empty() {
            self.nodes.remove(&node);
        }
        self.count -= 1;
        Some(removed)
    }
}

/// The POSIX lock owners' handles (see the module doc).
#[derive(Debug, Default)]
pub(super) struct OwnerLocks {
    table: Mutex<Table>,
}

/// Unlocks everything an owner holds and releases its handle.
fn end_owner<B: Backend>(backend: &B, node: NodeId, owner: u64, o: Owner) {
    let all = Lock {
        kind: LockType::Unlock,
        start: 0,
        len: 0,
        pid: 0,
    };
    if let Err(e) = backend.setlk(o.handle, &all, false) {
        tracing::debug!(
            node,
            owner,
            errno = e.errno(),
            "unlock of an owner's locks failed"
        );
    }
    if let Err(e) = backend.release(o.handle) {
        tracing::debug!(
            node,
            owner,
            errno = e.errno(),
            "release of an owner handle failed"
        );
    }
    tracing::trace!(node, owner, "lock owner ended");
}

/// Opens an owner handle on the node of `file` (see the module doc).
fn open_owner<B: Backend>(backend: &B, file: &OpenFile) -> Result<HandleId> {
    match backend.open(file.node, linux::O_RDWR) {
        Ok(handle) => Ok(handle),
        Err(e) if file.flags & linux::O_ACCMODE != linux::O_RDWR => {
            tracing::debug!(
                node = file.node,
                errno = e.errno(),
                "owner handle not O_RDWR"
            );
            backend.open(file.node, file.flags & linux::O_ACCMODE)
        }
        Err(e) => Err(e),
    }
}

impl OwnerLocks {
    /// One non-blocking `setlk` of `lock` for `owner`, through guest handle `fh` of `file`.
    ///
    /// `fh` is looked up in `files` again under the table's mutex: a RELEASE removes it from
    /// `files` before it takes that mutex to end the owners locked through it, so a lock is
    /// either refused (`EBADF`) or recorded where that RELEASE will find it.
    fn try_setlk<B: Backend>(
        &self,
        backend: &B,
        files: &OpenFiles,
        file: &OpenFile,
        fh: HandleId,
        owner: u64,
        lock: &Lock,
    ) -> Result<()> {
        let mut table = relock(&self.table);
        files.get(fh)?;
        let existing = table
            .nodes
            .get(&file.node)
            .is_some_and(|owners| owners.contains_key(&owner));
        if !existing {
            if lock.kind == LockType::Unlock {
                // Nothing held, nothing to unlock.
                return Ok(());
            }
            if table.count >= MAX_OWNERS {
                return Err(Error::refused(linux::ENOLCK, "too many lock owners"));
            }
            let handle = open_owner(backend, file)?;
            table.nodes.entry(file.node).or_default().insert(
                owner,
                Owner {
                    handle,
                    fhs: Vec::new(),
                },
            );
            table.count += 1;
        }
        let o = table
            .nodes
            .get_mut(&file.node)
            .and_then(|owners| owners.get_mut(&owner))
            .ok_or(Error::refused(linux::EIO, "lock owner vanished"))?;
        if !o.fhs.contains(&fh) {
            o.fhs.push(fh);
        }
        backend.setlk(o.handle, lock, false)
    }

    /// `getlk` for `owner` on `node`: through its handle if it has one, else through `fh`.
    fn getlk<B: Backend>(
        &self,
        backend: &B,
        node: NodeId,
        owner: u64,
        fh: HandleId,
        lock: &Lock,
    ) -> Result<Lock> {
        let table = relock(&self.table);
        let handle = table
            .nodes
            .get(&node)
            .and_then(|owners| owners.get(&owner))
            .map_or(fh, |o| o.handle);
        backend.getlk(handle, lock)
    }

    /// Ends `owner`'s locks on `node` (FLUSH, RELEASE with an owner).
    pub(super) fn drop_owner<B: Backend>(&self, backend: &B, node: NodeId, owner: u64) {
        let removed = relock(&self.table).remove(node, owner);
        if let Some(o) = removed {
            end_owner(backend, node, owner, o);
        }
    }

    /// Guest handle `fh` on `node` was released: ends the owners that locked only through it.
    pub(super) fn release_fh<B: Backend>(&self, backend: &B, node: NodeId, fh: HandleId) {
        let mut ended = Vec::new();
        {
            let mut table = relock(&self.table);
            let Some(owners) = table.nodes.get_mut(&node) else {
                return;
            };
            let mut done = Vec::new();
            for (owner, o) in owners.iter_mut() {
                o.fhs.retain(|&f| f != fh);
                if o.fhs.is_empty() {
                    done.push(*owner);
                }
            }
            for owner in done {
                if let Some(o) = table.remove(node, owner) {
                    ended.push((owner, o));
                }
            }
        }
        for (owner, o) in ended {
            end_owner(backend, node, owner, o);
        }
    }

    /// Ends every owner (DESTROY).
    pub(super) fn clear<B: Backend>(&self, backend: &B) {
        let nodes = std::mem::take(&mut *relock(&self.table)).nodes;
        for (node, owners) in nodes {
            for (owner, o) in owners {
                end_owner(backend, node, owner, o);
            }
        }
    }
}

/// Whether a backend error means "a conflicting lock is held".
fn is_conflict(e: &Error) -> bool {
    matches!(e.errno(), linux::EAGAIN | linux::EACCES)
}

/// The lock type of a `fuse_file_lock`.
fn kind_of(typ: u32) -> Result<LockType> {
    match i32::try_from(typ) {
        Ok(linux::F_RDLCK) => Ok(LockType::Read),
        Ok(linux::F_WRLCK) => Ok(LockType::Write),
        Ok(linux::F_UNLCK) => Ok(LockType::Unlock),
        _ => Err(Error::refused(linux::EINVAL, "unknown lock type")),
    }
}

/// A `fuse_file_lock` (inclusive `start..=end`) as a backend lock (`start`, `len`).
fn backend_lock(lk: &FileLock) -> Result<Lock> {
    let kind = kind_of(lk.typ)?;
    if lk.start > OFFSET_MAX || lk.end < lk.start {
        return Err(Error::refused(linux::EINVAL, "bad lock range"));
    }
    let len = if lk.end >= OFFSET_MAX {
        0
    } else {
        lk.end - lk.start + 1
    };
    Ok(Lock {
        kind,
        start: lk.start,
        len,
        pid: lk.pid,
    })
}

/// A backend lock report as a `fuse_file_lock`; no conflict reports the asked range unlocked.
fn fuse_lock(found: &Lock, asked: &FileLock) -> FileLock {
    if found.kind == LockType::Unlock {
        return FileLock {
            typ: linux::F_UNLCK as u32,
            pid: 0,
            ..*asked
        };
    }
    let start = found.start.min(OFFSET_MAX);
    let end = if found.len == 0 {
        OFFSET_MAX
    } else {
        start.saturating_add(found.len - 1).min(OFFSET_MAX)
    };
    let typ = if found.kind == LockType::Write {
        linux::F_WRLCK
    } else {
        linux::F_RDLCK
    };
    FileLock {
        start,
        end,
        typ: typ as u32,
        pid: found.pid,
    }
}

impl<B: Backend> Server<B> {
    /// GETLK: the first lock conflicting with the one described, or F_UNLCK.
    pub(super) fn getlk(&self, arg: &LkIn) -> Reply {
        let file = self.files.get(arg.fh)?;
        if arg.lk_flags & FUSE_LK_FLOCK != 0 {
            return Err(Error::refused(linux::EINVAL, "GETLK of a flock lock"));
        }
        let lock = backend_lock(&arg.lk)?;
        if lock.kind == LockType::Unlock {
            return Err(Error::refused(linux::EINVAL, "GETLK of F_UNLCK"));
        }
        let found = self
            .locks
            .getlk(&self.backend, file.node, arg.owner, arg.fh, &lock)?;
        Ok(body(&LkOut {
            lk: fuse_lock(&found, &arg.lk),
        }))
    }

    /// SETLK (`wait` false) and SETLKW (`wait` true); see the module doc.
    pub(super) fn setlk(&self, h: &InHeader, arg: &LkIn, wait: bool) -> Reply {
        let file = self.files.get(arg.fh)?;
        if arg.lk_flags & FUSE_LK_FLOCK != 0 {
            return self.flock(h, arg, wait);
        }
        let lock = backend_lock(&arg.lk)?;
        let permitted = match lock.kind {
            LockType::Read => file.readable(),
            LockType::Write => file.writable(),
            LockType::Unlock => true,
        };
        if !permitted {
            return Err(Error::refused(
                linux::EBADF,
                "handle not open for this lock type",
            ));
        }
        let attempt = || {
            self.locks
                .try_setlk(&self.backend, &self.files, &file, arg.fh, arg.owner, &lock)
        };
        if wait && lock.kind != LockType::Unlock {
            self.wait_for(h.unique, attempt)?;
        } else {
            attempt()?;
        }
        tracing::debug!(
            node = file.node,
            owner = arg.owner,
            kind = ?lock.kind,
            start = lock.start,
            len = lock.len,
            wait,
            "posix lock"
        );
        Ok(Vec::new())
    }

    /// A `flock` on the request's handle.
    fn flock(&self, h: &InHeader, arg: &LkIn, wait: bool) -> Reply {
        let op = match kind_of(arg.lk.typ)? {
            LockType::Read => FlockOp::Shared,
            LockType::Write => FlockOp::Exclusive,
            LockType::Unlock => FlockOp::Unlock,
        };
        let attempt = || self.backend.flock(arg.fh, op, false);
        if wait && op != FlockOp::Unlock {
            self.wait_for(h.unique, attempt)?;
        } else {
            attempt()?;
        }
        tracing::debug!(fh = arg.fh, ?op, wait, "flock");
        Ok(Vec::new())
    }

    /// Repeats a non-blocking lock `attempt` until it succeeds, fails otherwise than by a
    /// conflict, or request `unique` is interrupted (`EINTR`, holding no lock).
    fn wait_for(&self, unique: u64, mut attempt: impl FnMut() -> Result<()>) -> Result<()> {
        let waiting = self.waits.begin(unique);
        let mut pause = FIRST_PAUSE;
        loop {
            match attempt() {
                Ok(()) => return Ok(()),
                Err(e) if is_conflict(&e) => {
                    if waiting.cancelled() {
                        tracing::debug!(unique, "lock wait interrupted");
                        return Err(Error::refused(linux::EINTR, "lock wait interrupted"));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                Err(e) => return Err(e),
            }
        }
    }
}
