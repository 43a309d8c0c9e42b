//! The agent client on Linux: ttrpc on the hybrid-vsock unix stream.

use std::io::{self, Read};
use std::os::fd::IntoRawFd;
use std::path::Path;
use std::time::Duration;

use crate::client::ClientError;
use crate::hybrid::{self, HostStream};

/// The `CONNECT` handshake already proved the agent listens: a failed Hello is final.
pub(crate) const HELLO_PROVES_READY: bool = false;

/// A ttrpc client on a new connection to the agent's port, waiting up to `wait` for it.
pub(crate) fn agent_client(socket: &Path, wait: Duration) -> Result<ttrpc::Client, ClientError> {
    let stream =
        hybrid::connect_wait(socket, crate::AGENT_PORT, wait).map_err(ClientError::Reach)?;
    ttrpc::Client::new(stream.into_raw_fd()).map_err(ClientError::Ttrpc)
}

/// Reads the one-byte answer to a stream header, waiting at most `timeout`.
pub(crate) fn read_ack(stream: &mut HostStream, timeout: Duration) -> io::Result<u8> {
    stream.set_read_timeout(Some(timeout))?;
    let mut ack = [0u8; 1];
    stream.read_exact(&mut ack)?;
    stream.set_read_timeout(None)?;
    Ok(ack[0])
}
