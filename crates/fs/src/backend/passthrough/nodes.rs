//! The node table: one O_PATH descriptor per looked-up inode, with FUSE-style lookup counts.
//!
//! Nodes are keyed by the host `(st_dev, st_ino)` pair, so every name of one inode (hard links,
//! a second lookup of the same name) maps to the same [`NodeId`]. The held O_PATH descriptor
//! keeps the inode alive, so its number cannot be reused while the node exists.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::{Error, NodeId, Result, ROOT_NODE};

/// One looked-up inode.
#[derive(Debug)]
pub(crate) struct Node {
    /// An O_PATH descriptor for the inode (never opened for I/O).
    fd: OwnedFd,
    /// The `S_IFMT` bits of the inode (a file's type never changes).
    pub(crate) kind: u32,
    /// `(st_dev, st_ino)`.
    pub(crate) key: (u64, u64),
}

impl Node {
    /// A node not (yet) in the table.
    pub(crate) fn new(fd: OwnedFd, kind: u32, key: (u64, u64)) -> Self {
        Node { fd, kind, key }
    }

    /// The O_PATH descriptor.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether the node is a symbolic link.
    pub(crate) fn is_symlink(&self) -> bool {
        self.kind == libc::S_IFLNK
    }

    /// Whether the node is a directory.
    pub(crate) fn is_dir(&self) -> bool {
        self.kind == libc::S_IFDIR
    }
}

#[derive(Debug)]
struct Slot {
    node: Arc<Node>,
    refs: u64,
}

#[derive(Debug, Default)]
struct Inner {
    slots: HashMap<NodeId, Slot>,
    by_key: HashMap<(u64, u64), NodeId>,
    next: NodeId,
}

/// All live nodes.
#[derive(Debug)]
pub(crate) struct NodeTable {
    inner: Mutex<Inner>,
}

impl NodeTable {
    /// A table holding only the root node.
    pub(crate) fn new(root_fd: OwnedFd, key: (u64, u64)) -> Self {
        let mut inner = Inner {
            next: ROOT_NODE + 1,
            ..Inner::default()
        };
        let root = Node {
            fd: root_fd,
            kind: libc::S_IFDIR,
            key,
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

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the maps half-updated (each update is one insert or
        // remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node `id`, or `ESTALE` if the guest names a node it has forgotten (or never had).
    pub(crate) fn get(&self, id: NodeId) -> Result<Arc<Node>> {
        self.lock()
            .slots
            .get(&id)
            .map(|s| Arc::clone(&s.node))
            .ok_or(Error::refused(libc::ESTALE, "unknown node"))
    }

    /// Adds one lookup reference to the inode behind `fd`, creating its node if it is new.
    /// When the inode already has a node, `fd` is dropped and the old node is returned.
    pub(crate) fn insert(&self, fd: OwnedFd, kind: u32, key: (u64, u64)) -> NodeId {
        let mut inner = self.lock();
        if let Some(&id) = inner.by_key.get(&key) {
            if let Some(slot) = inner.slots.get_mut(&id) {
                slot.refs = slot.refs.saturating_add(1);
                return id;
            }
        }
        let id = inner.next;
        inner.next += 1;
        let node = Arc::new(Node { fd, kind, key });
        inner.slots.insert(id, Slot { node, refs: 1 });
        inner.by_key.insert(key, id);
        id
    }

    /// Drops `count` lookup references; removes the node when none are left. The root stays.
    pub(crate) fn forget(&self, id: NodeId, count: u64) {
        if id == ROOT_NODE {
            return;
        }
        let mut inner = self.lock();
        let Some(slot) = inner.slots.get_mut(&id) else {
            tracing::debug!(node = id, "forget of an unknown node");
            return;
        };
        slot.refs = slot.refs.saturating_sub(count);
        if slot.refs == 0 {
            if let Some(slot) = inner.slots.remove(&id) {
                inner.by_key.remove(&slot.node.key);
            }
        }
    }

    /// How many nodes are live (for tests and statistics).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().slots.len()
    }
}
