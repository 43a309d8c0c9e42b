//! The Linux FUSE kernel ABI (`include/uapi/linux/fuse.h`, protocol 7.38, which the 6.1
//! kernel's 7.37 is a subset of): limits and the fixed-layout structs, with the uapi names in
//! the docs; opcodes and flag bits are in [`consts`](super::consts). Sizes are asserted
//! against the header in this module's tests.

use super::wire::{wire_struct, Pad};

/// Major version of the protocol this crate speaks.
pub const FUSE_KERNEL_VERSION: u32 = 7;
/// Highest minor version this crate knows the layouts of.
pub const FUSE_KERNEL_MINOR_VERSION: u32 = 38;
/// Node id of the root directory.
pub const FUSE_ROOT_ID: u64 = 1;

/// Longest file name, in bytes without the NUL (`NAME_MAX`).
pub const MAX_NAME_LEN: usize = 255;
/// Longest symlink target, in bytes without the NUL (`PATH_MAX - 1`).
pub const MAX_SYMLINK_LEN: usize = 4095;
/// Longest extended-attribute name, in bytes without the NUL (`XATTR_NAME_MAX`).
pub const MAX_XATTR_NAME_LEN: usize = 255;
/// Largest extended-attribute value (`XATTR_SIZE_MAX`).
pub const MAX_XATTR_VALUE_LEN: usize = 64 * 1024;
/// Largest WRITE this crate accepts whatever is negotiated: 1 MiB (256 pages).
pub const MAX_WRITE: u32 = 1 << 20;

wire_struct! {
    /// `struct fuse_in_header`: the 40 bytes before every request.
    InHeader {
        /// Length of the whole request, header included.
        len: u32,
        /// What the request asks (see [`opcode`](super::consts::opcode)).
        opcode: u32,
        /// Request id, echoed in the reply.
        unique: u64,
        /// Node the request is about.
        nodeid: u64,
        /// Caller's fsuid.
        uid: u32,
        /// Caller's fsgid.
        gid: u32,
        /// Caller's thread-group id.
        pid: u32,
        /// Length of the request extensions at the end, in 8-byte units.
        total_extlen: u16,
        /// Padding.
        padding: Pad<2>,
    }
}

wire_struct! {
    /// `struct fuse_out_header`: the 16 bytes before every reply.
    OutHeader {
        /// Length of the whole reply, header included.
        len: u32,
        /// 0, or a negative errno.
        error: i32,
        /// The request's id.
        unique: u64,
    }
}

wire_struct! {
    /// `struct fuse_attr`.
    Attr {
        /// Inode number.
        ino: u64,
        /// Size in bytes.
        size: u64,
        /// 512-byte blocks allocated.
        blocks: u64,
        /// Access time, seconds.
        atime: u64,
        /// Modification time, seconds.
        mtime: u64,
        /// Change time, seconds.
        ctime: u64,
        /// Access time, nanoseconds.
        atimensec: u32,
        /// Modification time, nanoseconds.
        mtimensec: u32,
        /// Change time, nanoseconds.
        ctimensec: u32,
        /// Type and permissions.
        mode: u32,
        /// Hard links.
        nlink: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
        /// Device number of a device node.
        rdev: u32,
        /// Preferred I/O size.
        blksize: u32,
        /// FUSE_ATTR_* flags.
        flags: u32,
    }
}

wire_struct! {
    /// `struct fuse_kstatfs` (the whole of `fuse_statfs_out`).
    Kstatfs {
        /// Total blocks.
        blocks: u64,
        /// Free blocks.
        bfree: u64,
        /// Blocks free for unprivileged users.
        bavail: u64,
        /// Total inodes.
        files: u64,
        /// Free inodes.
        ffree: u64,
        /// Block size.
        bsize: u32,
        /// Longest name.
        namelen: u32,
        /// Fragment size.
        frsize: u32,
        /// Padding.
        padding: Pad<4>,
        /// Spare fields.
        spare: Pad<24>,
    }
}

/// `struct fuse_statfs_out`.
pub type StatfsOut = Kstatfs;

wire_struct! {
    /// `struct fuse_file_lock`.
    FileLock {
        /// First byte.
        start: u64,
        /// Last byte (inclusive; `OFFSET_MAX` for "to the end").
        end: u64,
        /// F_RDLCK, F_WRLCK or F_UNLCK.
        typ: u32,
        /// Owning process (tgid).
        pid: u32,
    }
}

