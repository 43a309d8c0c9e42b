//! Names: LOOKUP, MKNOD, MKDIR, SYMLINK, LINK (each hands the kernel one lookup reference),
//! UNLINK, RMDIR, RENAME, RENAME2 and READLINK.
//!
//! New nodes belong to the caller's fsuid and fsgid from the request header, with the mode
//! the kernel sent less the umask it sent (see `init.rs` on umask). A missing name is answered
//! `ENOENT` as an error, never as a cached negative entry, since the host may create it at any
//! time. Which names are acceptable (`.`, `..`, `/`) is the backend's decision.

use super::{body, decode_dev, Reply, Server};
use crate::backend::Backend;
use crate::fuse::abi::{InHeader, LinkIn, MkdirIn, MknodIn};

/// `mode` less the permission bits `umask` clears; the file type bits are kept.
pub(super) fn apply_umask(mode: u32, umask: u32) -> u32 {
    mode & !(umask & 0o777)
}

impl<B: Backend> Server<B> {
    /// LOOKUP of `name` in the header's node.
    pub(super) fn lookup(&self, h: &InHeader, name: &[u8]) -> Reply {
        let entry = self.backend.lookup(h.nodeid, name)?;
        Ok(body(&self.entry_out(&entry)))
    }

    /// READLINK of the header's node.
    pub(super) fn readlink(&self, h: &InHeader) -> Reply {
        self.backend.readlink(h.nodeid)
    }

    /// SYMLINK: `name` in the header's node, pointing at `target`.
    pub(super) fn symlink(&self, h: &InHeader, name: &[u8], target: &[u8]) -> Reply {
        let entry = self.backend.symlink(h.nodeid, name, target, h.uid, h.gid)?;
        Ok(body(&self.entry_out(&entry)))
    }

    /// MKNOD: a FIFO, socket, device or regular file.
    pub(super) fn mknod(&self, h: &InHeader, arg: &MknodIn, name: &[u8]) -> Reply {
        let mode = apply_umask(arg.mode, arg.umask);
        let entry = self
            .backend
            .mknod(h.nodeid, name, mode, decode_dev(arg.rdev), h.uid, h.gid)?;
        Ok(body(&self.entry_out(&entry)))
    }

    /// MKDIR.
    pub(super) fn mkdir(&self, h: &InHeader, arg: &MkdirIn, name: &[u8]) -> Reply {
        let mode = apply_umask(arg.mode, arg.umask) & 0o7777;
        let entry = self.backend.mkdir(h.nodeid, name, mode, h.uid, h.gid)?;
        Ok(body(&self.entry_out(&entry)))
    }

    /// UNLINK.
    pub(super) fn unlink(&self, h: &InHeader, name: &[u8]) -> Reply {
        self.backend.unlink(h.nodeid, name)?;
        Ok(Vec::new())
    }

    /// RMDIR.
    pub(super) fn rmdir(&self, h: &InHeader, name: &[u8]) -> Reply {
        self.backend.rmdir(h.nodeid, name)?;
        Ok(Vec::new())
    }

    /// RENAME (`flags` 0) and RENAME2 (`RENAME_NOREPLACE`, `RENAME_EXCHANGE` go to the
    /// backend; anything else is the backend's `EINVAL`).
    pub(super) fn rename(
        &self,
        h: &InHeader,
        newdir: u64,
        old: &[u8],
        new: &[u8],
        flags: u32,
    ) -> Reply {
        self.backend.rename(h.nodeid, old, newdir, new, flags)?;
        Ok(Vec::new())
    }

    /// LINK: a new name `name` in the header's node for `arg.oldnodeid`.
    pub(super) fn link(&self, h: &InHeader, arg: &LinkIn, name: &[u8]) -> Reply {
        let entry = self.backend.link(arg.oldnodeid, h.nodeid, name)?;
        Ok(body(&self.entry_out(&entry)))
    }
}
