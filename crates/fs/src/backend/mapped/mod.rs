//! The mapped backend: the server runs without privilege, and the guest's owner, group, mode
//! (file type included) and device numbers are metadata kept in extended attributes on the host
//! files, in the encoding WSL uses for its NTFS extended attributes.
//!
//! # Encoding
//!
//! | xattr (Linux host)  | NTFS EA (Windows host, later) | value                                      |
//! |---------------------|-------------------------------|--------------------------------------------|
//! | `user.LXUID`        | `$LXUID`                      | `u32` little-endian: the guest `st_uid`    |
//! | `user.LXGID`        | `$LXGID`                      | `u32` little-endian: the guest `st_gid`    |
//! | `user.LXMOD`        | `$LXMOD`                      | `u32` little-endian: the guest `st_mode`, file type (`S_IFMT`) included |
//! | `user.LXDEV`        | `$LXDEV`                      | two `u32` little-endian, major then minor (8 bytes): the guest `st_rdev` |
//!
//! Values of another length are ignored (as if absent). `LXDEV` is written for character and
//! block devices only, and read only when `LXMOD` says the file is one. Each attribute stands
//! alone: a host file without some of them (data that was there before, or that another tool
//! wrote) shows the host's own value for what is missing, so a plain host tree is served as
//! it is.
//!
//! # Host objects
//!
//! Every object the guest makes is a regular file or a directory owned by the server's user,
//! host mode `0600` (directories `0700`), so an unprivileged server can always open, read and
//! write it whatever mode the guest gives it. The guest's mode lives in `LXMOD` only:
//!
//! - `mknod` of a FIFO, socket, character or block device makes an empty regular file whose
//!   `LXMOD` carries the type and whose `LXDEV` carries the device number;
//! - `symlink` makes a regular file whose contents are the target (at most `PATH_MAX - 1`
//!   bytes) and whose `LXMOD` is `S_IFLNK | 0777`; `readlink` reads it, `getattr` reports its
//!   size, which is the target's length;
//! - hard links share the inode and therefore the metadata;
//! - a new object takes the caller's uid and gid (a set-group-id directory passes on its group,
//!   and its set-group-id bit to subdirectories, as Linux does). It is made, then its xattrs
//!   are set; if setting them fails it is removed again and the error returned, so no object
//!   without its metadata is left behind. The guest kernel holds the parent directory locked
//!   while it creates, so the guest cannot see the object before its metadata is complete.
//!
//! A host directory is always a directory and a host regular file never is one, whatever an
//! `LXMOD` says. Host symlinks and special files that were there before are shown as they are
//! (a host symlink reads with the host's `readlink`); they cannot carry user xattrs, so
//! `chmod`/`chown` of them fails with `EOPNOTSUPP` (unless nothing would change).
//!
//! # Operations
//!
//! `setattr`: mode, uid and gid are written to the xattrs only, never to the host inode, so
//! `chown` needs no privilege; setting the mode keeps the file type. Size and times go to the
//! host. Permission checks are the guest kernel's (`default_permissions`): the backend checks no
//! modes. Special files are never opened as such: a guest kernel does I/O on FIFOs and devices
//! itself, and an open that still reaches the backend opens the regular host file; an open of a
//! mapped symlink is `ELOOP`, as for a real one. `readdir` reports the guest's type in `d_type`.
//! Namespace operations, I/O, locks, `statfs`, and the confinement beneath the share root are
//! the [`Passthrough`] backend's, which this one wraps.
//!
//! # Extended attributes
//!
//! The guest's own xattrs pass through to the host, except that the four metadata names are
//! reserved: `listxattr` omits them, `getxattr` answers `ENODATA`, `setxattr` and `removexattr`
//! answer `EPERM`. POSIX ACLs (`system.posix_acl_access`, `system.posix_acl_default`) cannot be
//! set (`EOPNOTSUPP`, which guests read as "no ACL support"): the host would evaluate them
//! against host ids and rewrite the host mode, which must stay the server's. The share root's
//! file system must support user xattrs: [`Mapped::new`] probes it and fails with a clear error
//! (`EOPNOTSUPP`) if it does not.

mod attr;
mod create;
mod dir;
mod meta;
mod xattr;

#[cfg(test)]
mod tests;

use std::path::Path;
#[cfg(test)]
use std::sync::atomic::{AtomicBool, Ordering};

use self::meta::Meta;
pub use self::meta::{XATTR_DEV, XATTR_GID, XATTR_MODE, XATTR_UID};
use super::passthrough::{self, Passthrough};
use super::{
    Attr, Backend, DirEntry, Entry, FlockOp, HandleId, Lock, NodeId, Result, SetAttr, StatFs,
    ROOT_NODE,
};

/// The host mode of every regular file the guest makes.
const HOST_FILE_MODE: u32 = 0o600;
/// The host mode of every directory the guest makes.
const HOST_DIR_MODE: u32 = 0o700;

/// How a mapped share is served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Config {
    /// Refuse every change with `EROFS`.
    pub read_only: bool,
    /// Where byte-range and `flock` locks are kept.
    pub locks: super::server_locks::LockKeeping,
}

