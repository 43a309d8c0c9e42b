//! INIT and DESTROY: protocol negotiation and the end of a session.
//!
//! The server speaks 7.23 ([`MIN_MINOR`], the first with the 64-byte `fuse_init_out` and every
//! request layout the decoder knows) up to [`FUSE_KERNEL_MINOR_VERSION`]; it answers the lower
//! of the kernel's minor and its own. A kernel with a newer major gets the server's major alone,
//! which asks it to send INIT again at 7; an older major, or a minor below 7.23, `EPROTO`.
//!
//! Of the capabilities the kernel offers, the server takes exactly [`OFFERED`]:
//! - `ASYNC_READ`, `ASYNC_DIO`, `PARALLEL_DIROPS`: requests may come concurrently;
//! - `POSIX_LOCKS` and `FLOCK_LOCKS`: GETLK/SETLK/SETLKW are real host locks (`lock.rs`);
//! - `ATOMIC_O_TRUNC`: OPEN passes `O_TRUNC` to the backend, which truncates at open;
//! - `BIG_WRITES` and `MAX_PAGES`: writes up to `max_write`, with `max_pages` = `max_write` /
//!   4 KiB (x86-64 guest pages);
//! - `DO_READDIRPLUS` and `READDIRPLUS_AUTO`: READDIRPLUS hands out lookup references
//!   (`dir.rs`);
//! - `AUTO_INVAL_DATA`: the guest drops cached pages when the host changes a file's mtime,
//!   which matters for a share the host writes to as well.
//!
//! Left out on purpose: `EXPORT_SUPPORT` (it makes the kernel look up `.` and `..` by name and
//! relies on nodeids that outlive FORGET; the backend has neither), `DONT_MASK` (see below),
//! `HANDLE_KILLPRIV(_V2)` (the guest kernel clears set-id bits itself with SETATTR),
//! `WRITEBACK_CACHE` (the host may change files under the guest), `POSIX_ACL` and
//! `SETXATTR_EXT` (ACLs would need the server to evaluate them), `SECURITY_CTX` and the other
//! request extensions, `NO_OPEN(DIR)_SUPPORT`, `CACHE_SYMLINKS`, `SUBMOUNTS`, DAX.
//!
//! Umask: the kernel sends the caller's umask with MKNOD, MKDIR and CREATE. Without
//! `DONT_MASK` it has already applied it to the mode; the server applies it again (a no-op
//! then), so the mode the backend gets, which it sets exactly, is right either way. Taking
//! `DONT_MASK` would gain nothing, since the backend does not implement default ACLs.

use super::{body, Reply, Server, Session, DEFAULT_MAX_PAGES, MAX_MAX_PAGES, PAGE_SIZE};
use crate::backend::{Backend, Error};
use crate::fuse::abi::{
    InitIn, InitOut, FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, MAX_WRITE,
};
use crate::fuse::consts::init_flags::*;
use crate::linux;

/// The oldest minor version the server speaks.
pub const MIN_MINOR: u32 = 23;

/// The capabilities the server takes when the kernel offers them (see the module doc).
pub const OFFERED: u64 = FUSE_ASYNC_READ
    | FUSE_POSIX_LOCKS
    | FUSE_ATOMIC_O_TRUNC
    | FUSE_BIG_WRITES
    | FUSE_FLOCK_LOCKS
    | FUSE_AUTO_INVAL_DATA
    | FUSE_DO_READDIRPLUS
    | FUSE_READDIRPLUS_AUTO
    | FUSE_ASYNC_DIO
    | FUSE_PARALLEL_DIROPS
    | FUSE_MAX_PAGES;

impl<B: Backend> Server<B> {
    /// INIT (see the module doc).
    pub(super) fn init(&self, arg: &InitIn) -> Reply {
        if arg.major > FUSE_KERNEL_VERSION {
            // Our major alone: the kernel retries INIT with it.
            return Ok(body(&InitOut {
                major: FUSE_KERNEL_VERSION,
                minor: FUSE_KERNEL_MINOR_VERSION,
                ..InitOut::default()
            }));
        }
        if arg.major < FUSE_KERNEL_VERSION || arg.minor < MIN_MINOR {
            tracing::warn!(
                major = arg.major,
                minor = arg.minor,
                "unsupported FUSE version"
            );
            return Err(Error::refused(
                linux::EPROTO,
                "unsupported protocol version",
            ));
        }
        let mut session = self.session.write().unwrap_or_else(|e| e.into_inner());
        if session.is_some() {
            return Err(Error::refused(linux::EPROTO, "INIT during a session"));
        }
        let mut kernel = u64::from(arg.flags);
        if kernel & FUSE_INIT_EXT != 0 {
            kernel |= u64::from(arg.flags2) << 32;
        }
        let flags = kernel & OFFERED;
        let max_write = self.options.max_write.clamp(PAGE_SIZE, MAX_WRITE);
        let max_pages = max_write.div_ceil(PAGE_SIZE).clamp(1, MAX_MAX_PAGES);
        // The kernel never asks for more than max_pages (or, without FUSE_MAX_PAGES, its
        // default of 32) pages in one READ or READDIR.
        let kernel_pages = if flags & FUSE_MAX_PAGES != 0 {
            max_pages
        } else {
            DEFAULT_MAX_PAGES
        };
        let max_read = max_write.max(kernel_pages * PAGE_SIZE);
        let minor = arg.minor.min(FUSE_KERNEL_MINOR_VERSION);
        *session = Some(Session {
            max_write,
            max_read,
        });
        drop(session);
        tracing::info!(
            minor,
            flags,
            max_write,
            max_pages,
            "FUSE session initialised"
        );
        Ok(body(&InitOut {
            major: FUSE_KERNEL_VERSION,
            minor,
            max_readahead: arg.max_readahead.min(self.options.max_readahead),
            // Bits 0..31 only: nothing in flags2 is taken.
            flags: u32::try_from(flags & u64::from(u32::MAX)).unwrap_or(0),
            max_background: self.options.max_background,
            congestion_threshold: self.options.congestion_threshold,
            max_write,
            time_gran: 1,
            max_pages: u16::try_from(max_pages).unwrap_or(u16::MAX),
            ..InitOut::default()
        }))
    }

    /// DESTROY: the session ends. Blocked lock waits are cancelled, and every handle the guest
    /// left open and every lock-owner handle is released (with its locks); a new INIT may
    /// follow. Node references stay until FORGET, as the backend has no way to list them.
    pub(super) fn destroy(&self) -> Reply {
        *self.session.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.waits.cancel_all();
        // Handles first, so a lock attempt still running finds its handle gone (`lock.rs`).
        let open = self.files.drain();
        self.locks.clear(&self.backend);
        for fh in open {
            if let Err(e) = self.backend.release(fh) {
                tracing::debug!(fh, errno = e.errno(), "release at DESTROY failed");
            }
        }
        tracing::info!("FUSE session destroyed");
        Ok(Vec::new())
    }
}
