//! The metadata encoding (see the module doc of [`super`]): the four `user.LX*` xattrs, how they
//! are read from and written to a host inode, and how they overlay the host's `stat`.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::backend::passthrough::confine::ProcFd;
use crate::backend::passthrough::sys;
use crate::backend::{dtype, Attr, Error, Result};

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

/// The guest metadata of one inode; `None` fields fall back to the host's own values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// `LXUID`.
    pub(crate) uid: Option<u32>,
    /// `LXGID`.
    pub(crate) gid: Option<u32>,
    /// `LXMOD` (`S_IFMT | 0o7777`).
    pub(crate) mode: Option<u32>,
    /// `LXDEV` (major, minor).
    pub(crate) dev: Option<(u32, u32)>,
}

/// The Linux (glibc `makedev`) device number of a major and minor.
pub(crate) fn makedev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0x0000_0fff) << 8)
        | ((major & 0xffff_f000) << 32)
        | (minor & 0x0000_00ff)
        | ((minor & 0xffff_ff00) << 12)
}

/// The major and minor of a Linux (glibc `makedev`) device number.
pub(crate) fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0x0000_0fff) | ((dev >> 32) & 0xffff_f000);
    let minor = (dev & 0x0000_00ff) | ((dev >> 12) & 0xffff_ff00);
    // Both are masked to 32 bits above.
    (major as u32, minor as u32)
}

/// The `LXDEV` value of a device number.
pub(crate) fn encode_dev(major: u32, minor: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&major.to_le_bytes());
    out[4..].copy_from_slice(&minor.to_le_bytes());
    out
}

fn decode_u32(name: &CStr, raw: &[u8]) -> Option<u32> {
    match <[u8; 4]>::try_from(raw) {
        Ok(b) => Some(u32::from_le_bytes(b)),
        Err(_) => {
            tracing::debug!(xattr = ?name, len = raw.len(), "malformed metadata xattr ignored");
            None
        }
    }
}

fn decode_dev(raw: &[u8]) -> Option<(u32, u32)> {
    match (raw.get(..4), raw.get(4..)) {
        (Some(major), Some(minor)) if raw.len() == 8 => Some((
            u32::from_le_bytes(major.try_into().ok()?),
            u32::from_le_bytes(minor.try_into().ok()?),
        )),
        _ => {
            tracing::debug!(len = raw.len(), "malformed LXDEV ignored");
            None
        }
    }
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
        uid: get_small(&path, Last::MagicLink, XATTR_UID)?.and_then(|v| decode_u32(XATTR_UID, &v)),
        gid: get_small(&path, Last::MagicLink, XATTR_GID)?.and_then(|v| decode_u32(XATTR_GID, &v)),
        mode: get_small(&path, Last::MagicLink, XATTR_MODE)?
            .and_then(|v| decode_u32(XATTR_MODE, &v)),
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
        Ok(Some(v)) => decode_u32(XATTR_MODE, &v),
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

/// The guest's `st_mode` from the host's and an `LXMOD`. A host directory is always a
/// directory and a host regular file never is one (an `LXMOD` that says otherwise keeps only
/// its permission bits); other host types (symlinks, special files) carry no xattrs.
pub(crate) fn guest_mode(host_mode: u32, lxmod: Option<u32>) -> u32 {
    let Some(lx) = lxmod else {
        return host_mode;
    };
    let host_kind = host_mode & libc::S_IFMT;
    let kind = match host_kind {
        libc::S_IFREG => match lx & libc::S_IFMT {
            k @ (libc::S_IFREG
            | libc::S_IFLNK
            | libc::S_IFIFO
            | libc::S_IFSOCK
            | libc::S_IFCHR
            | libc::S_IFBLK) => k,
            _ => libc::S_IFREG,
        },
        libc::S_IFDIR => libc::S_IFDIR,
        _ => return host_mode,
    };
    kind | (lx & 0o7777)
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

/// The `d_type` of a guest file type (`S_IFMT` bits).
pub(crate) fn dtype_of(kind: u32) -> u8 {
    match kind {
        libc::S_IFREG => dtype::REG,
        libc::S_IFDIR => dtype::DIR,
        libc::S_IFLNK => dtype::LNK,
        libc::S_IFIFO => dtype::FIFO,
        libc::S_IFSOCK => dtype::SOCK,
        libc::S_IFCHR => dtype::CHR,
        libc::S_IFBLK => dtype::BLK,
        _ => dtype::UNKNOWN,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_makedev_roundtrip_matches_host_encoding() {
        for (major, minor) in [
            (0, 0),
            (1, 3),
            (8, 17),
            (4095, 255),
            (4096, 256),
            (u32::MAX, 1),
        ] {
            let dev = makedev(major, minor);
            assert_eq!(split_dev(dev), (major, minor));
            assert_eq!(dev, libc::makedev(major, minor) as u64);
        }
    }

    #[test]
    fn test_encode_dev_little_endian_major_then_minor() {
        assert_eq!(encode_dev(0x0102, 0x0304), [2, 1, 0, 0, 4, 3, 0, 0]);
        assert_eq!(decode_dev(&encode_dev(7, 9)), Some((7, 9)));
        assert_eq!(decode_dev(&[1, 2, 3]), None);
    }

    #[test]
    fn test_guest_mode_type_rules() {
        let reg = libc::S_IFREG | 0o600;
        let dir = libc::S_IFDIR | 0o700;
        assert_eq!(guest_mode(reg, None), reg);
        assert_eq!(
            guest_mode(reg, Some(libc::S_IFIFO | 0o644)),
            libc::S_IFIFO | 0o644
        );
        assert_eq!(
            guest_mode(reg, Some(libc::S_IFDIR | 0o755)),
            libc::S_IFREG | 0o755
        );
        assert_eq!(guest_mode(reg, Some(0o4755)), libc::S_IFREG | 0o4755);
        assert_eq!(
            guest_mode(dir, Some(libc::S_IFREG | 0o1777)),
            libc::S_IFDIR | 0o1777
        );
        let lnk = libc::S_IFLNK | 0o777;
        assert_eq!(guest_mode(lnk, Some(libc::S_IFREG | 0o600)), lnk);
    }

    #[test]
    fn test_reserved_names_exact() {
        assert!(is_reserved(b"user.LXUID"));
        assert!(is_reserved(b"user.LXDEV"));
        assert!(!is_reserved(b"user.LXUIDX"));
        assert!(!is_reserved(b"user.lxuid"));
        assert!(!is_reserved(b"trusted.LXUID"));
    }
}
