//! Extended attributes.
//!
//! The kernel has no `f*xattr` call that accepts an O_PATH descriptor. For every node that is not
//! a symlink we therefore name the inode as `/proc/self/fd/N` and call the path form
//! (`getxattr`, which follows the magic link to exactly the inode we hold).
//!
//! Symlinks have no race-free form at all: following the magic link would reach the symlink's
//! target, `lgetxattr` on it would reach procfs, and Linux 6.13's `getxattrat(fd, "",
//! AT_EMPTY_PATH)` refuses O_PATH descriptors (`EBADF`, measured on 6.18). Resolving the name
//! again from the parent would need the node to remember its name, which renames make stale.
//! So, as virtiofsd does, a symlink has no xattrs here: listing gives an empty list, reading and
//! removing give `ENODATA`, setting gives `EOPNOTSUPP` (only `trusted.*` and `security.*` can
//! exist on symlinks at all, so guests rarely notice).

use std::ffi::CString;

use super::confine::ProcFd;
use super::Passthrough;
use crate::backend::{Error, NodeId, Result, XATTR_CREATE, XATTR_REPLACE};

/// Linux `XATTR_NAME_MAX`.
const NAME_MAX: usize = 255;
/// Linux `XATTR_SIZE_MAX` (also the longest name list).
const SIZE_MAX: usize = 65536;

fn xattr_name(name: &[u8]) -> Result<CString> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(Error::refused(libc::ERANGE, "bad xattr name length"));
    }
    CString::new(name).map_err(|_| Error::refused(libc::EINVAL, "xattr name contains NUL"))
}

fn size_result(ret: isize, op: &'static str) -> Result<usize> {
    usize::try_from(ret).map_err(|_| Error::last_os(op))
}

/// Reads a variable-size value with `call(buf)`, growing the buffer on `ERANGE`.
fn read_growing(mut call: impl FnMut(&mut [u8]) -> Result<usize>) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    loop {
        let need = call(&mut [])?;
        buf.resize(need.min(SIZE_MAX), 0);
        match call(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e.errno() == libc::ERANGE && need < SIZE_MAX => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A null pointer for an empty buffer (a size query), else the buffer.
fn buf_ptr(buf: &mut [u8]) -> *mut libc::c_void {
    if buf.is_empty() {
        std::ptr::null_mut()
    } else {
        buf.as_mut_ptr().cast()
    }
}

impl Passthrough {
    pub(super) fn do_getxattr(&self, id: NodeId, name: &[u8]) -> Result<Vec<u8>> {
        let name = xattr_name(name)?;
        let node = self.node(id)?;
        if node.is_symlink() {
            return Err(Error::refused(libc::ENODATA, "no xattrs on symlinks"));
        }
        let path = ProcFd::path(node.fd());
        read_growing(|buf| {
            let ret =
                // SAFETY: valid NUL-terminated strings; `buf` is writable for its length (or null
                // with length 0).
                unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), buf_ptr(buf), buf.len()) };
            size_result(ret, "getxattr")
        })
    }

    pub(super) fn do_listxattr(&self, id: NodeId) -> Result<Vec<u8>> {
        let node = self.node(id)?;
        if node.is_symlink() {
            return Ok(Vec::new());
        }
        let path = ProcFd::path(node.fd());
        read_growing(|buf| {
            // SAFETY: a valid NUL-terminated path; `buf` is writable for its length (or null
            // with length 0).
            let ret = unsafe { libc::listxattr(path.as_ptr(), buf_ptr(buf).cast(), buf.len()) };
            size_result(ret, "listxattr")
        })
    }

    pub(super) fn do_setxattr(
        &self,
        id: NodeId,
        name: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<()> {
        self.writable()?;
        if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
            return Err(Error::refused(libc::EINVAL, "bad setxattr flags"));
        }
        if value.len() > SIZE_MAX {
            return Err(Error::refused(libc::E2BIG, "xattr value too large"));
        }
        let name = xattr_name(name)?;
        let node = self.node(id)?;
        if node.is_symlink() {
            return Err(Error::refused(libc::EOPNOTSUPP, "no xattrs on symlinks"));
        }
        let path = ProcFd::path(node.fd());
        // SAFETY: valid NUL-terminated strings; `value` is readable for its length.
        let ret = unsafe {
            libc::setxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                flags as libc::c_int,
            )
        };
        super::sys::cvt(ret, "setxattr")?;
        tracing::trace!(node = id, "setxattr");
        Ok(())
    }

    pub(super) fn do_removexattr(&self, id: NodeId, name: &[u8]) -> Result<()> {
        self.writable()?;
        let name = xattr_name(name)?;
        let node = self.node(id)?;
        if node.is_symlink() {
            return Err(Error::refused(libc::ENODATA, "no xattrs on symlinks"));
        }
        let path = ProcFd::path(node.fd());
        super::sys::cvt(
            // SAFETY: valid NUL-terminated strings; nothing is written to memory.
            unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) },
            "removexattr",
        )?;
        Ok(())
    }
}
