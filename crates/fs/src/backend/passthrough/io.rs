//! Open files: open, create, read, write, fsync, fallocate, lseek, copy_file_range.
//!
//! Open flags are honoured as Linux defines them: `O_APPEND` (writes go to the end whatever the
//! offset: Linux `pwrite` on an `O_APPEND` descriptor appends), `O_TRUNC`, `O_SYNC`/`O_DSYNC`,
//! `O_NONBLOCK`, `O_NOATIME` (dropped if the host refuses it with `EPERM`), `O_DIRECTORY`, and
//! `O_EXCL` with create. `O_DIRECT` is best effort: it is set with `F_SETFL` after the open, left
//! off when the host file system does not support it, and cleared for good the first time an I/O
//! fails with `EINVAL` (guest buffers and offsets need not be aligned). `O_CREAT`, `O_NOFOLLOW`,
//! `O_NOCTTY`, `O_PATH` and `O_ASYNC` mean nothing for an already resolved node and are dropped.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::confine::{check_name, open_beneath};
use super::handles::Handle;
use super::internal::NewObject;
use super::nodes::Node;
use super::{sys, Passthrough};
use crate::backend::{Entry, Error, HandleId, NodeId, Result};

/// The open flags passed to the host (`O_DIRECT` is applied separately, see the module doc).
const PASSED_FLAGS: i32 = libc::O_ACCMODE
    | libc::O_APPEND
    | libc::O_TRUNC
    | libc::O_SYNC
    | libc::O_DSYNC
    | libc::O_NONBLOCK
    | libc::O_NOATIME
    | libc::O_DIRECTORY
    | libc::O_LARGEFILE;

/// Checks the access mode and refuses what a read-only share or a node type forbids.
fn host_flags(flags: i32, read_only: bool) -> Result<i32> {
    let access = flags & libc::O_ACCMODE;
    if access == libc::O_ACCMODE {
        return Err(Error::refused(libc::EINVAL, "bad access mode"));
    }
    if flags & libc::O_TMPFILE == libc::O_TMPFILE {
        return Err(Error::refused(libc::EOPNOTSUPP, "O_TMPFILE"));
    }
    if read_only && (access != libc::O_RDONLY || flags & libc::O_TRUNC != 0) {
        return Err(Error::refused(libc::EROFS, "read-only share"));
    }
    Ok(flags & PASSED_FLAGS)
}

/// Sets `O_DIRECT` on `fd` if the guest asked for it and the host file system allows it.
fn apply_direct(fd: BorrowedFd<'_>, flags: i32) {
    if flags & libc::O_DIRECT == 0 {
        return;
    }
    // SAFETY: fcntl on our own descriptor; no memory is touched.
    let cur = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    // SAFETY: as above.
    if cur < 0 || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, cur | libc::O_DIRECT) } < 0 {
        tracing::debug!("host file system refuses O_DIRECT; using buffered I/O");
    }
}

/// Clears `O_DIRECT` on `fd` if it is set; whether it was.
fn drop_direct(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: fcntl on our own descriptor; no memory is touched.
    let cur = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if cur < 0 || cur & libc::O_DIRECT == 0 {
        return false;
    }
    // SAFETY: as above.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, cur & !libc::O_DIRECT) >= 0 }
}

/// Runs an I/O call, retrying once without `O_DIRECT` if it failed with `EINVAL` because of it.
fn with_direct_fallback(
    fd: BorrowedFd<'_>,
    op: &'static str,
    mut f: impl FnMut() -> isize,
) -> Result<usize> {
    let mut n = f();
    if n < 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL)
        && drop_direct(fd)
    {
        n = f();
    }
    usize::try_from(n).map_err(|_| Error::last_os(op))
}

fn offset(v: u64) -> Result<libc::off_t> {
    libc::off_t::try_from(v).map_err(|_| Error::refused(libc::EINVAL, "offset beyond off_t"))
}

impl Passthrough {
    /// Re-opens a node's inode for I/O (through `/proc/self/fd`, see `confine`).
    fn open_node(&self, node: &Node, flags: i32) -> Result<OwnedFd> {
        match node.kind {
            libc::S_IFREG | libc::S_IFDIR => {}
            libc::S_IFLNK => return Err(Error::refused(libc::ELOOP, "open of a symlink")),
            _ => return Err(Error::refused(libc::ENXIO, "open of a special file")),
        }
        if node.is_dir() && flags & libc::O_ACCMODE != libc::O_RDONLY {
            return Err(Error::refused(libc::EISDIR, "directory opened for writing"));
        }
        match self.proc.reopen(node.fd(), flags) {
            Err(e) if e.errno() == libc::EPERM && flags & libc::O_NOATIME != 0 => {
                self.proc.reopen(node.fd(), flags & !libc::O_NOATIME)
            }
            other => other,
        }
    }

    pub(super) fn do_open(&self, id: NodeId, flags: i32) -> Result<HandleId> {
        let host = host_flags(flags, self.config.read_only)?;
        let node = self.node(id)?;
        let fd = self.open_node(&node, host)?;
        apply_direct(fd.as_fd(), flags);
        let handle = self.handles.insert(Handle::new(fd, node.key));
        tracing::debug!(node = id, handle, flags, "open");
        Ok(handle)
    }

    pub(super) fn do_create(
        &self,
        parent: NodeId,
        name: &[u8],
        flags: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Entry, HandleId)> {
        self.create_with(parent, name, flags, mode, |new| {
            self.settle_new(new.fd, mode, uid, gid)
        })
    }

