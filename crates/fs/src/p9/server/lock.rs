//! POSIX byte-range locks: Tlock and Tgetlock on [`Backend::setlk`] and [`Backend::getlk`].
//!
//! A lock either locks or fails; nothing answers SUCCESS without the backend holding the lock.
//!
//! # One backend handle per lock owner
//!
//! The Linux client (`v9fs_file_lock_dotl`, `v9fs_file_flock_dotl`) first takes a lock in the
//! guest's own lock table, which settles conflicts between guest processes, then sends Tlock
//! through the fid of the descriptor used, with `proc_id` the locking process (its tgid) and
//! `client_id` the guest's node name; `flock(2)` arrives the same way, as a whole-file lock.
//! When a process closes any descriptor of a file, the guest sends Tlock UNLCK 0..EOF with that
//! `proc_id` through the fid being closed. So the server must give locks POSIX per-process
//! semantics: a lock owner is `(node, client_id, proc_id)`; an owner's locks never conflict
//! with each other whichever fid they came through, two owners' locks do, and any fid of the
//! owner can change or release them.
//!
//! The backend's locks belong to handles (open file descriptions), so the server keeps, per
//! owner, a dedicated backend handle that no fid uses, and takes the owner's locks there (as
//! the FUSE server does for its `lock_owner`s). It is opened `O_RDWR`, so that one handle can
//! hold both read and write locks; if the backend refuses that (a read-only share, a directory,
//! a file the server may not write), with the access mode of the fid that asked. Whether the
//! fid's own open mode permits the lock type is checked first: a read lock needs read access, a
//! write lock write access, else `EBADF` (as `fcntl` answers). An UNLCK by an owner without a
//! handle holds nothing and succeeds at once without opening one.
//!
//! An owner's handle is released, after its whole range is unlocked (so the locks end at once
//! even while a backend call still holds the handle), when the last fid through which it ever
//! locked on that node is clunked (Tclunk, Tremove), and at Tversion. At most [`MAX_OWNERS`]
//! owner handles exist at once (each is a host descriptor); beyond that, Tlock answers
//! `ENOLCK`.
//!
//! # Tgetlock
//!
//! Asked through the owner's handle, so the asker's own locks are never reported (only they in
//! the way: type UNLCK); an owner without a handle holds nothing, so it is asked through the
//! fid's handle, which holds no locks either. A conflict reports the holder's range, type and
//! `proc_id` (the backend records each lock's pid), and the holder's `client_id` when the holder
//! is an owner of this session, else the asker's. The Linux client always sends Tgetlock with
//! type UNLCK (it has lost the asked type by then); that is answered as a query for a write
//! lock, i.e. it reports any lock another owner holds on the range.
//!
//! # Waiting (the BLOCK flag)
//!
//! Without the BLOCK flag a conflict answers status BLOCKED at once. With BLOCK the server
//! waits for the lock, as `setlk(wait = true)` would, but by retrying a non-blocking `setlk`
//! with a growing pause (1 ms up to 50 ms) so that the wait can end: when the request is
//! flushed (or the session reset) it answers Rlerror `EINTR` holding no lock, and when its fid
//! is clunked the next attempt fails with `EBADF`. The price: a waiter may notice a release up
//! to 50 ms late, and waiters are not served in arrival order. Each attempt holds the fid's and
//! the owner table's mutexes for one non-blocking backend call, never across a pause; holding
//! the fid's means a clunk either comes first (the attempt fails) or finds the fid recorded
//! with the owner (and ends the owner if it was its last).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::fids::{lock as lock_mutex, lock_live};
use super::{Reply, Server};
use crate::backend::{Backend, Error, HandleId, Lock, LockType, NodeId, Result};
use crate::linux;
use crate::p9::consts::{lock_flags, lock_status, lock_type};
use crate::p9::rmessage::{Rgetlock, Rlock, Rmessage};
use crate::p9::tmessage::{Tgetlock, Tlock};
use crate::p9::wire::P9String;

/// The first pause between attempts of a blocking lock.
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause between attempts of a blocking lock.
const MAX_PAUSE: Duration = Duration::from_millis(50);
/// The most lock owners (each a backend handle, i.e. a host descriptor) held at once.
pub(super) const MAX_OWNERS: usize = 4096;

/// A lock owner on one node: the guest (`client_id`) and its process (`proc_id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct OwnerKey {
    client_id: P9String,
    proc_id: u32,
}

/// One lock owner's handle on one node.
#[derive(Debug)]
struct Owner {
    /// The backend handle its locks are taken on.
    handle: HandleId,
    /// The fids (numbers) it has locked through; it ends when the last is clunked.
    fids: Vec<u32>,
}

