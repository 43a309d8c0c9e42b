//! virtio-vsock (virtio 1.2 §5.10) with a hybrid-vsock muxer on the host side (docs/architecture.md:
//! how the shim reaches the agent), in the shape of Firecracker's unix-socket backend.
//!
//! - **Host-initiated**: the VMM listens on a unix socket `PATH`. A host client connects and
//!   writes `CONNECT <port>\n` (at most [`MAX_CONNECT_LINE`] bytes, within
//!   [`Limits::connect_timeout`]); the muxer sends the guest a `REQUEST` from a fresh local port
//!   (at least [`FIRST_LOCAL_PORT`]) to that guest port. On the guest's `RESPONSE` it writes
//!   `OK <local port>\n` to the client, and from then on the unix stream carries the connection's
//!   bytes. On a guest `RST` (nothing listens), or no answer within
//!   [`Limits::response_timeout`], the client's stream is closed without a word.
//! - **Guest-initiated**: a guest connection to the host (CID 2) port `P` connects to the unix
//!   socket `PATH_P`; if that fails the guest gets an `RST`.
//! - **On Windows** (`sys/windows`, `Vsock::new_pipes`) each guest port a host may reach is
//!   its own named pipe `PATH-<port>`, and opening it is the connect: no `CONNECT` line, no
//!   `OK` reply. Guest-initiated connections open the pipe `PATH_P`. Everything else (the
//!   muxer, credit, limits) is the same code on both hosts.
//!
//! Flow control is the protocol's credit scheme: every packet to the guest carries our
//! `buf_alloc` ([`Limits::buf_alloc`]) and `fwd_cnt` (bytes delivered to the host stream). Guest
//! data the host stream cannot take yet waits in a per-connection buffer that never exceeds
//! `buf_alloc`; a guest sending past its credit gets an `RST`. In the other direction the host
//! stream is read only while the guest has credit, straight into the guest's receive buffer.
//!
//! Notifications are suppressed both ways (`VIRTIO_RING_F_EVENT_IDX` when the driver takes it,
//! else the rings' flags): the guest is asked not to notify while the worker drains a ring and
//! to notify again once it is empty, so a guest writing many small packets (a terminal streaming
//! line by line) costs a VM exit per batch, not per packet.
//!
//! One device thread ([`VsockWorker`], named `vsock`) runs a wait loop (`lcow_base::WaitContext`)
//! over the queue notification events, the listening socket (or pipes), every host stream and a
//! stop event. Everything
//! the guest writes is treated as hostile: bad descriptors, bad headers or protocol violations are
//! dropped or answered with `RST` and logged at `debug`; nothing the guest does can panic the
//! VMM or make it buffer without bound.

mod backend;
mod connection;
mod device;
#[cfg(any(test, feature = "test-utils"))]
pub mod loopback;
mod muxer;
pub mod packet;
mod sys;
mod worker;

#[cfg(test)]
mod tests;

#[cfg(test)]
#[test]
fn test_socket_path_for_port_appends_underscore_port() {
    assert_eq!(
        socket_path_for_port(Path::new("/run/x/vsock.sock"), 1024),
        PathBuf::from("/run/x/vsock.sock_1024")
    );
}

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use device::Vsock;
pub use worker::{VsockStopper, VsockWorker};

/// Where a guest connection to host port `port` is forwarded: `PATH_<port>` (a unix socket on
/// Linux, a named pipe on Windows).
pub fn socket_path_for_port(path: &Path, port: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!("_{port}"));
    PathBuf::from(s)
}

/// The virtio device type of vsock.
pub const VIRTIO_ID_VSOCK: u32 = 19;
/// The host's context id.
pub const HOST_CID: u64 = 2;
/// The guest's context id by default; must agree with `lcow_protocol::GUEST_CID`.
pub const DEFAULT_GUEST_CID: u64 = 3;
/// The first local port of host-initiated connections (ports below are left to guest-initiated
/// connections' host ports).
pub const FIRST_LOCAL_PORT: u32 = 1 << 30;
/// The longest `CONNECT <port>\n` line accepted, newline included.
pub const MAX_CONNECT_LINE: usize = 32;
/// The size of each of the three queues (rx, tx, event).
pub const QUEUE_SIZE: u16 = 256;
/// The largest data payload of one packet we accept from the guest.
pub const MAX_PKT_DATA: u32 = 64 * 1024;

/// Resource limits of the muxer. The defaults suit production; tests shrink them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Our receive buffer per connection (`buf_alloc`): the most guest data held for a host
    /// stream that does not read.
    pub buf_alloc: u32,
    /// The most connections at once (both directions, established or being set up).
    pub max_connections: usize,
    /// The most accepted host streams that have not yet sent their `CONNECT` line.
    pub max_pending_streams: usize,
    /// How long a host client has to send its `CONNECT` line.
    pub connect_timeout: Duration,
    /// How long the guest has to answer a host-initiated `REQUEST`.
    pub response_timeout: Duration,
    /// How long a connection the guest closed may take to hand its buffered data to the host.
    pub shutdown_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            buf_alloc: 256 * 1024,
            max_connections: 256,
            max_pending_streams: 32,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

impl Limits {
    /// Bytes forwarded to the host since the last update the guest saw that make us send a
    /// `CREDIT_UPDATE` unasked.
    pub(crate) fn credit_update_threshold(&self) -> u32 {
        (self.buf_alloc / 4).max(1)
    }
}

/// Errors of creating the vsock device.
#[derive(Debug, thiserror::Error)]
pub enum VsockError {
    /// Something that is not a socket is at the socket path.
    #[error("{} exists and is not a socket", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Another process is listening on the socket path.
    #[error("{} is in use by another process", path.display())]
    SocketInUse {
        /// The path.
        path: PathBuf,
    },
    /// Inspecting what is at the socket path failed.
    #[error("cannot inspect {}", path.display())]
    InspectSocket {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Removing a stale socket failed.
    #[error("cannot remove the stale socket {}", path.display())]
    RemoveStale {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Binding the listening socket failed.
    #[error("cannot listen on {}", path.display())]
    Bind {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Creating an eventfd or the epoll instance, or registering with it, failed.
    #[error("failed to set up the vsock event loop")]
    EventLoop(#[source] io::Error),
}
