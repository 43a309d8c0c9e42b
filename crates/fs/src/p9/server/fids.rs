//! The fid table and the server's references on backend nodes.
//!
//! A fid is the path of nodes it was walked along, root first (so `..` is answered from the
//! path, never asked of the backend), plus its open state. Every node on every fid's path is
//! kept alive by [`NodeRefs`]: the server holds exactly one backend lookup reference per node
//! it uses and counts its own users of that node on the side, so cloning a fid never needs the
//! backend, and the last user gives the backend reference back with [`Backend::forget`].
//!
//! Lock order: the fid table, then one fid, then the lock owners' table (`lock.rs`), then the
//! node references. A fid's lock is never held while the fid table is locked afresh.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::{Backend, Error, HandleId, NodeId, Result, ROOT_NODE};
use crate::linux;
use crate::p9::consts::qid_type;
use crate::p9::wire::Qid;

/// Locks a mutex, taking the data even if a thread panicked while holding it.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `EBADF`: an unknown fid, or one in the wrong state for the request.
pub(super) fn ebadf(reason: &'static str) -> Error {
    Error::refused(linux::EBADF, reason)
}

/// One step of a fid's path.
#[derive(Debug, Clone)]
pub(super) struct PathElem {
    /// The node (held in [`NodeRefs`] once per fid whose path contains it).
    pub node: NodeId,
    /// Its qid when it was walked to.
    pub qid: Qid,
    /// The name it was walked to by (empty for the root).
    pub name: Vec<u8>,
}

/// A pending Txattrcreate: the value is collected by Twrite and set on Tclunk.
#[derive(Debug)]
pub(super) struct XattrWrite {
    /// Attribute name.
    pub name: Vec<u8>,
    /// `setxattr` flags.
    pub flags: u32,
    /// The value, `attr_size` bytes, zero-filled until written.
    pub value: Vec<u8>,
}

/// What a fid is, beyond its path.
#[derive(Debug)]
pub(super) enum FidState {
    /// Walked (or attached), not opened.
    Walked,
    /// Opened by Tlopen or Tlcreate.
    Open {
        /// The backend handle.
        handle: HandleId,
        /// The Linux `open(2)` flags it was opened with (the access mode decides which lock
        /// types the fid may take).
        flags: i32,
    },
    /// A Txattrwalk result: the value (or name list) to be read.
    XattrRead(Vec<u8>),
    /// A Txattrcreate fid.
    XattrWrite(XattrWrite),
}

/// The state of one fid.
#[derive(Debug)]
pub(super) struct FidInner {
    /// Root first; never empty.
    pub path: Vec<PathElem>,
    /// The user the fid acts for (from Tattach), owner of what it creates.
    pub uid: u32,
    /// Open state.
    pub state: FidState,
    /// Set by clunk: the fid's references are gone and nothing may use it.
    pub clunked: bool,
}

impl FidInner {
    /// A fresh, unopened fid on `path`.
    pub fn new(path: Vec<PathElem>, uid: u32) -> Self {
        FidInner {
            path,
            uid,
            state: FidState::Walked,
            clunked: false,
        }
    }

    /// The last element of the path.
    pub fn last(&self) -> Result<&PathElem> {
        self.path.last().ok_or_else(|| ebadf("fid has no path"))
    }

    /// The node the fid names.
    pub fn node(&self) -> Result<NodeId> {
        Ok(self.last()?.node)
    }

    /// The qid of the node the fid names.
    pub fn qid(&self) -> Result<Qid> {
        Ok(self.last()?.qid)
    }

    /// Whether the fid names a directory.
    pub fn is_dir(&self) -> bool {
        self.last()
            .is_ok_and(|e| e.qid.ty & qid_type::DIR == qid_type::DIR)
    }

    /// The open handle, or `EBADF`.
    pub fn handle(&self) -> Result<HandleId> {
        self.open_handle().map(|(handle, _)| handle)
    }

    /// The open handle and its open flags, or `EBADF`.
    pub fn open_handle(&self) -> Result<(HandleId, i32)> {
        match self.state {
            FidState::Open { handle, flags } => Ok((handle, flags)),
            _ => Err(ebadf("fid is not open")),
        }
    }

