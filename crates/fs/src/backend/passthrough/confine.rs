//! Confinement: how a guest name becomes a host file descriptor without leaving the share.
//!
//! The rules, in one place:
//!
//! 1. A name from the guest is one path component: [`check_name`] refuses `""`, `"."`, `".."`,
//!    anything with `/` or NUL, and anything over [`NAME_MAX`] bytes, before any syscall.
//! 2. Every name is resolved relative to the O_PATH descriptor of its parent node with
//!    [`open_beneath`]: `openat2(parent, name, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
//!    RESOLVE_NO_SYMLINKS)`. With one checked component, `RESOLVE_BENEATH` cannot be violated;
//!    we ask for it anyway as a second wall. `RESOLVE_NO_SYMLINKS` with `O_PATH | O_NOFOLLOW`
//!    hands back the symlink itself; anything else that meets a symlink fails with `ELOOP`, so a
//!    symlink swapped in by a racing rename is never followed. If the host kernel lacks
//!    `openat2` (`ENOSYS`, Linux < 5.6 or a seccomp filter), it falls back to
//!    `openat(parent, name, flags | O_NOFOLLOW)`, which is equally confined for one checked
//!    component.
//! 3. Operations on an existing node go through the node's own O_PATH descriptor with `*at`
//!    syscalls and `AT_EMPTY_PATH` (`fstatat`, `fchownat`, `utimensat`, `readlinkat`, `linkat`),
//!    so they act on the inode the guest looked up, even after the name was replaced.
//! 4. Where the kernel has no `*at` form, [`ProcFd`] names the node as `/proc/self/fd/N`:
//!    re-opening an O_PATH descriptor for I/O (`openat(/proc/self/fd, "N")`), `chmod` when
//!    `fchmodat2(AT_EMPTY_PATH)` is missing (Linux < 6.6), and the `*xattr` calls on
//!    non-symlinks. A `/proc/self/fd/N` magic link points at the very inode the descriptor
//!    holds, never at a path, so it cannot be redirected by the guest.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::backend::{Error, Result};

/// Checks that a guest name is one usable path component and makes it a C string.
pub(crate) fn check_name(name: &[u8]) -> Result<CString> {
    crate::backend::check_component(name)?;
    CString::new(name).map_err(|_| Error::refused(libc::EINVAL, "name contains NUL"))
}

/// The kernel's `struct open_how` (libc's is `#[non_exhaustive]`, so it cannot be built here).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Set once the host kernel answered `ENOSYS` to `openat2`.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens one checked component `name` beneath directory `dir` (see the module doc, rule 2).
/// `O_CLOEXEC` and `O_NOFOLLOW` are always added.
pub(crate) fn open_beneath(
    dir: BorrowedFd<'_>,
    name: &CString,
    flags: i32,
    mode: u32,
) -> Result<OwnedFd> {
    let flags = flags | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let how = OpenHow {
            flags: flags as u64,
            mode: if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
                u64::from(mode & 0o7777)
            } else {
                0
            },
            resolve: libc::RESOLVE_BENEATH
                | libc::RESOLVE_NO_MAGICLINKS
                | libc::RESOLVE_NO_SYMLINKS,
        };
        // SAFETY: `name` is a valid NUL-terminated string and `how` a valid `open_how` of the
        // size passed; the kernel reads both and writes nothing.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                name.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: openat2 returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENOSYS) {
            return Err(Error::Host {
                op: "openat2",
                source: err,
            });
        }
        tracing::warn!("host kernel has no openat2; falling back to openat with O_NOFOLLOW");
        NO_OPENAT2.store(true, Ordering::Relaxed);
    }
    // SAFETY: `name` is a valid NUL-terminated string; the result is checked below.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode & 0o7777) };
    if fd < 0 {
        return Err(Error::last_os("openat"));
    }
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `/proc/self/fd`, opened once, for the few operations with no `*at` form (module doc, rule 4).
#[derive(Debug)]
pub(crate) struct ProcFd {
    dir: OwnedFd,
}

impl ProcFd {
    /// Opens `/proc/self/fd`.
    pub(crate) fn open() -> Result<Self> {
        // SAFETY: a constant NUL-terminated path; the result is checked below.
        let fd = unsafe {
            libc::open(
                c"/proc/self/fd".as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(Error::last_os("open /proc/self/fd"));
        }
        Ok(ProcFd {
            // SAFETY: open returned a new descriptor that nothing else owns.
            dir: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Opens the inode behind `fd` anew with `flags` (e.g. an O_PATH node for reading).
    /// `O_CREAT`, `O_EXCL` and `O_NOFOLLOW` are removed (a magic link with `O_NOFOLLOW` is
    /// `ELOOP`); `O_CLOEXEC` is added.
    pub(crate) fn reopen(&self, fd: BorrowedFd<'_>, flags: i32) -> Result<OwnedFd> {
        let name = Self::name(fd);
        let flags = (flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW)) | libc::O_CLOEXEC;
        // SAFETY: `name` is a valid NUL-terminated string; the result is checked below.
        let new = unsafe { libc::openat(self.dir.as_raw_fd(), name.as_ptr(), flags) };
        if new < 0 {
            return Err(Error::last_os("reopen"));
        }
        // SAFETY: openat returned a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(new) })
    }

    /// The absolute `/proc/self/fd/N` path of `fd`, for calls that take only a path.
    pub(crate) fn path(fd: BorrowedFd<'_>) -> CString {
        let text = format!("/proc/self/fd/{}", fd.as_raw_fd());
        // A formatted integer has no NUL; the fallback is never taken.
        CString::new(text).unwrap_or_default()
    }

    fn name(fd: BorrowedFd<'_>) -> CString {
        CString::new(fd.as_raw_fd().to_string()).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_check_name_single_component_accepted() {
        assert_eq!(check_name(b"file.txt").unwrap().as_bytes(), b"file.txt");
        assert!(check_name(&[b'a'; crate::backend::NAME_MAX]).is_ok());
    }

    #[test]
    fn test_check_name_bad_names_refused() {
        for (name, errno) in [
            (&b""[..], libc::EINVAL),
            (b".", libc::EINVAL),
            (b"..", libc::EINVAL),
            (b"a/b", libc::EINVAL),
            (b"/etc", libc::EINVAL),
            (b"a\0b", libc::EINVAL),
        ] {
            assert_eq!(check_name(name).unwrap_err().errno(), errno, "{name:?}");
        }
        let long = [b'a'; crate::backend::NAME_MAX + 1];
        assert_eq!(check_name(&long).unwrap_err().errno(), libc::ENAMETOOLONG);
    }
}
