//! Session requests: Tversion, Tauth, Tattach, Tflush, Tclunk.

use std::sync::atomic::Ordering;

use super::fids::{ebadf, lock, Fid, FidInner, FidState, PathElem};
use super::{qid_of, Reply, Server, MIN_MSIZE};
use crate::backend::{Backend, Error, Result, ROOT_NODE};
use crate::linux;
use crate::p9::consts::{NOFID, NONUNAME, VERSION_9P2000_L, VERSION_UNKNOWN};
use crate::p9::rmessage::{Rattach, Rclunk, Rflush, Rmessage, Rversion};
use crate::p9::tmessage::{Tattach, Tauth, Tclunk, Tflush, Tversion};

/// The owner of files created by a fid attached without a numeric user (`nobody`).
const NOBODY: u32 = 65534;

impl<B: Backend> Server<B> {
    /// Tversion: negotiates msize (the smaller of the client's and the server's largest) and
    /// resets the session: every running request is cancelled, every fid clunked and every
    /// lock owner's handle released (with its locks).
    pub(super) fn version(&self, t: &Tversion) -> Reply {
        self.flight.cancel_all();
        self.clunk_all();
        let msize = t.msize.min(self.max_msize);
        if t.version.as_bytes() != VERSION_9P2000_L || msize < MIN_MSIZE {
            tracing::info!(client_msize = t.msize, "9P version refused");
            return Ok(Rmessage::Version(Rversion {
                msize,
                version: VERSION_UNKNOWN.into(),
            }));
        }
        self.msize.store(msize, Ordering::Release);
        tracing::debug!(msize, "9P session started");
        Ok(Rmessage::Version(Rversion {
            msize,
            version: VERSION_9P2000_L.into(),
        }))
    }

    /// Tauth: authentication is not offered (`EOPNOTSUPP`, as QEMU answers).
    pub(super) fn auth(&self, _t: &Tauth) -> Reply {
        Err(Error::refused(
            linux::EOPNOTSUPP,
            "9P authentication is not supported",
        ))
    }

    /// Tattach: binds a new fid to the share root.
    pub(super) fn attach(&self, t: &Tattach) -> Reply {
        if t.afid != NOFID {
            return Err(ebadf("no authentication fids exist"));
        }
        let qid = qid_of(&self.backend.getattr(ROOT_NODE)?);
        let uid = if t.n_uname == NONUNAME {
            NOBODY
        } else {
            t.n_uname
        };
        let root = PathElem {
            node: ROOT_NODE,
            qid,
            name: Vec::new(),
        };
        self.fids
            .insert(t.fid, FidInner::new(vec![root], uid))
            .map_err(|_| ebadf("fid in use"))?;
        tracing::debug!(fid = t.fid, uid, "attach");
        Ok(Rmessage::Attach(Rattach { qid }))
    }

    /// Tflush: see the module documentation.
    pub(super) fn flush(&self, t: &Tflush) -> Reply {
        self.flight.flush(t.oldtag);
        Ok(Rmessage::Flush(Rflush))
    }

    /// Tclunk: forgets the fid, giving its handle and nodes back; a Txattrcreate fid sets its
    /// attribute now, and a failure to do so is the reply (the fid is gone either way).
    pub(super) fn clunk(&self, t: &Tclunk) -> Reply {
        let fid = self
            .fids
            .remove(t.fid)
            .ok_or_else(|| ebadf("unknown fid"))?;
        self.release_fid(t.fid, &fid)?;
        Ok(Rmessage::Clunk(Rclunk))
    }

    /// Releases everything fid `num`, taken out of the table, holds; a lock owner that locked
    /// on its node only through this fid is ended (see `lock.rs`).
    pub(super) fn release_fid(&self, num: u32, fid: &Fid) -> Result<()> {
        let (path, state) = {
            let mut f = lock(fid);
            if f.clunked {
                return Ok(());
            }
            f.clunked = true;
            (
                std::mem::take(&mut f.path),
                std::mem::replace(&mut f.state, FidState::Walked),
            )
        };
        let result = match state {
            FidState::Open { handle, .. } => {
                let released = self.backend.release(handle);
                if let Some(last) = path.last() {
                    self.locks.fid_closed(&self.backend, last.node, num);
                }
                released
            }
            FidState::XattrWrite(w) => match path.last() {
                Some(last) => self.commit_xattr(last.node, w),
                None => Ok(()),
            },
            FidState::Walked | FidState::XattrRead(_) => Ok(()),
        };
        self.refs.release_path(&self.backend, &path);
        result
    }

    /// Clunks every fid (Tversion), discarding pending attribute writes.
    fn clunk_all(&self) {
        for (num, fid) in self.fids.drain() {
            {
                let mut f = lock(&fid);
                if matches!(f.state, FidState::XattrWrite(_)) {
                    f.state = FidState::Walked;
                }
            }
            if let Err(e) = self.release_fid(num, &fid) {
                tracing::debug!(errno = e.errno(), "release during session reset failed");
            }
        }
        // Every owner has been ended with the last of its fids; this catches any other.
        self.locks.clear(&self.backend);
    }
}
