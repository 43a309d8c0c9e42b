//! The passthrough backend's nodes: one O_PATH descriptor per looked-up inode, in a
//! [`crate::backend::table::NodeTable`] with FUSE-style lookup counts.
//!
//! Nodes are keyed by the host `(st_dev, st_ino)` pair, so every name of one inode (hard links,
//! a second lookup of the same name) maps to the same [`NodeId`]. The held O_PATH descriptor
//! keeps the inode alive, so its number cannot be reused while the node exists.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::backend::table::Keyed;

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

impl Keyed for Node {
    fn key(&self) -> (u64, u64) {
        self.key
    }
}

/// All live nodes.
pub(crate) type NodeTable = crate::backend::table::NodeTable<Node>;
