//! The transport-free 9P2000.L server: one framed T-message in, one framed R-message out, over
//! any [`Backend`].
//!
//! [`Server::handle`] decodes a request under the negotiated msize, runs it against the backend
//! and encodes the reply; every failure answers Rlerror with the backend's errno. A request
//! that does not decode answers Rlerror with [`WireError::errno`](crate::p9::WireError::errno) under the tag read from bytes
//! 5..7, whatever the rest holds; a buffer too short to hold a tag (under 7 bytes) gets no
//! reply at all (an empty vector), since no client could match one to its request.
//!
//! Requests may be handled on many threads at once. Fids live in a table behind a mutex
//! (`fids.rs`); each fid is the path of backend nodes it was walked along plus, once opened, a
//! backend handle. Tclunk gives handles and node references back to the backend.
//!
//! POSIX locks (Tlock, Tgetlock; `lock.rs`) belong to lock owners, `(node, client_id,
//! proc_id)`, not to fids: each owner gets a backend handle of its own that holds its locks, so
//! one guest process locking through two fids of a file never conflicts with itself, while
//! different processes do. An owner's handle goes when the last fid it locked through is
//! clunked.
//!
//! # Tflush
//!
//! Each request's tag is registered with a cancel flag while it runs. Tflush for a tag that is
//! not running (unknown or finished) answers Rflush at once. Tflush for a running tag sets its
//! flag and waits until that request has completed, so its reply always precedes the Rflush:
//! with [`Server::handle_and_send`] the reply has been handed to the transport's `send` before
//! the Rflush is produced; with [`Server::handle`], before the call that returns the Rflush
//! returns (a transport that sends replies from several threads must then keep that order
//! itself). The flushed request is answered, never silently dropped, because a virtio transport
//! must return every descriptor chain. What the flag cancels:
//! - a Tlock with the BLOCK flag waiting for a conflicting lock stops waiting and answers
//!   Rlerror `EINTR`, having taken no lock;
//! - every other request runs to completion (each is one bounded backend call) and answers
//!   normally, which the client honours as the reply received before Rflush.
//!
//! Tflush requests are not themselves registered, so a Tflush naming another Tflush answers
//! at once and flushes can never wait on each other.
//!
//! A transport that runs requests one at a time can never process a Tflush while a request is
//! blocked; flush helps only transports that handle requests concurrently. Tversion sets every
//! running request's flag (it aborts outstanding I/O), clunks every fid and ends every lock
//! owner.
//!
//! # Not implemented
//!
//! Authentication: Tauth answers Rlerror `EOPNOTSUPP` (what QEMU answers), and Tattach
//! accepts only the afid NOFID. One tree per server: Tattach's `aname` is ignored.

mod attr;
mod dir;
mod fids;
mod file;
mod lock;
mod session;
mod walk;
mod xattr;

// Run against the Linux backends on a temporary directory.
#[cfg(all(test, target_os = "linux"))]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use self::fids::{lock as lock_mutex, FidTable, NodeRefs};
use self::lock::OwnerLocks;
use super::consts::{qid_type, NOTAG};
use super::frame::{decode_tmessage_with_msize, encode_rmessage};
use super::rmessage::{Rlerror, Rmessage};
use super::tmessage::Tmessage;
use super::wire::{errno, Qid, MAX_MSIZE};
use crate::backend::{Attr, Backend, Error};
use crate::linux;

/// The smallest msize the server negotiates (the Linux client refuses anything smaller).
pub const MIN_MSIZE: u32 = 4096;

/// The result of one request.
type Reply = Result<Rmessage, Error>;

/// A 9P2000.L server over a backend (see the module documentation).
#[derive(Debug)]
pub struct Server<B: Backend> {
    backend: B,
    max_msize: u32,
    msize: AtomicU32,
    fids: FidTable,
    refs: NodeRefs,
    locks: OwnerLocks,
    flight: InFlight,
}

impl<B: Backend> Server<B> {
    /// A server over `backend` that negotiates msize up to [`MAX_MSIZE`] (1 MiB).
    pub fn new(backend: B) -> Self {
        Self::with_max_msize(backend, MAX_MSIZE)
    }

