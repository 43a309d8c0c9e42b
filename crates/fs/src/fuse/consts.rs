//! FUSE constants from `include/uapi/linux/fuse.h`: opcodes and flag bits, under their uapi
//! names.

/// FUSE opcodes (`enum fuse_opcode`).
pub mod opcode {
    /// Look up a name in a directory.
    pub const FUSE_LOOKUP: u32 = 1;
    /// Drop lookup references (no reply).
    pub const FUSE_FORGET: u32 = 2;
    /// Get attributes.
    pub const FUSE_GETATTR: u32 = 3;
    /// Set attributes.
    pub const FUSE_SETATTR: u32 = 4;
    /// Read a symlink.
    pub const FUSE_READLINK: u32 = 5;
    /// Create a symlink.
    pub const FUSE_SYMLINK: u32 = 6;
    /// Create a node.
    pub const FUSE_MKNOD: u32 = 8;
    /// Create a directory.
    pub const FUSE_MKDIR: u32 = 9;
    /// Remove a file.
    pub const FUSE_UNLINK: u32 = 10;
    /// Remove a directory.
    pub const FUSE_RMDIR: u32 = 11;
    /// Rename.
    pub const FUSE_RENAME: u32 = 12;
    /// Create a hard link.
    pub const FUSE_LINK: u32 = 13;
    /// Open a file.
    pub const FUSE_OPEN: u32 = 14;
    /// Read from a file.
    pub const FUSE_READ: u32 = 15;
    /// Write to a file.
    pub const FUSE_WRITE: u32 = 16;
    /// File system statistics.
    pub const FUSE_STATFS: u32 = 17;
    /// Close a file.
    pub const FUSE_RELEASE: u32 = 18;
    /// Synchronise a file.
    pub const FUSE_FSYNC: u32 = 20;
    /// Set an extended attribute.
    pub const FUSE_SETXATTR: u32 = 21;
    /// Get an extended attribute.
    pub const FUSE_GETXATTR: u32 = 22;
    /// List extended attributes.
    pub const FUSE_LISTXATTR: u32 = 23;
    /// Remove an extended attribute.
    pub const FUSE_REMOVEXATTR: u32 = 24;
    /// A file descriptor was closed.
    pub const FUSE_FLUSH: u32 = 25;
    /// Protocol negotiation.
    pub const FUSE_INIT: u32 = 26;
    /// Open a directory.
    pub const FUSE_OPENDIR: u32 = 27;
    /// Read directory entries.
    pub const FUSE_READDIR: u32 = 28;
    /// Close a directory.
    pub const FUSE_RELEASEDIR: u32 = 29;
    /// Synchronise a directory.
    pub const FUSE_FSYNCDIR: u32 = 30;
    /// Test for a POSIX lock.
    pub const FUSE_GETLK: u32 = 31;
    /// Take or release a lock without waiting.
    pub const FUSE_SETLK: u32 = 32;
    /// Take a lock, waiting for it.
    pub const FUSE_SETLKW: u32 = 33;
    /// Check access permissions.
    pub const FUSE_ACCESS: u32 = 34;
    /// Create and open a file.
    pub const FUSE_CREATE: u32 = 35;
    /// Interrupt a request (no reply).
    pub const FUSE_INTERRUPT: u32 = 36;
    /// Map a block (not used by virtio-fs).
    pub const FUSE_BMAP: u32 = 37;
    /// Unmount.
    pub const FUSE_DESTROY: u32 = 38;
    /// ioctl (not used by virtio-fs).
    pub const FUSE_IOCTL: u32 = 39;
    /// poll (not used by virtio-fs).
    pub const FUSE_POLL: u32 = 40;
    /// Reply to a retrieve notification.
    pub const FUSE_NOTIFY_REPLY: u32 = 41;
    /// Drop references to many nodes (no reply).
    pub const FUSE_BATCH_FORGET: u32 = 42;
    /// Allocate or punch file space.
    pub const FUSE_FALLOCATE: u32 = 43;
    /// Read directory entries with attributes.
    pub const FUSE_READDIRPLUS: u32 = 44;
    /// Rename with flags.
    pub const FUSE_RENAME2: u32 = 45;
    /// Find data or holes.
    pub const FUSE_LSEEK: u32 = 46;
    /// Copy between files on the server.
    pub const FUSE_COPY_FILE_RANGE: u32 = 47;
    /// DAX: map a file range (not supported here).
    pub const FUSE_SETUPMAPPING: u32 = 48;
    /// DAX: unmap ranges (not supported here).
    pub const FUSE_REMOVEMAPPING: u32 = 49;
    /// Synchronise the file system (virtio-fs).
    pub const FUSE_SYNCFS: u32 = 50;
    /// Create an unnamed temporary file.
    pub const FUSE_TMPFILE: u32 = 51;
}

