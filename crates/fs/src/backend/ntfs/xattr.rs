//! Extended attributes as `LX.` EAs ([`crate::wsl::xattr`]). `system.*` names (POSIX ACLs
//! among them) are `EOPNOTSUPP`, which guests read as "no ACL support"; WSL's metadata EAs
//! can never be reached, as every xattr's EA name starts with `LX.`.

use super::nt::{access, Nt};
use super::{nt_error, Ntfs};
use crate::backend::{Error, NodeId, Result, XATTR_CREATE, XATTR_REPLACE};
use crate::linux;
use crate::wsl::ea::{self, Ea};
use crate::wsl::status::{STATUS_EAS_NOT_SUPPORTED, STATUS_NO_EAS_ON_FILE};
use crate::wsl::xattr;

/// The EA name of a guest xattr name, refusing what cannot be one.
fn ea_name_of(name: &[u8]) -> Result<Vec<u8>> {
    if name.starts_with(b"system.") {
        return Err(Error::refused(
            linux::EOPNOTSUPP,
            "system.* xattrs on an NTFS share",
        ));
    }
    xattr::ea_name(name).ok_or(Error::refused(linux::ERANGE, "xattr name too long"))
}

impl<N: Nt> Ntfs<N> {
    /// Every EA of `file`.
    fn all_eas(&self, file: &N::File) -> Result<Vec<Ea>> {
        let chain = match self.nt.eas(file) {
            Ok(chain) => chain,
            Err(STATUS_NO_EAS_ON_FILE | STATUS_EAS_NOT_SUPPORTED) => Vec::new(),
            Err(status) => return Err(nt_error("query EAs")(status)),
        };
        ea::decode(&chain).map_err(|_| Error::refused(linux::EIO, "malformed EAs on the host"))
    }

    /// The value of xattr EA `ea_name` on `file`, if it has one.
    fn find(&self, file: &N::File, ea_name: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .all_eas(file)?
            .into_iter()
            .find(|e| ea::same_name(&e.name, ea_name))
            .and_then(|e| xattr::value_of(&e.value).map(<[u8]>::to_vec)))
    }

    /// Writes one xattr EA (`value` empty: removes it).
    fn put(&self, id: NodeId, ea_name: &[u8], value: &[u8]) -> Result<()> {
        let node = self.node(id)?;
        let chain = ea::encode(&[Ea::new(ea_name, value)])
            .map_err(|_| Error::refused(linux::E2BIG, "xattr unencodable"))?;
        let f = self.reopen(&node.file, access::WRITE_EA | access::SYNCHRONIZE)?;
        self.nt.set_eas(&f, &chain).map_err(nt_error("write EA"))
    }

    pub(super) fn do_getxattr(&self, id: NodeId, name: &[u8]) -> Result<Vec<u8>> {
        let ea_name = ea_name_of(name)?;
        let node = self.node(id)?;
        self.find(&node.file, &ea_name)?
            .ok_or(Error::refused(linux::ENODATA, "no such xattr"))
    }

    pub(super) fn do_setxattr(
        &self,
        id: NodeId,
        name: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<()> {
        if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
            return Err(Error::refused(linux::EINVAL, "unknown setxattr flags"));
        }
        self.writable()?;
        let ea_name = ea_name_of(name)?;
        let stored =
            xattr::ea_value(value).ok_or(Error::refused(linux::E2BIG, "xattr value too long"))?;
        if flags != 0 {
            let node = self.node(id)?;
            let exists = self.find(&node.file, &ea_name)?.is_some();
            if flags & XATTR_CREATE != 0 && exists {
                return Err(Error::refused(linux::EEXIST, "xattr exists"));
            }
            if flags & XATTR_REPLACE != 0 && !exists {
                return Err(Error::refused(linux::ENODATA, "no such xattr"));
            }
        }
        self.put(id, &ea_name, &stored)
    }

    pub(super) fn do_listxattr(&self, id: NodeId) -> Result<Vec<u8>> {
        let node = self.node(id)?;
        let mut out = Vec::new();
        for e in self.all_eas(&node.file)? {
            if let Some(name) = xattr::listed_name(&e.name) {
                out.extend_from_slice(&name);
                out.push(0);
            }
        }
        Ok(out)
    }

    pub(super) fn do_removexattr(&self, id: NodeId, name: &[u8]) -> Result<()> {
        self.writable()?;
        let ea_name = ea_name_of(name)?;
        let node = self.node(id)?;
        if self.find(&node.file, &ea_name)?.is_none() {
            return Err(Error::refused(linux::ENODATA, "no such xattr"));
        }
        self.put(id, &ea_name, &[])
    }
}
