//! The transport-free FUSE server: one request in (`fuse_in_header` included, exactly as read
//! from `/dev/fuse` or the readable part of a virtio-fs descriptor chain), one reply out, over
//! any [`Backend`].
//!
//! [`Server::handle`] decodes a request under what INIT negotiated, runs it against the
//! backend and encodes the reply. Every backend failure becomes an error reply carrying the
//! backend's errno, in one place ([`Server::handle`]'s encoder). A request that does not decode
//! is answered `EINVAL` (`ENAMETOOLONG`, `E2BIG` where they fit) under the `unique` read from
//! bytes 8..16, unless its opcode is one that has no reply (FORGET, BATCH_FORGET, INTERRUPT); a
//! buffer too short to hold a `unique` gets no reply at all. Before INIT, and after DESTROY,
//! every request but INIT is answered `EIO`; unknown opcodes, and those of the virtio-fs set
//! the backend cannot serve (SYNCFS, TMPFILE, the DAX mapping requests), `ENOSYS`.
//!
//! Requests may be handled on many threads at once: the server keeps its state behind locks
//! (the negotiated session, the table of open handles in `files.rs`, the POSIX lock owners in
//! `lock.rs`, the interruptible waits below) and never holds one across a wait.
//!
//! # Lookup references
//!
//! Every reply that carries a `fuse_entry_out` with a non-zero nodeid (LOOKUP, MKNOD, MKDIR,
//! SYMLINK, LINK, CREATE, and each READDIRPLUS entry other than `.` and `..`) hands the kernel
//! exactly the one backend lookup reference that the backend call took, and FORGET and
//! BATCH_FORGET give them back with [`Backend::forget`]. The server keeps no reference of its
//! own, so the backend's counts are the kernel's.
//!
//! # Handles
//!
//! A FUSE `fh` is the backend's [`HandleId`](crate::backend::HandleId). The server records
//! every handle it gave out (with its node and open flags) and refuses any other `fh` with
//! `EBADF`, so the handles it opens for itself (POSIX lock owners, see `lock.rs`) can never be
//! named by the guest. Unknown nodeids are the backend's to refuse (`ESTALE` from
//! [`Passthrough`](crate::backend::passthrough::Passthrough)).
//!
//! # FUSE_INTERRUPT
//!
//! Blocking lock requests (SETLKW) register their `unique` while they wait; INTERRUPT for such
//! a request makes it stop waiting and answer `EINTR` holding no lock. INTERRUPT itself is
//! never answered. An INTERRUPT that overtakes its request (they may run on different
//! threads) is remembered, among the last [`EARLY_INTERRUPTS`], and cancels the request when it
//! starts. Every other request is one bounded backend call and runs to completion, which the
//! kernel accepts as the reply to an interrupted request. (The Linux virtio-fs transport does
//! not send INTERRUPT at all, up to at least 6.1: there a waiting SETLKW ends only when the lock
//! is granted or at DESTROY; `/dev/fuse` does send it.)
//!
//! # Not implemented
//!
//! TMPFILE and SYNCFS answer `ENOSYS` (the backend has neither; the kernel then stops asking
//! and reports `EOPNOTSUPP`, respectively succeeds, as it does for servers without them).
//! ACCESS is the only permission check the server makes: every other request runs with the
//! server's own host credentials, so the guest is expected to mount with
//! `default_permissions` and let its kernel check the modes. Security contexts,
//! POSIX ACL evaluation, DAX and notifications to the kernel are not offered.

mod attr;
mod dir;
mod entry;
mod file;
mod files;
mod init;
mod lock;
mod xattr;

// Run against the Linux backends on a temporary directory.
#[cfg(all(test, target_os = "linux"))]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

pub use self::file::MAX_COPY;
use self::files::OpenFiles;
pub use self::init::{MIN_MINOR, OFFERED};
use self::lock::OwnerLocks;
pub use self::lock::MAX_OWNERS;
use super::abi::{self, EntryOut, InHeader, MAX_WRITE};
use super::consts::opcode;
use super::reply::{reply_data, reply_error};
use super::request::{decode_request_with, Negotiated, Operation};
use super::wire::{FuseWireError, Wire};
use crate::backend::{Attr, Backend, Entry, Error, Result};
use crate::linux;

/// How many INTERRUPTs for requests not (yet) running are remembered.
pub const EARLY_INTERRUPTS: usize = 64;

/// The page size the server assumes the guest uses (x86-64 guests), for `max_pages`.
const PAGE_SIZE: u32 = 4096;

