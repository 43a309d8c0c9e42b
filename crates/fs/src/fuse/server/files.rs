//! The handles the server gave the guest: each FUSE `fh` with the node it was opened on and
//! its open flags. A `fh` not in this table is refused with `EBADF` before it reaches the
//! backend, so the backend handles the server keeps for itself stay out of the guest's reach.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::backend::{Error, HandleId, NodeId, Result};
use crate::linux;

/// One handle the guest holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OpenFile {
    /// The node it was opened on.
    pub node: NodeId,
    /// The Linux open flags it was opened with (as passed to the backend).
    pub flags: i32,
}

impl OpenFile {
    /// Whether it was opened for reading.
    pub fn readable(&self) -> bool {
        matches!(
            self.flags & linux::O_ACCMODE,
            linux::O_RDONLY | linux::O_RDWR
        )
    }

    /// Whether it was opened for writing.
    pub fn writable(&self) -> bool {
        matches!(
            self.flags & linux::O_ACCMODE,
            linux::O_WRONLY | linux::O_RDWR
        )
    }
}

/// The guest's handles.
#[derive(Debug, Default)]
pub(super) struct OpenFiles {
    map: RwLock<HashMap<HandleId, OpenFile>>,
}

fn ebadf() -> Error {
    Error::refused(linux::EBADF, "unknown file handle")
}

impl OpenFiles {
    /// Records a handle just opened for the guest.
    pub fn insert(&self, fh: HandleId, file: OpenFile) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, file);
    }

    /// The handle `fh`, or `EBADF`.
    pub fn get(&self, fh: HandleId) -> Result<OpenFile> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&fh)
            .copied()
            .ok_or_else(ebadf)
    }

    /// Forgets the handle `fh` (RELEASE), or `EBADF`.
    pub fn remove(&self, fh: HandleId) -> Result<OpenFile> {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fh)
            .ok_or_else(ebadf)
    }

    /// Forgets every handle (DESTROY); their ids.
    pub fn drain(&self) -> Vec<HandleId> {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(fh, _)| fh)
            .collect()
    }
}
