//! The host side of hybrid vsock (docs/architecture.md): how a host program opens a stream that
//! is a vsock connection to a port in the guest.
//!
//! - Linux: the VMM listens on a unix socket (`--vsock PATH`); the host connects, writes
//!   `CONNECT <port>\n` and reads `OK <host-port>\n`; from then on the unix stream is the
//!   connection. If nothing listens on that guest port the VMM closes the stream instead of
//!   answering ([`HybridError::Refused`]).
//! - Windows (docs/windows.md): the VMM serves one named pipe per guest port the host connects
//!   to, `<PATH>-<port>` (`PATH` a pipe name such as `\\.\pipe\lcow-<id>`), so a client that
//!   opens a pipe by name and speaks at once (ttrpc's `Client::connect`) works. There is no
//!   handshake: opening the pipe is the connect, and a guest port with no listener shows as the
//!   VMM closing the pipe before any data.
//!
//! [`HostStream`] is the stream type of the host (a `UnixStream`, a pipe `File`).

use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

pub use crate::sys::hybrid::{connect, HostStream};

/// Errors of the handshake.
#[derive(Debug, thiserror::Error)]
pub enum HybridError {
    /// The VMM's socket cannot be reached.
    #[error("cannot connect to the vm's vsock socket {}", path.display())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing the request or reading the reply failed.
    #[error("vsock handshake on {} failed", path.display())]
    Handshake {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The VMM closed the stream: no listener on that guest port (yet).
    #[error("nothing in the guest accepts vsock port {port}")]
    Refused {
        /// The guest port.
        port: u32,
    },
    /// The reply is not `OK <n>`.
    #[error("unexpected reply to CONNECT {port}: {reply:?}")]
    BadReply {
        /// The guest port.
        port: u32,
        /// What came back (at most 32 bytes).
        reply: String,
    },
    /// `connect_wait` ran out of time; the last failure is the source.
    #[error("vsock port {port} not ready after {waited:?}")]
    Timeout {
        /// The guest port.
        port: u32,
        /// How long it tried.
        waited: Duration,
        /// The last attempt's error.
        #[source]
        last: Box<HybridError>,
    },
}

/// Like [`connect`], retrying every few milliseconds while the socket is absent or the guest
/// port has no listener yet, for at most `timeout`: the host's wait-for-ready.
pub fn connect_wait(path: &Path, port: u32, timeout: Duration) -> Result<HostStream, HybridError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match connect(path, port) {
            Ok(s) => return Ok(s),
            Err(e @ (HybridError::Refused { .. } | HybridError::Connect { .. })) => {
                if start.elapsed() >= timeout {
                    return Err(HybridError::Timeout {
                        port,
                        waited: start.elapsed(),
                        last: Box::new(e),
                    });
                }
            }
            Err(e) => return Err(e),
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
