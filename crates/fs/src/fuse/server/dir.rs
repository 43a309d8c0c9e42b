//! Directories: OPENDIR, READDIR and READDIRPLUS (RELEASEDIR and FSYNCDIR are RELEASE and
//! FSYNC, in `file.rs`).
//!
//! A READDIR body is at most the size asked and the session's `max_read`. Entries are taken
//! from the backend as long as their records fit (a READDIRPLUS record's size does not depend
//! on the lookup, so the fit is known before it), then, for READDIRPLUS, each is looked up
//! after the backend's listing call has returned, so the backend is never re-entered from its
//! own callback.
//!
//! READDIRPLUS and lookup references, exactly as the kernel counts them
//! (`fuse_direntplus_link`): every entry with a non-zero nodeid is one lookup reference, taken
//! by the backend lookup made for it, which the kernel returns with FORGET. `.` and `..` are
//! sent with an all-zero `fuse_entry_out` (nodeid 0): the kernel ignores their nodeids and
//! takes no reference, so the server takes none. An entry whose lookup fails (removed since it
//! was listed, or refused) is also sent with nodeid 0, still listed, as is one that resolves to
//! the root node (which the kernel refuses in READDIRPLUS; the reference taken is dropped).
//! Offsets are the backend's, passed through.

use super::files::OpenFile;
use super::{Reply, Server, Session};
use crate::backend::{Backend, DirEntry, Error, NAME_MAX};
use crate::fuse::abi::{DirentHeader, EntryOut, InHeader, OpenIn, OpenOut, ReadIn, FUSE_ROOT_ID};
use crate::fuse::dirent::{DirEntry as FuseDirEntry, DirentWriter};
use crate::fuse::wire::Wire;
use crate::linux;

/// The size of one record for a name of `len` bytes, padded to 8.
fn record_size(len: usize, plus: bool) -> usize {
    let fixed = DirentHeader::SIZE + if plus { EntryOut::SIZE } else { 0 };
    (fixed + len + 7) & !7
}

fn is_dot_or_dotdot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

/// Whether the FUSE wire can carry the name (the host cannot produce others; never trusted).
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= NAME_MAX && !name.iter().any(|&b| b == 0 || b == b'/')
}

impl<B: Backend> Server<B> {
    /// OPENDIR of the header's node (read-only, `O_DIRECTORY`: the guest's other flags mean
    /// nothing for a listing).
    pub(super) fn opendir(&self, h: &InHeader, _arg: &OpenIn) -> Reply {
        let flags = linux::O_RDONLY | linux::O_DIRECTORY;
        let fh = self.backend.open(h.nodeid, flags)?;
        self.files.insert(
            fh,
            OpenFile {
                node: h.nodeid,
                flags,
            },
        );
        Ok(OpenOut {
            fh,
            ..OpenOut::default()
        }
        .to_bytes())
    }

    /// READDIR and READDIRPLUS (see the module doc).
    pub(super) fn readdir(&self, arg: &ReadIn, plus: bool, s: Session) -> Reply {
        let file = self.files.get(arg.fh)?;
        let size = usize::try_from(arg.size.min(s.max_read)).unwrap_or(0);
        let mut entries: Vec<DirEntry> = Vec::new();
        let mut used = 0usize;
        self.backend.readdir(arg.fh, arg.offset, &mut |e| {
            if !valid_name(&e.name) {
                tracing::debug!(fh = arg.fh, "skipping a directory entry FUSE cannot carry");
                return true;
            }
            let rec = record_size(e.name.len(), plus);
            if used + rec > size {
                return false;
            }
            used += rec;
            entries.push(e.clone());
            true
        })?;
        let mut w = DirentWriter::new(size);
        for e in &entries {
            let de = FuseDirEntry {
                ino: e.ino,
                off: e.offset,
                typ: u32::from(e.kind),
                name: &e.name,
            };
            let fits = if plus {
                let out = self.plus_entry(file.node, &e.name);
                let fits = w.add_plus(&out, &de);
                if !matches!(fits, Ok(true)) && out.nodeid != 0 {
                    // Not sent after all: the reference goes back.
                    self.backend.forget(out.nodeid, 1);
                }
                fits
            } else {
                w.add(&de)
            };
            match fits {
                Ok(true) => {}
                Ok(false) => break,
                Err(_) => return Err(Error::refused(linux::EIO, "directory entry not encodable")),
            }
        }
        Ok(w.into_bytes())
    }

    /// The `fuse_entry_out` of one READDIRPLUS entry of directory `dir` (see the module doc).
    fn plus_entry(&self, dir: u64, name: &[u8]) -> EntryOut {
        if is_dot_or_dotdot(name) {
            return EntryOut::default();
        }
        match self.backend.lookup(dir, name) {
            Ok(entry) if entry.node == FUSE_ROOT_ID => {
                self.backend.forget(entry.node, 1);
                EntryOut::default()
            }
            Ok(entry) => self.entry_out(&entry),
            Err(e) => {
                tracing::debug!(dir, errno = e.errno(), "readdirplus lookup failed");
                EntryOut::default()
            }
        }
    }
}
