//! Directory listing: the passthrough's `readdir`, with the guest's file type in `d_type`.

use super::meta;
use super::Mapped;
use crate::backend::{dtype, Backend, DirEntry, HandleId, Result};

impl Mapped {
    pub(super) fn do_readdir(
        &self,
        handle: HandleId,
        offset: u64,
        add: &mut dyn FnMut(&DirEntry) -> bool,
    ) -> Result<()> {
        let dir = self.inner.handle_of(handle)?;
        let fd = dir.fd();
        self.inner.readdir(handle, offset, &mut |entry| {
            // Only a host regular file can be something else to the guest; an entry whose type
            // the host does not report stays unknown (the guest will look it up).
            if entry.kind != dtype::REG {
                return add(entry);
            }
            let Some(lx) = meta::read_mode_at(fd, &entry.name) else {
                return add(entry);
            };
            let kind = meta::dtype_of(meta::guest_mode(libc::S_IFREG, Some(lx)) & libc::S_IFMT);
            if kind == entry.kind {
                return add(entry);
            }
            add(&DirEntry {
                kind,
                ..entry.clone()
            })
        })
    }
}
