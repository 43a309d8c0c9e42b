//! The metadata encoding (see the module doc of [`super`]): the four `user.LX*` xattrs, how they
//! are read from and written to a host inode, and how they overlay the host's `stat`.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::backend::passthrough::confine::ProcFd;
use crate::backend::passthrough::sys;
use crate::backend::{Attr, Error, Result};
use crate::wsl::meta::{decode_dev, decode_u32, encode_dev, makedev};
pub(crate) use crate::wsl::meta::{dtype_of, guest_mode, split_dev, Meta};

/// The xattr holding the guest's owner: `u32`, little-endian.
pub const XATTR_UID: &CStr = c"user.LXUID";
/// The xattr holding the guest's group: `u32`, little-endian.
pub const XATTR_GID: &CStr = c"user.LXGID";
/// The xattr holding the guest's `st_mode` (file type `S_IFMT` and permission bits `0o7777`):
/// `u32`, little-endian.
pub const XATTR_MODE: &CStr = c"user.LXMOD";
/// The xattr holding the guest's device number of a character or block device: two `u32`,
/// little-endian, major then minor (8 bytes).
pub const XATTR_DEV: &CStr = c"user.LXDEV";

/// The reserved names, which the guest can neither see nor change.
pub(crate) const RESERVED: [&CStr; 4] = [XATTR_UID, XATTR_GID, XATTR_MODE, XATTR_DEV];

/// Whether `name` (a guest xattr name) is one of the reserved metadata names.
pub(crate) fn is_reserved(name: &[u8]) -> bool {
    RESERVED.iter().any(|r| r.to_bytes() == name)
}

/// Whether the host kind can carry user xattrs (Linux allows `user.*` only on regular files and
/// directories).
pub(crate) fn can_hold(host_kind: u32) -> bool {
    host_kind == libc::S_IFREG || host_kind == libc::S_IFDIR
}

/// How a path's final component is treated by [`get_small`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Followed (`getxattr`): for `/proc/self/fd/N` magic links, which lead to the inode held.
    MagicLink,
    /// Not followed (`lgetxattr`): for a name read from a directory.
    Name,
}

/// Reads one small xattr by path. `None` when the inode has no such attribute (or the file
/// system none at all); a value longer than 16 bytes reads as an empty (malformed) value.
fn get_small(path: &CStr, last: Last, name: &CStr) -> Result<Option<Vec<u8>>> {
    let mut buf = [0u8; 16];
    let call = match last {
        Last::MagicLink => libc::getxattr,
        Last::Name => libc::lgetxattr,
    };
    // SAFETY: valid NUL-terminated strings; `buf` is writable for its length.
    let ret = unsafe {
        call(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    match usize::try_from(ret) {
        Ok(n) => Ok(Some(buf[..n.min(buf.len())].to_vec())),
        Err(_) => {
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::ENODATA) | Some(libc::EOPNOTSUPP) => Ok(None),
                Some(libc::ERANGE) => Ok(Some(Vec::new())),
                _ => Err(Error::Host {
                    op: "getxattr(metadata)",
                    source: err,
                }),
            }
        }
    }
}

/// Reads the metadata of the inode behind `fd` (an O_PATH or open descriptor) whose host type
/// is `host_kind`. Inodes that cannot hold user xattrs have none.
pub(crate) fn read(fd: BorrowedFd<'_>, host_kind: u32) -> Result<Meta> {
    if !can_hold(host_kind) {
        return Ok(Meta::default());
    }
    // `/proc/self/fd/N` names exactly the inode `fd` holds (see `confine`, rule 4); the inode
    // is a regular file or directory, so following the magic link reaches it and nothing else.
    let path = ProcFd::path(fd);
    let mut meta = Meta {
        uid: get_small(&path, Last::MagicLink, XATTR_UID)?.and_then(|v| decode_u32(&v)),
        gid: get_small(&path, Last::MagicLink, XATTR_GID)?.and_then(|v| decode_u32(&v)),
        mode: get_small(&path, Last::MagicLink, XATTR_MODE)?.and_then(|v| decode_u32(&v)),
        dev: None,
    };
    let kind = guest_mode(host_kind, meta.mode) & libc::S_IFMT;
    if kind == libc::S_IFCHR || kind == libc::S_IFBLK {
        meta.dev = get_small(&path, Last::MagicLink, XATTR_DEV)?.and_then(|v| decode_dev(&v));
    }
    Ok(meta)
}

