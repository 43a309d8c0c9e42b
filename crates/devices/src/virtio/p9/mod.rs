//! virtio-9p (device type 9, the "9P transport" of the virtio spec drafts and QEMU, which the
//! Linux `9pnet_virtio` driver speaks): the guest mounts a host directory with
//! `mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt` (docs/architecture.md, guest ↔ file server).
//!
//! - Configuration space: `tag_len: u16` (little endian), then the tag's bytes (the mount tag,
//!   1 to [`MAX_TAG_LEN`] bytes, no NUL). Read-only.
//! - Features: `VIRTIO_9P_MOUNT_TAG` ([`VIRTIO_9P_F_MOUNT_TAG`]), `VIRTIO_F_VERSION_1` and
//!   `VIRTIO_RING_F_EVENT_IDX`.
//! - One request queue. Each chain carries one T-message in its device-readable descriptors
//!   (gathered across as many as the driver used: the Linux zero-copy path puts a Twrite's
//!   payload in descriptors of its own) and receives the R-message in its device-writable ones
//!   (scattered likewise: a zero-copy Rread lands in the reader's pages).
//!
//! Requests are served concurrently by the pool of [`super::request`], through a
//! [`P9Handler`] — in the VMM the transport-free `lcow_fs::p9::server::Server`. Tflush goes to
//! the pool's urgent thread, so it reaches the server while Tlocks wait; a Tflush naming a
//! request still in the backlog answers that request Rlerror `EINTR` first. The server hands
//! each reply to the device before the request stops counting as running, and the device puts
//! it in the used ring right then, so a flushed request's reply always precedes the Rflush.
//!
//! **A reply larger than the writable space.** The Linux client sizes the writable part by the
//! negotiated msize (or, zero-copy, by the count it asked for), and the server never answers
//! more than msize or count, so this does not happen with a correct client. If it does, the
//! request is answered Rlerror `EMSGSIZE` (what the server answers for a reply over msize) when
//! those 11 bytes fit, else the chain is returned with nothing written; the reply is never
//! truncated, since a truncated R-message would be read as a whole one.

mod device;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use lcow_fs::backend::Backend;
use lcow_fs::p9::server::Server;

pub use device::P9;

/// The virtio device type of 9P.
pub const VIRTIO_ID_9P: u32 = 9;
/// Feature bit: the configuration space holds a mount tag.
pub const VIRTIO_9P_F_MOUNT_TAG: u32 = 0;
/// The longest mount tag accepted, in bytes.
pub const MAX_TAG_LEN: usize = 255;
/// The largest T-message accepted: the server's largest msize.
pub const MAX_REQUEST: usize = lcow_fs::p9::MAX_MSIZE as usize;

/// Serves 9P requests for the device: one framed T-message in, at most one framed R-message
/// handed to `send`. Called from several pool threads at once.
pub trait P9Handler: Send + Sync + 'static {
    /// Handles `request` and hands the reply (if any) to `send` before returning. A handler
    /// that supports Tflush must call `send` for a request before it answers a Tflush naming
    /// it (see the module documentation).
    fn handle_and_send(&self, request: &[u8], send: &mut dyn FnMut(Vec<u8>));
}

impl<B: Backend + 'static> P9Handler for Server<B> {
    fn handle_and_send(&self, request: &[u8], send: &mut dyn FnMut(Vec<u8>)) {
        Server::handle_and_send(self, request, send);
    }
}

impl<H: P9Handler> P9Handler for Arc<H> {
    fn handle_and_send(&self, request: &[u8], send: &mut dyn FnMut(Vec<u8>)) {
        H::handle_and_send(self, request, send);
    }
}

/// Errors of creating a 9P device.
#[derive(Debug, thiserror::Error)]
pub enum P9Error {
    /// The mount tag is empty, too long or holds a NUL byte.
    #[error("invalid 9p mount tag {tag:?}: must be 1 to {MAX_TAG_LEN} bytes without NUL")]
    InvalidTag {
        /// The tag.
        tag: String,
    },
    /// Creating the eventfds or the epoll instance failed.
    #[error("failed to set up the 9p queue thread")]
    EventLoop(#[source] std::io::Error),
}