wire_struct! {
    /// `struct fuse_entry_out`.
    EntryOut {
        /// Node id (0: a negative entry).
        nodeid: u64,
        /// Generation of the node id.
        generation: u64,
        /// Name cache timeout, seconds.
        entry_valid: u64,
        /// Attribute cache timeout, seconds.
        attr_valid: u64,
        /// Name cache timeout, nanoseconds.
        entry_valid_nsec: u32,
        /// Attribute cache timeout, nanoseconds.
        attr_valid_nsec: u32,
        /// Attributes.
        attr: Attr,
    }
}

wire_struct! {
    /// `struct fuse_attr_out`.
    AttrOut {
        /// Attribute cache timeout, seconds.
        attr_valid: u64,
        /// Attribute cache timeout, nanoseconds.
        attr_valid_nsec: u32,
        /// Padding.
        dummy: Pad<4>,
        /// Attributes.
        attr: Attr,
    }
}

wire_struct! {
    /// `struct fuse_init_in` as 7.36+ sends it (64 bytes); the 16-byte form of older kernels
    /// decodes with `flags2` zero.
    InitIn {
        /// Major version.
        major: u32,
        /// Minor version.
        minor: u32,
        /// Largest readahead.
        max_readahead: u32,
        /// Capability bits 0..31.
        flags: u32,
        /// Capability bits 32..63 (valid with FUSE_INIT_EXT).
        flags2: u32,
        /// Unused.
        unused: Pad<44>,
    }
}

wire_struct! {
    /// `struct fuse_init_out`.
    InitOut {
        /// Major version.
        major: u32,
        /// Minor version.
        minor: u32,
        /// Largest readahead.
        max_readahead: u32,
        /// Capability bits 0..31.
        flags: u32,
        /// Most background requests.
        max_background: u16,
        /// Background requests before congestion.
        congestion_threshold: u16,
        /// Largest WRITE.
        max_write: u32,
        /// Timestamp granularity, nanoseconds.
        time_gran: u32,
        /// Most pages per request (with FUSE_MAX_PAGES).
        max_pages: u16,
        /// DAX mapping alignment, log2 (with FUSE_MAP_ALIGNMENT).
        map_alignment: u16,
        /// Capability bits 32..63.
        flags2: u32,
        /// Unused.
        unused: Pad<28>,
    }
}

wire_struct! {
    /// `struct fuse_forget_in`.
    ForgetIn {
        /// Lookups to drop.
        nlookup: u64,
    }
}

wire_struct! {
    /// `struct fuse_forget_one`: one entry of BATCH_FORGET.
    ForgetOne {
        /// Node.
        nodeid: u64,
        /// Lookups to drop.
        nlookup: u64,
    }
}

wire_struct! {
    /// `struct fuse_batch_forget_in`.
    BatchForgetIn {
        /// Entries that follow.
        count: u32,
        /// Padding.
        dummy: Pad<4>,
    }
}

wire_struct! {
    /// `struct fuse_getattr_in`.
    GetattrIn {
        /// FUSE_GETATTR_FH.
        getattr_flags: u32,
        /// Padding.
        dummy: Pad<4>,
        /// File handle, with FUSE_GETATTR_FH.
        fh: u64,
    }
}

wire_struct! {
    /// `struct fuse_setattr_in`.
    SetattrIn {
        /// FATTR_* bits saying which fields are valid.
        valid: u32,
        /// Padding.
        padding: Pad<4>,
        /// File handle.
        fh: u64,
        /// New size.
        size: u64,
        /// Lock owner.
        lock_owner: u64,
        /// Access time, seconds.
        atime: u64,
        /// Modification time, seconds.
        mtime: u64,
        /// Change time, seconds.
        ctime: u64,
        /// Access time, nanoseconds.
        atimensec: u32,
        /// Modification time, nanoseconds.
        mtimensec: u32,
        /// Change time, nanoseconds.
        ctimensec: u32,
        /// New mode.
        mode: u32,
        /// Unused.
        unused4: Pad<4>,
        /// New owner.
        uid: u32,
        /// New group.
        gid: u32,
        /// Unused.
        unused5: Pad<4>,
    }
}

wire_struct! {
    /// `struct fuse_mknod_in`.
    MknodIn {
        /// Type and permissions.
        mode: u32,
        /// Device number.
        rdev: u32,
        /// Caller's umask.
        umask: u32,
        /// Padding.
        padding: Pad<4>,
    }
}

wire_struct! {
    /// `struct fuse_mkdir_in`.
    MkdirIn {
        /// Permissions.
        mode: u32,
        /// Caller's umask.
        umask: u32,
    }
}

wire_struct! {
    /// `struct fuse_rename_in`.
    RenameIn {
        /// New parent directory.
        newdir: u64,
    }
}

wire_struct! {
    /// `struct fuse_rename2_in`.
    Rename2In {
        /// New parent directory.
        newdir: u64,
        /// RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT.
        flags: u32,
        /// Padding.
        padding: Pad<4>,
    }
}

