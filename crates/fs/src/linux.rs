//! Linux's ABI values as both protocols carry them (9P2000.L and FUSE send Linux errnos, open
//! flags, file types, lock types and `lseek` whences), whatever the host is.
//!
//! On a Linux host these equal `libc`'s (the tests check each one); on Windows `libc` has other
//! numbers or none (msvcrt's `O_CREAT` is 0x100, `ELOOP` 114, `ENODATA` 120), so the servers
//! take wire values from here, never from `libc`. Values are Linux x86-64's (the generic
//! table; our guests are x86-64).

#![allow(missing_docs)]

use std::io;

// Errnos (asm-generic/errno-base.h, errno.h).
pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const ESRCH: i32 = 3;
pub const EINTR: i32 = 4;
pub const EIO: i32 = 5;
pub const ENXIO: i32 = 6;
pub const E2BIG: i32 = 7;
pub const EBADF: i32 = 9;
pub const EAGAIN: i32 = 11;
pub const ENOMEM: i32 = 12;
pub const EACCES: i32 = 13;
pub const EFAULT: i32 = 14;
pub const EBUSY: i32 = 16;
pub const EEXIST: i32 = 17;
pub const EXDEV: i32 = 18;
pub const ENODEV: i32 = 19;
pub const ENOTDIR: i32 = 20;
pub const EISDIR: i32 = 21;
pub const EINVAL: i32 = 22;
pub const ENFILE: i32 = 23;
pub const EMFILE: i32 = 24;
pub const ENOTTY: i32 = 25;
pub const ETXTBSY: i32 = 26;
pub const EFBIG: i32 = 27;
pub const ENOSPC: i32 = 28;
pub const ESPIPE: i32 = 29;
pub const EROFS: i32 = 30;
pub const EMLINK: i32 = 31;
pub const ERANGE: i32 = 34;
pub const EDEADLK: i32 = 35;
pub const ENAMETOOLONG: i32 = 36;
pub const ENOLCK: i32 = 37;
pub const ENOSYS: i32 = 38;
pub const ENOTEMPTY: i32 = 39;
pub const ELOOP: i32 = 40;
pub const ENODATA: i32 = 61;
pub const EPROTO: i32 = 71;
pub const EOVERFLOW: i32 = 75;
pub const EMSGSIZE: i32 = 90;
pub const EOPNOTSUPP: i32 = 95;
pub const ESTALE: i32 = 116;
pub const ETIMEDOUT: i32 = 110;
pub const ECANCELED: i32 = 125;

// Open flags (asm-generic/fcntl.h, x86-64).
pub const O_ACCMODE: i32 = 0o3;
pub const O_RDONLY: i32 = 0;
pub const O_WRONLY: i32 = 0o1;
pub const O_RDWR: i32 = 0o2;
pub const O_CREAT: i32 = 0o100;
pub const O_EXCL: i32 = 0o200;
pub const O_NOCTTY: i32 = 0o400;
pub const O_TRUNC: i32 = 0o1000;
pub const O_APPEND: i32 = 0o2000;
pub const O_NONBLOCK: i32 = 0o4000;
pub const O_DSYNC: i32 = 0o10000;
pub const O_ASYNC: i32 = 0o20000;
pub const O_DIRECT: i32 = 0o40000;
/// The kernel's value (glibc's x86-64 `O_LARGEFILE` is 0).
pub const O_LARGEFILE: i32 = 0o100000;
pub const O_DIRECTORY: i32 = 0o200000;
pub const O_NOFOLLOW: i32 = 0o400000;
pub const O_NOATIME: i32 = 0o1000000;
pub const O_CLOEXEC: i32 = 0o2000000;
pub const O_SYNC: i32 = 0o4010000;
/// `__O_TMPFILE | O_DIRECTORY`.
pub const O_TMPFILE: i32 = 0o20200000;

// File types (the `S_IFMT` bits of a mode).
pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o60000;
pub const S_IFDIR: u32 = 0o40000;
pub const S_IFCHR: u32 = 0o20000;
pub const S_IFIFO: u32 = 0o10000;

// lseek whences.
pub const SEEK_SET: i32 = 0;
pub const SEEK_CUR: i32 = 1;
pub const SEEK_END: i32 = 2;
pub const SEEK_DATA: i32 = 3;
pub const SEEK_HOLE: i32 = 4;

// POSIX lock types.
pub const F_RDLCK: i32 = 0;
pub const F_WRLCK: i32 = 1;
pub const F_UNLCK: i32 = 2;

// access() modes and unlinkat()'s flag.
pub const F_OK: i32 = 0;
pub const X_OK: i32 = 1;
pub const W_OK: i32 = 2;
pub const R_OK: i32 = 4;
pub const AT_REMOVEDIR: i32 = 0x200;

/// The Linux errno for a host error: its own errno on a Linux host, else (a Windows error code
/// means nothing to a Linux guest) the errno of its kind, EIO when the kind says nothing.
pub fn errno_of(e: &io::Error) -> i32 {
    if cfg!(target_os = "linux") {
        if let Some(errno) = e.raw_os_error() {
            return errno;
        }
    }
    errno_of_kind(e.kind())
}

