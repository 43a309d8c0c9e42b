//! The guest's extended attributes: passed through, minus the reserved metadata names (and
//! POSIX ACLs, which cannot be set; see the module doc of [`super`]).

use super::meta;
use super::Mapped;
use crate::backend::{Backend, Error, NodeId, Result};

/// The POSIX ACL xattrs, which the host would apply to the host mode.
const ACL_NAMES: [&[u8]; 2] = [b"system.posix_acl_access", b"system.posix_acl_default"];

impl Mapped {
    pub(super) fn do_getxattr(&self, node: NodeId, name: &[u8]) -> Result<Vec<u8>> {
        if meta::is_reserved(name) {
            return Err(Error::refused(libc::ENODATA, "reserved metadata xattr"));
        }
        self.inner.getxattr(node, name)
    }

    pub(super) fn do_setxattr(
        &self,
        node: NodeId,
        name: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<()> {
        if meta::is_reserved(name) {
            return Err(Error::refused(libc::EPERM, "reserved metadata xattr"));
        }
        if ACL_NAMES.contains(&name) {
            return Err(Error::refused(
                libc::EOPNOTSUPP,
                "POSIX ACLs are not supported on a mapped share",
            ));
        }
        self.inner.setxattr(node, name, value, flags)
    }

    pub(super) fn do_listxattr(&self, node: NodeId) -> Result<Vec<u8>> {
        let all = self.inner.listxattr(node)?;
        let mut out = Vec::with_capacity(all.len());
        for name in all.split(|b| *b == 0).filter(|n| !n.is_empty()) {
            if !meta::is_reserved(name) {
                out.extend_from_slice(name);
                out.push(0);
            }
        }
        Ok(out)
    }

    pub(super) fn do_removexattr(&self, node: NodeId, name: &[u8]) -> Result<()> {
        if meta::is_reserved(name) {
            return Err(Error::refused(libc::EPERM, "reserved metadata xattr"));
        }
        self.inner.removexattr(node, name)
    }
}