wire_struct! {
    /// `struct fuse_link_in`.
    LinkIn {
        /// Node to link to.
        oldnodeid: u64,
    }
}

wire_struct! {
    /// `struct fuse_open_in` (OPEN and OPENDIR).
    OpenIn {
        /// open(2) flags.
        flags: u32,
        /// FUSE_OPEN_* flags.
        open_flags: u32,
    }
}

wire_struct! {
    /// `struct fuse_create_in` (CREATE and TMPFILE).
    CreateIn {
        /// open(2) flags.
        flags: u32,
        /// Type and permissions.
        mode: u32,
        /// Caller's umask.
        umask: u32,
        /// FUSE_OPEN_* flags.
        open_flags: u32,
    }
}

wire_struct! {
    /// `struct fuse_open_out`.
    OpenOut {
        /// File handle.
        fh: u64,
        /// FOPEN_* flags.
        open_flags: u32,
        /// Padding.
        padding: Pad<4>,
    }
}

wire_struct! {
    /// The CREATE (and TMPFILE) reply: `fuse_entry_out` then `fuse_open_out`.
    CreateOut {
        /// The new node.
        entry: EntryOut,
        /// The open file.
        open: OpenOut,
    }
}

wire_struct! {
    /// `struct fuse_release_in` (RELEASE and RELEASEDIR).
    ReleaseIn {
        /// File handle.
        fh: u64,
        /// open(2) flags.
        flags: u32,
        /// FUSE_RELEASE_* flags.
        release_flags: u32,
        /// Lock owner.
        lock_owner: u64,
    }
}

wire_struct! {
    /// `struct fuse_flush_in`.
    FlushIn {
        /// File handle.
        fh: u64,
        /// Unused.
        unused: Pad<4>,
        /// Padding.
        padding: Pad<4>,
        /// Lock owner.
        lock_owner: u64,
    }
}

wire_struct! {
    /// `struct fuse_read_in` (READ, READDIR, READDIRPLUS).
    ReadIn {
        /// File handle.
        fh: u64,
        /// Offset (a directory cookie for READDIR).
        offset: u64,
        /// Bytes wanted.
        size: u32,
        /// FUSE_READ_* flags.
        read_flags: u32,
        /// Lock owner.
        lock_owner: u64,
        /// open(2) flags.
        flags: u32,
        /// Padding.
        padding: Pad<4>,
    }
}

wire_struct! {
    /// `struct fuse_write_in`.
    WriteIn {
        /// File handle.
        fh: u64,
        /// Offset.
        offset: u64,
        /// Bytes of data that follow.
        size: u32,
        /// FUSE_WRITE_* flags.
        write_flags: u32,
        /// Lock owner.
        lock_owner: u64,
        /// open(2) flags.
        flags: u32,
        /// Padding.
        padding: Pad<4>,
    }
}

wire_struct! {
    /// `struct fuse_write_out`.
    WriteOut {
        /// Bytes written.
        size: u32,
        /// Padding.
        padding: Pad<4>,
    }
}

wire_struct! {
    /// `struct fuse_fsync_in` (FSYNC and FSYNCDIR).
    FsyncIn {
        /// File handle.
        fh: u64,
        /// FUSE_FSYNC_FDATASYNC.
        fsync_flags: u32,
        /// Padding.
        padding: Pad<4>,
    }
}

wire_struct! {
    /// `struct fuse_setxattr_in` in its extended (FUSE_SETXATTR_EXT) 16-byte layout. Without
    /// that flag the kernel sends the first 8 bytes only and `setxattr_flags` decodes as 0.
    SetxattrIn {
        /// Value size.
        size: u32,
        /// XATTR_CREATE, XATTR_REPLACE.
        flags: u32,
        /// FUSE_SETXATTR_* flags.
        setxattr_flags: u32,
        /// Padding.
        padding: Pad<4>,
    }
}

/// Size of `fuse_setxattr_in` without FUSE_SETXATTR_EXT.
pub const FUSE_COMPAT_SETXATTR_IN_SIZE: usize = 8;

wire_struct! {
    /// `struct fuse_getxattr_in` (GETXATTR and LISTXATTR).
    GetxattrIn {
        /// Buffer size; 0 asks for the size only.
        size: u32,
        /// Padding.
        padding: Pad<4>,
    }
}

wire_struct! {
    /// `struct fuse_getxattr_out`: the size answer when `size` was 0.
    GetxattrOut {
        /// Size of the value or list.
        size: u32,
        /// Padding.
        padding: Pad<4>,
    }
}

