//! 9P2000.L protocol constants: message type numbers and the bit values carried in fields,
//! with the numbers the Linux kernel's `include/net/9p/9p.h` uses.

/// The protocol version string this server speaks.
pub const VERSION_9P2000_L: &[u8] = b"9P2000.L";

/// The version string a server answers when it speaks none of the client's versions.
pub const VERSION_UNKNOWN: &[u8] = b"unknown";

/// The tag of Tversion, which is sent before tags are in use.
pub const NOTAG: u16 = 0xffff;

/// "No fid": the afid of a Tattach without authentication.
pub const NOFID: u32 = 0xffff_ffff;

/// "No numeric user": n_uname when the client names the user only by string.
pub const NONUNAME: u32 = 0xffff_ffff;

/// Bytes of the message header: size (4), type (1), tag (2).
pub const HEADER_SIZE: usize = 7;

/// Bytes of an Rread or Rreaddir before its data: header and the `u32` count.
pub const RREAD_HEADER_SIZE: u32 = 11;

/// Bytes of a Twrite before its data: header, fid, offset and count.
pub const TWRITE_HEADER_SIZE: u32 = 23;

/// Largest count an Rread or Rreaddir can carry under `msize`.
pub fn max_read_count(msize: u32) -> u32 {
    msize.saturating_sub(RREAD_HEADER_SIZE)
}

/// Message type numbers.
pub mod msg {
    /// Tlerror: reserved, never sent by clients; decoding it as a request fails.
    pub const TLERROR: u8 = 6;
    /// Rlerror: an error reply carrying a Linux errno.
    pub const RLERROR: u8 = 7;
    /// Tstatfs.
    pub const TSTATFS: u8 = 8;
    /// Rstatfs.
    pub const RSTATFS: u8 = 9;
    /// Tlopen.
    pub const TLOPEN: u8 = 12;
    /// Rlopen.
    pub const RLOPEN: u8 = 13;
    /// Tlcreate.
    pub const TLCREATE: u8 = 14;
    /// Rlcreate.
    pub const RLCREATE: u8 = 15;
    /// Tsymlink.
    pub const TSYMLINK: u8 = 16;
    /// Rsymlink.
    pub const RSYMLINK: u8 = 17;
    /// Tmknod.
    pub const TMKNOD: u8 = 18;
    /// Rmknod.
    pub const RMKNOD: u8 = 19;
    /// Trename.
    pub const TRENAME: u8 = 20;
    /// Rrename.
    pub const RRENAME: u8 = 21;
    /// Treadlink.
    pub const TREADLINK: u8 = 22;
    /// Rreadlink.
    pub const RREADLINK: u8 = 23;
    /// Tgetattr.
    pub const TGETATTR: u8 = 24;
    /// Rgetattr.
    pub const RGETATTR: u8 = 25;
    /// Tsetattr.
    pub const TSETATTR: u8 = 26;
    /// Rsetattr.
    pub const RSETATTR: u8 = 27;
    /// Txattrwalk.
    pub const TXATTRWALK: u8 = 30;
    /// Rxattrwalk.
    pub const RXATTRWALK: u8 = 31;
    /// Txattrcreate.
    pub const TXATTRCREATE: u8 = 32;
    /// Rxattrcreate.
    pub const RXATTRCREATE: u8 = 33;
    /// Treaddir.
    pub const TREADDIR: u8 = 40;
    /// Rreaddir.
    pub const RREADDIR: u8 = 41;
    /// Tfsync.
    pub const TFSYNC: u8 = 50;
    /// Rfsync.
    pub const RFSYNC: u8 = 51;
    /// Tlock.
    pub const TLOCK: u8 = 52;
    /// Rlock.
    pub const RLOCK: u8 = 53;
    /// Tgetlock.
    pub const TGETLOCK: u8 = 54;
    /// Rgetlock.
    pub const RGETLOCK: u8 = 55;
    /// Tlink.
    pub const TLINK: u8 = 70;
    /// Rlink.
    pub const RLINK: u8 = 71;
    /// Tmkdir.
    pub const TMKDIR: u8 = 72;
    /// Rmkdir.
    pub const RMKDIR: u8 = 73;
    /// Trenameat.
    pub const TRENAMEAT: u8 = 74;
    /// Rrenameat.
    pub const RRENAMEAT: u8 = 75;
    /// Tunlinkat.
    pub const TUNLINKAT: u8 = 76;
    /// Runlinkat.
    pub const RUNLINKAT: u8 = 77;
    /// Tversion.
    pub const TVERSION: u8 = 100;
    /// Rversion.
    pub const RVERSION: u8 = 101;
    /// Tauth.
    pub const TAUTH: u8 = 102;
    /// Rauth.
    pub const RAUTH: u8 = 103;
    /// Tattach.
    pub const TATTACH: u8 = 104;
    /// Rattach.
    pub const RATTACH: u8 = 105;
    /// Tflush.
    pub const TFLUSH: u8 = 108;
    /// Rflush.
    pub const RFLUSH: u8 = 109;
    /// Twalk.
    pub const TWALK: u8 = 110;
    /// Rwalk.
    pub const RWALK: u8 = 111;
    /// Tread.
    pub const TREAD: u8 = 116;
    /// Rread.
    pub const RREAD: u8 = 117;
    /// Twrite.
    pub const TWRITE: u8 = 118;
    /// Rwrite.
    pub const RWRITE: u8 = 119;
    /// Tclunk.
    pub const TCLUNK: u8 = 120;
    /// Rclunk.
    pub const RCLUNK: u8 = 121;
    /// Tremove.
    pub const TREMOVE: u8 = 122;
    /// Rremove.
    pub const RREMOVE: u8 = 123;
}

