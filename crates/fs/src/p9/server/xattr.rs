//! Extended attributes, the 9P2000.L way: a fid doubles as the attribute's buffer.
//!
//! - Txattrwalk `fid newfid name` reads attribute `name` of the file `fid` names (or, with an
//!   empty name, the NUL-separated list of names) into a new fid `newfid`, and answers with its
//!   size; the client then reads it with Tread and clunks `newfid`.
//! - Txattrcreate `fid name attr_size flags` turns `fid` itself into a write buffer of
//!   `attr_size` bytes (at most 64 KiB, Linux's `XATTR_SIZE_MAX`); the client writes the value
//!   with Twrite, and Tclunk sets it with `setxattr(name, value, flags)`, the Rclunk carrying
//!   its result. Bytes never written are zeros. A size of 0 removes the attribute (the Linux
//!   client sends `removexattr` this way; QEMU reads it the same way).

use super::fids::{ebadf, lock_live, FidInner, FidState, XattrWrite};
use super::{Reply, Server};
use crate::backend::{Backend, Error, NodeId, Result, XATTR_CREATE, XATTR_REPLACE};
use crate::linux;
use crate::p9::rmessage::{Rmessage, Rxattrcreate, Rxattrwalk};
use crate::p9::tmessage::{Txattrcreate, Txattrwalk};

/// Linux `XATTR_SIZE_MAX`: the largest value (and name list).
const XATTR_SIZE_MAX: u64 = 65536;

impl<B: Backend> Server<B> {
    /// Txattrwalk (see the module doc).
    pub(super) fn xattrwalk(&self, t: &Txattrwalk) -> Reply {
        let src = self.fids.get(t.fid)?;
        let (path, uid) = {
            let f = lock_live(&src)?;
            self.refs.hold_path(&f.path);
            (f.path.clone(), f.uid)
        };
        let node = path.last().map(|e| e.node);
        let value = match node {
            Some(node) if t.name.is_empty() => self.backend.listxattr(node),
            Some(node) => self.backend.getxattr(node, t.name.as_bytes()),
            None => Err(ebadf("fid has no path")),
        };
        let value = match value {
            Ok(value) => value,
            Err(e) => {
                self.refs.release_path(&self.backend, &path);
                return Err(e);
            }
        };
        let size = u64::try_from(value.len()).unwrap_or(u64::MAX);
        let mut inner = FidInner::new(path, uid);
        inner.state = FidState::XattrRead(value);
        self.fids.insert(t.newfid, inner).map_err(|inner| {
            self.refs.release_path(&self.backend, &inner.path);
            ebadf("newfid in use")
        })?;
        Ok(Rmessage::Xattrwalk(Rxattrwalk { size }))
    }

    /// Txattrcreate (see the module doc).
    pub(super) fn xattrcreate(&self, t: &Txattrcreate) -> Reply {
        if t.flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
            return Err(Error::refused(linux::EINVAL, "unknown xattr flags"));
        }
        if t.name.is_empty() {
            return Err(Error::refused(linux::EINVAL, "empty xattr name"));
        }
        if t.attr_size > XATTR_SIZE_MAX {
            return Err(Error::refused(linux::E2BIG, "xattr value too large"));
        }
        let size = usize::try_from(t.attr_size)
            .map_err(|_| Error::refused(linux::E2BIG, "xattr value too large"))?;
        let fid = self.fids.get(t.fid)?;
        let mut f = lock_live(&fid)?;
        if !matches!(f.state, FidState::Walked) {
            return Err(ebadf("xattrcreate on an opened fid"));
        }
        f.state = FidState::XattrWrite(XattrWrite {
            name: t.name.as_bytes().to_vec(),
            flags: t.flags,
            value: vec![0; size],
        });
        Ok(Rmessage::Xattrcreate(Rxattrcreate))
    }

    /// Sets (or, for an empty value, removes) the attribute a Txattrcreate fid collected.
    pub(super) fn commit_xattr(&self, node: NodeId, w: XattrWrite) -> Result<()> {
        if w.value.is_empty() {
            self.backend.removexattr(node, &w.name)
        } else {
            self.backend.setxattr(node, &w.name, &w.value, w.flags)
        }
    }
}
