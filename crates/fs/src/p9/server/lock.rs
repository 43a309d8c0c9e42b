//! POSIX byte-range locks: Tlock and Tgetlock on [`Backend::setlk`] and [`Backend::getlk`].
//!
//! A lock either locks or fails; nothing answers SUCCESS without the backend holding the lock.
//! Without the BLOCK flag a conflict answers status BLOCKED at once. With BLOCK the server
//! waits for the lock, as `setlk(wait = true)` would, but by retrying a non-blocking `setlk`
//! with a growing pause (1 ms up to 50 ms) so that the wait can end: when the request is
//! flushed (or the session reset) it answers Rlerror `EINTR` holding no lock, and when its fid
//! is clunked the next attempt fails with the backend's error. The price: a waiter may notice
//! a release up to 50 ms late, and waiters are not served in arrival order.
//!
//! Locks belong to the fid's open handle (open-file-description semantics): two fids conflict
//! even when the same guest process holds both. The owner `proc_id` is recorded and reported
//! back by Tgetlock; `client_id` is not kept, so Rgetlock echoes the asker's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Reply, Server};
use crate::backend::{Backend, Error, Lock, LockType, Result};
use crate::p9::consts::{lock_flags, lock_status, lock_type};
use crate::p9::rmessage::{Rgetlock, Rlock, Rmessage};
use crate::p9::tmessage::{Tgetlock, Tlock};

/// The first pause between attempts of a blocking lock.
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause between attempts of a blocking lock.
const MAX_PAUSE: Duration = Duration::from_millis(50);

fn kind_of(ty: u8) -> Result<LockType> {
    match ty {
        lock_type::RDLCK => Ok(LockType::Read),
        lock_type::WRLCK => Ok(LockType::Write),
        lock_type::UNLCK => Ok(LockType::Unlock),
        _ => Err(Error::refused(libc::EINVAL, "unknown lock type")),
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
    matches!(e.errno(), libc::EAGAIN | libc::EACCES)
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
        let handle = self.fids.with(t.fid, |f| f.handle())?;
        let block = t.flags & lock_flags::BLOCK != 0;
        let mut pause = FIRST_PAUSE;
        loop {
            match self.backend.setlk(handle, &lock, false) {
                Ok(()) => return Ok(status(lock_status::SUCCESS)),
                Err(e) if is_conflict(&e) && !block => {
                    return Ok(status(lock_status::BLOCKED));
                }
                Err(e) if is_conflict(&e) => {
                    if cancel.load(Ordering::Acquire) {
                        tracing::debug!(fid = t.fid, "blocking lock cancelled");
                        return Err(Error::refused(libc::EINTR, "lock wait flushed"));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Tgetlock: the first lock that conflicts with the one described, or type UNLCK with the
    /// request's own range when it could be placed.
    pub(super) fn getlock(&self, t: &Tgetlock) -> Reply {
        let lock = Lock {
            kind: kind_of(t.ty)?,
            start: t.start,
            len: t.length,
            pid: t.proc_id,
        };
        let handle = self.fids.with(t.fid, |f| f.handle())?;
        let found = self.backend.getlk(handle, &lock)?;
        Ok(Rmessage::Getlock(Rgetlock {
            ty: wire_type(found.kind),
            start: found.start,
            length: found.len,
            proc_id: found.pid,
            client_id: t.client_id.clone(),
        }))
    }
}

fn status(status: u8) -> Rmessage {
    Rmessage::Lock(Rlock { status })
}
