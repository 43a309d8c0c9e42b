//! Tests of the FUSE server: real requests, built with [`encode_request`], against a
//! [`Passthrough`] backend over a temporary directory; replies decoded with [`decode_reply`].

#![allow(clippy::unwrap_used)]

mod attr;
mod dir;
mod entry;
mod file;
mod hostile;
mod init;
mod lock;
mod mapped;
mod xattr;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tempfile::TempDir;

use super::{Options, Server};
use crate::backend::passthrough::{Config, Passthrough};
use crate::backend::Backend;
use crate::fuse::abi::*;
use crate::fuse::consts::init_flags;
use crate::fuse::wire::Wire;
use crate::fuse::{decode_reply, encode_request, Operation, Request};
use crate::linux;

/// The root's nodeid.
pub(super) const ROOT: u64 = FUSE_ROOT_ID;

/// Every capability bit of 0..=30 and FUSE_SECURITY_CTX, as a 6.1 kernel offers more or less.
pub(super) const KERNEL_FLAGS: u64 = 0x7fff_ffff | init_flags::FUSE_SECURITY_CTX;

/// A server over a fresh temporary share.
pub(super) struct Fixture<B: Backend = Passthrough> {
    _tmp: TempDir,
    pub(super) share: PathBuf,
    pub(super) server: Arc<Server<B>>,
    next: Arc<AtomicU64>,
    /// The owner of the share (the test's own user).
    pub(super) uid: u32,
    /// The group of the share.
    pub(super) gid: u32,
}

/// An INIT request body as a 7.37 kernel sends it, offering `flags`.
pub(super) fn init_in(minor: u32, flags: u64) -> InitIn {
    InitIn {
        major: 7,
        minor,
        max_readahead: 128 * 1024,
        flags: u32::try_from(flags & 0xffff_ffff).unwrap(),
        flags2: u32::try_from(flags >> 32).unwrap(),
        ..InitIn::default()
    }
}

impl Fixture {
    /// A passthrough server whose session is initialised as a 6.1 kernel would.
    pub(super) fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// A passthrough server configured by `config`, initialised.
    pub(super) fn with_config(config: Config) -> Self {
        Self::with_backend(TempDir::new().unwrap(), |share| {
            Passthrough::new(share, config).unwrap()
        })
    }

    /// A passthrough server with `options` before INIT.
    pub(super) fn uninit(options: Options) -> Self {
        Self::uninit_with(TempDir::new().unwrap(), options, |share| {
            Passthrough::new(share, Config::default()).unwrap()
        })
    }
}

impl<B: Backend> Fixture<B> {
    /// A server over the backend `make` builds on a share inside `tmp`, initialised.
    pub(super) fn with_backend(tmp: TempDir, make: impl FnOnce(&Path) -> B) -> Self {
        let fx = Self::uninit_with(tmp, Options::default(), make);
        let out: InitOut = fx.ok(0, Operation::Init(init_in(37, KERNEL_FLAGS)));
        assert_eq!(out.major, 7);
        fx
    }

