//! Open files: Tlopen, Tlcreate, Tread, Twrite, Tfsync.
//!
//! Tread and Twrite also serve the attribute fids of Txattrwalk and Txattrcreate (see
//! [`super::xattr`]). Reads are bounded by the negotiated msize; writes already are, by the
//! decoder.

use super::fids::{ebadf, lock_live, FidState, PathElem};
use super::{qid_of, Reply, Server};
use crate::backend::{Backend, Error, Result};
use crate::linux;
use crate::p9::consts::{max_read_count, open_flags as p9};
use crate::p9::rmessage::{Rfsync, Rlcreate, Rlopen, Rmessage, Rread, Rwrite};
use crate::p9::tmessage::{Tfsync, Tlcreate, Tlopen, Tread, Twrite};
use crate::p9::wire::Data;

/// `P9_DOTL_*` open flags and the Linux `O_*` flags they stand for (the same numbers on
/// x86-64 and arm64 Linux, converted one by one all the same).
const FLAG_MAP: &[(u32, i32)] = &[
    (p9::CREATE, linux::O_CREAT),
    (p9::EXCL, linux::O_EXCL),
    (p9::NOCTTY, linux::O_NOCTTY),
    (p9::TRUNC, linux::O_TRUNC),
    (p9::APPEND, linux::O_APPEND),
    (p9::NONBLOCK, linux::O_NONBLOCK),
    (p9::DSYNC, linux::O_DSYNC),
    (p9::FASYNC, linux::O_ASYNC),
    (p9::DIRECT, linux::O_DIRECT),
    (p9::LARGEFILE, linux::O_LARGEFILE),
    (p9::DIRECTORY, linux::O_DIRECTORY),
    (p9::NOFOLLOW, linux::O_NOFOLLOW),
    (p9::NOATIME, linux::O_NOATIME),
    (p9::CLOEXEC, linux::O_CLOEXEC),
    // P9_DOTL_SYNC is Linux's O_SYNC, which includes O_DSYNC's bit.
    (p9::SYNC, linux::O_SYNC),
];

/// Converts Tlopen/Tlcreate flags to Linux open flags. Unknown bits are ignored (the Linux
/// client passes only the flags it maps); the access mode `NOACCESS` is refused.
pub(super) fn open_flags(flags: u32) -> Result<i32> {
    let mut out = match flags & p9::ACCMODE {
        p9::RDONLY => linux::O_RDONLY,
        p9::WRONLY => linux::O_WRONLY,
        p9::RDWR => linux::O_RDWR,
        _ => return Err(Error::refused(linux::EINVAL, "open without read or write")),
    };
    for (bit, host) in FLAG_MAP {
        if flags & bit == *bit {
            out |= host;
        }
    }
    Ok(out)
}

impl<B: Backend> Server<B> {
    /// Tlopen: opens the file or directory the fid names.
    pub(super) fn lopen(&self, t: &Tlopen) -> Reply {
        let flags = open_flags(t.flags)?;
        let fid = self.fids.get(t.fid)?;
        let mut f = lock_live(&fid)?;
        if !matches!(f.state, FidState::Walked) {
            return Err(ebadf("fid already opened"));
        }
        let node = f.node()?;
        let qid = f.qid()?;
        let handle = self.backend.open(node, flags)?;
        f.state = FidState::Open { handle, flags };
        tracing::debug!(fid = t.fid, node, handle, flags, "lopen");
        Ok(Rmessage::Lopen(Rlopen { qid, iounit: 0 }))
    }

    /// Tlcreate: creates and opens a file in the directory the fid names; the fid then names
    /// the new, open file.
    pub(super) fn lcreate(&self, t: &Tlcreate) -> Reply {
        let flags = open_flags(t.flags)?;
        let fid = self.fids.get(t.fid)?;
        let mut f = lock_live(&fid)?;
        if !matches!(f.state, FidState::Walked) {
            return Err(ebadf("fid already opened"));
        }
        let parent = f.node()?;
        let name = t.name.as_bytes();
        let (entry, handle) =
            self.backend
                .create(parent, name, flags, t.mode & 0o7777, f.uid, t.gid)?;
        self.refs.adopt(&self.backend, entry.node);
        let qid = qid_of(&entry.attr);
        f.path.push(PathElem {
            node: entry.node,
            qid,
            name: name.to_vec(),
        });
        f.state = FidState::Open { handle, flags };
        tracing::debug!(fid = t.fid, node = entry.node, handle, "lcreate");
        Ok(Rmessage::Lcreate(Rlcreate { qid, iounit: 0 }))
    }

    /// Tread: at most the count asked and what an Rread under msize can carry.
    pub(super) fn read(&self, t: &Tread) -> Reply {
        let count = t.count.min(max_read_count(self.msize()));
        let count = usize::try_from(count).unwrap_or(0);
        let fid = self.fids.get(t.fid)?;
        let handle = {
            let f = lock_live(&fid)?;
            match &f.state {
                FidState::Open { handle, .. } => *handle,
                FidState::XattrRead(value) => {
                    let start = usize::try_from(t.offset)
                        .unwrap_or(usize::MAX)
                        .min(value.len());
                    let end = start.saturating_add(count).min(value.len());
                    let data = value.get(start..end).unwrap_or_default().to_vec();
                    return Ok(Rmessage::Read(Rread { data: Data(data) }));
                }
                _ => return Err(ebadf("read of a fid that is not open")),
            }
        };
        let mut buf = vec![0u8; count];
        let n = self.backend.read(handle, t.offset, &mut buf)?;
        buf.truncate(n);
        Ok(Rmessage::Read(Rread { data: Data(buf) }))
    }

    /// Twrite: to an open file, or into a Txattrcreate fid's value.
    pub(super) fn write(&self, t: &Twrite) -> Reply {
        let fid = self.fids.get(t.fid)?;
        let handle = {
            let mut f = lock_live(&fid)?;
            match &mut f.state {
                FidState::Open { handle, .. } => *handle,
                FidState::XattrWrite(w) => {
                    let n = write_at(&mut w.value, t.offset, &t.data.0)?;
                    return Ok(Rmessage::Write(Rwrite { count: n }));
                }
                _ => return Err(ebadf("write to a fid that is not open")),
            }
        };
        let n = self.backend.write(handle, t.offset, &t.data.0)?;
        let count = u32::try_from(n).map_err(|_| Error::refused(linux::EIO, "oversized write"))?;
        Ok(Rmessage::Write(Rwrite { count }))
    }

    /// Tfsync.
    pub(super) fn fsync(&self, t: &Tfsync) -> Reply {
        let handle = self.fids.with(t.fid, |f| f.handle())?;
        self.backend.fsync(handle, t.datasync != 0)?;
        Ok(Rmessage::Fsync(Rfsync))
    }
}

/// Copies `data` into a fixed-size attribute value at `offset`; bytes past the declared size
/// are not taken (`ENOSPC` if none fit).
fn write_at(value: &mut [u8], offset: u64, data: &[u8]) -> Result<u32> {
    let nospc = || Error::refused(linux::ENOSPC, "write past the declared xattr size");
    let start = usize::try_from(offset).map_err(|_| nospc())?;
    let room = value.len().checked_sub(start).ok_or_else(nospc)?;
    let n = data.len().min(room);
    if n == 0 && !data.is_empty() {
        return Err(nospc());
    }
    if let (Some(dst), Some(src)) = (value.get_mut(start..start + n), data.get(..n)) {
        dst.copy_from_slice(src);
    }
    u32::try_from(n).map_err(|_| nospc())
}