/// `fuse_init_in.flags` / `fuse_init_out.flags` bits (bits 32..63 travel in `flags2`).
pub mod init_flags {
    /// Asynchronous reads.
    pub const FUSE_ASYNC_READ: u64 = 1 << 0;
    /// POSIX (fcntl) locks through GETLK/SETLK.
    pub const FUSE_POSIX_LOCKS: u64 = 1 << 1;
    /// O_TRUNC handled by OPEN.
    pub const FUSE_ATOMIC_O_TRUNC: u64 = 1 << 3;
    /// "." and ".." lookups.
    pub const FUSE_EXPORT_SUPPORT: u64 = 1 << 4;
    /// Writes larger than a page.
    pub const FUSE_BIG_WRITES: u64 = 1 << 5;
    /// The kernel does not apply the umask.
    pub const FUSE_DONT_MASK: u64 = 1 << 6;
    /// flock locks through SETLK with FUSE_LK_FLOCK.
    pub const FUSE_FLOCK_LOCKS: u64 = 1 << 10;
    /// Invalidate cached data when mtime changes.
    pub const FUSE_AUTO_INVAL_DATA: u64 = 1 << 12;
    /// READDIRPLUS.
    pub const FUSE_DO_READDIRPLUS: u64 = 1 << 13;
    /// Adaptive READDIRPLUS.
    pub const FUSE_READDIRPLUS_AUTO: u64 = 1 << 14;
    /// Asynchronous direct I/O.
    pub const FUSE_ASYNC_DIO: u64 = 1 << 15;
    /// Write-back caching.
    pub const FUSE_WRITEBACK_CACHE: u64 = 1 << 16;
    /// OPEN may answer ENOSYS for "no open needed".
    pub const FUSE_NO_OPEN_SUPPORT: u64 = 1 << 17;
    /// Parallel lookups and readdirs in one directory.
    pub const FUSE_PARALLEL_DIROPS: u64 = 1 << 18;
    /// The server clears suid/sgid on write, chown and truncate.
    pub const FUSE_HANDLE_KILLPRIV: u64 = 1 << 19;
    /// POSIX ACLs.
    pub const FUSE_POSIX_ACL: u64 = 1 << 20;
    /// Abort returns ECONNABORTED.
    pub const FUSE_ABORT_ERROR: u64 = 1 << 21;
    /// `max_pages` in fuse_init_out is valid.
    pub const FUSE_MAX_PAGES: u64 = 1 << 22;
    /// Cache symlink targets.
    pub const FUSE_CACHE_SYMLINKS: u64 = 1 << 23;
    /// OPENDIR may answer ENOSYS.
    pub const FUSE_NO_OPENDIR_SUPPORT: u64 = 1 << 24;
    /// Only invalidate cached data on explicit request.
    pub const FUSE_EXPLICIT_INVAL_DATA: u64 = 1 << 25;
    /// `map_alignment` in fuse_init_out is valid (DAX).
    pub const FUSE_MAP_ALIGNMENT: u64 = 1 << 26;
    /// Submounts are reported with FUSE_ATTR_SUBMOUNT.
    pub const FUSE_SUBMOUNTS: u64 = 1 << 27;
    /// The server clears suid/sgid (v2 semantics).
    pub const FUSE_HANDLE_KILLPRIV_V2: u64 = 1 << 28;
    /// SETXATTR carries the 16-byte fuse_setxattr_in.
    pub const FUSE_SETXATTR_EXT: u64 = 1 << 29;
    /// `flags2` is valid.
    pub const FUSE_INIT_EXT: u64 = 1 << 30;
    /// Reserved.
    pub const FUSE_INIT_RESERVED: u64 = 1 << 31;
    /// Security contexts in create requests (request extensions).
    pub const FUSE_SECURITY_CTX: u64 = 1 << 32;
    /// Per-inode DAX.
    pub const FUSE_HAS_INODE_DAX: u64 = 1 << 33;
}

