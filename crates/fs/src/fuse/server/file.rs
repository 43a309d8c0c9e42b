//! Open files: OPEN, CREATE, READ, WRITE, FLUSH, RELEASE (and RELEASEDIR), FSYNC (and
//! FSYNCDIR), FALLOCATE, LSEEK and COPY_FILE_RANGE.
//!
//! OPEN passes the guest's open flags to the backend, less `O_CREAT`, `O_EXCL` and `O_NOCTTY`
//! (meaningless for a node already looked up); `O_TRUNC` is applied at open, as
//! `ATOMIC_O_TRUNC` promises. CREATE passes `O_EXCL` on, so an exclusive create of an existing
//! name is `EEXIST`. Replies set no `FOPEN_*` flag: the guest's page cache is dropped at each
//! open, which keeps close-to-open consistency with a host that changes files too.
//!
//! READ asks the backend for at most the session's `max_read` bytes (what the kernel can ask
//! for; only a hostile request is cut short). LSEEK takes `SEEK_SET`, `SEEK_END`, `SEEK_DATA`
//! and `SEEK_HOLE`; `SEEK_CUR` has no meaning for the server's handle and is `EINVAL`.
//! COPY_FILE_RANGE copies at most [`MAX_COPY`] bytes per request (the reply's count is 32
//! bits; the caller sees a short copy and continues).
//!
//! FLUSH and RELEASE also end POSIX locks: see `lock.rs`.

use super::entry::apply_umask;
use super::files::OpenFile;
use super::{body, Reply, Server, Session};
use crate::backend::{Backend, Error};
use crate::fuse::abi::{
    CopyFileRangeIn, CreateIn, CreateOut, FallocateIn, FlushIn, FsyncIn, InHeader, LseekIn,
    LseekOut, OpenIn, OpenOut, ReadIn, ReleaseIn, WriteIn, WriteOut,
};
use crate::fuse::consts::flags::{
    FUSE_FSYNC_FDATASYNC, FUSE_RELEASE_FLOCK_UNLOCK, FUSE_RELEASE_FLUSH,
};
use crate::linux;

/// The most COPY_FILE_RANGE copies in one request (4 GiB less 4 KiB: the reply's count is 32
/// bits).
pub const MAX_COPY: u64 = (u32::MAX - 0xfff) as u64;

/// Open flags that mean nothing for a node already looked up.
const DROPPED_FLAGS: i32 = linux::O_CREAT | linux::O_EXCL | linux::O_NOCTTY;

/// The guest's open flags as a Linux `int`.
fn open_flags(flags: u32) -> i32 {
    // The kernel sends the int bit pattern in an unsigned field.
    flags as i32
}

impl<B: Backend> Server<B> {
    /// OPEN of the header's node.
    pub(super) fn open(&self, h: &InHeader, arg: &OpenIn) -> Reply {
        let flags = open_flags(arg.flags) & !DROPPED_FLAGS;
        let fh = self.backend.open(h.nodeid, flags)?;
        self.files.insert(
            fh,
            OpenFile {
                node: h.nodeid,
                flags,
            },
        );
        Ok(body(&OpenOut {
            fh,
            ..OpenOut::default()
        }))
    }

    /// CREATE of regular file `name` in the header's node, opened.
    pub(super) fn create(&self, h: &InHeader, arg: &CreateIn, name: &[u8]) -> Reply {
        let flags = open_flags(arg.flags) & !(linux::O_CREAT | linux::O_NOCTTY);
        let mode = apply_umask(arg.mode, arg.umask) & 0o7777;
        let (entry, fh) = self
            .backend
            .create(h.nodeid, name, flags, mode, h.uid, h.gid)?;
        self.files.insert(
            fh,
            OpenFile {
                node: entry.node,
                flags: flags & !linux::O_EXCL,
            },
        );
        Ok(body(&CreateOut {
            entry: self.entry_out(&entry),
            open: OpenOut {
                fh,
                ..OpenOut::default()
            },
        }))
    }