/// The guest `LXMOD` of entry `name` of open directory `dir`, for `readdir`'s `d_type`. The
/// path `/proc/self/fd/N/name` goes through the magic link of the directory we hold, then one
/// name from `getdents` (never `.` or `..`, never containing `/`); `lgetxattr` does not follow
/// it if it is a symlink. So nothing outside the share is reached.
pub(crate) fn read_mode_at(dir: BorrowedFd<'_>, name: &[u8]) -> Option<u32> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return None;
    }
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name);
    let path = CString::new(path).ok()?;
    match get_small(&path, Last::Name, XATTR_MODE) {
        Ok(Some(v)) => decode_u32(&v),
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(
                errno = e.errno(),
                "readdir: metadata of an entry unreadable"
            );
            None
        }
    }
}

/// Sets one xattr through a `/proc/self/fd/N` magic link (followed to the inode held).
fn set(path: &CStr, name: &CStr, value: &[u8]) -> Result<()> {
    sys::cvt(
        // SAFETY: valid NUL-terminated strings; `value` is readable for its length.
        unsafe {
            libc::setxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        },
        "setxattr(metadata)",
    )?;
    Ok(())
}

/// Checks that the file system holding `fd` (a directory) stores user xattrs: reading an
/// absent one must say `ENODATA`, not `EOPNOTSUPP`.
pub(crate) fn probe(fd: BorrowedFd<'_>) -> Result<()> {
    let path = ProcFd::path(fd);
    // SAFETY: valid NUL-terminated strings; a null buffer of size 0 only asks for the size.
    let ret =
        unsafe { libc::getxattr(path.as_ptr(), XATTR_MODE.as_ptr(), std::ptr::null_mut(), 0) };
    if ret >= 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENODATA) => Ok(()),
        _ => Err(Error::Host {
            op: "user.* xattr probe on the share root (the mapped backend keeps guest \
                 ownership and modes in user.LX* xattrs; the host file system must support \
                 user extended attributes)",
            source: err,
        }),
    }
}

/// Writes the fields of `meta` that are `Some` to the inode behind `fd` (a regular file or a
/// directory; an O_PATH or open descriptor). `LXMOD` goes last, so that an inode whose type
/// changes (a new special file) carries its owner before it carries its type.
pub(crate) fn write(fd: BorrowedFd<'_>, meta: &Meta) -> Result<()> {
    let path = ProcFd::path(fd);
    if let Some(uid) = meta.uid {
        set(&path, XATTR_UID, &uid.to_le_bytes())?;
    }
    if let Some(gid) = meta.gid {
        set(&path, XATTR_GID, &gid.to_le_bytes())?;
    }
    if let Some((major, minor)) = meta.dev {
        set(&path, XATTR_DEV, &encode_dev(major, minor))?;
    }
    if let Some(mode) = meta.mode {
        set(&path, XATTR_MODE, &mode.to_le_bytes())?;
    }
    Ok(())
}

/// The attributes the guest sees: the host's, with owner, group, mode and device number taken
/// from the metadata where present.
pub(crate) fn overlay(mut attr: Attr, meta: &Meta) -> Attr {
    if !can_hold(attr.mode & libc::S_IFMT) {
        return attr;
    }
    if let Some(uid) = meta.uid {
        attr.uid = uid;
    }
    if let Some(gid) = meta.gid {
        attr.gid = gid;
    }
    attr.mode = guest_mode(attr.mode, meta.mode);
    let kind = attr.mode & libc::S_IFMT;
    if kind == libc::S_IFCHR || kind == libc::S_IFBLK {
        if let Some((major, minor)) = meta.dev {
            attr.rdev = makedev(major, minor);
        }
    }
    attr
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_reserved_names_exact() {
        assert!(is_reserved(b"user.LXUID"));
        assert!(is_reserved(b"user.LXDEV"));
        assert!(!is_reserved(b"user.LXUIDX"));
        assert!(!is_reserved(b"user.lxuid"));
        assert!(!is_reserved(b"trusted.LXUID"));
    }
}