    /// The parent directory's node and this node's name: what unlink and rename need.
    pub fn parent_and_name(&self) -> Result<(NodeId, Vec<u8>)> {
        let n = self.path.len();
        if n < 2 {
            return Err(Error::refused(linux::EBUSY, "the share root has no parent"));
        }
        let parent = self.path.get(n - 2).map(|e| e.node);
        let name = self.path.get(n - 1).map(|e| e.name.clone());
        match (parent, name) {
            (Some(p), Some(name)) => Ok((p, name)),
            _ => Err(ebadf("fid has no parent")),
        }
    }
}

/// A shared fid.
pub(super) type Fid = Arc<Mutex<FidInner>>;

/// Locks a fid that must not have been clunked.
pub(super) fn lock_live(fid: &Fid) -> Result<MutexGuard<'_, FidInner>> {
    let guard = lock(fid);
    if guard.clunked {
        return Err(ebadf("fid was clunked"));
    }
    Ok(guard)
}

/// The session's fids.
#[derive(Debug, Default)]
pub(super) struct FidTable {
    map: Mutex<HashMap<u32, Fid>>,
}

impl FidTable {
    /// The fid numbered `fid`, or `EBADF`.
    pub fn get(&self, fid: u32) -> Result<Fid> {
        lock(&self.map)
            .get(&fid)
            .cloned()
            .ok_or_else(|| ebadf("unknown fid"))
    }

    /// Runs `f` on the live fid numbered `fid` (`EBADF` if unknown or clunked).
    pub fn with<T>(&self, fid: u32, f: impl FnOnce(&mut FidInner) -> Result<T>) -> Result<T> {
        let fid = self.get(fid)?;
        let mut guard = lock_live(&fid)?;
        f(&mut guard)
    }

    /// Adds a new fid; `EBADF` if the number is in use (the caller still owns `inner`'s refs).
    pub fn insert(&self, fid: u32, inner: FidInner) -> std::result::Result<(), FidInner> {
        match lock(&self.map).entry(fid) {
            MapEntry::Occupied(_) => Err(inner),
            MapEntry::Vacant(slot) => {
                slot.insert(Arc::new(Mutex::new(inner)));
                Ok(())
            }
        }
    }

    /// Takes fid `fid` out of the table.
    pub fn remove(&self, fid: u32) -> Option<Fid> {
        lock(&self.map).remove(&fid)
    }

    /// Takes every fid out of the table, with its number.
    pub fn drain(&self) -> Vec<(u32, Fid)> {
        lock(&self.map).drain().collect()
    }

    /// How many fids are in use.
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }
}

/// The server's users of backend nodes: one backend reference per node, counted users beside.
#[derive(Debug, Default)]
pub(super) struct NodeRefs {
    map: Mutex<HashMap<NodeId, u64>>,
}

impl NodeRefs {
    /// Takes over the lookup reference that a backend call just returned with `node`.
    pub fn adopt<B: Backend>(&self, backend: &B, node: NodeId) {
        if node == ROOT_NODE {
            backend.forget(node, 1);
            return;
        }
        let extra = {
            let mut map = lock(&self.map);
            let users = map.entry(node).or_insert(0);
            *users = users.saturating_add(1);
            *users > 1
        };
        if extra {
            // The server already holds a backend reference on this node.
            backend.forget(node, 1);
        }
    }

    /// Adds a user to a node some live fid already holds.
    pub fn hold(&self, node: NodeId) {
        if node == ROOT_NODE {
            return;
        }
        let mut map = lock(&self.map);
        let users = map.entry(node).or_insert(0);
        *users = users.saturating_add(1);
    }

    /// Drops a user; the last one gives the backend reference back.
    pub fn release<B: Backend>(&self, backend: &B, node: NodeId) {
        if node == ROOT_NODE {
            return;
        }
        let last = {
            let mut map = lock(&self.map);
            match map.get_mut(&node) {
                Some(users) if *users > 1 => {
                    *users -= 1;
                    false
                }
                Some(_) => {
                    map.remove(&node);
                    true
                }
                None => {
                    tracing::warn!(node, "release of a node the server does not hold");
                    false
                }
            }
        };
        if last {
            backend.forget(node, 1);
        }
    }

    /// Adds a user to every node of a path.
    pub fn hold_path(&self, path: &[PathElem]) {
        path.iter().for_each(|e| self.hold(e.node));
    }

    /// Drops a user from every node of a path.
    pub fn release_path<B: Backend>(&self, backend: &B, path: &[PathElem]) {
        path.iter().for_each(|e| self.release(backend, e.node));
    }

    /// How many nodes the server holds (for the server tests, which run on Linux).
    #[cfg(all(test, target_os = "linux"))]
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }
}
