//! Attributes: Tgetattr, Tsetattr, Tstatfs, Treadlink.

use super::{qid_of, Reply, Server};
use crate::backend::{Backend, Error, Result, SetAttr, TimeSet, Timespec};
use crate::linux;
use crate::p9::consts::{getattr, max_read_count, setattr as valid};
use crate::p9::rmessage::{Rgetattr, Rmessage, Rreadlink, Rsetattr, Rstatfs};
use crate::p9::tmessage::{Tgetattr, Treadlink, Tsetattr, Tstatfs};

/// A time from Tsetattr: seconds as the two's-complement `i64` the client sent, nanoseconds
/// below one second.
fn timespec(sec: u64, nsec: u64) -> Result<Timespec> {
    let nsec = u32::try_from(nsec)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or_else(|| Error::refused(linux::EINVAL, "nanoseconds out of range"))?;
    Ok(Timespec {
        sec: i64::from_ne_bytes(sec.to_ne_bytes()),
        nsec,
    })
}

/// How one timestamp changes: untouched, now, or the given time.
fn time_set(v: u32, set: u32, given: u32, sec: u64, nsec: u64) -> Result<TimeSet> {
    if v & set == 0 {
        Ok(TimeSet::Omit)
    } else if v & given != 0 {
        Ok(TimeSet::At(timespec(sec, nsec)?))
    } else {
        Ok(TimeSet::Now)
    }
}

/// A signed time as the `u64` the wire carries.
fn wire_sec(sec: i64) -> u64 {
    u64::from_ne_bytes(sec.to_ne_bytes())
}

impl<B: Backend> Server<B> {
    /// Tgetattr: every basic field (mode through blocks, with the real link count); birth
    /// time, generation and data version are not reported.
    pub(super) fn getattr(&self, t: &Tgetattr) -> Reply {
        let node = self.fids.with(t.fid, |f| f.node())?;
        let a = self.backend.getattr(node)?;
        Ok(Rmessage::Getattr(Rgetattr {
            valid: getattr::BASIC,
            qid: qid_of(&a),
            mode: a.mode,
            uid: a.uid,
            gid: a.gid,
            nlink: a.nlink,
            rdev: a.rdev,
            size: a.size,
            blksize: a.blksize,
            blocks: a.blocks,
            atime_sec: wire_sec(a.atime.sec),
            atime_nsec: u64::from(a.atime.nsec),
            mtime_sec: wire_sec(a.mtime.sec),
            mtime_nsec: u64::from(a.mtime.nsec),
            ctime_sec: wire_sec(a.ctime.sec),
            ctime_nsec: u64::from(a.ctime.nsec),
            btime_sec: 0,
            btime_nsec: 0,
            gen: 0,
            data_version: 0,
        }))
    }

    /// Tsetattr: mode, owner, size and times as the valid bits say (`ATIME`/`MTIME` alone set
    /// the time to now, with `ATIME_SET`/`MTIME_SET` to the given time; `CTIME` alone changes
    /// nothing, since any other change moves ctime). A size change goes through the fid's
    /// open handle when it has one.
    pub(super) fn setattr(&self, t: &Tsetattr) -> Reply {
        let v = t.valid;
        let attr = SetAttr {
            mode: (v & valid::MODE != 0).then_some(t.mode & 0o7777),
            uid: (v & valid::UID != 0).then_some(t.uid),
            gid: (v & valid::GID != 0).then_some(t.gid),
            size: (v & valid::SIZE != 0).then_some(t.size),
            atime: time_set(v, valid::ATIME, valid::ATIME_SET, t.atime_sec, t.atime_nsec)?,
            mtime: time_set(v, valid::MTIME, valid::MTIME_SET, t.mtime_sec, t.mtime_nsec)?,
        };
        let (node, handle) = self
            .fids
            .with(t.fid, |f| Ok((f.node()?, f.handle().ok())))?;
        if attr != SetAttr::default() {
            self.backend.setattr(node, handle, &attr)?;
        }
        Ok(Rmessage::Setattr(Rsetattr))
    }

    /// Tstatfs. The block counts are in units of the fragment size, which is sent as the
    /// block size (as Linux's `statfs` reports `f_bsize` for them).
    pub(super) fn statfs(&self, t: &Tstatfs) -> Reply {
        let node = self.fids.with(t.fid, |f| f.node())?;
        let s = self.backend.statfs(node)?;
        let bsize = if s.frsize != 0 { s.frsize } else { s.bsize };
        Ok(Rmessage::Statfs(Rstatfs {
            ty: s.fs_type,
            bsize,
            blocks: s.blocks,
            bfree: s.bfree,
            bavail: s.bavail,
            files: s.files,
            ffree: s.ffree,
            fsid: s.fsid,
            namelen: s.namelen,
        }))
    }

    /// Treadlink: the target, which must fit an Rreadlink under msize.
    pub(super) fn readlink(&self, t: &Treadlink) -> Reply {
        let node = self.fids.with(t.fid, |f| f.node())?;
        let target = self.backend.readlink(node)?;
        let limit = usize::try_from(max_read_count(self.msize())).unwrap_or(usize::MAX);
        if target.len() > limit || target.len() > usize::from(u16::MAX) {
            return Err(Error::refused(linux::ENAMETOOLONG, "link target too long"));
        }
        Ok(Rmessage::Readlink(Rreadlink {
            target: target.into(),
        }))
    }
}