/// A host directory whose guest ownership, modes and device numbers are kept in xattrs (see the
/// module doc).
#[derive(Debug)]
pub struct Mapped {
    inner: Passthrough,
    /// Makes the next metadata writes fail (tests of the clean-up path).
    #[cfg(test)]
    fail_meta: AtomicBool,
}

impl Mapped {
    /// Serves directory `root` (a trusted host path, opened once; the guest never sees it).
    /// Fails with `EOPNOTSUPP` if its file system does not store user xattrs.
    pub fn new(root: &Path, config: Config) -> Result<Self> {
        let inner = Passthrough::new(
            root,
            passthrough::Config {
                read_only: config.read_only,
                locks: config.locks,
            },
        )?;
        meta::probe(inner.node_of(ROOT_NODE)?.fd())?;
        tracing::info!(root = %root.display(), read_only = config.read_only, "mapped share");
        Ok(Mapped {
            inner,
            #[cfg(test)]
            fail_meta: AtomicBool::new(false),
        })
    }

    /// The host directory being served.
    pub fn root(&self) -> &Path {
        self.inner.root()
    }

    /// Writes metadata to a new or existing inode (the one place that does, so tests can make
    /// it fail).
    fn write_meta(&self, fd: std::os::fd::BorrowedFd<'_>, meta: &Meta) -> Result<()> {
        #[cfg(test)]
        if self.fail_meta.load(Ordering::Relaxed) {
            return Err(super::Error::refused(
                libc::EIO,
                "metadata write failure injected",
            ));
        }
        meta::write(fd, meta)
    }

    /// The guest's view of an entry the passthrough layer just made or found. On failure the
    /// lookup reference it carries is dropped.
    fn overlay_entry(&self, entry: Entry) -> Result<Entry> {
        let read = self
            .inner
            .node_of(entry.node)
            .and_then(|n| meta::read(n.fd(), n.kind));
        match read {
            Ok(m) => Ok(Entry {
                node: entry.node,
                attr: meta::overlay(entry.attr, &m),
            }),
            Err(e) => {
                self.inner.forget(entry.node, 1);
                Err(e)
            }
        }
    }
}

impl Backend for Mapped {
    fn lookup(&self, parent: NodeId, name: &[u8]) -> Result<Entry> {
        let entry = self.inner.lookup(parent, name)?;
        self.overlay_entry(entry)
    }

    fn forget(&self, node: NodeId, count: u64) {
        self.inner.forget(node, count);
    }

    fn getattr(&self, node: NodeId) -> Result<Attr> {
        self.do_getattr(node)
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
        self.inner.read(handle, offset, buf)
    }

    fn write(&self, handle: HandleId, offset: u64, data: &[u8]) -> Result<usize> {
        self.inner.write(handle, offset, data)
    }

    fn release(&self, handle: HandleId) -> Result<()> {
        self.inner.release(handle)
    }

    fn fsync(&self, handle: HandleId, datasync: bool) -> Result<()> {
        self.inner.fsync(handle, datasync)
    }

    fn mkdir(&self, parent: NodeId, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Entry> {
        self.do_mkdir(parent, name, mode, uid, gid)
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
        self.do_readlink(node)
    }

    fn link(&self, node: NodeId, new_parent: NodeId, new_name: &[u8]) -> Result<Entry> {
        let entry = self.inner.link(node, new_parent, new_name)?;
        self.overlay_entry(entry)
    }

    fn unlink(&self, parent: NodeId, name: &[u8]) -> Result<()> {
        self.inner.unlink(parent, name)
    }

    fn rmdir(&self, parent: NodeId, name: &[u8]) -> Result<()> {
        self.inner.rmdir(parent, name)
    }

    fn rename(
        &self,
        old_parent: NodeId,
        old_name: &[u8],
        new_parent: NodeId,
        new_name: &[u8],
        flags: u32,
    ) -> Result<()> {
        self.inner
            .rename(old_parent, old_name, new_parent, new_name, flags)
    }

    fn readdir(
        &self,
        handle: HandleId,
        offset: u64,
        add: &mut dyn FnMut(&DirEntry) -> bool,
    ) -> Result<()> {
        self.do_readdir(handle, offset, add)
    }

    fn statfs(&self, node: NodeId) -> Result<StatFs> {
        self.inner.statfs(node)
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
        self.inner.fallocate(handle, mode, offset, len)
    }

    fn lseek(&self, handle: HandleId, offset: i64, whence: i32) -> Result<u64> {
        self.inner.lseek(handle, offset, whence)
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
        self.inner
            .copy_file_range(handle_in, offset_in, handle_out, offset_out, len, flags)
    }

    fn getlk(&self, handle: HandleId, lock: &Lock) -> Result<Lock> {
        self.inner.getlk(handle, lock)
    }

    fn setlk(&self, handle: HandleId, lock: &Lock, wait: bool) -> Result<()> {
        self.inner.setlk(handle, lock, wait)
    }

    fn flock(&self, handle: HandleId, op: FlockOp, wait: bool) -> Result<()> {
        self.inner.flock(handle, op, wait)
    }
}