#[derive(Debug, Default)]
struct Table {
    /// node → owner → its handle.
    nodes: HashMap<NodeId, HashMap<OwnerKey, Owner>>,
    /// How many owners there are in all.
    count: usize,
}

impl Table {
    fn get(&self, node: NodeId, key: &OwnerKey) -> Option<&Owner> {
        self.nodes.get(&node)?.get(key)
    }

    fn remove(&mut self, node: NodeId, key: &OwnerKey) -> Option<Owner> {
        let owners = self.nodes.get_mut(&node)?;
        let removed = owners.remove(key)?;
        if owners.is_empty() {
            self.nodes.remove(&node);
        }
        self.count -= 1;
        Some(removed)
    }
}

/// The lock owners' handles (see the module doc).
#[derive(Debug, Default)]
pub(super) struct OwnerLocks {
    table: Mutex<Table>,
}

/// Unlocks everything an owner holds and releases its handle.
fn end_owner<B: Backend>(backend: &B, node: NodeId, key: &OwnerKey, o: Owner) {
    let all = Lock {
        kind: LockType::Unlock,
        start: 0,
        len: 0,
        pid: key.proc_id,
    };
    if let Err(e) = backend.setlk(o.handle, &all, false) {
        tracing::debug!(
            node,
            proc_id = key.proc_id,
            errno = e.errno(),
            "unlock of a lock owner's locks failed"
        );
    }
    if let Err(e) = backend.release(o.handle) {
        tracing::debug!(
            node,
            proc_id = key.proc_id,
            errno = e.errno(),
            "release of a lock owner's handle failed"
        );
    }
    tracing::trace!(node, proc_id = key.proc_id, "lock owner ended");
}

/// Opens an owner handle on `node` for a fid opened with `flags` (see the module doc).
fn open_owner<B: Backend>(backend: &B, node: NodeId, flags: i32) -> Result<HandleId> {
    let accmode = flags & linux::O_ACCMODE;
    match backend.open(node, linux::O_RDWR) {
        Ok(handle) => Ok(handle),
        Err(e) if accmode != linux::O_RDWR => {
            tracing::debug!(node, errno = e.errno(), "lock owner handle not O_RDWR");
            backend.open(node, accmode)
        }
        Err(e) => Err(e),
    }
}

/// Whether a fid opened with `flags` may take a lock of type `kind`.
fn permits(flags: i32, kind: LockType) -> bool {
    let accmode = flags & linux::O_ACCMODE;
    match kind {
        LockType::Read => matches!(accmode, linux::O_RDONLY | linux::O_RDWR),
        LockType::Write => matches!(accmode, linux::O_WRONLY | linux::O_RDWR),
        LockType::Unlock => true,
    }
}

impl OwnerLocks {
    /// Fid `num` on `node` was clunked: ends the owners that locked only through it.
    pub(super) fn fid_closed<B: Backend>(&self, backend: &B, node: NodeId, num: u32) {
        let mut ended = Vec::new();
        {
            let mut table = lock_mutex(&self.table);
            let Some(owners) = table.nodes.get_mut(&node) else {
                return;
            };
            let mut done = Vec::new();
            for (key, o) in owners.iter_mut() {
                let before = o.fids.len();
                o.fids.retain(|&f| f != num);
                if o.fids.is_empty() && before > 0 {
                    done.push(key.clone());
                }
            }
            for key in done {
                if let Some(o) = table.remove(node, &key) {
                    ended.push((key, o));
                }
            }
        }
        for (key, o) in ended {
            end_owner(backend, node, &key, o);
        }
    }

    /// Ends every owner (Tversion).
    pub(super) fn clear<B: Backend>(&self, backend: &B) {
        let nodes = std::mem::take(&mut *lock_mutex(&self.table)).nodes;
        for (node, owners) in nodes {
            for (key, o) in owners {
                end_owner(backend, node, &key, o);
            }
        }
    }

    /// How many owners exist (for the server tests, which run on Linux).
    #[cfg(all(test, target_os = "linux"))]
    pub(super) fn len(&self) -> usize {
        lock_mutex(&self.table).count
    }
}

fn kind_of(ty: u8) -> Result<LockType> {
    match ty {
        lock_type::RDLCK => Ok(LockType::Read),
        lock_type::WRLCK => Ok(LockType::Write),
        lock_type::UNLCK => Ok(LockType::Unlock),
        _ => Err(Error::refused(linux::EINVAL, "unknown lock type")),
    }
}

fn wire_type(kind: LockType) -> u8 {
    match kind {
        LockType::Read => lock_type::RDLCK,
        LockType::Write => lock_type::WRLCK,
        LockType::Unlock => lock_type::UNLCK,
    }
}

