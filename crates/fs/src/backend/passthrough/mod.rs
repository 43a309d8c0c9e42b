//! The passthrough backend: the share is a host directory, and the guest sees the host's own
//! ownership, modes, device numbers, link counts, xattrs and locks. The server runs as root on
//! a Linux host (as virtiofsd does); run unprivileged it still works, minus `chown`, device
//! nodes and `trusted.*` xattrs, which the host then refuses with its own errno.
//!
//! Confinement is described in [`confine`]: every name is one checked component resolved with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS)` beneath the O_PATH
//! descriptor of its parent node, and every operation on a node acts on that node's own
//! descriptor. A read-only share refuses every change with `EROFS` before touching the host.
//!
//! Special files (devices, FIFOs, sockets) can be created, stat-ed and removed, but not opened
//! through the server (`ENXIO`): a guest kernel handles I/O on them itself, and opening a device
//! node the guest made would hand the guest a host device.

pub(crate) mod confine;
pub(crate) mod handles;
pub(crate) mod internal;
mod io;
mod lock;
mod namespace;
pub(crate) mod nodes;
pub(crate) mod sys;
mod xattr;

#[cfg(test)]
pub(crate) mod tests;

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use self::confine::ProcFd;
use self::handles::{Handle, HandleTable};
use self::nodes::{Node, NodeTable};
use super::server_locks::{LockKeeping, ServerLocks};
use super::{
    Attr, Backend, DirEntry, Entry, Error, FlockOp, HandleId, Lock, NodeId, Result, SetAttr, StatFs,
};

/// How a passthrough share is served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Config {
    /// Refuse every change with `EROFS`.
    pub read_only: bool,
    /// Where byte-range and `flock` locks are kept.
    pub locks: LockKeeping,
}

/// A host directory served as it is (see the module doc).
#[derive(Debug)]
pub struct Passthrough {
    root: PathBuf,
    config: Config,
    proc: ProcFd,
    nodes: NodeTable,
    handles: HandleTable,
    server_locks: ServerLocks,
}

impl Passthrough {
    /// Serves directory `root` (a trusted host path, opened once; the guest never sees it).
    pub fn new(root: &Path, config: Config) -> Result<Self> {
        let path = std::ffi::CString::new(root.as_os_str().as_bytes())
            .map_err(|_| Error::refused(libc::EINVAL, "share root path contains NUL"))?;
        // SAFETY: a valid NUL-terminated path; the result is checked below.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(Error::last_os("open share root"));
        }
        // SAFETY: open returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let st = sys::stat_fd(std::os::fd::AsFd::as_fd(&fd))?;
        tracing::info!(
            root = %root.display(),
            read_only = config.read_only,
            locks = ?config.locks,
            "passthrough share"
        );
        Ok(Passthrough {
            root: root.to_path_buf(),
            config,
            proc: ProcFd::open()?,
            nodes: NodeTable::new(Node::new(fd, libc::S_IFDIR, sys::key_of(&st))),
            handles: HandleTable::default(),
            server_locks: ServerLocks::new(),
        })
    }

    /// The host directory being served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn node(&self, id: NodeId) -> Result<Arc<Node>> {
        self.nodes.get(id)
    }

    fn handle(&self, id: HandleId) -> Result<Arc<Handle>> {
        self.handles.get(id)
    }

    /// `EROFS` on a read-only share.
    fn writable(&self) -> Result<()> {
        if self.config.read_only {
            Err(Error::refused(libc::EROFS, "read-only share"))
        } else {
            Ok(())
        }
    }

    /// Makes `fd` (a new inode or name just resolved) a node with one lookup reference.
    fn enter(&self, fd: OwnedFd) -> Result<Entry> {
        let st = sys::stat_fd(std::os::fd::AsFd::as_fd(&fd))?;
        let node = self
            .nodes
            .insert(Node::new(fd, st.st_mode & libc::S_IFMT, sys::key_of(&st)));
        Ok(Entry {
            node,
            attr: sys::attr_of(&st),
        })
    }
}

impl Backend for Passthrough {
    fn lookup(&self, parent: NodeId, name: &[u8]) -> Result<Entry> {
        self.do_lookup(parent, name)
    }

    fn forget(&self, node: NodeId, count: u64) {
        self.nodes.forget(node, count);
    }

    fn getattr(&self, node: NodeId) -> Result<Attr> {
        let node = self.node(node)?;
        Ok(sys::attr_of(&sys::stat_fd(node.fd())?))
    }

    fn setattr(&self, node: NodeId, handle: Option<HandleId>, attr: &SetAttr) -> Result<Attr> {
        self.do_setattr(node, handle, attr)
    }

