//! The node and handle tables every backend keeps: [`NodeTable`] (one node per host file, with
//! FUSE-style lookup counts) and [`HandleTable`] (one entry per open file or directory).
//!
//! Nodes are keyed by the host file's identity ([`Keyed::key`]: `(st_dev, st_ino)` on Linux,
//! the volume serial and file id on NTFS), so every name of one file (hard links, a second
//! lookup of the same name) maps to the same [`NodeId`]. The node holds the host open, so the
//! identity cannot be reused while the node exists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::{Error, HandleId, NodeId, Result, ROOT_NODE};
use crate::linux;

/// A host file's identity, unique while the file is open.
pub(crate) trait Keyed {
    /// The identity.
    fn key(&self) -> (u64, u64);
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is one insert or remove, so poisoning is harmless.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
struct Slot<T> {
    node: Arc<T>,
    refs: u64,
}

#[derive(Debug)]
struct Nodes<T> {
    slots: HashMap<NodeId, Slot<T>>,
    by_key: HashMap<(u64, u64), NodeId>,
    next: NodeId,
}

/// All live nodes.
#[derive(Debug)]
pub(crate) struct NodeTable<T> {
    inner: Mutex<Nodes<T>>,
}

impl<T: Keyed> NodeTable<T> {
    /// A table holding only the root node.
    pub(crate) fn new(root: T) -> Self {
        let key = root.key();
        let mut inner = Nodes {
            slots: HashMap::new(),
            by_key: HashMap::new(),
            next: ROOT_NODE + 1,
        };
        inner.slots.insert(
            ROOT_NODE,
            Slot {
                node: Arc::new(root),
                refs: 1,
            },
        );
        inner.by_key.insert(key, ROOT_NODE);
        NodeTable {
            inner: Mutex::new(inner),
        }
    }

    /// The node `id`, or `ESTALE` if the guest names a node it has forgotten (or never had).
    pub(crate) fn get(&self, id: NodeId) -> Result<Arc<T>> {
        relock(&self.inner)
            .slots
            .get(&id)
            .map(|s| Arc::clone(&s.node))
            .ok_or(Error::refused(linux::ESTALE, "unknown node"))
    }

    /// Adds one lookup reference to the file `node` stands for, making it a node if it is new.
    /// When the file already has a node, `node` is dropped and the old node's id returned.
    pub(crate) fn insert(&self, node: T) -> NodeId {
        let key = node.key();
        let mut inner = relock(&self.inner);
        if let Some(&id) = inner.by_key.get(&key) {
            if let Some(slot) = inner.slots.get_mut(&id) {
                slot.refs = slot.refs.saturating_add(1);
                return id;
            }
        }
        let id = inner.next;
        inner.next += 1;
        inner.slots.insert(
            id,
            Slot {
                node: Arc::new(node),
                refs: 1,
            },
        );
        inner.by_key.insert(key, id);
        id
    }

    /// Drops `count` lookup references; removes the node when none are left. The root stays.
    pub(crate) fn forget(&self, id: NodeId, count: u64) {
        if id == ROOT_NODE {
            return;
        }
        let mut inner = relock(&self.inner);
        let Some(slot) = inner.slots.get_mut(&id) else {
            tracing::debug!(node = id, "forget of an unknown node");
            return;
        };
        slot.refs = slot.refs.saturating_sub(count);
        if slot.refs == 0 {
            if let Some(slot) = inner.slots.remove(&id) {
                inner.by_key.remove(&slot.node.key());
            }
        }
    }

    /// How many nodes are live (for tests and statistics).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        relock(&self.inner).slots.len()
    }
}

#[derive(Debug)]
struct Handles<T> {
    handles: HashMap<HandleId, Arc<T>>,
    next: HandleId,
}

/// All open handles.
#[derive(Debug)]
pub(crate) struct HandleTable<T> {
    inner: Mutex<Handles<T>>,
}

impl<T> Default for HandleTable<T> {
    fn default() -> Self {
        HandleTable {
            inner: Mutex::new(Handles {
                handles: HashMap::new(),
                next: 0,
            }),
        }
    }
}

impl<T: Keyed> HandleTable<T> {
    /// Adds a handle and returns its id (ids start at 1 and are never reused).
    pub(crate) fn insert(&self, handle: T) -> HandleId {
        let mut inner = relock(&self.inner);
        inner.next += 1;
        let id = inner.next;
        inner.handles.insert(id, Arc::new(handle));
        id
    }

    /// The handle `id`, or `EBADF`.
    pub(crate) fn get(&self, id: HandleId) -> Result<Arc<T>> {
        relock(&self.inner)
            .handles
            .get(&id)
            .cloned()
            .ok_or(Error::refused(linux::EBADF, "unknown handle"))
    }

    /// Removes a handle; the host closes it when the last in-flight call using it ends.
    pub(crate) fn remove(&self, id: HandleId) -> Result<Arc<T>> {
        relock(&self.inner)
            .handles
            .remove(&id)
            .ok_or(Error::refused(linux::EBADF, "unknown handle"))
    }

    /// The other handles open on the same file as `key` (the passthrough backend names the
    /// holder of a host lock with it).
    #[cfg(target_os = "linux")]
    pub(crate) fn same_file(&self, key: (u64, u64), except: HandleId) -> Vec<Arc<T>> {
        relock(&self.inner)
            .handles
            .iter()
            .filter(|(id, h)| **id != except && h.key() == key)
            .map(|(_, h)| Arc::clone(h))
            .collect()
    }
}
