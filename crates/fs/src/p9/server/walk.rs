//! Twalk: walks a fid by up to 16 names to a new (or the same) fid.
//!
//! `.` and `..` are answered by the server from the fid's path of nodes and are never asked of
//! the backend; `..` at the share root stays at the root. Any other element containing `/` or
//! NUL, or empty, is refused with `EINVAL` before anything is walked. A walk stops at the first
//! element that fails: if that is the first, the reply is the error; otherwise Rwalk carries
//! the qids walked so far and `newfid` is not created (9P semantics).
//!
//! The path is the one the fid was walked along: if a directory on it is renamed or moved by
//! another fid, `..` still answers with the directory the fid came through.

use super::fids::{ebadf, lock_live, FidInner, FidState, PathElem};
use super::{qid_of, Reply, Server};
use crate::backend::{Backend, Error, Result};
use crate::linux;
use crate::p9::rmessage::{Rmessage, Rwalk};
use crate::p9::tmessage::Twalk;
use crate::p9::wire::Name;

/// Refuses walk elements that are not one path component (`.` and `..` are allowed).
fn check_walk_name(name: &Name) -> Result<()> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.contains(&b'/') || bytes.contains(&0) {
        return Err(Error::refused(
            linux::EINVAL,
            "walk element is not one component",
        ));
    }
    Ok(())
}

impl<B: Backend> Server<B> {
    /// Twalk (see the module doc).
    pub(super) fn walk(&self, t: &Twalk) -> Reply {
        t.wnames.iter().try_for_each(check_walk_name)?;
        let src = self.fids.get(t.fid)?;
        // Copy the source path and hold its nodes while the source fid cannot be clunked.
        let (mut path, uid) = {
            let f = lock_live(&src)?;
            if t.newfid == t.fid && !matches!(f.state, FidState::Walked) {
                return Err(ebadf("walk of an opened fid onto itself"));
            }
            self.refs.hold_path(&f.path);
            (f.path.clone(), f.uid)
        };
        let mut wqids = Vec::with_capacity(t.wnames.len());
        let mut failure = None;
        for name in &t.wnames {
            match self.step(&mut path, name.as_bytes()) {
                Ok(qid) => wqids.push(qid),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failure {
            self.refs.release_path(&self.backend, &path);
            if wqids.is_empty() {
                return Err(e);
            }
            tracing::trace!(fid = t.fid, walked = wqids.len(), "partial walk");
            return Ok(Rmessage::Walk(Rwalk { wqids }));
        }
        self.install(t, path, uid)?;
        Ok(Rmessage::Walk(Rwalk { wqids }))
    }

    /// Walks one element, extending or shortening `path`; the qid reached.
    fn step(&self, path: &mut Vec<PathElem>, name: &[u8]) -> Result<crate::p9::wire::Qid> {
        let last = path.last().ok_or_else(|| ebadf("fid has no path"))?;
        match name {
            b"." => Ok(last.qid),
            b".." => {
                if path.len() > 1 {
                    if let Some(gone) = path.pop() {
                        self.refs.release(&self.backend, gone.node);
                    }
                }
                path.last()
                    .map(|e| e.qid)
                    .ok_or_else(|| ebadf("fid has no path"))
            }
            _ => {
                let entry = self.backend.lookup(last.node, name)?;
                self.refs.adopt(&self.backend, entry.node);
                let qid = qid_of(&entry.attr);
                path.push(PathElem {
                    node: entry.node,
                    qid,
                    name: name.to_vec(),
                });
                Ok(qid)
            }
        }
    }

    /// Makes `path` (whose nodes are held) the path of `newfid`.
    fn install(&self, t: &Twalk, path: Vec<PathElem>, uid: u32) -> Result<()> {
        if t.newfid != t.fid {
            return self
                .fids
                .insert(t.newfid, FidInner::new(path, uid))
                .map_err(|inner| {
                    self.refs.release_path(&self.backend, &inner.path);
                    ebadf("newfid in use")
                });
        }
        let fid = match self.fids.get(t.fid) {
            Ok(fid) => fid,
            Err(e) => {
                self.refs.release_path(&self.backend, &path);
                return Err(e);
            }
        };
        let old = match lock_live(&fid) {
            Ok(mut f) if matches!(f.state, FidState::Walked) => {
                std::mem::replace(&mut f.path, path)
            }
            Ok(_) => {
                self.refs.release_path(&self.backend, &path);
                return Err(ebadf("fid was opened during the walk"));
            }
            Err(e) => {
                self.refs.release_path(&self.backend, &path);
                return Err(e);
            }
        };
        self.refs.release_path(&self.backend, &old);
        Ok(())
    }
}
