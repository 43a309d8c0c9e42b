//! NTSTATUS values the NTFS backend meets, and the Linux errno each stands for: the mapping of
//! WSL's LxUtil (`nt_status_to_lx` in OpenVMM's `lxutil`), with three deliberate differences:
//! `STATUS_NOT_SAME_DEVICE` is `EXDEV` (LxUtil: `EINVAL`), `STATUS_EA_TOO_LARGE` is `E2BIG` (as
//! Linux answers a value past an inode's xattr space), and a status neither knows is `EIO`
//! (LxUtil: `EINVAL`). A status whose top bit is set (an error, or a warning such as
//! `STATUS_BUFFER_OVERFLOW`) is a failure; nothing maps a failure to success.

use crate::linux::*;

/// An NTSTATUS.
pub type NtStatus = u32;

/// Success.
pub const STATUS_SUCCESS: NtStatus = 0;
/// A buffer too small for all the data (a warning: partial data came back).
pub const STATUS_BUFFER_OVERFLOW: NtStatus = 0x8000_0005;
/// A directory listing has no more entries.
pub const STATUS_NO_MORE_FILES: NtStatus = 0x8000_0006;
/// The open stopped at a symbolic link.
pub const STATUS_STOPPED_ON_SYMLINK: NtStatus = 0x8000_002D;
/// Not implemented (Wine, for POSIX delete and rename).
pub const STATUS_NOT_IMPLEMENTED: NtStatus = 0xC000_0002;
/// The wait or I/O was cancelled.
pub const STATUS_CANCELLED: NtStatus = 0xC000_0120;
/// No such file.
pub const STATUS_NO_SUCH_FILE: NtStatus = 0xC000_000F;
/// A path of bad syntax.
pub const STATUS_OBJECT_PATH_INVALID: NtStatus = 0xC000_0039;
/// The caller lacks a privilege (creating NT symbolic links without developer mode).
pub const STATUS_PRIVILEGE_NOT_HELD: NtStatus = 0xC000_0061;
/// An EA listing has no more entries.
pub const STATUS_NO_MORE_EAS: NtStatus = 0x8000_0012;
/// The file system keeps no EAs (or none on this file: a reparse point).
pub const STATUS_EAS_NOT_SUPPORTED: NtStatus = 0xC000_004F;
/// A reparse buffer NTFS will not take.
pub const STATUS_IO_REPARSE_DATA_INVALID: NtStatus = 0xC000_0278;
/// `UnlockFileEx` of a range not locked through this handle.
pub const STATUS_RANGE_NOT_LOCKED: NtStatus = 0xC000_007E;
/// A bad handle.
pub const STATUS_INVALID_HANDLE: NtStatus = 0xC000_0008;
/// A bad parameter.
pub const STATUS_INVALID_PARAMETER: NtStatus = 0xC000_000D;
/// A read at or past the end of the file.
pub const STATUS_END_OF_FILE: NtStatus = 0xC000_0011;
/// The handle lacks the access the call needs.
pub const STATUS_ACCESS_DENIED: NtStatus = 0xC000_0022;
/// A buffer too small for anything.
pub const STATUS_BUFFER_TOO_SMALL: NtStatus = 0xC000_0023;
/// A name NTFS cannot hold (`\`, `..` relative to a handle, an illegal character).
pub const STATUS_OBJECT_NAME_INVALID: NtStatus = 0xC000_0033;
/// No such name.
pub const STATUS_OBJECT_NAME_NOT_FOUND: NtStatus = 0xC000_0034;
/// The name exists.
pub const STATUS_OBJECT_NAME_COLLISION: NtStatus = 0xC000_0035;
/// A component of the path does not exist.
pub const STATUS_OBJECT_PATH_NOT_FOUND: NtStatus = 0xC000_003A;
/// The file is open in a way that forbids this.
pub const STATUS_SHARING_VIOLATION: NtStatus = 0xC000_0043;
/// The EAs would pass the 64 KiB NTFS keeps per file.
pub const STATUS_EA_TOO_LARGE: NtStatus = 0xC000_0050;
/// The file has no EAs.
pub const STATUS_NO_EAS_ON_FILE: NtStatus = 0xC000_0052;
/// A byte-range lock conflicts with the I/O.
pub const STATUS_FILE_LOCK_CONFLICT: NtStatus = 0xC000_0054;
/// A byte-range lock was not granted.
pub const STATUS_LOCK_NOT_GRANTED: NtStatus = 0xC000_0055;
/// The file is being deleted.
pub const STATUS_DELETE_PENDING: NtStatus = 0xC000_0056;
/// The volume is full.
pub const STATUS_DISK_FULL: NtStatus = 0xC000_007F;
/// Out of memory or another resource.
pub const STATUS_INSUFFICIENT_RESOURCES: NtStatus = 0xC000_009A;
/// The volume is write-protected.
pub const STATUS_MEDIA_WRITE_PROTECTED: NtStatus = 0xC000_00A2;
/// A directory where a file was asked for.
pub const STATUS_FILE_IS_A_DIRECTORY: NtStatus = 0xC000_00BA;
/// The file system does not support the call.
pub const STATUS_NOT_SUPPORTED: NtStatus = 0xC000_00BB;
/// A rename or link across volumes.
pub const STATUS_NOT_SAME_DEVICE: NtStatus = 0xC000_00D4;
/// The directory is not empty.
pub const STATUS_DIRECTORY_NOT_EMPTY: NtStatus = 0xC000_0101;
/// A file where a directory was asked for.
pub const STATUS_NOT_A_DIRECTORY: NtStatus = 0xC000_0103;
/// A name longer than the volume allows.
pub const STATUS_NAME_TOO_LONG: NtStatus = 0xC000_0106;
/// The file cannot be deleted (read-only attribute, or in use as a mapped image).
pub const STATUS_CANNOT_DELETE: NtStatus = 0xC000_0121;
/// The file was deleted.
pub const STATUS_FILE_DELETED: NtStatus = 0xC000_0123;
/// A hard link past the volume's limit (1024 on NTFS).
pub const STATUS_TOO_MANY_LINKS: NtStatus = 0xC000_0265;
/// The file is not a reparse point.
pub const STATUS_NOT_A_REPARSE_POINT: NtStatus = 0xC000_0275;
/// A reparse point whose tag nothing handles.
pub const STATUS_IO_REPARSE_TAG_NOT_HANDLED: NtStatus = 0xC000_0279;