/// Bits of [`crate::p9::Qid::ty`].
pub mod qid_type {
    /// A directory.
    pub const DIR: u8 = 0x80;
    /// An append-only file.
    pub const APPEND: u8 = 0x40;
    /// An exclusive-use file.
    pub const EXCL: u8 = 0x20;
    /// A mount point.
    pub const MOUNT: u8 = 0x10;
    /// An authentication file.
    pub const AUTH: u8 = 0x08;
    /// A temporary file.
    pub const TMP: u8 = 0x04;
    /// A symbolic link.
    pub const SYMLINK: u8 = 0x02;
    /// A hard link.
    pub const LINK: u8 = 0x01;
    /// A plain file.
    pub const FILE: u8 = 0x00;
}

/// Tlopen and Tlcreate flags (`P9_DOTL_*`): Linux's generic `O_*` numbering, which the
/// server maps to its host's flags.
pub mod open_flags {
    /// Read only.
    pub const RDONLY: u32 = 0o0;
    /// Write only.
    pub const WRONLY: u32 = 0o1;
    /// Read and write.
    pub const RDWR: u32 = 0o2;
    /// Neither read nor write.
    pub const NOACCESS: u32 = 0o3;
    /// Mask of the access mode.
    pub const ACCMODE: u32 = 0o3;
    /// Create if missing.
    pub const CREATE: u32 = 0o100;
    /// Fail if it exists.
    pub const EXCL: u32 = 0o200;
    /// Do not become the controlling terminal.
    pub const NOCTTY: u32 = 0o400;
    /// Truncate.
    pub const TRUNC: u32 = 0o1000;
    /// Append.
    pub const APPEND: u32 = 0o2000;
    /// Non-blocking.
    pub const NONBLOCK: u32 = 0o4000;
    /// Synchronous data writes.
    pub const DSYNC: u32 = 0o10000;
    /// Signal-driven I/O.
    pub const FASYNC: u32 = 0o20000;
    /// Direct I/O.
    pub const DIRECT: u32 = 0o40000;
    /// Large file.
    pub const LARGEFILE: u32 = 0o100000;
    /// Must be a directory.
    pub const DIRECTORY: u32 = 0o200000;
    /// Do not follow a final symlink.
    pub const NOFOLLOW: u32 = 0o400000;
    /// Do not update atime.
    pub const NOATIME: u32 = 0o1000000;
    /// Close on exec.
    pub const CLOEXEC: u32 = 0o2000000;
    /// Synchronous writes.
    pub const SYNC: u32 = 0o4000000;
}