    /// The body of `create`: creates `name` with host mode `mode` (or opens the existing file
    /// unless `O_EXCL`), and calls `on_new` only for a file it created, before the file becomes a
    /// node. An error from `on_new` is returned as it is (the caller decides what to undo).
    pub(crate) fn create_with(
        &self,
        parent: NodeId,
        name: &[u8],
        flags: i32,
        mode: u32,
        on_new: impl FnOnce(&NewObject<'_>) -> Result<()>,
    ) -> Result<(Entry, HandleId)> {
        self.writable()?;
        let cname = check_name(name)?;
        let host = host_flags(flags, false)? & !libc::O_DIRECTORY;
        let dir = self.node(parent)?;
        if !dir.is_dir() {
            return Err(Error::refused(libc::ENOTDIR, "create in a non-directory"));
        }
        // Create exclusively first, so that only a file we made gets the guest's owner and mode.
        let excl = host | libc::O_CREAT | libc::O_EXCL;
        let (fd, created) = match open_beneath(dir.fd(), &cname, excl, mode) {
            Ok(fd) => (fd, true),
            Err(e) if e.errno() == libc::EEXIST && flags & libc::O_EXCL == 0 => {
                // An existing name: resolve it without opening it (a FIFO would block), check
                // its type, then open that very inode.
                let path_fd = open_beneath(dir.fd(), &cname, libc::O_PATH, 0)?;
                let st = sys::stat_fd(path_fd.as_fd())?;
                let node = Node::new(path_fd, st.st_mode & libc::S_IFMT, sys::key_of(&st));
                if node.is_dir() {
                    return Err(Error::refused(libc::EISDIR, "create over a directory"));
                }
                (self.open_node(&node, host)?, false)
            }
            Err(e) => return Err(e),
        };
        if created {
            on_new(&NewObject {
                dir: dir.fd(),
                name: &cname,
                fd: fd.as_fd(),
                is_dir: false,
            })?;
        }
        apply_direct(fd.as_fd(), flags);
        let path_fd = self.proc.reopen(fd.as_fd(), libc::O_PATH)?;
        let entry = self.enter(path_fd)?;
        let key = sys::key_of(&sys::stat_fd(fd.as_fd())?);
        let handle = self.handles.insert(Handle::new(fd, key));
        tracing::debug!(parent, node = entry.node, handle, created, "create");
        Ok((entry, handle))
    }

    pub(super) fn do_read(&self, handle: HandleId, off: u64, buf: &mut [u8]) -> Result<usize> {
        let h = self.handle(handle)?;
        let off = offset(off)?;
        let fd = h.fd();
        with_direct_fallback(fd, "pread", || {
            // SAFETY: `buf` is writable for its length.
            unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), off) }
        })
    }

    pub(super) fn do_write(&self, handle: HandleId, off: u64, data: &[u8]) -> Result<usize> {
        self.writable()?;
        let h = self.handle(handle)?;
        let off = offset(off)?;
        let fd = h.fd();
        with_direct_fallback(fd, "pwrite", || {
            // SAFETY: `data` is readable for its length.
            unsafe { libc::pwrite(fd.as_raw_fd(), data.as_ptr().cast(), data.len(), off) }
        })
    }

    pub(super) fn do_fsync(&self, handle: HandleId, datasync: bool) -> Result<()> {
        let h = self.handle(handle)?;
        let fd = h.fd().as_raw_fd();
        // SAFETY: fsync/fdatasync on our own descriptor; no memory is touched.
        let ret = unsafe {
            if datasync {
                libc::fdatasync(fd)
            } else {
                libc::fsync(fd)
            }
        };
        sys::cvt(ret, "fsync")?;
        Ok(())
    }

    pub(super) fn do_fallocate(
        &self,
        handle: HandleId,
        mode: i32,
        off: u64,
        len: u64,
    ) -> Result<()> {
        self.writable()?;
        let h = self.handle(handle)?;
        // SAFETY: fallocate on our own descriptor; no memory is touched.
        let ret = unsafe { libc::fallocate(h.fd().as_raw_fd(), mode, offset(off)?, offset(len)?) };
        sys::cvt(ret, "fallocate")?;
        Ok(())
    }

    pub(super) fn do_lseek(&self, handle: HandleId, off: i64, whence: i32) -> Result<u64> {
        if !(libc::SEEK_SET..=libc::SEEK_HOLE).contains(&whence) {
            return Err(Error::refused(libc::EINVAL, "bad whence"));
        }
        let h = self.handle(handle)?;
        // SAFETY: lseek on our own descriptor; no memory is touched. Reads and writes use
        // pread/pwrite, so moving the file position disturbs nothing else.
        let ret = unsafe { libc::lseek(h.fd().as_raw_fd(), off, whence) };
        sys::cvt_size(ret, "lseek")
    }

    pub(super) fn do_copy_file_range(
        &self,
        handle_in: HandleId,
        offset_in: u64,
        handle_out: HandleId,
        offset_out: u64,
        len: u64,
        flags: u32,
    ) -> Result<usize> {
        self.writable()?;
        let src = self.handle(handle_in)?;
        let dst = self.handle(handle_out)?;
        let mut off_in = offset(offset_in)?;
        let mut off_out = offset(offset_out)?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        // SAFETY: both offsets are valid, writable locals; the descriptors are our own.
        let n = unsafe {
            libc::copy_file_range(
                src.fd().as_raw_fd(),
                &mut off_in,
                dst.fd().as_raw_fd(),
                &mut off_out,
                len,
                flags,
            )
        };
        let n = sys::cvt_size(n as i64, "copy_file_range")?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}
