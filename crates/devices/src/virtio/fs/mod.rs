//! virtio-fs (device type 26, virtio 1.2 §5.11): FUSE over virtqueues, which the Linux
//! `virtiofs` driver speaks; the guest mounts a host directory with `mount -t virtiofs TAG /mnt`
//! (docs/architecture.md, guest ↔ file server).
//!
//! - Configuration space: `tag: [u8; 36]` (UTF-8, NUL-padded; a 36-byte tag has no NUL) and
//!   `num_request_queues: u32` (little endian). Read-only.
//! - Features: `VIRTIO_F_VERSION_1` and `VIRTIO_RING_F_EVENT_IDX`; no notification queue, no
//!   DAX window (the shared-memory cache is not offered).
//! - Queue 0 is the high-priority queue (FORGET, BATCH_FORGET; INTERRUPT if a driver sent one),
//!   queues 1..=`num_request_queues` carry requests. Each chain holds one request —
//!   `fuse_in_header` and its arguments — in its device-readable descriptors and receives the
//!   reply — `fuse_out_header` and its body — in its device-writable ones, gathered and
//!   scattered across descriptors.
//!
//! Requests are served concurrently by the pool of [`super::request`] through a
//! [`FuseHandler`] — in the VMM `lcow_fs::fuse::server::Server`. The high-priority queue and
//! INTERRUPT go to the pool's urgent thread, so they are never stuck behind a SETLKW waiting for
//! a lock. (The Linux driver never sends INTERRUPT: an F_SETLKW waiting on the host cannot be
//! interrupted from the guest; with the default pool up to 15 such waits run at once before
//! other requests queue behind them.) An INTERRUPT naming a request still in the backlog
//! answers it `-EINTR` first. A request the handler answers with nothing (FORGET,
//! BATCH_FORGET, INTERRUPT) is returned with 0 bytes written.
//!
//! **A reply larger than the writable space.** The Linux driver sizes the writable part by the
//! reply it expects (the out arguments, or the READ size, or the xattr size asked for), and a
//! correct server stays within it. If a reply does not fit, the request is answered
//! `fuse_out_header` alone with error `-EIO` when those 16 bytes fit, else the chain is returned
//! with nothing written; a reply is never truncated.

mod device;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use lcow_fs::backend::Backend;
use lcow_fs::fuse::server::Server;

pub use device::VirtioFs;

/// The virtio device type of virtio-fs.
pub const VIRTIO_ID_FS: u32 = 26;
/// The size of the configuration space's tag field; the longest tag.
pub const TAG_SIZE: usize = 36;
/// The most request queues a device may have.
pub const MAX_REQUEST_QUEUES: u32 = 8;
/// The largest request accepted: the largest WRITE plus room for its headers.
pub const MAX_REQUEST: usize = lcow_fs::fuse::MAX_WRITE as usize + 4096;

/// Serves FUSE requests for the device: one whole request (`fuse_in_header` and arguments)
/// in, the whole reply (`fuse_out_header` and body) out, or `None` when the request gets no
/// reply. Called from several pool threads at once.
pub trait FuseHandler: Send + Sync + 'static {
    /// Handles `request`.
    fn handle(&self, request: &[u8]) -> Option<Vec<u8>>;
}

impl<B: Backend + 'static> FuseHandler for Server<B> {
    fn handle(&self, request: &[u8]) -> Option<Vec<u8>> {
        Server::handle(self, request)
    }
}

impl<H: FuseHandler> FuseHandler for Arc<H> {
    fn handle(&self, request: &[u8]) -> Option<Vec<u8>> {
        H::handle(self, request)
    }
}

/// Errors of creating a virtio-fs device.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The tag is empty, longer than 36 bytes or holds a NUL byte.
    #[error("invalid virtio-fs tag {tag:?}: must be 1 to {TAG_SIZE} bytes without NUL")]
    InvalidTag {
        /// The tag.
        tag: String,
    },
    /// The request queue count is 0 or over [`MAX_REQUEST_QUEUES`].
    #[error("invalid virtio-fs request queue count {count}: must be 1 to {MAX_REQUEST_QUEUES}")]
    QueueCount {
        /// The count asked for.
        count: u32,
    },
    /// Creating the eventfds or the epoll instance failed.
    #[error("failed to set up the virtio-fs queue thread")]
    EventLoop(#[source] std::io::Error),
}
