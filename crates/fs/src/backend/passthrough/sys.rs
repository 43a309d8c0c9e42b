//! Thin, safe wrappers over the host system calls the passthrough backend uses.

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::confine::ProcFd;
use crate::backend::{Attr, DirEntry, Error, Result, StatFs, TimeSet, Timespec};

/// Turns a `-1` return into the thread's errno.
pub(crate) fn cvt(ret: libc::c_int, op: &'static str) -> Result<libc::c_int> {
    if ret < 0 {
        Err(Error::last_os(op))
    } else {
        Ok(ret)
    }
}

/// Turns a negative `ssize_t`/`long` return into the thread's errno.
pub(crate) fn cvt_size(ret: i64, op: &'static str) -> Result<u64> {
    u64::try_from(ret).map_err(|_| Error::last_os(op))
}

/// `stat` of the inode behind `fd` itself (an O_PATH symlink is not followed).
pub(crate) fn stat_fd(fd: BorrowedFd<'_>) -> Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::zeroed();
    cvt(
        // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH, and `st` is a writable stat.
        unsafe {
            libc::fstatat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                st.as_mut_ptr(),
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        },
        "fstatat",
    )?;
    // SAFETY: fstatat succeeded, so it filled `st` (and it was zeroed before anyway).
    Ok(unsafe { st.assume_init() })
}

fn ts(sec: i64, nsec: i64) -> Timespec {
    Timespec {
        sec,
        nsec: u32::try_from(nsec).unwrap_or(0),
    }
}

/// The backend's [`Attr`] of a host `stat`.
#[allow(clippy::unnecessary_cast)] // field widths differ between architectures
pub(crate) fn attr_of(st: &libc::stat) -> Attr {
    Attr {
        ino: st.st_ino as u64,
        mode: st.st_mode as u32,
        nlink: st.st_nlink as u64,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev as u64,
        size: st.st_size as u64,
        blksize: st.st_blksize as u64,
        blocks: st.st_blocks as u64,
        atime: ts(st.st_atime as i64, st.st_atime_nsec as i64),
        mtime: ts(st.st_mtime as i64, st.st_mtime_nsec as i64),
        ctime: ts(st.st_ctime as i64, st.st_ctime_nsec as i64),
    }
}

/// The node-table key of a host `stat`.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn key_of(st: &libc::stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

/// `chmod` of the inode behind `fd` (not a symlink): `fchmodat2(fd, "", AT_EMPTY_PATH)`, or on
/// kernels without it (< 6.6) `chmod("/proc/self/fd/N")`.
pub(crate) fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> Result<()> {
    // SAFETY: an empty NUL-terminated path; the kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode & 0o7777,
            libc::AT_EMPTY_PATH,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(Error::Host {
            op: "fchmodat2",
            source: err,
        });
    }
    let path = ProcFd::path(fd);
    cvt(
        // SAFETY: a valid NUL-terminated path naming the magic link of our own descriptor.
        unsafe { libc::chmod(path.as_ptr(), mode & 0o7777) },
        "chmod",
    )?;
    Ok(())
}

/// `chown` of the inode behind `fd` itself (`None` leaves an id alone).
pub(crate) fn chown_fd(fd: BorrowedFd<'_>, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
    // `(uid_t)-1` means "unchanged" to the kernel.
    let uid = uid.unwrap_or(u32::MAX);
    let gid = gid.unwrap_or(u32::MAX);
    cvt(
        // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH; nothing is written to memory.
        unsafe {
            libc::fchownat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                uid,
                gid,
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        },
        "fchownat",
    )?;
    Ok(())
}

fn timespec_of(t: TimeSet) -> libc::timespec {
    match t {
        TimeSet::Omit => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        TimeSet::Now => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        TimeSet::At(t) => libc::timespec {
            tv_sec: t.sec,
            tv_nsec: i64::from(t.nsec.min(999_999_999)),
        },
    }
}

/// `utimensat` of the inode behind `fd` itself (`AT_EMPTY_PATH`, Linux ≥ 5.8).
pub(crate) fn set_times(fd: BorrowedFd<'_>, atime: TimeSet, mtime: TimeSet) -> Result<()> {
    let times = [timespec_of(atime), timespec_of(mtime)];
    cvt(
        // SAFETY: an empty NUL-terminated path and an array of two timespecs, both only read.
        unsafe {
            libc::utimensat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                times.as_ptr(),
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        },
        "utimensat",
    )?;
    Ok(())
}

/// `readlinkat(fd, "")` of an O_PATH symlink descriptor.
pub(crate) fn readlink_fd(fd: BorrowedFd<'_>) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: `buf` is writable for its length; the path is an empty NUL-terminated string.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = cvt_size(n as i64, "readlinkat")?;
    buf.truncate(usize::try_from(n).unwrap_or(0));
    Ok(buf)
}

/// `fstatfs` of the file system holding `fd`.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn statfs_fd(fd: BorrowedFd<'_>) -> Result<StatFs> {
    let mut st = MaybeUninit::<libc::statfs>::zeroed();
    cvt(
        // SAFETY: `st` is a writable statfs.
        unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) },
        "fstatfs",
    )?;
    // SAFETY: fstatfs succeeded and filled `st`.
    let st = unsafe { st.assume_init() };
    // SAFETY: fsid_t is two ints; reading it as bytes is always valid.
    let fsid: [u32; 2] = unsafe { std::mem::transmute(st.f_fsid) };
    Ok(StatFs {
        fs_type: st.f_type as u32,
        bsize: st.f_bsize as u32,
        frsize: st.f_frsize as u32,
        blocks: st.f_blocks as u64,
        bfree: st.f_bfree as u64,
        bavail: st.f_bavail as u64,
        files: st.f_files as u64,
        ffree: st.f_ffree as u64,
        fsid: u64::from(fsid[0]) | (u64::from(fsid[1]) << 32),
        namelen: st.f_namelen as u32,
    })
}

/// Seeks directory `fd` to `offset` and passes entries to `add` until it declines or the
/// directory ends. The caller serialises calls on one descriptor.
pub(crate) fn read_dir(
    fd: BorrowedFd<'_>,
    offset: u64,
    add: &mut dyn FnMut(&DirEntry) -> bool,
) -> Result<()> {
    // Offsets are the host's own d_off cookies, passed through unchanged in both directions.
    // SAFETY: lseek on our own descriptor; no memory is touched.
    let pos = unsafe { libc::lseek(fd.as_raw_fd(), offset as libc::off_t, libc::SEEK_SET) };
    cvt_size(pos, "lseek")?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        let n = usize::try_from(cvt_size(n, "getdents64")?).unwrap_or(0);
        if n == 0 {
            return Ok(());
        }
        let mut at = 0;
        while at + 19 <= n {
            let rec = &buf[at..n];
            let ino = u64::from_ne_bytes(field(rec, 0));
            let off = i64::from_ne_bytes(field(rec, 8));
            let reclen = usize::from(u16::from_ne_bytes(field(rec, 16)));
            if reclen < 19 || reclen > rec.len() {
                return Err(Error::refused(libc::EIO, "malformed host dirent"));
            }
            let kind = rec[18];
            let raw = &rec[19..reclen];
            let name = CStr::from_bytes_until_nul(raw)
                .map(|c| c.to_bytes())
                .unwrap_or(raw);
            let entry = DirEntry {
                ino,
                offset: off as u64,
                kind,
                name: name.to_vec(),
            };
            if !add(&entry) {
                return Ok(());
            }
            at += reclen;
        }
    }
}

fn field<const N: usize>(rec: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = rec.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}