    /// READ.
    pub(super) fn read(&self, arg: &ReadIn, s: Session) -> Reply {
        self.files.get(arg.fh)?;
        let size = arg.size.min(s.max_read);
        let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0)];
        let n = self.backend.read(arg.fh, arg.offset, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// WRITE (its size was bounded by `max_write` when it was decoded).
    pub(super) fn write(&self, arg: &WriteIn, data: &[u8]) -> Reply {
        self.files.get(arg.fh)?;
        let n = self.backend.write(arg.fh, arg.offset, data)?;
        Ok(body(&WriteOut {
            size: u32::try_from(n.min(data.len())).unwrap_or(0),
            ..WriteOut::default()
        }))
    }

    /// FLUSH: a file descriptor of `arg.lock_owner` was closed; its POSIX locks on the node
    /// end (see `lock.rs`). There is no data to flush: writes reach the host as they come.
    pub(super) fn flush(&self, arg: &FlushIn) -> Reply {
        let file = self.files.get(arg.fh)?;
        self.locks
            .drop_owner(&self.backend, file.node, arg.lock_owner);
        Ok(Vec::new())
    }

    /// RELEASE and RELEASEDIR: the handle is closed, with the locks that end with it (see
    /// `lock.rs`).
    pub(super) fn release(&self, arg: &ReleaseIn) -> Reply {
        let file = self.files.remove(arg.fh)?;
        if arg.release_flags & (FUSE_RELEASE_FLOCK_UNLOCK | FUSE_RELEASE_FLUSH) != 0 {
            self.locks
                .drop_owner(&self.backend, file.node, arg.lock_owner);
        }
        self.locks.release_fh(&self.backend, file.node, arg.fh);
        self.backend.release(arg.fh)?;
        Ok(Vec::new())
    }

    /// FSYNC and FSYNCDIR.
    pub(super) fn fsync(&self, arg: &FsyncIn) -> Reply {
        self.files.get(arg.fh)?;
        let datasync = arg.fsync_flags & FUSE_FSYNC_FDATASYNC != 0;
        self.backend.fsync(arg.fh, datasync)?;
        Ok(Vec::new())
    }

    /// FALLOCATE.
    pub(super) fn fallocate(&self, arg: &FallocateIn) -> Reply {
        self.files.get(arg.fh)?;
        let mode = i32::try_from(arg.mode)
            .map_err(|_| Error::refused(linux::EOPNOTSUPP, "unknown fallocate mode"))?;
        self.backend
            .fallocate(arg.fh, mode, arg.offset, arg.length)?;
        Ok(Vec::new())
    }

    /// LSEEK (see the module doc).
    pub(super) fn lseek(&self, arg: &LseekIn) -> Reply {
        self.files.get(arg.fh)?;
        let whence = match i32::try_from(arg.whence) {
            Ok(w @ (linux::SEEK_SET | linux::SEEK_END | linux::SEEK_DATA | linux::SEEK_HOLE)) => w,
            _ => return Err(Error::refused(linux::EINVAL, "unsupported whence")),
        };
        // The kernel sends a signed loff_t in this unsigned field.
        let offset = self.backend.lseek(arg.fh, arg.offset as i64, whence)?;
        Ok(body(&LseekOut { offset }))
    }

    /// COPY_FILE_RANGE from `fh_in` to `fh_out` (see the module doc).
    pub(super) fn copy_file_range(&self, arg: &CopyFileRangeIn) -> Reply {
        self.files.get(arg.fh_in)?;
        self.files.get(arg.fh_out)?;
        if arg.flags != 0 {
            return Err(Error::refused(linux::EINVAL, "copy_file_range flags"));
        }
        let len = arg.len.min(MAX_COPY);
        let n =
            self.backend
                .copy_file_range(arg.fh_in, arg.off_in, arg.fh_out, arg.off_out, len, 0)?;
        let n = u64::try_from(n).unwrap_or(u64::MAX).min(len);
        Ok(body(&WriteOut {
            size: u32::try_from(n).unwrap_or(0),
            ..WriteOut::default()
        }))
    }
}
