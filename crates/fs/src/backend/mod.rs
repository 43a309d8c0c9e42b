//! The storage side of the file server: one trait beneath both protocol servers.
//!
//! [`Backend`] is shaped the way FUSE and 9P2000.L both need it: every looked-up object gets an
//! opaque [`NodeId`] that lives until the protocol layer drops its last lookup reference
//! ([`Backend::forget`]), and every open file or directory gets a [`HandleId`] that lives until
//! [`Backend::release`]. A 9P fid is a node (after `Twalk`) plus, after `Tlopen`/`Tlcreate`, a
//! handle; a FUSE `nodeid` is a node and a FUSE `fh` is a handle.
//!
//! Errors carry an errno ([`Error::errno`]), because both protocols answer with errnos. Flags,
//! modes and errnos are Linux values whatever the host is: both protocols send Linux values.
//!
//! Implementations: [`passthrough::Passthrough`] (Linux hosts; host ownership and modes as they
//! are) and [`mapped::Mapped`] (an unprivileged server; the guest's ownership, modes and device
//! numbers kept in `user.LX*` xattrs, the encoding WSL uses).

use std::io;

use thiserror::Error;

#[cfg(target_os = "linux")]
pub mod mapped;
pub mod ntfs;
#[cfg(target_os = "linux")]
pub mod passthrough;
pub mod server_locks;
pub(crate) mod table;

/// An opaque id for a looked-up file-system object. [`ROOT_NODE`] is the share root.
pub type NodeId = u64;

/// An opaque id for an open file or directory (a FUSE `fh`, the open state of a 9P fid).
pub type HandleId = u64;

/// The node id of the share root. It exists from the start and is never forgotten.
pub const ROOT_NODE: NodeId = 1;

/// The longest name (one path component) a backend accepts, in bytes.
pub const NAME_MAX: usize = 255;

/// Linux `renameat2` flag: fail with `EEXIST` rather than replace the target.
pub const RENAME_NOREPLACE: u32 = 1;
/// Linux `renameat2` flag: atomically exchange the two names.
pub const RENAME_EXCHANGE: u32 = 2;

/// Linux `setxattr` flag: fail with `EEXIST` if the attribute exists.
pub const XATTR_CREATE: u32 = 1;
/// Linux `setxattr` flag: fail with `ENODATA` if the attribute does not exist.
pub const XATTR_REPLACE: u32 = 2;

/// Refuses what no backend takes as one name component: `""`, `"."`, `".."`, a name with `/`
/// or NUL, and one longer than [`NAME_MAX`] (`ENAMETOOLONG`; the others `EINVAL`).
pub(crate) fn check_component(name: &[u8]) -> Result<()> {
    if name.is_empty() || name == b"." || name == b".." {
        return Err(Error::refused(
            crate::linux::EINVAL,
            "name is empty, . or ..",
        ));
    }
    if name.len() > NAME_MAX {
        return Err(Error::refused(crate::linux::ENAMETOOLONG, "name too long"));
    }
    if name.contains(&b'/') {
        return Err(Error::refused(
            crate::linux::EINVAL,
            "name contains a slash",
        ));
    }
    if name.contains(&0) {
        return Err(Error::refused(crate::linux::EINVAL, "name contains NUL"));
    }
    Ok(())
}

/// A failed backend operation. Both protocols answer with [`Error::errno`].
#[derive(Debug, Error)]
pub enum Error {
    /// a host system call failed
    #[error("host {op} failed")]
    Host {
        /// The operation that failed (a static name, never guest data).
        op: &'static str,
        /// The host's error, whose errno goes to the guest.
        #[source]
        source: io::Error,
    },
    /// an NT call on the host failed
    #[error("host {op} failed with NTSTATUS {status:#010x}")]
    Nt {
        /// The operation that failed (a static name, never guest data).
        op: &'static str,
        /// The NTSTATUS, whose errno goes to the guest.
        status: u32,
    },
    /// the request was refused before it reached the host
    #[error("request refused: {reason}")]
    Refused {
        /// The errno sent to the guest.
        errno: i32,
        /// Why (a static text, never guest data).
        reason: &'static str,
    },
}

impl Error {
    /// An error from the calling thread's last host errno.
    pub fn last_os(op: &'static str) -> Self {
        Error::Host {
            op,
            source: io::Error::last_os_error(),
        }
    }

    /// A refusal with an errno and a reason.
    pub const fn refused(errno: i32, reason: &'static str) -> Self {
        Error::Refused { errno, reason }
    }

    /// The Linux errno that the protocol servers send to the guest.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Host { source, .. } => crate::linux::errno_of(source),
            Error::Nt { status, .. } => crate::wsl::status::errno_of(*status),
            Error::Refused { errno, .. } => *errno,
        }
    }
}

/// The result of a backend operation.
pub type Result<T> = std::result::Result<T, Error>;

/// A point in time: seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timespec {
    /// Seconds since the epoch (may be negative).
    pub sec: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub nsec: u32,
}