wire_struct! {
    /// `struct fuse_lk_in` (GETLK, SETLK, SETLKW).
    LkIn {
        /// File handle.
        fh: u64,
        /// Lock owner.
        owner: u64,
        /// The lock.
        lk: FileLock,
        /// FUSE_LK_FLOCK.
        lk_flags: u32,
        /// Padding.
        padding: Pad<4>,
    }
}

wire_struct! {
    /// `struct fuse_lk_out`.
    LkOut {
        /// The conflicting lock, or F_UNLCK.
        lk: FileLock,
    }
}

wire_struct! {
    /// `struct fuse_access_in`.
    AccessIn {
        /// R_OK, W_OK, X_OK, F_OK.
        mask: u32,
        /// Padding.
        padding: Pad<4>,
    }
}

wire_struct! {
    /// `struct fuse_interrupt_in`.
    InterruptIn {
        /// The request to interrupt.
        unique: u64,
    }
}

wire_struct! {
    /// `struct fuse_fallocate_in`.
    FallocateIn {
        /// File handle.
        fh: u64,
        /// Offset.
        offset: u64,
        /// Length.
        length: u64,
        /// FALLOC_FL_* mode.
        mode: u32,
        /// Padding.
        padding: Pad<4>,
    }
}

wire_struct! {
    /// `struct fuse_lseek_in`.
    LseekIn {
        /// File handle.
        fh: u64,
        /// Offset.
        offset: u64,
        /// SEEK_DATA, SEEK_HOLE (others the kernel handles itself).
        whence: u32,
        /// Padding.
        padding: Pad<4>,
    }
}

wire_struct! {
    /// `struct fuse_lseek_out`.
    LseekOut {
        /// Resulting offset.
        offset: u64,
    }
}

wire_struct! {
    /// `struct fuse_copy_file_range_in`.
    CopyFileRangeIn {
        /// Source handle (the source node is the header's nodeid).
        fh_in: u64,
        /// Source offset.
        off_in: u64,
        /// Destination node.
        nodeid_out: u64,
        /// Destination handle.
        fh_out: u64,
        /// Destination offset.
        off_out: u64,
        /// Bytes to copy.
        len: u64,
        /// copy_file_range(2) flags.
        flags: u64,
    }
}

wire_struct! {
    /// `struct fuse_syncfs_in`.
    SyncfsIn {
        /// Padding.
        padding: Pad<8>,
    }
}

wire_struct! {
    /// The fixed part of `struct fuse_dirent`; the name follows, padded to 8 bytes.
    DirentHeader {
        /// Inode number.
        ino: u64,
        /// Cookie of the next entry.
        off: u64,
        /// Length of the name.
        namelen: u32,
        /// DT_* type.
        typ: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::Wire;
    use super::*;

    #[test]
    fn test_struct_sizes_match_uapi_are_equal() {
        let sizes = [
            (InHeader::SIZE, 40),
            (OutHeader::SIZE, 16),
            (Attr::SIZE, 88),
            (Kstatfs::SIZE, 80),
            (FileLock::SIZE, 24),
            (EntryOut::SIZE, 128),
            (AttrOut::SIZE, 104),
            (InitIn::SIZE, 64),
            (InitOut::SIZE, 64),
            (ForgetIn::SIZE, 8),
            (ForgetOne::SIZE, 16),
            (BatchForgetIn::SIZE, 8),
            (GetattrIn::SIZE, 16),
            (SetattrIn::SIZE, 88),
            (MknodIn::SIZE, 16),
            (MkdirIn::SIZE, 8),
            (RenameIn::SIZE, 8),
            (Rename2In::SIZE, 16),
            (LinkIn::SIZE, 8),
            (OpenIn::SIZE, 8),
            (CreateIn::SIZE, 16),
            (OpenOut::SIZE, 16),
            (CreateOut::SIZE, 144),
            (ReleaseIn::SIZE, 24),
            (FlushIn::SIZE, 24),
            (ReadIn::SIZE, 40),
            (WriteIn::SIZE, 40),
            (WriteOut::SIZE, 8),
            (FsyncIn::SIZE, 16),
            (SetxattrIn::SIZE, 16),
            (GetxattrIn::SIZE, 8),
            (GetxattrOut::SIZE, 8),
            (LkIn::SIZE, 48),
            (LkOut::SIZE, 24),
            (AccessIn::SIZE, 8),
            (InterruptIn::SIZE, 8),
            (FallocateIn::SIZE, 32),
            (LseekIn::SIZE, 24),
            (LseekOut::SIZE, 8),
            (CopyFileRangeIn::SIZE, 56),
            (SyncfsIn::SIZE, 8),
            (DirentHeader::SIZE, 24),
        ];
        for (i, (got, want)) in sizes.into_iter().enumerate() {
            assert_eq!(got, want, "struct #{i}");
        }
    }
}
