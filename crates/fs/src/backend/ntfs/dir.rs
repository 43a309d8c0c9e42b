//! `readdir` with stable offsets. `NtQueryDirectoryFile` can only restart or continue, never
//! seek, so a directory handle takes the whole listing when it is read from offset 0 and
//! serves every offset from it: entry `i` has offset `i + 1`, which stays valid for the life
//! of the handle (reading from 0 again takes a fresh listing, as `rewinddir` expects). Names
//! NTFS holds that have no UTF-8 form (an unpaired surrogate) are left out, with a log line.

use std::sync::Arc;

use super::attr::kind_of;
use super::nt::{Info, Nt};
use super::{nt_error, Ntfs};
use crate::backend::{DirEntry, Error, HandleId, Result};
use crate::linux;
use crate::wsl::meta::dtype_of;
use crate::wsl::name;

/// The most entries one listing holds.
const MAX_ENTRIES: usize = 1 << 20;

impl<N: Nt> Ntfs<N> {
    fn list_all(&self, dir: &N::File) -> Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        let mut restart = true;
        loop {
            let batch = self
                .nt
                .list(dir, restart)
                .map_err(nt_error("list directory"))?;
            restart = false;
            if batch.is_empty() {
                return Ok(out);
            }
            for e in batch {
                let Ok(guest_name) = name::from_nt(&e.name) else {
                    tracing::debug!(file_id = e.file_id, "entry without a UTF-8 name left out");
                    continue;
                };
                if out.len() == MAX_ENTRIES {
                    return Err(Error::refused(
                        linux::EOVERFLOW,
                        "directory too large to list",
                    ));
                }
                let kind = kind_of(&Info {
                    attributes: e.attributes,
                    reparse_tag: e.reparse_tag,
                    ..Info::default()
                });
                out.push(DirEntry {
                    ino: e.file_id,
                    offset: out.len() as u64 + 1,
                    kind: dtype_of(kind),
                    name: guest_name,
                });
            }
        }
    }

    pub(super) fn do_readdir(
        &self,
        id: HandleId,
        offset: u64,
        add: &mut dyn FnMut(&DirEntry) -> bool,
    ) -> Result<()> {
        let h = self.handle(id)?;
        let listing = {
            let mut cached = h.listing.lock().unwrap_or_else(|e| e.into_inner());
            match &*cached {
                Some(l) if offset != 0 => Arc::clone(l),
                _ => {
                    let fresh = Arc::new(self.list_all(&h.file)?);
                    *cached = Some(Arc::clone(&fresh));
                    fresh
                }
            }
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for entry in listing.iter().skip(start) {
            if !add(entry) {
                break;
            }
        }
        Ok(())
    }
}