/// The attributes of a node, as `stat(2)` gives them (real `nlink`, nanosecond times).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attr {
    /// The host inode number.
    pub ino: u64,
    /// File type and permission bits (`S_IFMT | 0o7777`).
    pub mode: u32,
    /// The real number of hard links.
    pub nlink: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number for character and block devices (Linux `makedev` encoding).
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
    /// Preferred I/O block size.
    pub blksize: u64,
    /// Allocated 512-byte blocks.
    pub blocks: u64,
    /// Last access.
    pub atime: Timespec,
    /// Last modification of the contents.
    pub mtime: Timespec,
    /// Last change of the inode.
    pub ctime: Timespec,
}

/// A node handed to the protocol layer: it holds one lookup reference (see [`Backend::forget`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The node id.
    pub node: NodeId,
    /// Its attributes at the time of the lookup.
    pub attr: Attr,
}

/// How [`SetAttr`] changes one timestamp (`utimensat(2)` semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeSet {
    /// Leave it as it is (`UTIME_OMIT`).
    #[default]
    Omit,
    /// Set it to the host's current time (`UTIME_NOW`).
    Now,
    /// Set it to this time.
    At(Timespec),
}

/// The attributes [`Backend::setattr`] changes; `None`/[`TimeSet::Omit`] leaves one alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetAttr {
    /// New permission bits (`0o7777`; type bits are ignored).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (regular files only).
    pub size: Option<u64>,
    /// New access time.
    pub atime: TimeSet,
    /// New modification time.
    pub mtime: TimeSet,
}

/// Linux `d_type` values, as [`DirEntry::kind`] carries them.
pub mod dtype {
    /// Unknown.
    pub const UNKNOWN: u8 = 0;
    /// FIFO.
    pub const FIFO: u8 = 1;
    /// Character device.
    pub const CHR: u8 = 2;
    /// Directory.
    pub const DIR: u8 = 4;
    /// Block device.
    pub const BLK: u8 = 6;
    /// Regular file.
    pub const REG: u8 = 8;
    /// Symbolic link.
    pub const LNK: u8 = 10;
    /// Unix socket.
    pub const SOCK: u8 = 12;
}

/// One directory entry from [`Backend::readdir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The inode number.
    pub ino: u64,
    /// The offset of the NEXT entry (`d_off`): pass it to `readdir` to continue after this one.
    /// Offsets are stable for the life of the handle.
    pub offset: u64,
    /// The `d_type` ([`dtype`]).
    pub kind: u8,
    /// The name (one component, no NUL).
    pub name: Vec<u8>,
}

/// File-system statistics (`statfs(2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatFs {
    /// File-system type magic.
    pub fs_type: u32,
    /// Optimal transfer block size.
    pub bsize: u32,
    /// Fragment size (the unit of `blocks`, `bfree`, `bavail`).
    pub frsize: u32,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks for unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// File-system id.
    pub fsid: u64,
    /// Longest file name.
    pub namelen: u32,
}

/// The type of a POSIX byte-range lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockType {
    /// A shared (read) lock, `F_RDLCK`.
    Read,
    /// An exclusive (write) lock, `F_WRLCK`.
    Write,
    /// No lock / release, `F_UNLCK`.
    Unlock,
}

/// A POSIX byte-range lock request or report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    /// Lock type.
    pub kind: LockType,
    /// First byte.
    pub start: u64,
    /// Number of bytes; 0 means "to the end of the file, however far it grows".
    pub len: u64,
    /// The guest process that asked (recorded, and reported back by `getlk` to others).
    pub pid: u32,
}

/// A BSD `flock(2)` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlockOp {
    /// `LOCK_SH`.
    Shared,
    /// `LOCK_EX`.
    Exclusive,
    /// `LOCK_UN`.
    Unlock,
}