/// The kernel's `max_pages` when FUSE_MAX_PAGES is not agreed (`FUSE_DEFAULT_MAX_PAGES_PER_REQ`).
const DEFAULT_MAX_PAGES: u32 = 32;

/// The kernel's largest `max_pages` (`FUSE_MAX_MAX_PAGES`).
const MAX_MAX_PAGES: u32 = 256;

/// How the server answers INIT and how long the kernel may cache what it is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How long the kernel may cache a name → node mapping (`entry_valid`).
    pub entry_timeout: Duration,
    /// How long the kernel may cache attributes (`attr_valid`).
    pub attr_timeout: Duration,
    /// Largest WRITE (default 1 MiB); clamped to 4 KiB..=[`MAX_WRITE`]. `max_pages` follows it.
    pub max_write: u32,
    /// Largest readahead offered; the kernel's own offer caps it (default 1 MiB).
    pub max_readahead: u32,
    /// Most background requests the kernel keeps in flight; 0 keeps the kernel's default.
    pub max_background: u16,
    /// Background requests before the kernel reports congestion; 0 keeps its default.
    pub congestion_threshold: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            entry_timeout: Duration::from_secs(1),
            attr_timeout: Duration::from_secs(1),
            max_write: MAX_WRITE,
            max_readahead: 1 << 20,
            max_background: 0,
            congestion_threshold: 0,
        }
    }
}

/// What INIT agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Session {
    /// The largest WRITE.
    max_write: u32,
    /// The largest READ, READDIR or READDIRPLUS body the server produces.
    max_read: u32,
}

/// A FUSE server over a backend (see the module documentation).
#[derive(Debug)]
pub struct Server<B: Backend> {
    backend: B,
    options: Options,
    session: RwLock<Option<Session>>,
    files: OpenFiles,
    locks: OwnerLocks,
    waits: Waits,
}

/// The result of one operation: the reply body (without `fuse_out_header`).
type Reply = Result<Vec<u8>>;