    /// A server over the backend `make` builds on a share inside `tmp`, before INIT.
    pub(super) fn uninit_with(
        tmp: TempDir,
        options: Options,
        make: impl FnOnce(&Path) -> B,
    ) -> Self {
        let share = tmp.path().join("share");
        std::fs::create_dir(&share).unwrap();
        let meta = std::fs::metadata(&share).unwrap();
        let fs = make(&share);
        Fixture {
            _tmp: tmp,
            share,
            server: Arc::new(Server::new(fs, options)),
            next: Arc::new(AtomicU64::new(2)),
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }

    /// A host path inside the share.
    pub(super) fn path(&self, rel: &str) -> PathBuf {
        self.share.join(rel)
    }

    /// Writes a host file inside the share.
    pub(super) fn put(&self, rel: &str, data: &[u8]) {
        std::fs::write(self.path(rel), data).unwrap();
    }

    /// A fresh request header for `nodeid`, as the caller the share belongs to.
    pub(super) fn header(&self, nodeid: u64) -> InHeader {
        InHeader {
            unique: self.next.fetch_add(2, Ordering::Relaxed),
            nodeid,
            uid: self.uid,
            gid: self.gid,
            pid: 4242,
            ..InHeader::default()
        }
    }

    /// Sends `op` under `header`; the raw reply, if any.
    pub(super) fn send(&self, header: InHeader, op: Operation<'_>) -> Option<Vec<u8>> {
        let req = Request {
            header,
            op,
            extensions: &[],
        };
        let bytes = encode_request(&req).unwrap();
        self.server.handle(&bytes)
    }

    /// Sends `op` under `header`, which must be answered: its body, or its errno.
    pub(super) fn call_as(&self, header: InHeader, op: Operation<'_>) -> Result<Vec<u8>, i32> {
        let unique = header.unique;
        let reply = self.send(header, op).unwrap();
        outcome(&reply, unique)
    }

    /// Sends `op` about `nodeid`: its body, or its errno.
    pub(super) fn call(&self, nodeid: u64, op: Operation<'_>) -> Result<Vec<u8>, i32> {
        self.call_as(self.header(nodeid), op)
    }

    /// Sends `op`, which must succeed with a `T`.
    pub(super) fn ok<T: Wire>(&self, nodeid: u64, op: Operation<'_>) -> T {
        let body = self.ok_body(nodeid, op);
        T::from_bytes(&body).unwrap()
    }

    /// Sends `op`, which must succeed; its body.
    pub(super) fn ok_body(&self, nodeid: u64, op: Operation<'_>) -> Vec<u8> {
        let dbg = format!("{op:?}");
        match self.call(nodeid, op) {
            Ok(body) => body,
            Err(errno) => panic!("{dbg}: errno {errno}"),
        }
    }

    /// Sends `op`, which must fail; its errno.
    pub(super) fn err(&self, nodeid: u64, op: Operation<'_>) -> i32 {
        let dbg = format!("{op:?}");
        match self.call(nodeid, op) {
            Ok(body) => panic!("{dbg}: expected an error, got {} bytes", body.len()),
            Err(errno) => errno,
        }
    }

    /// LOOKUP, which must succeed.
    pub(super) fn lookup(&self, parent: u64, name: &str) -> EntryOut {
        self.ok(
            parent,
            Operation::Lookup {
                name: name.as_bytes(),
            },
        )
    }

    /// GETATTR of a node: its attributes or errno.
    pub(super) fn getattr(&self, node: u64) -> Result<Attr, i32> {
        self.call(node, Operation::Getattr(GetattrIn::default()))
            .map(|b| AttrOut::from_bytes(&b).unwrap().attr)
    }

    /// OPEN with `flags`, which must succeed; the fh.
    pub(super) fn open(&self, node: u64, flags: i32) -> u64 {
        let out: OpenOut = self.ok(
            node,
            Operation::Open(OpenIn {
                flags: flags as u32,
                open_flags: 0,
            }),
        );
        out.fh
    }

    /// Puts `rel` on the host, looks it up and opens it read-write: (nodeid, fh).
    pub(super) fn file_rw(&self, rel: &str, data: &[u8]) -> (u64, u64) {
        self.put(rel, data);
        let node = self.lookup(ROOT, rel).nodeid;
        (node, self.open(node, linux::O_RDWR))
    }

    /// CREATE in `parent`, which must succeed.
    pub(super) fn create(&self, parent: u64, name: &str, flags: i32, mode: u32) -> CreateOut {
        self.ok(
            parent,
            Operation::Create {
                arg: CreateIn {
                    flags: flags as u32,
                    mode,
                    umask: 0o022,
                    open_flags: 0,
                },
                name: name.as_bytes(),
            },
        )
    }

    /// READ of `size` bytes at `offset`: the data or errno.
    pub(super) fn read(&self, node: u64, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, i32> {
        self.call(
            node,
            Operation::Read(ReadIn {
                fh,
                offset,
                size,
                ..ReadIn::default()
            }),
        )
    }

    /// WRITE of `data` at `offset`: the count or errno.
    pub(super) fn write(&self, node: u64, fh: u64, offset: u64, data: &[u8]) -> Result<u32, i32> {
        self.call(
            node,
            Operation::Write {
                arg: WriteIn {
                    fh,
                    offset,
                    size: u32::try_from(data.len()).unwrap(),
                    ..WriteIn::default()
                },
                data,
            },
        )
        .map(|b| WriteOut::from_bytes(&b).unwrap().size)
    }

    /// RELEASE of `fh` (no flags): Ok or errno.
    pub(super) fn release(&self, node: u64, fh: u64) -> Result<(), i32> {
        self.call(
            node,
            Operation::Release(ReleaseIn {
                fh,
                ..ReleaseIn::default()
            }),
        )
        .map(drop)
    }

    /// FORGET (no reply).
    pub(super) fn forget(&self, node: u64, nlookup: u64) {
        let reply = self.send(self.header(node), Operation::Forget(ForgetIn { nlookup }));
        assert!(reply.is_none());
    }
}

/// A decoded reply to request `unique`: its body, or its errno.
pub(super) fn outcome(reply: &[u8], unique: u64) -> Result<Vec<u8>, i32> {
    let r = decode_reply(reply).unwrap();
    assert_eq!(r.header.unique, unique);
    match r.errno() {
        Some(errno) => Err(errno),
        None => Ok(r.body.to_vec()),
    }
}

#[test]
fn test_server_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Server<Passthrough>>();
    assert_send_sync::<Server<crate::backend::mapped::Mapped>>();
}
