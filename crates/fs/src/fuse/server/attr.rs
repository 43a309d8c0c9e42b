//! Attributes: GETATTR, SETATTR, STATFS and ACCESS.
//!
//! SETATTR changes mode, owner, size (through the request's handle when `FATTR_FH` names one,
//! as `ftruncate` does), and access and modification times (`FATTR_*_NOW` as the host's
//! current time). `FATTR_CTIME` is accepted and needs no action: no host call can set a change
//! time, and every other change in the request moves it anyway. `FATTR_LOCKOWNER` and
//! `FATTR_KILL_SUIDGID` (only sent with `HANDLE_KILLPRIV_V2`, not negotiated) are ignored.
//!
//! ACCESS checks the mode bits against the caller's fsuid and fsgid from the header, as the
//! kernel's `generic_permission` would without supplementary groups and ACLs (FUSE does not
//! send them): the owner's bits for the owner, the group's for the group, the others' for the
//! rest; root may read and write anything and execute what has an execute bit or is a
//! directory.

use super::{body, Reply, Server};
use crate::backend::{Backend, Error, Result, SetAttr, TimeSet, Timespec};
use crate::fuse::abi::{AccessIn, GetattrIn, InHeader, Kstatfs, SetattrIn};
use crate::fuse::consts::fattr::*;
use crate::fuse::consts::flags::FUSE_GETATTR_FH;
use crate::linux;

/// `R_OK | W_OK | X_OK`.
const ACCESS_BITS: u32 = 0o7;

/// One timestamp of a SETATTR.
fn time_set(valid: u32, set: u32, now: u32, sec: u64, nsec: u32) -> Result<TimeSet> {
    if valid & set == 0 {
        return Ok(TimeSet::Omit);
    }
    if valid & now != 0 {
        return Ok(TimeSet::Now);
    }
    if nsec >= 1_000_000_000 {
        return Err(Error::refused(linux::EINVAL, "nanoseconds out of range"));
    }
    // The kernel sends a signed time64_t in this unsigned field.
    Ok(TimeSet::At(Timespec {
        sec: sec as i64,
        nsec,
    }))
}

/// Whether a caller may access a node with these attributes as `mask` asks.
pub(super) fn may_access(uid: u32, gid: u32, mode: u32, owner: u32, group: u32, mask: u32) -> bool {
    if uid == 0 {
        let is_dir = mode & linux::S_IFMT == linux::S_IFDIR;
        return mask & linux::X_OK as u32 == 0 || is_dir || mode & 0o111 != 0;
    }
    let class = if uid == owner {
        mode >> 6
    } else if gid == group {
        mode >> 3
    } else {
        mode
    } & ACCESS_BITS;
    mask & !class == 0
}

impl<B: Backend> Server<B> {
    /// GETATTR of the header's node (with or without a handle: the node is what is asked).
    pub(super) fn getattr(&self, h: &InHeader, arg: &GetattrIn) -> Reply {
        if arg.getattr_flags & FUSE_GETATTR_FH != 0 {
            self.files.get(arg.fh)?;
        }
        let attr = self.backend.getattr(h.nodeid)?;
        Ok(body(&self.attr_out(&attr)))
    }

    /// SETATTR (see the module doc).
    pub(super) fn setattr(&self, h: &InHeader, arg: &SetattrIn) -> Reply {
        let v = arg.valid;
        let handle = if v & FATTR_FH != 0 {
            self.files.get(arg.fh)?;
            Some(arg.fh)
        } else {
            None
        };
        let set = SetAttr {
            mode: (v & FATTR_MODE != 0).then_some(arg.mode & 0o7777),
            uid: (v & FATTR_UID != 0).then_some(arg.uid),
            gid: (v & FATTR_GID != 0).then_some(arg.gid),
            size: (v & FATTR_SIZE != 0).then_some(arg.size),
            atime: time_set(v, FATTR_ATIME, FATTR_ATIME_NOW, arg.atime, arg.atimensec)?,
            mtime: time_set(v, FATTR_MTIME, FATTR_MTIME_NOW, arg.mtime, arg.mtimensec)?,
        };
        let attr = self.backend.setattr(h.nodeid, handle, &set)?;
        Ok(body(&self.attr_out(&attr)))
    }

    /// STATFS of the file system holding the header's node.
    pub(super) fn statfs(&self, h: &InHeader) -> Reply {
        let st = self.backend.statfs(h.nodeid)?;
        Ok(body(&Kstatfs {
            blocks: st.blocks,
            bfree: st.bfree,
            bavail: st.bavail,
            files: st.files,
            ffree: st.ffree,
            bsize: st.bsize,
            namelen: st.namelen,
            frsize: st.frsize,
            ..Kstatfs::default()
        }))
    }

    /// ACCESS (see the module doc).
    pub(super) fn access(&self, h: &InHeader, arg: &AccessIn) -> Reply {
        if arg.mask & !ACCESS_BITS != 0 {
            return Err(Error::refused(linux::EINVAL, "unknown access bits"));
        }
        let attr = self.backend.getattr(h.nodeid)?;
        if !may_access(h.uid, h.gid, attr.mode, attr.uid, attr.gid, arg.mask) {
            return Err(Error::refused(linux::EACCES, "mode bits deny access"));
        }
        Ok(Vec::new())
    }
}