/// The storage layer beneath the 9P2000.L and FUSE servers.
///
/// Names are single path components: every implementation refuses `""`, `"."`, `".."`, names
/// with `/` or NUL and names over [`NAME_MAX`] bytes. Calls may come from many threads at once.
/// Every method that returns an [`Entry`] adds one lookup reference to its node.
pub trait Backend: Send + Sync {
    /// Finds `name` in directory `parent` (without following a symlink named `name`).
    fn lookup(&self, parent: NodeId, name: &[u8]) -> Result<Entry>;
    /// Drops `count` lookup references; the node is gone when none are left.
    fn forget(&self, node: NodeId, count: u64);
    /// The attributes of a node.
    fn getattr(&self, node: NodeId) -> Result<Attr>;
    /// Changes attributes, through `handle` if the protocol gave one (FUSE `ftruncate`).
    fn setattr(&self, node: NodeId, handle: Option<HandleId>, attr: &SetAttr) -> Result<Attr>;
    /// Opens a node with Linux `open(2)` flags (`O_CREAT` is ignored here: see `create`).
    fn open(&self, node: NodeId, flags: i32) -> Result<HandleId>;
    /// Creates and opens regular file `name` (`O_EXCL` honoured) owned by `uid`:`gid`.
    fn create(
        &self,
        parent: NodeId,
        name: &[u8],
        flags: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Entry, HandleId)>;
    /// Reads at `offset` into `buf`; returns the byte count (0 at end of file).
    fn read(&self, handle: HandleId, offset: u64, buf: &mut [u8]) -> Result<usize>;
    /// Writes `data` at `offset` (at the end for `O_APPEND` handles); returns the byte count.
    fn write(&self, handle: HandleId, offset: u64, data: &[u8]) -> Result<usize>;
    /// Closes a handle; its locks go with it.
    fn release(&self, handle: HandleId) -> Result<()>;
    /// Flushes a handle's data (and metadata unless `datasync`) to stable storage.
    fn fsync(&self, handle: HandleId, datasync: bool) -> Result<()>;
    /// Makes directory `name` owned by `uid`:`gid`.
    fn mkdir(&self, parent: NodeId, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Entry>;
    /// Makes a FIFO, socket, character or block device or empty regular file (`mode` has the type).
    fn mknod(
        &self,
        parent: NodeId,
        name: &[u8],
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    ) -> Result<Entry>;
    /// Makes symlink `name` whose contents are `target` (stored, never followed by the server).
    fn symlink(
        &self,
        parent: NodeId,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Entry>;
    /// The contents of a symlink.
    fn readlink(&self, node: NodeId) -> Result<Vec<u8>>;
    /// Makes a hard link `new_name` in `new_parent` to `node`.
    fn link(&self, node: NodeId, new_parent: NodeId, new_name: &[u8]) -> Result<Entry>;
    /// Removes a non-directory.
    fn unlink(&self, parent: NodeId, name: &[u8]) -> Result<()>;
    /// Removes an empty directory.
    fn rmdir(&self, parent: NodeId, name: &[u8]) -> Result<()>;
    /// Renames, with [`RENAME_NOREPLACE`] or [`RENAME_EXCHANGE`] in `flags`.
    fn rename(
        &self,
        old_parent: NodeId,
        old_name: &[u8],
        new_parent: NodeId,
        new_name: &[u8],
        flags: u32,
    ) -> Result<()>;
    /// Lists a directory handle from `offset` (0, or a [`DirEntry::offset`] seen before).
    /// `add` is called per entry and returns `false` when it takes no more; that entry is then
    /// not consumed and the caller continues from the previous entry's offset.
    fn readdir(
        &self,
        handle: HandleId,
        offset: u64,
        add: &mut dyn FnMut(&DirEntry) -> bool,
    ) -> Result<()>;
    /// Statistics of the file system holding `node`.
    fn statfs(&self, node: NodeId) -> Result<StatFs>;
    /// The whole value of extended attribute `name`.
    fn getxattr(&self, node: NodeId, name: &[u8]) -> Result<Vec<u8>>;
    /// Sets extended attribute `name` ([`XATTR_CREATE`]/[`XATTR_REPLACE`] in `flags`).
    fn setxattr(&self, node: NodeId, name: &[u8], value: &[u8], flags: u32) -> Result<()>;
    /// The names of all extended attributes, each followed by a NUL (the `listxattr(2)` form).
    fn listxattr(&self, node: NodeId) -> Result<Vec<u8>>;
    /// Removes extended attribute `name`.
    fn removexattr(&self, node: NodeId, name: &[u8]) -> Result<()>;
    /// `fallocate(2)` with Linux `mode` flags.
    fn fallocate(&self, handle: HandleId, mode: i32, offset: u64, len: u64) -> Result<()>;
    /// `lseek(2)` with `SEEK_SET`/`SEEK_CUR`/`SEEK_END`/`SEEK_DATA`/`SEEK_HOLE`; the new offset.
    fn lseek(&self, handle: HandleId, offset: i64, whence: i32) -> Result<u64>;
    /// Copies `len` bytes between two handles on the host side; the byte count.
    #[allow(clippy::too_many_arguments)]
    fn copy_file_range(
        &self,
        handle_in: HandleId,
        offset_in: u64,
        handle_out: HandleId,
        offset_out: u64,
        len: u64,
        flags: u32,
    ) -> Result<usize>;
    /// The first lock that would conflict with `lock` on this handle, or an
    /// [`LockType::Unlock`] lock when there is none. Locks belong to handles (OFD semantics).
    fn getlk(&self, handle: HandleId, lock: &Lock) -> Result<Lock>;
    /// Takes or releases a byte-range lock on the host. With `wait` it blocks until granted
    /// (interrupting the thread with a signal gives `EINTR`); without, a conflict is `EAGAIN`.
    /// It never reports success without holding the lock.
    fn setlk(&self, handle: HandleId, lock: &Lock, wait: bool) -> Result<()>;
    /// A BSD `flock(2)` on the handle (conflict without `wait`: `EWOULDBLOCK`).
    fn flock(&self, handle: HandleId, op: FlockOp, wait: bool) -> Result<()>;
}