    /// A server that negotiates msize up to `max_msize`, clamped to
    /// [`MIN_MSIZE`]..=[`MAX_MSIZE`].
    pub fn with_max_msize(backend: B, max_msize: u32) -> Self {
        let max_msize = max_msize.clamp(MIN_MSIZE, MAX_MSIZE);
        Server {
            backend,
            max_msize,
            msize: AtomicU32::new(max_msize),
            fids: FidTable::default(),
            refs: NodeRefs::default(),
            locks: OwnerLocks::default(),
            flight: InFlight::default(),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The msize in force: the negotiated one, or the server's largest before Tversion.
    pub fn msize(&self) -> u32 {
        self.msize.load(Ordering::Acquire)
    }

    /// How many fids the session holds.
    pub fn fid_count(&self) -> usize {
        self.fids.len()
    }

    /// Handles one framed request (exactly one message, size field included) and returns the
    /// framed reply; empty when the request is too short to carry a tag. See the module
    /// documentation for the ordering this gives a flushed request's reply.
    pub fn handle(&self, request: &[u8]) -> Vec<u8> {
        let mut reply = Vec::new();
        self.handle_and_send(request, &mut |r| reply = r);
        reply
    }

    /// As [`Server::handle`], handing the reply to `send` (not called when there is no reply)
    /// before the request stops counting as running, so that a Tflush for it produces its
    /// Rflush only after `send` returned.
    pub fn handle_and_send(&self, request: &[u8], send: &mut dyn FnMut(Vec<u8>)) {
        let msize = self.msize();
        let (tag, msg) = match decode_tmessage_with_msize(request, msize) {
            Ok(decoded) => decoded,
            Err(e) => {
                let errno = e.errno();
                tracing::debug!(error = %e, errno, "undecodable 9P request");
                if let Some(tag) = peek_tag(request) {
                    send(encode_error(tag, errno));
                }
                return;
            }
        };
        // Tflush itself is never registered, so flushes cannot wait on one another.
        let tracked = if matches!(msg, Tmessage::Flush(_)) {
            NOTAG
        } else {
            tag
        };
        let running = self.flight.begin(tracked);
        tracing::trace!(tag, msg_type = msg.msg_type(), "9P request");
        let reply = self.dispatch(msg, &running.cancel);
        send(self.encode_reply(tag, reply));
        drop(running);
    }

    fn dispatch(&self, msg: Tmessage, cancel: &AtomicBool) -> Reply {
        match msg {
            Tmessage::Version(t) => self.version(&t),
            Tmessage::Auth(t) => self.auth(&t),
            Tmessage::Attach(t) => self.attach(&t),
            Tmessage::Flush(t) => self.flush(&t),
            Tmessage::Walk(t) => self.walk(&t),
            Tmessage::Read(t) => self.read(&t),
            Tmessage::Write(t) => self.write(&t),
            Tmessage::Clunk(t) => self.clunk(&t),
            Tmessage::Remove(t) => self.remove(&t),
            Tmessage::Statfs(t) => self.statfs(&t),
            Tmessage::Lopen(t) => self.lopen(&t),
            Tmessage::Lcreate(t) => self.lcreate(&t),
            Tmessage::Symlink(t) => self.symlink(&t),
            Tmessage::Mknod(t) => self.mknod(&t),
            Tmessage::Rename(t) => self.rename(&t),
            Tmessage::Readlink(t) => self.readlink(&t),
            Tmessage::Getattr(t) => self.getattr(&t),
            Tmessage::Setattr(t) => self.setattr(&t),
            Tmessage::Xattrwalk(t) => self.xattrwalk(&t),
            Tmessage::Xattrcreate(t) => self.xattrcreate(&t),
            Tmessage::Readdir(t) => self.readdir(&t),
            Tmessage::Fsync(t) => self.fsync(&t),
            Tmessage::Lock(t) => self.lock(&t, cancel),
            Tmessage::Getlock(t) => self.getlock(&t),
            Tmessage::Link(t) => self.link(&t),
            Tmessage::Mkdir(t) => self.mkdir(&t),
            Tmessage::Renameat(t) => self.renameat(&t),
            Tmessage::Unlinkat(t) => self.unlinkat(&t),
        }
    }

    /// Encodes a reply; an error, or a reply that does not fit msize, becomes Rlerror.
    fn encode_reply(&self, tag: u16, reply: Reply) -> Vec<u8> {
        let msg = match reply {
            Ok(msg) => msg,
            Err(e) => {
                tracing::debug!(tag, errno = e.errno(), error = %e, "9P request failed");
                return encode_error(tag, u32::try_from(e.errno()).unwrap_or(errno::EINVAL));
            }
        };
        let limit = usize::try_from(self.msize()).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        match encode_rmessage(tag, &msg, &mut out) {
            Ok(()) if out.len() <= limit => out,
            Ok(()) => encode_error(tag, errno::EMSGSIZE),
            Err(e) => encode_error(tag, e.errno()),
        }
    }
}

/// The tag of a request that may not decode: bytes 5..7, if present.
fn peek_tag(request: &[u8]) -> Option<u16> {
    let bytes = request.get(5..7)?;
    Some(u16::from_le_bytes([*bytes.first()?, *bytes.get(1)?]))
}

/// A framed Rlerror.
fn encode_error(tag: u16, ecode: u32) -> Vec<u8> {
    let mut out = Vec::new();
    if encode_rmessage(tag, &Rmessage::Lerror(Rlerror { ecode }), &mut out).is_err() {
        // An 11-byte message always encodes; nothing better to send if it did not.
        out.clear();
    }
    out
}

/// The qid of a node: the host inode number, the type from the mode.
pub(super) fn qid_of(attr: &Attr) -> Qid {
    Qid {
        ty: qid_type_of_mode(attr.mode),
        version: 0,
        path: attr.ino,
    }
}

/// Qid type bits for a `st_mode`.
pub(super) fn qid_type_of_mode(mode: u32) -> u8 {
    match mode & linux::S_IFMT {
        linux::S_IFDIR => qid_type::DIR,
        linux::S_IFLNK => qid_type::SYMLINK,
        _ => qid_type::FILE,
    }
}

/// The tags of running requests, each with its cancel flag (see the module doc on Tflush).
#[derive(Debug, Default)]
struct InFlight {
    tags: Mutex<HashMap<u16, Arc<AtomicBool>>>,
    done: Condvar,
}

/// A running request (tag [`NOTAG`]: not tracked); dropping it marks the request finished and wakes Tflush waiters.
struct Running<'a> {
    flight: &'a InFlight,
    tag: u16,
    cancel: Arc<AtomicBool>,
}

impl InFlight {
    fn begin(&self, tag: u16) -> Running<'_> {
        let cancel = Arc::new(AtomicBool::new(false));
        if tag != NOTAG {
            // A tag reused while still running is a client bug; the newer request wins the
            // slot and the older one is no longer flushable.
            lock_mutex(&self.tags).insert(tag, Arc::clone(&cancel));
        }
        Running {
            flight: self,
            tag,
            cancel,
        }
    }

    /// Cancels the request `oldtag` if it runs and waits until it has finished.
    fn flush(&self, oldtag: u16) {
        let mut tags = lock_mutex(&self.tags);
        let Some(flag) = tags.get(&oldtag).cloned() else {
            return;
        };
        flag.store(true, Ordering::Release);
        while tags.get(&oldtag).is_some_and(|f| Arc::ptr_eq(f, &flag)) {
            tags = self.done.wait(tags).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Cancels every running request (Tversion).
    fn cancel_all(&self) {
        for flag in lock_mutex(&self.tags).values() {
            flag.store(true, Ordering::Release);
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if self.tag == NOTAG {
            return;
        }
        let mut tags = lock_mutex(&self.flight.tags);
        if tags
            .get(&self.tag)
            .is_some_and(|f| Arc::ptr_eq(f, &self.cancel))
        {
            tags.remove(&self.tag);
        }
        drop(tags);
        self.flight.done.notify_all();
    }
}
