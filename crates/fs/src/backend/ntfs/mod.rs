//! The NTFS backend: a directory on an NTFS volume served with Linux semantics the way WSL
//! stores them (`crate::wsl`), over the NT calls of [`nt::Nt`] — the real ones on a Windows
//! host (`sys/windows.rs`), the in-memory [`fake::FakeNt`] in tests on every host.
//!
//! # Confinement
//!
//! Every name is one checked component, escaped ([`crate::wsl::name`]) and opened relative to
//! its parent's open handle with `FILE_OPEN_REPARSE_POINT`: no path string is ever built or
//! resolved again later, a reparse point (an NT symlink or junction pointing anywhere) is
//! opened itself and never followed, and `..` is refused before it reaches NTFS. Every node
//! holds its file open, and every operation on a node acts on that handle or on a handle
//! opened relative to it.
//!
//! # Metadata
//!
//! Owner, group, mode and device numbers are the `$LXUID`, `$LXGID`, `$LXMOD` and `$LXDEV` EAs
//! ([`crate::wsl::meta`]), written in the `NtCreateFile` EA buffer so a file is never seen
//! without them. A file without them (made by Windows) shows the share's [`Config`] owner,
//! mode `0755` for directories and `0644` for files, less the write bits when it is read-only.
//! An `$LXMOD` whose type disagrees with what NTFS says the file is, is ignored (as WSL does).
//! Symlinks are `LX_SYMLINK` reparse points, FIFOs, sockets and devices `LX_FIFO`, `AF_UNIX`,
//! `LX_CHR` and `LX_BLK` ones ([`crate::wsl::reparse`]); NT symlinks and junctions read as
//! symlinks. User xattrs are `LX.` EAs ([`crate::wsl::xattr`]). `st_ino` is the NTFS file id,
//! `st_nlink` the real link count (1 for directories, which NTFS does not count, as btrfs
//! reports them), `st_dev` the volume's.
//!
//! # Namespace
//!
//! Unlink and rename have POSIX semantics (the name goes at once; open handles keep the
//! file). `RENAME_NOREPLACE` is NTFS's own no-replace; `RENAME_EXCHANGE` cannot be atomic on
//! NTFS and is `EINVAL`. A rename over an empty directory removes it first (two steps, not
//! atomic). Directories the guest makes are made case-sensitive where the volume allows
//! (`FileCaseSensitiveInformation`); a lookup in a case-insensitive directory (one Windows
//! made) finds a name in any case, and the entry then has the case NTFS stored. New names
//! that are DOS device names (`CON`, `NUL`, `COM1`, ...) are refused with `EINVAL`, names
//! that are not UTF-8 with `EINVAL`.
//!
//! # Locks
//!
//! NTFS's byte-range locks are mandatory, per handle, and neither split nor merge, so POSIX
//! and `flock` locks are kept in the server ([`crate::backend::server_locks`]); Windows
//! processes on the host do not see them.

pub mod dirinfo;
pub mod fake;
pub mod nt;
pub mod sys;

mod attr;
mod dir;
mod io;
mod namespace;
mod xattr;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use self::nt::{access, Disposition, Nt, OpenRequest, Want};
use super::server_locks::{Access, ServerLocks};
use super::table::{HandleTable, Keyed, NodeTable};
use super::{
    Attr, Backend, DirEntry, Entry, Error, FlockOp, HandleId, Lock, NodeId, Result, SetAttr, StatFs,
};
use crate::linux;
use crate::wsl::name;

/// How an NTFS share is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Refuse every change with `EROFS`.
    pub read_only: bool,
    /// The owner shown for files without `$LXUID`.
    pub uid: u32,
    /// The group shown for files without `$LXGID`.
    pub gid: u32,
    /// Make the directories the guest creates case-sensitive.
    pub case_sensitive_dirs: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            read_only: false,
            uid: 0,
            gid: 0,
            case_sensitive_dirs: true,
        }
    }
}

/// A looked-up file: its handle (attributes and EAs only) and identity.
#[derive(Debug)]
struct Node<F> {
    file: F,
    /// (volume serial, file id).
    key: (u64, u64),
}

impl<F> Keyed for Node<F> {
    fn key(&self) -> (u64, u64) {
        self.key
    }
}

/// An open file or directory.
#[derive(Debug)]
struct Handle<F> {
    file: F,
    key: (u64, u64),
    access: Access,
    append: bool,
    /// A directory's listing, taken when it is read from offset 0 (see `dir.rs`).
    listing: Mutex<Option<Arc<Vec<DirEntry>>>>,
}

impl<F> Keyed for Handle<F> {
    fn key(&self) -> (u64, u64) {
        self.key
    }
}

/// The access a node's own handle has: enough to stat it and read its EAs.
const NODE_ACCESS: u32 = access::READ_ATTRIBUTES | access::READ_EA | access::SYNCHRONIZE;

/// An NTFS directory served (see the module doc).
#[derive(Debug)]
pub struct Ntfs<N: Nt> {
    nt: N,
    config: Config,
    nodes: NodeTable<Node<N::File>>,
    handles: HandleTable<Handle<N::File>>,
    locks: ServerLocks,
}