/// Whether a backend error means "a conflicting lock is held".
fn is_conflict(e: &Error) -> bool {
    matches!(e.errno(), linux::EAGAIN | linux::EACCES)
}

impl<B: Backend> Server<B> {
    /// Tlock (see the module doc).
    pub(super) fn lock(&self, t: &Tlock, cancel: &AtomicBool) -> Reply {
        let lock = Lock {
            kind: kind_of(t.ty)?,
            start: t.start,
            len: t.length,
            pid: t.proc_id,
        };
        let key = OwnerKey {
            client_id: t.client_id.clone(),
            proc_id: t.proc_id,
        };
        let block = t.flags & lock_flags::BLOCK != 0;
        let mut pause = FIRST_PAUSE;
        loop {
            match self.try_lock(t.fid, &key, &lock) {
                Ok(()) => {
                    tracing::debug!(
                        fid = t.fid,
                        proc_id = t.proc_id,
                        kind = ?lock.kind,
                        start = lock.start,
                        len = lock.len,
                        "lock"
                    );
                    return Ok(status(lock_status::SUCCESS));
                }
                Err(e) if is_conflict(&e) && !block => {
                    return Ok(status(lock_status::BLOCKED));
                }
                Err(e) if is_conflict(&e) => {
                    if cancel.load(Ordering::Acquire) {
                        tracing::debug!(fid = t.fid, "blocking lock cancelled");
                        return Err(Error::refused(linux::EINTR, "lock wait flushed"));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One non-blocking `setlk` of `lock` for owner `key` through fid `num`, holding the fid's
    /// mutex throughout (see the module doc on waiting).
    fn try_lock(&self, num: u32, key: &OwnerKey, lock: &Lock) -> Result<()> {
        let fid = self.fids.get(num)?;
        let f = lock_live(&fid)?;
        let (_, flags) = f.open_handle()?;
        let node = f.node()?;
        if !permits(flags, lock.kind) {
            return Err(Error::refused(
                linux::EBADF,
                "fid not open for this lock type",
            ));
        }
        let mut table = lock_mutex(&self.locks.table);
        if table.get(node, key).is_none() {
            if lock.kind == LockType::Unlock {
                // Nothing held, nothing to unlock.
                return Ok(());
            }
            if table.count >= MAX_OWNERS {
                return Err(Error::refused(linux::ENOLCK, "too many lock owners"));
            }
            let handle = open_owner(&self.backend, node, flags)?;
            table.nodes.entry(node).or_default().insert(
                key.clone(),
                Owner {
                    handle,
                    fids: Vec::new(),
                },
            );
            table.count += 1;
        }
        let o = table
            .nodes
            .get_mut(&node)
            .and_then(|owners| owners.get_mut(key))
            .ok_or(Error::refused(linux::EIO, "lock owner vanished"))?;
        if !o.fids.contains(&num) {
            o.fids.push(num);
        }
        self.backend.setlk(o.handle, lock, false)
    }

    /// Tgetlock: the first lock of another owner that conflicts with the one described, or type
    /// UNLCK with the request's own range when it could be placed (see the module doc).
    pub(super) fn getlock(&self, t: &Tgetlock) -> Reply {
        let kind = match kind_of(t.ty)? {
            // The Linux client always asks with UNLCK: report any lock in the way.
            LockType::Unlock => LockType::Write,
            kind => kind,
        };
        let lock = Lock {
            kind,
            start: t.start,
            len: t.length,
            pid: t.proc_id,
        };
        let key = OwnerKey {
            client_id: t.client_id.clone(),
            proc_id: t.proc_id,
        };
        let (node, fid_handle) = self.fids.with(t.fid, |f| Ok((f.node()?, f.handle()?)))?;
        let (found, holder_client) = {
            // Held across the call so that the owner's handle is not released under it.
            let table = lock_mutex(&self.locks.table);
            let handle = table.get(node, &key).map_or(fid_handle, |o| o.handle);
            let found = self.backend.getlk(handle, &lock)?;
            let holder = (found.kind != LockType::Unlock)
                .then(|| table.nodes.get(&node))
                .flatten()
                .and_then(|owners| {
                    owners
                        .keys()
                        .find(|k| k.proc_id == found.pid && **k != key)
                        .map(|k| k.client_id.clone())
                });
            (found, holder)
        };
        let client_id = holder_client.unwrap_or_else(|| t.client_id.clone());
        Ok(Rmessage::Getlock(Rgetlock {
            ty: wire_type(found.kind),
            start: found.start,
            length: found.len,
            proc_id: found.pid,
            client_id,
        }))
    }
}

fn status(status: u8) -> Rmessage {
    Rmessage::Lock(Rlock { status })
}