/// The Linux errno that stands for `kind` (EIO for kinds with no errno of their own).
pub fn errno_of_kind(kind: io::ErrorKind) -> i32 {
    use io::ErrorKind as K;
    match kind {
        K::NotFound => ENOENT,
        K::PermissionDenied => EACCES,
        K::AlreadyExists => EEXIST,
        K::WouldBlock => EAGAIN,
        K::InvalidInput | K::InvalidData => EINVAL,
        K::TimedOut => ETIMEDOUT,
        K::Interrupted => EINTR,
        K::Unsupported => EOPNOTSUPP,
        K::OutOfMemory => ENOMEM,
        K::NotADirectory => ENOTDIR,
        K::IsADirectory => EISDIR,
        K::DirectoryNotEmpty => ENOTEMPTY,
        K::ReadOnlyFilesystem => EROFS,
        K::StorageFull => ENOSPC,
        K::FileTooLarge => EFBIG,
        K::ResourceBusy => EBUSY,
        K::ExecutableFileBusy => ETXTBSY,
        K::Deadlock => EDEADLK,
        K::CrossesDevices => EXDEV,
        K::TooManyLinks => EMLINK,
        K::InvalidFilename => ENAMETOOLONG,
        K::ArgumentListTooLong => E2BIG,
        K::NotSeekable => ESPIPE,
        K::StaleNetworkFileHandle => ESTALE,
        _ => EIO,
    }
}

#[cfg(test)]
mod errno_tests {
    use super::*;

    #[test]
    fn test_errno_of_kind_maps_file_errors() {
        assert_eq!(errno_of_kind(io::ErrorKind::NotFound), ENOENT);
        assert_eq!(errno_of_kind(io::ErrorKind::DirectoryNotEmpty), ENOTEMPTY);
        assert_eq!(errno_of_kind(io::ErrorKind::Other), EIO);
    }

    #[test]
    fn test_errno_of_error_without_code_uses_its_kind() {
        let e = io::Error::new(io::ErrorKind::AlreadyExists, "x");
        assert_eq!(errno_of(&e), EEXIST);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn test_errno_of_linux_error_is_its_errno() {
        assert_eq!(errno_of(&io::Error::from_raw_os_error(ELOOP)), ELOOP);
    }

    /// A Windows error code is not a Linux errno: ERROR_FILE_NOT_FOUND (2) happens to be ENOENT,
    /// but ERROR_ACCESS_DENIED (5) is not EIO.
    #[cfg(windows)]
    #[test]
    fn test_errno_of_windows_error_goes_by_kind() {
        assert_eq!(errno_of(&io::Error::from_raw_os_error(5)), EACCES);
        assert_eq!(errno_of(&io::Error::from_raw_os_error(183)), EEXIST);
    }
}

#[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
mod tests {
    /// Every value equals the host's `libc` one, type included.
    macro_rules! same_as_libc {
        ($($name:ident),* $(,)?) => {
            $( assert_eq!(super::$name, libc::$name, stringify!($name)); )*
        };
    }

    #[test]
    fn test_linux_values_equal_libc_on_linux() {
        same_as_libc!(
            EPERM,
            ENOENT,
            ESRCH,
            EINTR,
            EIO,
            ENXIO,
            E2BIG,
            EBADF,
            EAGAIN,
            ENOMEM,
            EACCES,
            EFAULT,
            EBUSY,
            EEXIST,
            EXDEV,
            ENODEV,
            ENOTDIR,
            EISDIR,
            EINVAL,
            ENFILE,
            EMFILE,
            ENOTTY,
            ETXTBSY,
            EFBIG,
            ENOSPC,
            ESPIPE,
            EROFS,
            EMLINK,
            ERANGE,
            EDEADLK,
            ENAMETOOLONG,
            ENOLCK,
            ENOSYS,
            ENOTEMPTY,
            ELOOP,
            ENODATA,
            EPROTO,
            EOVERFLOW,
            EMSGSIZE,
            EOPNOTSUPP,
            ESTALE,
            ETIMEDOUT,
            ECANCELED,
        );
        same_as_libc!(
            O_ACCMODE,
            O_RDONLY,
            O_WRONLY,
            O_RDWR,
            O_CREAT,
            O_EXCL,
            O_NOCTTY,
            O_TRUNC,
            O_APPEND,
            O_NONBLOCK,
            O_DSYNC,
            O_ASYNC,
            O_DIRECT,
            O_DIRECTORY,
            O_NOFOLLOW,
            O_NOATIME,
            O_CLOEXEC,
            O_SYNC,
            O_TMPFILE,
        );
        // glibc's x86-64 O_LARGEFILE is 0 (64-bit offsets are the default there); the kernel's,
        // which a guest's flags carry, is 0o100000.
        assert_eq!(libc::O_LARGEFILE, 0);
        same_as_libc!(S_IFMT, S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO);
        same_as_libc!(SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE);
        same_as_libc!(
            F_RDLCK,
            F_WRLCK,
            F_UNLCK,
            F_OK,
            X_OK,
            W_OK,
            R_OK,
            AT_REMOVEDIR
        );
    }
}