/// `fuse_setattr_in.valid` bits.
pub mod fattr {
    /// mode is valid.
    pub const FATTR_MODE: u32 = 1 << 0;
    /// uid is valid.
    pub const FATTR_UID: u32 = 1 << 1;
    /// gid is valid.
    pub const FATTR_GID: u32 = 1 << 2;
    /// size is valid (truncate).
    pub const FATTR_SIZE: u32 = 1 << 3;
    /// atime is valid.
    pub const FATTR_ATIME: u32 = 1 << 4;
    /// mtime is valid.
    pub const FATTR_MTIME: u32 = 1 << 5;
    /// fh is valid.
    pub const FATTR_FH: u32 = 1 << 6;
    /// Set atime to now.
    pub const FATTR_ATIME_NOW: u32 = 1 << 7;
    /// Set mtime to now.
    pub const FATTR_MTIME_NOW: u32 = 1 << 8;
    /// lock_owner is valid.
    pub const FATTR_LOCKOWNER: u32 = 1 << 9;
    /// ctime is valid.
    pub const FATTR_CTIME: u32 = 1 << 10;
    /// Clear suid/sgid.
    pub const FATTR_KILL_SUIDGID: u32 = 1 << 11;
}

/// `fuse_open_out.open_flags` bits.
pub mod fopen {
    /// Bypass the page cache.
    pub const FOPEN_DIRECT_IO: u32 = 1 << 0;
    /// Keep cached data.
    pub const FOPEN_KEEP_CACHE: u32 = 1 << 1;
    /// The file is not seekable.
    pub const FOPEN_NONSEEKABLE: u32 = 1 << 2;
    /// Cache directory contents.
    pub const FOPEN_CACHE_DIR: u32 = 1 << 3;
    /// A stream without file position.
    pub const FOPEN_STREAM: u32 = 1 << 4;
    /// No FLUSH on close.
    pub const FOPEN_NOFLUSH: u32 = 1 << 5;
}

/// Smaller flag sets of single requests.
pub mod flags {
    /// fuse_getattr_in.getattr_flags: `fh` is valid.
    pub const FUSE_GETATTR_FH: u32 = 1 << 0;
    /// fuse_release_in.release_flags: flush as well.
    pub const FUSE_RELEASE_FLUSH: u32 = 1 << 0;
    /// fuse_release_in.release_flags: drop the flock lock of `lock_owner`.
    pub const FUSE_RELEASE_FLOCK_UNLOCK: u32 = 1 << 1;
    /// fuse_lk_in.lk_flags: a flock(2) lock, not a POSIX one.
    pub const FUSE_LK_FLOCK: u32 = 1 << 0;
    /// fuse_write_in.write_flags: a delayed write from the page cache.
    pub const FUSE_WRITE_CACHE: u32 = 1 << 0;
    /// fuse_write_in.write_flags: `lock_owner` is valid.
    pub const FUSE_WRITE_LOCKOWNER: u32 = 1 << 1;
    /// fuse_write_in.write_flags: clear suid/sgid.
    pub const FUSE_WRITE_KILL_SUIDGID: u32 = 1 << 2;
    /// fuse_read_in.read_flags: `lock_owner` is valid.
    pub const FUSE_READ_LOCKOWNER: u32 = 1 << 1;
    /// fuse_fsync_in.fsync_flags: fdatasync.
    pub const FUSE_FSYNC_FDATASYNC: u32 = 1 << 0;
    /// fuse_attr.flags: the node is a submount.
    pub const FUSE_ATTR_SUBMOUNT: u32 = 1 << 0;
    /// fuse_open_in.open_flags: clear suid/sgid on truncate.
    pub const FUSE_OPEN_KILL_SUIDGID: u32 = 1 << 0;
    /// fuse_setxattr_in.setxattr_flags: clear sgid when setting an ACL.
    pub const FUSE_SETXATTR_ACL_KILL_SGID: u32 = 1 << 0;
}