impl<B: Backend> Server<B> {
    /// A server over `backend`, answering INIT as `options` say.
    pub fn new(backend: B, options: Options) -> Self {
        Server {
            backend,
            options,
            session: RwLock::new(None),
            files: OpenFiles::default(),
            locks: OwnerLocks::default(),
            waits: Waits::default(),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// One request (`fuse_in_header` included, exactly as read from `/dev/fuse` or a virtio-fs
    /// chain's readable part) in, the reply (`fuse_out_header` included) out; `None` for
    /// requests that have no reply (FORGET, BATCH_FORGET, INTERRUPT, a request too short to
    /// carry a unique id).
    pub fn handle(&self, request: &[u8]) -> Option<Vec<u8>> {
        let session = self.session();
        let neg = Negotiated {
            max_write: session.map_or(MAX_WRITE, |s| s.max_write),
            setxattr_ext: false,
        };
        let req = match decode_request_with(request, &neg) {
            Ok(req) => req,
            Err(e) => return undecodable(request, &e),
        };
        let h = &req.header;
        tracing::trace!(
            unique = h.unique,
            opcode = h.opcode,
            nodeid = h.nodeid,
            "FUSE request"
        );
        let result = match &req.op {
            Operation::Forget(f) => {
                self.backend.forget(h.nodeid, f.nlookup);
                return None;
            }
            Operation::BatchForget(list) => {
                list.iter()
                    .for_each(|f| self.backend.forget(f.nodeid, f.nlookup));
                return None;
            }
            Operation::Interrupt(i) => {
                self.waits.interrupt(i.unique);
                return None;
            }
            Operation::Init(arg) => self.init(arg),
            op => match session {
                Some(s) => self.dispatch(h, op, s),
                None => Err(Error::refused(linux::EIO, "request before INIT")),
            },
        };
        Some(encode_reply(h, result))
    }

    fn dispatch(&self, h: &InHeader, op: &Operation<'_>, s: Session) -> Reply {
        use Operation as O;
        match op {
            O::Destroy => self.destroy(),
            O::Lookup { name } => self.lookup(h, name),
            O::Getattr(arg) => self.getattr(h, arg),
            O::Setattr(arg) => self.setattr(h, arg),
            O::Readlink => self.readlink(h),
            O::Symlink { name, target } => self.symlink(h, name, target),
            O::Mknod { arg, name } => self.mknod(h, arg, name),
            O::Mkdir { arg, name } => self.mkdir(h, arg, name),
            O::Unlink { name } => self.unlink(h, name),
            O::Rmdir { name } => self.rmdir(h, name),
            O::Rename { arg, old, new } => self.rename(h, arg.newdir, old, new, 0),
            O::Rename2 { arg, old, new } => self.rename(h, arg.newdir, old, new, arg.flags),
            O::Link { arg, name } => self.link(h, arg, name),
            O::Open(arg) => self.open(h, arg),
            O::Read(arg) => self.read(arg, s),
            O::Write { arg, data } => self.write(arg, data),
            O::Statfs => self.statfs(h),
            O::Release(arg) | O::Releasedir(arg) => self.release(arg),
            O::Fsync(arg) | O::Fsyncdir(arg) => self.fsync(arg),
            O::Setxattr { arg, name, value } => self.setxattr(h, arg, name, value),
            O::Getxattr { arg, name } => self.getxattr(h, arg, name),
            O::Listxattr(arg) => self.listxattr(h, arg),
            O::Removexattr { name } => self.removexattr(h, name),
            O::Flush(arg) => self.flush(arg),
            O::Opendir(arg) => self.opendir(h, arg),
            O::Readdir(arg) => self.readdir(arg, false, s),
            O::Readdirplus(arg) => self.readdir(arg, true, s),
            O::Getlk(arg) => self.getlk(arg),
            O::Setlk(arg) => self.setlk(h, arg, false),
            O::Setlkw(arg) => self.setlk(h, arg, true),
            O::Access(arg) => self.access(h, arg),
            O::Create { arg, name } => self.create(h, arg, name),
            O::Fallocate(arg) => self.fallocate(arg),
            O::Lseek(arg) => self.lseek(arg),
            O::CopyFileRange(arg) => self.copy_file_range(arg),
            O::Tmpfile { .. } => Err(Error::refused(linux::ENOSYS, "no unnamed files")),
            O::Syncfs(_) => Err(Error::refused(linux::ENOSYS, "no syncfs in the backend")),
            O::Unknown(_) => Err(Error::refused(linux::ENOSYS, "unknown opcode")),
            // Handled before dispatch.
            O::Init(_) | O::Forget(_) | O::BatchForget(_) | O::Interrupt(_) => {
                Err(Error::refused(linux::EIO, "misrouted request"))
            }
        }
    }

    /// The session INIT agreed, if any.
    fn session(&self) -> Option<Session> {
        *self.session.read().unwrap_or_else(|e| e.into_inner())
    }

    /// An entry reply for a backend entry (which hands its lookup reference to the kernel).
    fn entry_out(&self, entry: &Entry) -> EntryOut {
        let (entry_valid, entry_valid_nsec) = split(self.options.entry_timeout);
        let (attr_valid, attr_valid_nsec) = split(self.options.attr_timeout);
        EntryOut {
            nodeid: entry.node,
            generation: 0,
            entry_valid,
            attr_valid,
            entry_valid_nsec,
            attr_valid_nsec,
            attr: fuse_attr(&entry.attr),
        }
    }

    /// An attribute reply.
    fn attr_out(&self, attr: &Attr) -> abi::AttrOut {
        let (attr_valid, attr_valid_nsec) = split(self.options.attr_timeout);
        abi::AttrOut {
            attr_valid,
            attr_valid_nsec,
            attr: fuse_attr(attr),
            ..Default::default()
        }
    }
}

/// The one place where results become replies.
fn encode_reply(h: &InHeader, result: Reply) -> Vec<u8> {
    match result {
        Ok(body) => reply_data(h.unique, &body).unwrap_or_else(|e| {
            tracing::debug!(unique = h.unique, error = %e, "FUSE reply too large");
            reply_error(h.unique, linux::EIO)
        }),
        Err(e) => {
            let errno = e.errno();
            tracing::debug!(
                unique = h.unique,
                opcode = h.opcode,
                nodeid = h.nodeid,
                errno,
                error = %e,
                "FUSE request failed"
            );
            reply_error(h.unique, errno)
        }
    }
}

/// The answer to a request that does not decode (see the module doc).
fn undecodable(request: &[u8], e: &FuseWireError) -> Option<Vec<u8>> {
    let unique = u64::from_le_bytes(request.get(8..16)?.try_into().ok()?);
    let op = u32::from_le_bytes(request.get(4..8)?.try_into().ok()?);
    tracing::debug!(unique, opcode = op, error = %e, "undecodable FUSE request");
    if matches!(
        op,
        opcode::FUSE_FORGET | opcode::FUSE_BATCH_FORGET | opcode::FUSE_INTERRUPT
    ) {
        return None;
    }
    let errno = match e {
        FuseWireError::NameTooLong { .. } => linux::ENAMETOOLONG,
        FuseWireError::XattrValueTooLarge(_) => linux::E2BIG,
        _ => linux::EINVAL,
    };
    Some(reply_error(unique, errno))
}

/// The encoding of a reply struct, as a body.
fn body<T: Wire>(value: &T) -> Vec<u8> {
    value.to_bytes()
}

/// A duration as FUSE's seconds and nanoseconds.
fn split(d: Duration) -> (u64, u32) {
    (d.as_secs(), d.subsec_nanos())
}

/// Backend attributes as `fuse_attr`.
fn fuse_attr(a: &Attr) -> abi::Attr {
    abi::Attr {
        ino: a.ino,
        size: a.size,
        blocks: a.blocks,
        // Two's complement, as the kernel reads these fields back into a signed time64_t.
        atime: a.atime.sec as u64,
        mtime: a.mtime.sec as u64,
        ctime: a.ctime.sec as u64,
        atimensec: a.atime.nsec,
        mtimensec: a.mtime.nsec,
        ctimensec: a.ctime.nsec,
        mode: a.mode,
        nlink: u32::try_from(a.nlink).unwrap_or(u32::MAX),
        uid: a.uid,
        gid: a.gid,
        rdev: encode_dev(a.rdev),
        blksize: u32::try_from(a.blksize).unwrap_or(u32::MAX),
        flags: 0,
    }
}

/// A Linux `makedev` device number as the kernel's 32-bit `new_encode_dev` form. For majors
/// below 4096 and minors below 2^20 (all the guest kernel can represent) the two encodings
/// share their low 32 bits; anything larger cannot be told to the guest and is sent as 0.
fn encode_dev(rdev: u64) -> u32 {
    u32::try_from(rdev).unwrap_or(0)
}

/// The kernel's 32-bit device number (MKNOD) as a Linux `makedev` value: the same bits.
fn decode_dev(rdev: u32) -> u64 {
    u64::from(rdev)
}

/// Locks a mutex, taking the data even if a thread panicked while holding it (every update
/// under the server's mutexes is complete or not done).
fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The blocking requests that are waiting, each with its cancel flag (see the module doc).
#[derive(Debug, Default)]
struct Waits {
    inner: Mutex<WaitsInner>,
}

#[derive(Debug, Default)]
struct WaitsInner {
    running: HashMap<u64, Arc<AtomicBool>>,
    early: VecDeque<u64>,
}

/// A registered blocking request; dropping it unregisters it.
struct Waiting<'a> {
    waits: &'a Waits,
    unique: u64,
    cancel: Arc<AtomicBool>,
}

impl Waits {
    /// Registers request `unique`; its flag is already set if an INTERRUPT overtook it.
    fn begin(&self, unique: u64) -> Waiting<'_> {
        let cancel = Arc::new(AtomicBool::new(false));
        let mut inner = relock(&self.inner);
        if let Some(at) = inner.early.iter().position(|&u| u == unique) {
            inner.early.remove(at);
            cancel.store(true, Ordering::Release);
        }
        inner.running.insert(unique, Arc::clone(&cancel));
        Waiting {
            waits: self,
            unique,
            cancel,
        }
    }

    /// INTERRUPT of request `unique`.
    fn interrupt(&self, unique: u64) {
        let mut inner = relock(&self.inner);
        if let Some(flag) = inner.running.get(&unique) {
            flag.store(true, Ordering::Release);
            tracing::debug!(unique, "interrupting a waiting request");
            return;
        }
        if inner.early.len() >= EARLY_INTERRUPTS {
            inner.early.pop_front();
        }
        inner.early.push_back(unique);
    }

    /// Cancels every waiting request (DESTROY).
    fn cancel_all(&self) {
        let mut inner = relock(&self.inner);
        inner
            .running
            .values()
            .for_each(|f| f.store(true, Ordering::Release));
        inner.early.clear();
    }
}

impl Waiting<'_> {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut inner = relock(&self.waits.inner);
        if inner
            .running
            .get(&self.unique)
            .is_some_and(|f| Arc::ptr_eq(f, &self.cancel))
        {
            inner.running.remove(&self.unique);
        }
    }
}