/// Whether `status` is a failure (an error or a warning).
pub fn failed(status: NtStatus) -> bool {
    status & 0x8000_0000 != 0
}

/// The Linux errno for a failed `status`.
pub fn errno_of(status: NtStatus) -> i32 {
    match status {
        STATUS_OBJECT_NAME_NOT_FOUND
        | STATUS_OBJECT_PATH_NOT_FOUND
        | STATUS_OBJECT_NAME_INVALID
        | STATUS_NO_SUCH_FILE
        | STATUS_DELETE_PENDING
        | STATUS_FILE_DELETED => ENOENT,
        STATUS_OBJECT_NAME_COLLISION => EEXIST,
        STATUS_INVALID_PARAMETER
        | STATUS_OBJECT_PATH_INVALID
        | STATUS_NOT_A_REPARSE_POINT
        | STATUS_IO_REPARSE_DATA_INVALID => EINVAL,
        STATUS_ACCESS_DENIED | STATUS_SHARING_VIOLATION => EACCES,
        STATUS_NOT_SUPPORTED | STATUS_PRIVILEGE_NOT_HELD => EPERM,
        STATUS_CANNOT_DELETE => EIO,
        STATUS_FILE_IS_A_DIRECTORY => EISDIR,
        STATUS_NOT_A_DIRECTORY => ENOTDIR,
        STATUS_DIRECTORY_NOT_EMPTY => ENOTEMPTY,
        STATUS_NAME_TOO_LONG => ENAMETOOLONG,
        STATUS_DISK_FULL => ENOSPC,
        STATUS_EA_TOO_LARGE => E2BIG,
        STATUS_NO_EAS_ON_FILE | STATUS_NO_MORE_EAS => ENODATA,
        STATUS_EAS_NOT_SUPPORTED => EOPNOTSUPP,
        STATUS_FILE_LOCK_CONFLICT | STATUS_LOCK_NOT_GRANTED => EAGAIN,
        STATUS_INSUFFICIENT_RESOURCES => ENOMEM,
        STATUS_MEDIA_WRITE_PROTECTED => EROFS,
        STATUS_NOT_IMPLEMENTED => ENOSYS,
        STATUS_NOT_SAME_DEVICE => EXDEV,
        STATUS_TOO_MANY_LINKS => EMLINK,
        STATUS_INVALID_HANDLE => EBADF,
        STATUS_CANCELLED => EINTR,
        STATUS_BUFFER_OVERFLOW | STATUS_BUFFER_TOO_SMALL => EOVERFLOW,
        STATUS_STOPPED_ON_SYMLINK => ELOOP,
        STATUS_IO_REPARSE_TAG_NOT_HANDLED => ENXIO,
        _ => EIO,
    }
}

/// The errno of a failed read or write: as [`errno_of`], but a handle without the access is
/// `EBADF` (what Linux answers a read of a write-only descriptor).
pub fn errno_of_io(status: NtStatus) -> i32 {
    match status {
        STATUS_ACCESS_DENIED => EBADF,
        other => errno_of(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_known_statuses_map_as_lxutil_does() {
        assert_eq!(errno_of(STATUS_OBJECT_NAME_NOT_FOUND), ENOENT);
        assert_eq!(errno_of(STATUS_OBJECT_NAME_COLLISION), EEXIST);
        assert_eq!(errno_of(STATUS_DIRECTORY_NOT_EMPTY), ENOTEMPTY);
        assert_eq!(errno_of(STATUS_NOT_A_DIRECTORY), ENOTDIR);
        assert_eq!(errno_of(STATUS_FILE_IS_A_DIRECTORY), EISDIR);
        assert_eq!(errno_of(STATUS_LOCK_NOT_GRANTED), EAGAIN);
        assert_eq!(errno_of(STATUS_NO_EAS_ON_FILE), ENODATA);
        assert_eq!(errno_of(STATUS_NOT_SAME_DEVICE), EXDEV);
        assert_eq!(errno_of(STATUS_OBJECT_NAME_INVALID), ENOENT);
        assert_eq!(errno_of(STATUS_SHARING_VIOLATION), EACCES);
        assert_eq!(errno_of(STATUS_BUFFER_OVERFLOW), EOVERFLOW);
        assert_eq!(errno_of_io(STATUS_ACCESS_DENIED), EBADF);
        assert_eq!(errno_of(STATUS_ACCESS_DENIED), EACCES);
    }

    #[test]
    fn test_unknown_failures_are_eio_and_severity_is_read_from_the_top_bits() {
        assert_eq!(errno_of(0xC0DE_0001), EIO);
        assert!(failed(STATUS_NO_MORE_FILES));
        assert!(failed(STATUS_ACCESS_DENIED));
        assert!(!failed(STATUS_SUCCESS));
        assert!(!failed(0x0000_0103)); // STATUS_PENDING is not a failure
    }
}
