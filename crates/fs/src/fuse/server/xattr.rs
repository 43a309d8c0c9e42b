//! Extended attributes: SETXATTR, GETXATTR, LISTXATTR and REMOVEXATTR.
//!
//! GETXATTR and LISTXATTR with size 0 ask for the size only and get `fuse_getxattr_out`; with
//! a size smaller than the value or list, `ERANGE`; otherwise the bytes. Values and lists are
//! at most 64 KiB (`XATTR_SIZE_MAX`, `XATTR_LIST_MAX`): a larger one from the backend is `E2BIG`,
//! as the Linux system calls answer. SETXATTR's value was bounded by the decoder.

use super::{body, Reply, Server};
use crate::backend::{Backend, Error};
use crate::fuse::abi::{GetxattrIn, GetxattrOut, InHeader, SetxattrIn, MAX_XATTR_VALUE_LEN};
use crate::linux;

/// The answer to GETXATTR or LISTXATTR for `value` and the caller's buffer `size`.
fn sized(value: Vec<u8>, size: u32) -> Reply {
    if value.len() > MAX_XATTR_VALUE_LEN {
        return Err(Error::refused(
            linux::E2BIG,
            "xattr value or list over 64 KiB",
        ));
    }
    // Bounded by 64 KiB above.
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    if size == 0 {
        return Ok(body(&GetxattrOut {
            size: len,
            ..GetxattrOut::default()
        }));
    }
    if len > size {
        return Err(Error::refused(linux::ERANGE, "xattr buffer too small"));
    }
    Ok(value)
}

impl<B: Backend> Server<B> {
    /// SETXATTR (`XATTR_CREATE`/`XATTR_REPLACE` go to the backend).
    pub(super) fn setxattr(
        &self,
        h: &InHeader,
        arg: &SetxattrIn,
        name: &[u8],
        value: &[u8],
    ) -> Reply {
        self.backend.setxattr(h.nodeid, name, value, arg.flags)?;
        Ok(Vec::new())
    }

    /// GETXATTR (see the module doc).
    pub(super) fn getxattr(&self, h: &InHeader, arg: &GetxattrIn, name: &[u8]) -> Reply {
        sized(self.backend.getxattr(h.nodeid, name)?, arg.size)
    }

    /// LISTXATTR (see the module doc).
    pub(super) fn listxattr(&self, h: &InHeader, arg: &GetxattrIn) -> Reply {
        sized(self.backend.listxattr(h.nodeid)?, arg.size)
    }

    /// REMOVEXATTR.
    pub(super) fn removexattr(&self, h: &InHeader, name: &[u8]) -> Reply {
        self.backend.removexattr(h.nodeid, name)?;
        Ok(Vec::new())
    }
}