fn nt_error(op: &'static str) -> impl Fn(u32) -> Error {
    move |status| Error::Nt { op, status }
}

/// The escaped NTFS name of a checked guest component.
fn nt_name(name: &[u8]) -> Result<Vec<u16>> {
    super::check_component(name)?;
    name::to_nt(name).map_err(|_| Error::refused(linux::EINVAL, "name is not UTF-8"))
}

/// [`nt_name`] of a name about to be made, refusing DOS device names.
fn new_name(name: &[u8]) -> Result<Vec<u16>> {
    let nt = nt_name(name)?;
    if name::is_dos_device(name) {
        return Err(Error::refused(linux::EINVAL, "a Windows device name"));
    }
    Ok(nt)
}

impl<N: Nt> Ntfs<N> {
    /// Serves the directory `root` is an open handle of (opened by the caller, with every
    /// access the share needs).
    pub fn new(nt: N, root: N::File, config: Config) -> Result<Self> {
        let info = nt.info(&root).map_err(nt_error("stat of the share root"))?;
        if !info.is_dir() {
            return Err(Error::refused(
                linux::ENOTDIR,
                "share root is not a directory",
            ));
        }
        let key = (info.volume, info.file_id);
        tracing::info!(read_only = config.read_only, "ntfs share");
        Ok(Ntfs {
            nt,
            config,
            nodes: NodeTable::new(Node { file: root, key }),
            handles: HandleTable::default(),
            locks: ServerLocks::new(),
        })
    }

    fn node(&self, id: NodeId) -> Result<Arc<Node<N::File>>> {
        self.nodes.get(id)
    }

    fn handle(&self, id: HandleId) -> Result<Arc<Handle<N::File>>> {
        self.handles.get(id)
    }

    /// `EROFS` on a read-only share.
    fn writable(&self) -> Result<()> {
        if self.config.read_only {
            Err(Error::refused(linux::EROFS, "read-only share"))
        } else {
            Ok(())
        }
    }

    /// Opens `name` (escaped) in `parent` as it exists.
    fn open_child(
        &self,
        parent: &N::File,
        name: &[u16],
        access: u32,
        want: Want,
    ) -> Result<N::File> {
        let request = OpenRequest {
            access,
            disposition: Disposition::Open,
            want,
            attributes: 0,
            eas: &[],
        };
        self.nt
            .open(parent, name, &request)
            .map(|(f, _)| f)
            .map_err(nt_error("open"))
    }

    /// Opens `file` again with `access`.
    fn reopen(&self, file: &N::File, access: u32) -> Result<N::File> {
        self.open_child(file, &[], access, Want::Any)
    }

    /// Makes an open file a node with one lookup reference.
    fn enter(&self, file: N::File) -> Result<Entry> {
        let attr = self.attr_of(&file)?;
        let info_key = (attr.dev_key, attr.attr.ino);
        let node = self.nodes.insert(Node {
            file,
            key: info_key,
        });
        Ok(Entry {
            node,
            attr: attr.attr,
        })
    }
}

impl<N: Nt> Backend for Ntfs<N> {
    fn lookup(&self, parent: NodeId, name: &[u8]) -> Result<Entry> {
        let parent = self.node(parent)?;
        let file = self.open_child(&parent.file, &nt_name(name)?, NODE_ACCESS, Want::Any)?;
        self.enter(file)
    }

    fn forget(&self, node: NodeId, count: u64) {
        self.nodes.forget(node, count);
    }

    fn getattr(&self, node: NodeId) -> Result<Attr> {
        Ok(self.attr_of(&self.node(node)?.file)?.attr)
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
        self.locks.release(h.key, handle);
        Ok(())
    }

    fn fsync(&self, handle: HandleId, _datasync: bool) -> Result<()> {
        self.do_fsync(handle)
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
        self.do_link(node, new_parent, new_name)
    }

    fn unlink(&self, parent: NodeId, name: &[u8]) -> Result<()> {
        self.do_remove(parent, name, false)
    }

    fn rmdir(&self, parent: NodeId, name: &[u8]) -> Result<()> {
        self.do_remove(parent, name, true)
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
        self.do_readdir(handle, offset, add)
    }

    fn statfs(&self, node: NodeId) -> Result<StatFs> {
        self.do_statfs(node)
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
        _handle_in: HandleId,
        _offset_in: u64,
        _handle_out: HandleId,
        _offset_out: u64,
        _len: u64,
        _flags: u32,
    ) -> Result<usize> {
        // The guest kernel copies through read and write itself.
        Err(Error::refused(
            linux::EOPNOTSUPP,
            "copy_file_range on an NTFS share",
        ))
    }

    fn getlk(&self, handle: HandleId, lock: &Lock) -> Result<Lock> {
        let h = self.handle(handle)?;
        self.locks.getlk(h.key, handle, lock)
    }

    fn setlk(&self, handle: HandleId, lock: &Lock, wait: bool) -> Result<()> {
        let h = self.handle(handle)?;
        self.locks.setlk(h.key, handle, h.access, lock, wait)
    }

    fn flock(&self, handle: HandleId, op: FlockOp, wait: bool) -> Result<()> {
        let h = self.handle(handle)?;
        self.locks.flock(h.key, handle, op, wait)
    }
}
