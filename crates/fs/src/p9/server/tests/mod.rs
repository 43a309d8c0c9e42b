//! Tests of the 9P2000.L server: real request bytes, built with the wire encoders, against a
//! [`Passthrough`] backend over a temporary directory.

#![allow(clippy::unwrap_used)]

mod attrs;
mod io;
mod locks;
mod names;
mod session;
mod walk;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::TempDir;

use super::Server;
use crate::backend::passthrough::{Config, Passthrough};
use crate::p9::consts::{open_flags, NOFID};
use crate::p9::{
    decode_rmessage, encode_tmessage, Name, Qid, Rmessage, Tattach, Tclunk, Tlopen, Tmessage,
    Tversion, Twalk,
};

/// The msize the fixture negotiates.
pub(super) const MSIZE: u32 = 64 * 1024;
/// The fid the fixture attaches to the root.
pub(super) const ROOT: u32 = 0;

/// A server over a fresh temporary share, version negotiated and fid [`ROOT`] attached.
pub(super) struct Client {
    _tmp: TempDir,
    pub(super) share: PathBuf,
    pub(super) server: Arc<Server<Passthrough>>,
    next_tag: u16,
}

impl Client {
    pub(super) fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// A client of a passthrough backend configured by `config`.
    pub(super) fn with_config(config: Config) -> Self {
        let tmp = TempDir::new().unwrap();
        let share = tmp.path().join("share");
        std::fs::create_dir(&share).unwrap();
        let fs = Passthrough::new(&share, config).unwrap();
        let mut c = Client {
            _tmp: tmp,
            share,
            server: Arc::new(Server::new(fs)),
            next_tag: 1,
        };
        let reply = c.call(Tversion {
            msize: MSIZE,
            version: "9P2000.L".into(),
        });
        assert!(
            matches!(reply, Rmessage::Version(ref v) if v.msize == MSIZE),
            "{reply:?}"
        );
        c.attach(ROOT);
        c
    }

    /// A host path inside the share.
    pub(super) fn path(&self, rel: &str) -> PathBuf {
        self.share.join(rel)
    }

    /// The share directory.
    pub(super) fn share(&self) -> &Path {
        &self.share
    }

    /// Sends `msg` with a fresh tag; the reply, whose tag must match.
    pub(super) fn call(&mut self, msg: impl Into<Tmessage>) -> Rmessage {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1) % 0xfff0;
        call_tagged(&self.server, tag, msg.into())
    }

    /// Sends `msg`, which must succeed.
    pub(super) fn ok(&mut self, msg: impl Into<Tmessage>) -> Rmessage {
        let reply = self.call(msg);
        assert!(!matches!(reply, Rmessage::Lerror(_)), "{reply:?}");
        reply
    }

    /// Sends `msg`, which must fail; its errno.
    pub(super) fn err(&mut self, msg: impl Into<Tmessage>) -> i32 {
        match self.call(msg) {
            Rmessage::Lerror(e) => i32::try_from(e.ecode).unwrap(),
            other => panic!("expected Rlerror, got {other:?}"),
        }
    }

    pub(super) fn attach(&mut self, fid: u32) -> Qid {
        match self.ok(Tattach {
            fid,
            afid: NOFID,
            uname: "root".into(),
            aname: "".into(),
            n_uname: 0,
        }) {
            Rmessage::Attach(a) => a.qid,
            other => panic!("{other:?}"),
        }
    }

    /// A Twalk request.
    pub(super) fn twalk(fid: u32, newfid: u32, names: &[&str]) -> Twalk {
        Twalk {
            fid,
            newfid,
            wnames: names.iter().map(|n| name(n)).collect(),
        }
    }

    /// Walks, which must succeed completely; the qids.
    pub(super) fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Vec<Qid> {
        match self.ok(Self::twalk(fid, newfid, names)) {
            Rmessage::Walk(w) => {
                assert_eq!(w.wqids.len(), names.len());
                w.wqids
            }
            other => panic!("{other:?}"),
        }
    }

    /// Walks from the root to `newfid` and opens it with `flags`.
    pub(super) fn open(&mut self, newfid: u32, names: &[&str], flags: u32) {
        self.walk(ROOT, newfid, names);
        self.ok(Tlopen { fid: newfid, flags });
    }

    /// Opens a file read-write.
    pub(super) fn open_rw(&mut self, newfid: u32, names: &[&str]) {
        self.open(newfid, names, open_flags::RDWR);
    }

    pub(super) fn clunk(&mut self, fid: u32) {
        self.ok(Tclunk { fid });
    }
}

/// Encodes `msg` with `tag`, runs it through `server` and decodes the reply.
pub(super) fn call_tagged(server: &Server<Passthrough>, tag: u16, msg: Tmessage) -> Rmessage {
    let mut req = Vec::new();
    encode_tmessage(tag, &msg, &mut req).unwrap();
    let reply = server.handle(&req);
    let (rtag, reply) = decode_rmessage(&reply).unwrap();
    assert_eq!(rtag, tag);
    reply
}

/// A name from a literal.
pub(super) fn name(s: &str) -> Name {
    Name::try_from(s).unwrap()
}

/// The errno of an Rlerror.
pub(super) fn errno_of(reply: &Rmessage) -> Option<i32> {
    match reply {
        Rmessage::Lerror(e) => i32::try_from(e.ecode).ok(),
        _ => None,
    }
}