/// Bits of Tgetattr's request mask and Rgetattr's valid mask (`P9_GETATTR_*`).
pub mod getattr {
    /// mode.
    pub const MODE: u64 = 0x0000_0001;
    /// nlink.
    pub const NLINK: u64 = 0x0000_0002;
    /// uid.
    pub const UID: u64 = 0x0000_0004;
    /// gid.
    pub const GID: u64 = 0x0000_0008;
    /// rdev.
    pub const RDEV: u64 = 0x0000_0010;
    /// atime.
    pub const ATIME: u64 = 0x0000_0020;
    /// mtime.
    pub const MTIME: u64 = 0x0000_0040;
    /// ctime.
    pub const CTIME: u64 = 0x0000_0080;
    /// ino (the qid path).
    pub const INO: u64 = 0x0000_0100;
    /// size.
    pub const SIZE: u64 = 0x0000_0200;
    /// blocks.
    pub const BLOCKS: u64 = 0x0000_0400;
    /// btime (birth time).
    pub const BTIME: u64 = 0x0000_0800;
    /// gen.
    pub const GEN: u64 = 0x0000_1000;
    /// data_version.
    pub const DATA_VERSION: u64 = 0x0000_2000;
    /// Everything `stat` returns: mode through blocks.
    pub const BASIC: u64 = 0x0000_07ff;
    /// Every field.
    pub const ALL: u64 = 0x0000_3fff;
}

/// Bits of Tsetattr's valid mask (`P9_ATTR_*`).
pub mod setattr {
    /// Set mode.
    pub const MODE: u32 = 1 << 0;
    /// Set uid.
    pub const UID: u32 = 1 << 1;
    /// Set gid.
    pub const GID: u32 = 1 << 2;
    /// Set size (truncate).
    pub const SIZE: u32 = 1 << 3;
    /// Set atime: to now, or to the given time if [`ATIME_SET`] is also set.
    pub const ATIME: u32 = 1 << 4;
    /// Set mtime: to now, or to the given time if [`MTIME_SET`] is also set.
    pub const MTIME: u32 = 1 << 5;
    /// Set ctime (to now).
    pub const CTIME: u32 = 1 << 6;
    /// atime is the given time, not now.
    pub const ATIME_SET: u32 = 1 << 7;
    /// mtime is the given time, not now.
    pub const MTIME_SET: u32 = 1 << 8;
}

/// Tlock and Tgetlock lock types, and Rgetlock's answer (`P9_LOCK_TYPE_*`).
pub mod lock_type {
    /// A shared (read) lock.
    pub const RDLCK: u8 = 0;
    /// An exclusive (write) lock.
    pub const WRLCK: u8 = 1;
    /// Unlock; in Rgetlock, "no conflicting lock".
    pub const UNLCK: u8 = 2;
}

/// Tlock flags (`P9_LOCK_FLAGS_*`).
pub mod lock_flags {
    /// Wait for the lock (the client retries while the server answers BLOCKED).
    pub const BLOCK: u32 = 1;
    /// Reclaim a lock after a server restart.
    pub const RECLAIM: u32 = 2;
}

/// Rlock status (`P9_LOCK_*`).
pub mod lock_status {
    /// The lock was taken (or released).
    pub const SUCCESS: u8 = 0;
    /// A conflicting lock is held.
    pub const BLOCKED: u8 = 1;
    /// The lock failed.
    pub const ERROR: u8 = 2;
    /// The server is in its grace period.
    pub const GRACE: u8 = 3;
}

/// Tunlinkat flags.
pub mod unlinkat_flags {
    /// Remove a directory (Linux `AT_REMOVEDIR`).
    pub const REMOVEDIR: u32 = 0x200;
}

/// Txattrcreate flags (Linux `XATTR_*`).
pub mod xattr_flags {
    /// Fail if the attribute exists.
    pub const CREATE: u32 = 1;
    /// Fail if the attribute does not exist.
    pub const REPLACE: u32 = 2;
}