    fn open(&self, node: NodeId, flags: i32) -> Result<HandleId> {
        self.do_open(node, flags)
    }

    fn create(
        &self,
        parent: NodeId,
        name: &[u8],
        flags: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Entry, HandleId)> {
        self.do_create(parent, name, flags, mode, uid, gid)
    }

    fn read(&self, handle: HandleId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.do_read(handle, offset, buf)
    }

    fn write(&self, handle: HandleId, offset: u64, data: &[u8]) -> Result<usize> {
        self.do_write(handle, offset, data)
    }

    fn release(&self, handle: HandleId) -> Result<()> {
        let h = self.handles.remove(handle)?;
        if self.config.locks == LockKeeping::Server {
            self.server_locks.release(h.key, handle);
        }
        Ok(())
    }

    fn fsync(&self, handle: HandleId, datasync: bool) -> Result<()> {
        self.do_fsync(handle, datasync)
    }

    fn mkdir(&self, parent: NodeId, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Entry> {
        self.do_mknod(parent, name, libc::S_IFDIR | (mode & 0o7777), 0, uid, gid)
    }

    fn mknod(
        &self,
        parent: NodeId,
        name: &[u8],
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    ) -> Result<Entry> {
        if mode & libc::S_IFMT == libc::S_IFDIR {
            return Err(Error::refused(libc::EINVAL, "mknod of a directory"));
        }
        self.do_mknod(parent, name, mode, rdev, uid, gid)
    }

    fn symlink(
        &self,
        parent: NodeId,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Entry> {
        self.do_symlink(parent, name, target, uid, gid)
    }

    fn readlink(&self, node: NodeId) -> Result<Vec<u8>> {
        let node = self.node(node)?;
        if !node.is_symlink() {
            return Err(Error::refused(libc::EINVAL, "not a symlink"));
        }
        sys::readlink_fd(node.fd())
    }

    fn link(&self, node: NodeId, new_parent: NodeId, new_name: &[u8]) -> Result<Entry> {
        self.do_link(node, new_parent, new_name)
    }

    fn unlink(&self, parent: NodeId, name: &[u8]) -> Result<()> {
        self.do_remove(parent, name, 0)
    }

    fn rmdir(&self, parent: NodeId, name: &[u8]) -> Result<()> {
        self.do_remove(parent, name, libc::AT_REMOVEDIR)
    }

    fn rename(
        &self,
        old_parent: NodeId,
        old_name: &[u8],
        new_parent: NodeId,
        new_name: &[u8],
        flags: u32,
    ) -> Result<()> {
        self.do_rename(old_parent, old_name, new_parent, new_name, flags)
    }

    fn readdir(
        &self,
        handle: HandleId,
        offset: u64,
        add: &mut dyn FnMut(&DirEntry) -> bool,
    ) -> Result<()> {
        let handle = self.handle(handle)?;
        let _serial = handle.dir_lock.lock().unwrap_or_else(|e| e.into_inner());
        sys::read_dir(handle.fd(), offset, add)
    }

    fn statfs(&self, node: NodeId) -> Result<StatFs> {
        sys::statfs_fd(self.node(node)?.fd())
    }

    fn getxattr(&self, node: NodeId, name: &[u8]) -> Result<Vec<u8>> {
        self.do_getxattr(node, name)
    }

    fn setxattr(&self, node: NodeId, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        self.do_setxattr(node, name, value, flags)
    }

    fn listxattr(&self, node: NodeId) -> Result<Vec<u8>> {
        self.do_listxattr(node)
    }

    fn removexattr(&self, node: NodeId, name: &[u8]) -> Result<()> {
        self.do_removexattr(node, name)
    }

    fn fallocate(&self, handle: HandleId, mode: i32, offset: u64, len: u64) -> Result<()> {
        self.do_fallocate(handle, mode, offset, len)
    }

    fn lseek(&self, handle: HandleId, offset: i64, whence: i32) -> Result<u64> {
        self.do_lseek(handle, offset, whence)
    }

    fn copy_file_range(
        &self,
        handle_in: HandleId,
        offset_in: u64,
        handle_out: HandleId,
        offset_out: u64,
        len: u64,
        flags: u32,
    ) -> Result<usize> {
        self.do_copy_file_range(handle_in, offset_in, handle_out, offset_out, len, flags)
    }

    fn getlk(&self, handle: HandleId, lock: &Lock) -> Result<Lock> {
        self.do_getlk(handle, lock)
    }

    fn setlk(&self, handle: HandleId, lock: &Lock, wait: bool) -> Result<()> {
        self.do_setlk(handle, lock, wait)
    }

    fn flock(&self, handle: HandleId, op: FlockOp, wait: bool) -> Result<()> {
        self.do_flock(handle, op, wait)
    }
}
